"""What happened: raw webhook deliveries (the inbox) and shopper interactions."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.extensions import db
from plugin.models.types import Money, UTCDateTime, utcnow


class WebhookDelivery(db.Model):
    """A verified delivery stored before we answer 200; processed later by the worker.

    Status moves pending -> processing -> done, or -> failed (retried with back-off)
    -> dead after ``INBOX_MAX_ATTEMPTS``. ``(shop_id, delivery_id)`` is unique, so a
    redelivery is stored once. A done row keeps no ``body`` or ``headers`` (they hold
    personal data and the signature), only its ids, topic, status and times: enough to
    recognise a redelivery until it is purged (``INBOX_DONE_RETENTION_DAYS``); failed and
    dead rows keep them for retries until the customer they concern is erased.
    """

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    connector: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str] = mapped_column(String(64))
    delivery_id: Mapped[str] = mapped_column(String(255))
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("shop_id", "delivery_id", name="uq_deliveries_shop_delivery"),
        Index("ix_deliveries_status_next", "status", "next_attempt_at"),
    )


#: ``Interaction.subprofile_id`` of purchases whose sub-profile was deleted: nobody's now
#: (not the owner's, not any sub-profile's); real ids start at 1
FORGOTTEN_SUBPROFILE = -1
#: ``Interaction.kind`` of a purchase whose order left the shop's history (a new Saleor
#: channel, ``plugin.admin.channel``): out of training and of every model input, kept so
#: that whom its line was for comes back with the order if a sync reads it again
#: (``plugin.ingestion.mapping``) and, meanwhile, still what its person has: the toilet-seat
#: rule leaves its durable out, and whom a basket is for is judged against it
SET_ASIDE = "purchase_set_aside"


class Interaction(db.Model):
    """One shopper event (purchase, view, add_to_cart, ...), the engine's training input.

    ``shopper_id`` is the platform customer id or an anonymous first-party id;
    ``subprofile_id`` marks purchases made for someone else.
    """

    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    shopper_id: Mapped[str] = mapped_column(String(255))
    subprofile_id: Mapped[int | None] = mapped_column(nullable=True)
    product_external_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(24))
    quantity: Mapped[int] = mapped_column(default=1)
    price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    order_external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_interactions_shop_shopper", "shop_id", "shopper_id"),
        Index("ix_interactions_shop_time", "shop_id", "occurred_at"),
        Index("ix_interactions_shop_order", "shop_id", "order_external_id"),
        # a sub-profile's rows (its seeds, what was bought for it), not the shop's all
        Index("ix_interactions_shop_subprofile", "shop_id", "subprofile_id"),
    )


class AuditLog(db.Model):
    """Who changed what in a shop (settings, erasures, key rotations); never holds PII."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

