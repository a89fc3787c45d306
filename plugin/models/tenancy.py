"""The tenant: a Shop, its platform Installation and its per-resource SyncState."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.extensions import db
from plugin.models.types import UTCDateTime, utcnow


class Shop(db.Model):
    """One installed store. ``id`` is public (appears in webhook URLs); it is not a secret."""

    __tablename__ = "shops"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    domain: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | uninstalled
    widget_key: Mapped[str] = mapped_column(String(64), unique=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: bumped by every write of ``settings``, which goes through ``shops.update_settings``
    #: (written only where it is still the revision read: no writer reverts another's keys)
    settings_rev: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    uninstalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    installation: Mapped[Installation | None] = relationship(
        back_populates="shop", uselist=False, cascade="all, delete-orphan"
    )

    __table_args__ = (UniqueConstraint("platform", "domain", name="uq_shops_platform_domain"),)


class Installation(db.Model):
    """Platform credentials for a shop, encrypted at rest (see ``plugin.crypto``)."""

    __tablename__ = "installations"

    shop_id: Mapped[str] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    credentials_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    auth_failed: Mapped[bool] = mapped_column(default=False)
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    shop: Mapped[Shop] = relationship(back_populates="installation")


class SyncState(db.Model):
    """Where a backfill of one resource stands, so it resumes instead of restarting."""

    __tablename__ = "sync_states"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    resource: Mapped[str] = mapped_column(String(32))  # products | customers | orders
    cursor: Mapped[str | None] = mapped_column(String(512), nullable=True)
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # idle | running | paused | failed | refused (the credentials may not read it)
    status: Mapped[str] = mapped_column(String(16), default="idle")
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    # records of this pass the platform sent but no parser could read: counted, and the
    # latest few named, so a merchant can fix them at the source
    skipped: Mapped[int] = mapped_column(default=0, server_default="0")
    rejected: Mapped[list[dict[str, str | None]] | None] = mapped_column(JSON, default=list)
    # bumped when the sync is made to start over (``plugin.ingestion.sync.restart_sync``):
    # a run under way then saves neither its page nor its place over the restart
    epoch: Mapped[int] = mapped_column(default=0, server_default="0")
    # when this products pass began (the database's clock), kept while it is resumed: at
    # its end, products not listed since are gone. None: it cannot tell (unread records)
    pass_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("shop_id", "resource", name="uq_sync_shop_resource"),)
