"""Normalized records: the only platform data that crosses into ``plugin/``.

Money is ``Decimal``, datetimes are timezone-aware UTC, ids are strings (platforms use
ints, GIDs, base64 ids and UUIDs). Records are frozen so a parsed webhook cannot be mutated
on its way to the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Generic, Literal, TypeVar

__all__ = [
    "NORMALIZED_TOPICS",
    "Cart",
    "Customer",
    "Deletion",
    "DiscountRef",
    "DiscountSpec",
    "LineItem",
    "Order",
    "Page",
    "Product",
    "Redaction",
    "Variant",
    "WebhookEvent",
]

T = TypeVar("T")

#: The generic topic vocabulary every platform topic is mapped onto.
NORMALIZED_TOPICS: frozenset[str] = frozenset(
    {
        "products/upsert",
        "products/delete",
        "customers/upsert",
        "customers/delete",
        "orders/upsert",
        "carts/upsert",
        "app/uninstalled",
        "customers/data_request",
        "customers/redact",
        "shop/redact",
    }
)


def _require_aware(**values: datetime | None) -> None:
    """Reject naive datetimes early: comparing them with aware ones fails much later."""
    for name, value in values.items():
        if value is not None and value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Variant:
    external_id: str
    title: str = ""
    sku: str | None = None
    price: Decimal | None = None
    available: bool = True
    inventory_qty: int | None = None


@dataclass(frozen=True, slots=True)
class Product:
    external_id: str
    title: str
    updated_at: datetime
    description: str = ""
    url: str | None = None
    image_url: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    vendor: str | None = None
    price: Decimal | None = None
    currency: str | None = None
    available: bool = True
    variants: tuple[Variant, ...] = ()

    def __post_init__(self) -> None:
        _require_aware(updated_at=self.updated_at)


@dataclass(frozen=True, slots=True)
class Customer:
    external_id: str
    updated_at: datetime
    email: str | None = None
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        _require_aware(updated_at=self.updated_at, created_at=self.created_at)


@dataclass(frozen=True, slots=True)
class LineItem:
    product_id: str
    quantity: int
    price: Decimal
    variant_id: str | None = None


@dataclass(frozen=True, slots=True)
class Order:
    external_id: str
    created_at: datetime
    updated_at: datetime
    currency: str
    lines: tuple[LineItem, ...]
    customer_id: str | None = None
    discount_codes: tuple[str, ...] = ()
    total: Decimal | None = None
    cancelled: bool = False

    def __post_init__(self) -> None:
        _require_aware(created_at=self.created_at, updated_at=self.updated_at)


@dataclass(frozen=True, slots=True)
class Cart:
    external_id: str
    updated_at: datetime
    lines: tuple[LineItem, ...]
    customer_id: str | None = None
    shopper_id: str | None = None
    currency: str | None = None

    def __post_init__(self) -> None:
        _require_aware(updated_at=self.updated_at)


@dataclass(frozen=True, slots=True)
class Deletion:
    kind: Literal["product", "customer", "order"]
    external_id: str
    deleted_at: datetime | None = None

    def __post_init__(self) -> None:
        _require_aware(deleted_at=self.deleted_at)


@dataclass(frozen=True, slots=True)
class Redaction:
    kind: Literal["customer_data_request", "customer_redact", "shop_redact"]
    customer_id: str | None = None
    email: str | None = None
    order_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One verified delivery, with its topic already in the normalized vocabulary."""

    topic: str
    delivery_id: str
    record: Product | Customer | Order | Cart | Deletion | Redaction | None
    occurred_at: datetime | None = None
    needs_fetch: bool = False

    def __post_init__(self) -> None:
        _require_aware(occurred_at=self.occurred_at)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a backfill; ``next_cursor`` resumes *after* it (None on the last page)."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class DiscountSpec:
    code: str
    kind: Literal["percent", "fixed", "free_shipping"]
    value: Decimal
    expires_at: datetime
    currency: str | None = None
    usage_limit: int = 1
    customer_id: str | None = None
    product_ids: tuple[str, ...] = ()
    min_subtotal: Decimal | None = None

    def __post_init__(self) -> None:
        _require_aware(expires_at=self.expires_at)


@dataclass(frozen=True, slots=True)
class DiscountRef:
    platform_id: str
    code: str
    expires_at: datetime

