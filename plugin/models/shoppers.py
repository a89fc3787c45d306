"""People: platform customers, kept with as little personal data as the features need."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.extensions import db
from plugin.models.types import UTCDateTime, utcnow


class Customer(db.Model):
    """A platform customer. Only a keyed hash of the email is kept (for privacy look-ups)."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    email_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    source_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (UniqueConstraint("shop_id", "external_id", name="uq_customers_shop_ext"),)


class AnonymousLink(db.Model):
    """A shop's anonymous browser id and the customer who first signed in with it.

    At most one per ``(shop, anonymous id)``: the unique constraint decides between two
    sign-ins at once. ``customer_id`` becomes None when a second customer signs in with the
    same browser id (a shared computer): its anonymous events are then linked to nobody.
    ``linked_at`` is the last time events were linked through it (retention counts from it).
    """

    __tablename__ = "anonymous_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    anonymous_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("shop_id", "anonymous_id", name="uq_anonymous_links_shop_anon"),
        Index("ix_anonymous_links_shop_customer", "shop_id", "customer_id"),
    )


class ErasedExport(db.Model):
    """A data-request export an erasure or redaction deleted (its file name, no personal
    data), recorded in the erasure's transaction. The file itself goes only once that
    commits; until it is gone (a crash between the commit and the delete) the admin
    neither lists nor serves it, and the retention sweep deletes it."""

    __tablename__ = "erased_exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("shop_id", "name", name="uq_erased_exports_shop_name"),)
