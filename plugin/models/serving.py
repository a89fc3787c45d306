"""Serving state: trained model versions, per-shopper top-N cache, impressions and consent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.extensions import db
from plugin.models.types import UTCDateTime, utcnow


class ModelVersion(db.Model):
    """One training run of a shop's model; the newest ``ready`` one is served.

    ``popular`` keeps the shop's non-personal list (``[[item, score], ...]``) so the
    holdout arm and the fallback work from the database alone, even without artifacts.
    """

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="training")  # training|ready|failed
    algorithm: Mapped[str] = mapped_column(String(64), default="")
    artifact_dir: Mapped[str] = mapped_column(String(1000), default="")
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    popular: Mapped[list[list[Any]]] = mapped_column(JSON, default=list)
    trained_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("shop_id", "version", name="uq_model_versions_shop_version"),
        Index("ix_model_versions_shop_status", "shop_id", "status"),
    )


class RecommendationCache(db.Model):
    """Precomputed top-N of one shopper: ``items`` is ``[[item, score, source, reason], ...]``."""

    __tablename__ = "recommendation_cache"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    shopper_id: Mapped[str] = mapped_column(String(255))
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True)
    items: Mapped[list[list[Any]]] = mapped_column(JSON, default=list)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("shop_id", "shopper_id", name="uq_rec_cache_shop_shopper"),
    )


class Impression(db.Model):
    """One served recommendation list; item ``k`` has rec id ``f"{rec_id}.{k}"``.

    ``holdout`` and ``personalized`` tag the arm for the A/B dashboard; ``shopper_id``
    stays empty when the shop requires consent and the shopper has not given it.
    """

    __tablename__ = "impressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    rec_id: Mapped[str] = mapped_column(String(40))
    shopper_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    placement: Mapped[str] = mapped_column(String(16))
    items: Mapped[list[str]] = mapped_column(JSON, default=list)
    sources: Mapped[list[str]] = mapped_column(JSON, default=list)
    holdout: Mapped[bool] = mapped_column(default=False)
    personalized: Mapped[bool] = mapped_column(default=False)
    model_version_id: Mapped[int | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("rec_id", name="uq_impressions_rec_id"),
        Index("ix_impressions_shop_time", "shop_id", "created_at"),
    )


class ShopperConsent(db.Model):
    """A shopper's answer to the shop's consent prompt (anonymous id or customer id)."""

    __tablename__ = "shopper_consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    shopper_id: Mapped[str] = mapped_column(String(255))
    granted: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("shop_id", "shopper_id", name="uq_consents_shop_shopper"),
    )
