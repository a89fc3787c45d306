"""Normalized records: the only platform data that crosses into ``plugin/``.

Money is ``Decimal``, datetimes are timezone-aware UTC, ids are strings (platforms use
ints, GIDs, base64 ids and UUIDs). Records are frozen so a parsed webhook cannot be mutated
on its way to the database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Generic, Literal, TypeVar

from connectors.errors import InvalidPayload
from connectors.parsing import check_amount

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
    "Rejected",
    "Variant",
    "WebhookEvent",
    "storable_text",
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
        # a sales channel's publication was deleted (Shopify): the storefront may have
        # sold through it
        "publications/delete",
        "customers/data_request",
        "customers/redact",
        "shop/redact",
    }
)


#: what the database columns hold: an id longer than this is refused (cutting it would
#: merge two ids), descriptive text is cut to its column instead (a long title must not
#: lose the product)
ID_MAX = 255
INT_MAX = 2**31 - 1
MAX_QUANTITY = 1_000_000


#: what no text column stores: NUL (PostgreSQL) and lone surrogates, which JSON's "\\ud83d"
#: decodes to (half an emoji cut by a JavaScript slice) and no UTF-8 encodes (both)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` without what no text column stores (NUL, lone surrogates)."""
    return _UNSTORABLE.sub("", text)


def _id(record: Any, name: str, *, optional: bool = False) -> None:
    value = getattr(record, name)
    if value is None and optional:
        return
    if not isinstance(value, str) or not 0 < len(value) <= ID_MAX or _UNSTORABLE.search(value):
        raise InvalidPayload(f"{name} is not a valid id", {name: [
            f"text of 1 to {ID_MAX} characters, no NUL or lone surrogate"]})


def _text(record: Any, name: str, limit: int | None, *, optional: bool = False) -> None:
    """Text as the column holds it: NULs and lone surrogates dropped, cut to ``limit``; a
    non-string refused."""
    value = getattr(record, name)
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise InvalidPayload(f"{name} is not text", {name: ["expected text"]})
    clean = storable_text(value)[:limit]
    if clean != value:
        object.__setattr__(record, name, clean)


def _texts(record: Any, name: str) -> None:
    values = getattr(record, name)
    if not all(isinstance(v, str) for v in values):
        raise InvalidPayload(f"{name} must be text", {name: ["expected a list of text"]})
    object.__setattr__(record, name, tuple(storable_text(v)[:ID_MAX] for v in values))


def _amount(record: Any, name: str) -> None:
    value = getattr(record, name)
    if value is not None:
        check_amount(value, name)


def _currency(record: Any, name: str = "currency", *, optional: bool = True) -> None:
    value = getattr(record, name)
    if value is None and optional:
        return
    if not isinstance(value, str) or len(value) != 3 or not (value.isascii() and value.isalpha()):
        raise InvalidPayload(f"{name} is not a currency code", {name: ["three letters"]})


def _prices(record: Any) -> None:
    """Prices by currency as a read-only mapping: codes in upper case, amounts in range."""
    value = record.prices
    if not isinstance(value, Mapping):
        raise InvalidPayload("prices is not a mapping", {"prices": ["currency -> amount"]})
    clean = {}
    for code, amount in value.items():
        if not isinstance(code, str) or len(code) != 3 or not (code.isascii() and code.isalpha()):
            raise InvalidPayload("prices has a bad currency code", {"prices": ["three letters"]})
        if not isinstance(amount, Decimal):
            raise InvalidPayload("prices has a bad amount", {"prices": ["a Decimal amount"]})
        clean[code.upper()] = check_amount(amount, "prices")
    object.__setattr__(record, "prices", MappingProxyType(clean))


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
    #: the price in each currency the platform lists one in (``price`` is the one in the
    #: product's ``currency``); empty where it knows one currency only
    prices: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _id(self, "external_id")
        _text(self, "title", 500)
        _text(self, "sku", ID_MAX, optional=True)
        _amount(self, "price")
        _prices(self)
        qty = self.inventory_qty  # informational: a count the column cannot hold is unknown
        if qty is not None and (isinstance(qty, bool) or not isinstance(qty, int)
                                or abs(qty) > INT_MAX):
            object.__setattr__(self, "inventory_qty", None)


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
    #: not available before this time (a scheduled launch), whatever ``available`` says:
    #: the platform sends nothing when the time comes, so readers compare it with now
    available_from: datetime | None = None
    #: the lowest price in each currency the platform lists one in (as ``price``)
    prices: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_aware(updated_at=self.updated_at, available_from=self.available_from)
        _id(self, "external_id")
        _text(self, "title", 500)
        _text(self, "description", None)
        for name in ("url", "image_url"):
            _text(self, name, 1000, optional=True)
        _text(self, "vendor", ID_MAX, optional=True)
        _texts(self, "categories")
        _texts(self, "tags")
        _amount(self, "price")
        _currency(self)
        _prices(self)


@dataclass(frozen=True, slots=True)
class Customer:
    external_id: str
    updated_at: datetime
    email: str | None = None
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        _require_aware(updated_at=self.updated_at, created_at=self.created_at)
        _id(self, "external_id")
        _text(self, "email", None, optional=True)


@dataclass(frozen=True, slots=True)
class LineItem:
    product_id: str
    quantity: int
    price: Decimal
    variant_id: str | None = None

    def __post_init__(self) -> None:
        _id(self, "product_id")
        _id(self, "variant_id", optional=True)
        q = self.quantity
        if isinstance(q, bool) or not isinstance(q, int) or not 0 < q <= MAX_QUANTITY:
            raise InvalidPayload("quantity is out of range",
                                 {"quantity": [f"a whole number from 1 to {MAX_QUANTITY}"]})
        _amount(self, "price")


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
        _id(self, "external_id")
        _id(self, "customer_id", optional=True)
        _currency(self, optional=False)
        _texts(self, "discount_codes")
        _amount(self, "total")


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
        _id(self, "external_id")
        _id(self, "customer_id", optional=True)
        _id(self, "shopper_id", optional=True)
        _currency(self)


@dataclass(frozen=True, slots=True)
class Deletion:
    kind: Literal["product", "customer", "order", "publication"]
    external_id: str
    deleted_at: datetime | None = None

    def __post_init__(self) -> None:
        _require_aware(deleted_at=self.deleted_at)
        _id(self, "external_id")


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
class Rejected:
    """A backfill record that could not be read: its platform id (when it had one) and why."""

    record_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a backfill; ``next_cursor`` resumes *after* it (None on the last page).

    ``rejected`` lists the page's records that failed to parse: one bad product must not
    stop a shop's whole backfill, but it must not vanish silently either. ``ignored``
    counts records read and left out as none of the shop's business (e.g. a Saleor order
    of another channel).
    """

    items: list[T]
    next_cursor: str | None
    rejected: tuple[Rejected, ...] = ()
    ignored: int = 0


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

