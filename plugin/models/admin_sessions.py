"""Admin sign-ins kept on the server: the signed cookie alone cannot be revoked."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from plugin.extensions import db
from plugin.models.types import UTCDateTime, utcnow


class AdminSession(db.Model):
    """One signed-in admin browser. ``id`` is a SHA-256 of the random handle in the cookie
    (a database read alone does not give a usable handle). Deleting the row ends the
    session, for every copy of the cookie."""

    __tablename__ = "admin_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"),
                                         index=True)
    via: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_admin_sessions_last_seen", "last_seen_at"),)


class AdminLinkUse(db.Model):
    """A signed admin link that was used: its nonce, kept until the link expires anyway,
    so the link signs in once."""

    __tablename__ = "admin_link_uses"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"),
                                         index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
