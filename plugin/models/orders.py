"""Orders, their lines and open carts: the purchase history the engine learns from."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.extensions import db
from plugin.models.types import Money, UTCDateTime, utcnow


class Order(db.Model):
    """A placed order; lines are replaced as a whole when a newer version arrives."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    customer_external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    discount_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    cancelled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # from a history CSV (``plugin.ingestion.importer``), not the platform: no sync can
    # read it again, so a Saleor channel switch keeps it
    imported: Mapped[bool] = mapped_column(default=False, server_default=false())

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        UniqueConstraint("shop_id", "external_id", name="uq_orders_shop_ext"),
        Index("ix_orders_shop_customer", "shop_id", "customer_external_id"),
    )


class RedactedOrder(db.Model):
    """An order a privacy redaction erased (a tombstone, no personal data): a later
    delivery of it (an update sent after the redaction, a redelivery, a backfill) is
    ignored, or it would file the order's purchases again."""

    __tablename__ = "redacted_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    order_external_id: Mapped[str] = mapped_column(String(255))
    redacted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("shop_id", "order_external_id",
                                       name="uq_redacted_orders_shop_order"),)


class OrderLine(db.Model):
    """One product line of an order."""

    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_external_id: Mapped[str] = mapped_column(String(255))
    variant_external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    quantity: Mapped[int]
    price: Mapped[Decimal] = mapped_column(Money)

    order: Mapped[Order] = relationship(back_populates="lines")


class Cart(db.Model):
    """The latest known state of an open cart (for cart offers and "in your cart" filters)."""

    __tablename__ = "carts"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    customer_external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    shopper_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    source_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("shop_id", "external_id", name="uq_carts_shop_ext"),)
