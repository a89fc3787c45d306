"""Catalog mirrored from the platform: products and their variants."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.extensions import db
from plugin.models.types import Money, UTCDateTime


class Product(db.Model):
    """A product; ``deleted_at`` is a tombstone so a late, older upsert cannot resurrect it."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(500), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    image_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    vendor: Mapped[str | None] = mapped_column(String(255), nullable=True)
    price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    # the lowest price in each currency the platform lists one in ({"EUR": "18.00"}; NULL:
    # ``currency`` only), so a cart in another sold currency has a price to be capped by
    prices: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    available: Mapped[bool] = mapped_column(default=True)
    # a scheduled launch: not available before it whatever ``available`` says (the
    # platform sends nothing when it passes), so every reader compares it with now
    available_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    source_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # when a products sync pass last listed it (the database's clock): a pass resumed
    # over several runs knows what it saw (``SyncState.pass_started_at``)
    listed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    variants: Mapped[list[Variant]] = relationship(
        back_populates="product", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (UniqueConstraint("shop_id", "external_id", name="uq_products_shop_ext"),)


def price_in(prices: dict[str, str] | None, currency: str) -> Decimal | None:
    """The amount ``prices`` (a ``prices`` column) lists for ``currency``, if any."""
    amount = (prices or {}).get(currency.upper())
    return None if amount is None else Decimal(amount)


def on_sale(now: datetime | sa.BindParameter[datetime]) -> sa.ColumnElement[bool]:
    """Products available at ``now``: flagged available and launched by then."""
    return sa.and_(Product.available.is_(True),
                   sa.or_(Product.available_from.is_(None), Product.available_from <= now))


class Variant(db.Model):
    """A purchasable variant of a product (size, colour, pack)."""

    __tablename__ = "variants"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(500), default="")
    sku: Mapped[str | None] = mapped_column(String(255), nullable=True)
    price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    # its price in each currency the platform lists one in (as ``Product.prices``)
    prices: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    available: Mapped[bool] = mapped_column(default=True)
    inventory_qty: Mapped[int | None] = mapped_column(nullable=True)

    product: Mapped[Product] = relationship(back_populates="variants")

    def price_in(self, currency: str) -> Decimal | None:
        """Its price in ``currency`` (None: not listed in it)."""
        return price_in(self.prices, currency)

    __table_args__ = (
        UniqueConstraint("shop_id", "external_id", name="uq_variants_shop_ext"),
        Index("ix_variants_product", "product_id"),
    )
