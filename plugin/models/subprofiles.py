"""Sub-profiles ("shopping for Maya") and each shopper's prompt state.

A sub-profile holds only a name or relationship and an optional age band: nothing else
about the person is asked or stored. ``owner_id`` is the shopper id (customer id, or the
anonymous id until the shopper identifies; then the rows move to the customer id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.extensions import db
from plugin.models.types import UTCDateTime, utcnow


class SubProfile(db.Model):
    """Someone a shopper buys for; ``kind`` is ``person`` or ``gift`` (one-off, never learned)."""

    __tablename__ = "subprofiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    owner_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(60))
    age_band: Mapped[str | None] = mapped_column(String(8), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="person")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("shop_id", "owner_id", "name", name="uq_subprofiles_owner_name"),
        Index("ix_subprofiles_shop_owner", "shop_id", "owner_id"),
    )


class PromptState(db.Model):
    """When a shopper was last asked, whether to ask again, and their active profile.

    ``pending`` keeps an answer given at add-to-cart time (``{"subprofile_id", "items",
    "until"}``) so the order lines, which arrive later by webhook, follow the answer.
    """

    __tablename__ = "subprofile_prompts"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    shopper_id: Mapped[str] = mapped_column(String(255))
    last_asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    never_ask: Mapped[bool] = mapped_column(default=False)
    active_subprofile_id: Mapped[int | None] = mapped_column(
        ForeignKey("subprofiles.id", ondelete="SET NULL"), nullable=True)
    pending: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("shop_id", "shopper_id", name="uq_subprofile_prompts_shopper"),
    )
