"""Shopify payloads -> records, for both REST-shaped webhooks and Admin GraphQL nodes.

Ids are normalized to the numeric part (``gid://shopify/Product/42`` and REST ``42`` both
become ``"42"``) so a webhook and a backfill of the same product meet in one row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.errors import InvalidPayload
from connectors.parsing import parse_datetime, to_decimal
from connectors.records import (
    Cart,
    Customer,
    Deletion,
    LineItem,
    Order,
    Product,
    Redaction,
    Variant,
)

__all__ = [
    "cart_from_rest",
    "customer_from_gql",
    "customer_from_rest",
    "deletion_from_rest",
    "gid",
    "inventory_item_from_rest",
    "legacy_id",
    "order_from_gql",
    "order_from_rest",
    "product_from_gql",
    "product_from_rest",
    "publication_deletion_from_rest",
    "redaction_from_rest",
]


def legacy_id(value: Any) -> str:
    """``gid://shopify/Product/42`` or ``42`` -> ``"42"``."""
    if value is None or isinstance(value, bool) or value == "":
        raise InvalidPayload("missing id", {"id": ["required"]})
    return str(value).rsplit("/", 1)[-1]


def gid(kind: str, value: str) -> str:
    """The GraphQL global id for a numeric id, e.g. ``gid("Customer", "7")``."""
    return value if value.startswith("gid://") else f"gid://shopify/{kind}/{value}"


def _tags(value: Any) -> tuple[str, ...]:
    """REST webhooks send tags as ``"a, b"``; GraphQL sends a list."""
    if isinstance(value, str):
        items: Iterable[str] = value.split(",")
    else:
        items = value or ()
    return tuple(t.strip() for t in items if t and t.strip())


def _when(value: Any, field: str, fallback: datetime | None = None) -> datetime:
    if value in (None, "") and fallback is not None:
        return fallback
    return parse_datetime(value, field=field)


def _maybe_when(value: Any, field: str) -> datetime | None:
    return None if value in (None, "") else parse_datetime(value, field=field)


def _opt_id(value: Any) -> str | None:
    return None if value in (None, "") else legacy_id(value)


def _currency(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 3:
        raise InvalidPayload("missing currency", {"currency": ["an ISO-4217 code is required"]})
    return value.upper()


def _min_price(variants: tuple[Variant, ...]) -> Decimal | None:
    prices = [v.price for v in variants if v.price is not None]
    return min(prices) if prices else None


# -- products ------------------------------------------------------------------------------
def _variant_from_rest(data: dict[str, Any]) -> Variant:
    qty = data.get("inventory_quantity")
    tracked = data.get("inventory_management") == "shopify"
    denies = data.get("inventory_policy", "deny") == "deny"
    available = not (tracked and denies and isinstance(qty, int) and qty <= 0)
    price = data.get("price")
    return Variant(
        external_id=legacy_id(data.get("id")),
        title=data.get("title") or "",
        sku=data.get("sku") or None,
        price=None if price in (None, "") else to_decimal(price, field="variants.price"),
        available=available,
        inventory_qty=qty if isinstance(qty, int) else None,
    )


def product_from_rest(
    data: dict[str, Any], *, currency: str | None, fallback_updated_at: datetime | None = None
) -> Product:
    """A ``products/create|update`` webhook body (REST resource shape)."""
    variants = tuple(_variant_from_rest(v) for v in data.get("variants") or ())
    image = data.get("image") or next(iter(data.get("images") or ()), None) or {}
    status = data.get("status", "active")
    price = _min_price(variants)
    return Product(
        external_id=legacy_id(data.get("id")),
        title=data.get("title") or "",
        updated_at=_when(data.get("updated_at"), "updated_at", fallback_updated_at),
        description=data.get("body_html") or "",
        image_url=image.get("src"),
        categories=(data["product_type"],) if data.get("product_type") else (),
        tags=_tags(data.get("tags")),
        vendor=data.get("vendor") or None,
        price=price,
        currency=currency if price is not None else None,
        available=status == "active" and (not variants or any(v.available for v in variants)),
        variants=variants,
    )


def product_from_gql(node: dict[str, Any], *, currency: str | None) -> Product:
    """A ``Product`` node from the Admin GraphQL backfill query: available when active,
    in stock and not unpublished from the storefront's publication."""
    variants = tuple(
        Variant(
            external_id=legacy_id(v.get("id")),
            title=v.get("title") or "",
            sku=v.get("sku") or None,
            price=None if v.get("price") is None else to_decimal(v["price"], field="price"),
            available=bool(v.get("availableForSale", True)),
            inventory_qty=v.get("inventoryQuantity"),
        )
        for v in (node.get("variants") or {}).get("nodes", ())
    )
    media = (((node.get("featuredMedia") or {}).get("preview") or {}).get("image") or {})
    price = _min_price(variants)
    return Product(
        external_id=legacy_id(node.get("id")),
        title=node.get("title") or "",
        updated_at=parse_datetime(node.get("updatedAt"), field="updatedAt"),
        description=node.get("descriptionHtml") or "",
        url=node.get("onlineStoreUrl"),
        image_url=media.get("url"),
        categories=(node["productType"],) if node.get("productType") else (),
        tags=_tags(node.get("tags")),
        vendor=node.get("vendor") or None,
        price=price,
        currency=currency if price is not None else None,
        # publishedOnPublication is asked only for a storefront publication the shop set
        # (absent: not known, as before); unpublished there, the storefront cannot sell it
        available=node.get("status", "ACTIVE") == "ACTIVE"
        and node.get("publishedOnPublication") is not False
        and (not variants or any(v.available for v in variants)),
        variants=variants,
    )


def inventory_item_from_rest(
    data: dict[str, Any], *, fallback_updated_at: datetime | None = None
) -> Product:
    """An ``inventory_levels/update`` body as a placeholder to fetch: the level names its
    inventory item, not the product, so ``external_id`` holds the item's global id until
    ``ShopifyConnector.fetch_event_record`` replaces it with the product it stocks."""
    return Product(
        external_id=gid("InventoryItem", legacy_id(data.get("inventory_item_id"))),
        title="",
        updated_at=_when(data.get("updated_at"), "updated_at", fallback_updated_at),
    )


# -- customers -----------------------------------------------------------------------------
def customer_from_rest(
    data: dict[str, Any], *, fallback_updated_at: datetime | None = None
) -> Customer:
    """A ``customers/create|update`` body; Shopify's samples may carry null timestamps."""
    created = _maybe_when(data.get("created_at"), "created_at")
    return Customer(
        external_id=legacy_id(data.get("id")),
        updated_at=_when(data.get("updated_at"), "updated_at", fallback_updated_at or created),
        email=data.get("email") or None,
        created_at=created,
    )


def customer_from_gql(node: dict[str, Any]) -> Customer:
    """A ``Customer`` node from the backfill query."""
    email = (node.get("defaultEmailAddress") or {}).get("emailAddress")
    return Customer(
        external_id=legacy_id(node.get("id")),
        updated_at=parse_datetime(node.get("updatedAt"), field="updatedAt"),
        email=email,
        created_at=_maybe_when(node.get("createdAt"), "createdAt"),
    )


# -- orders and carts ----------------------------------------------------------------------
def _rest_lines(items: Iterable[dict[str, Any]]) -> tuple[LineItem, ...]:
    """Line items; custom lines without a product are skipped (nothing to recommend)."""
    lines = []
    for item in items:
        if item.get("product_id") is None or int(item.get("quantity") or 0) <= 0:
            continue
        lines.append(
            LineItem(
                product_id=legacy_id(item["product_id"]),
                quantity=int(item["quantity"]),
                price=to_decimal(item.get("price"), field="line_items.price"),
                variant_id=_opt_id(item.get("variant_id")),
            )
        )
    return tuple(lines)


def order_from_rest(data: dict[str, Any], *, fallback_updated_at: datetime | None = None) -> Order:
    """An ``orders/*`` webhook body."""
    created = parse_datetime(data.get("created_at"), field="created_at")
    customer = data.get("customer") or {}
    total = data.get("total_price")
    return Order(
        external_id=legacy_id(data.get("id")),
        created_at=created,
        updated_at=_when(data.get("updated_at"), "updated_at", fallback_updated_at or created),
        currency=_currency(data.get("currency")),
        lines=_rest_lines(data.get("line_items") or ()),
        customer_id=_opt_id(customer.get("id")),
        discount_codes=tuple(d["code"] for d in data.get("discount_codes") or () if d.get("code")),
        total=None if total in (None, "") else to_decimal(total, field="total_price"),
        cancelled=data.get("cancelled_at") is not None,
    )


def order_from_gql(node: dict[str, Any]) -> Order:
    """An ``Order`` node from the backfill query."""
    lines = []
    for item in (node.get("lineItems") or {}).get("nodes", ()):
        product = item.get("product") or {}
        if not product.get("id") or int(item.get("quantity") or 0) <= 0:
            continue
        variant = item.get("variant") or {}
        amount = ((item.get("originalUnitPriceSet") or {}).get("shopMoney") or {}).get("amount")
        lines.append(
            LineItem(
                product_id=legacy_id(product["id"]),
                quantity=int(item["quantity"]),
                price=to_decimal(amount, field="originalUnitPriceSet"),
                variant_id=_opt_id(variant.get("id")),
            )
        )
    total = ((node.get("totalPriceSet") or {}).get("shopMoney") or {}).get("amount")
    customer = node.get("customer") or {}
    return Order(
        external_id=legacy_id(node.get("id")),
        created_at=parse_datetime(node.get("createdAt"), field="createdAt"),
        updated_at=parse_datetime(node.get("updatedAt"), field="updatedAt"),
        currency=_currency(node.get("currencyCode")),
        lines=tuple(lines),
        customer_id=_opt_id(customer.get("id")),
        discount_codes=tuple(node.get("discountCodes") or ()),
        total=None if total is None else to_decimal(total, field="totalPriceSet"),
        cancelled=node.get("cancelledAt") is not None,
    )


def cart_from_rest(
    data: dict[str, Any], *, checkout: bool, fallback_updated_at: datetime | None = None
) -> Cart:
    """``carts/*`` (keyed by token) or ``checkouts/*`` (keyed by its cart token when present)."""
    key = (data.get("cart_token") if checkout else None) or data.get("token") or data.get("id")
    customer = data.get("customer") or {}
    return Cart(
        external_id=legacy_id(key),
        updated_at=_when(data.get("updated_at"), "updated_at", fallback_updated_at),
        lines=_rest_lines(data.get("line_items") or ()),
        customer_id=_opt_id(customer.get("id")),
        currency=data.get("currency") or data.get("presentment_currency") or None,
    )


def deletion_from_rest(kind: str, data: dict[str, Any], deleted_at: datetime | None) -> Deletion:
    """``*/delete`` bodies carry only the id."""
    return Deletion(kind=kind, external_id=legacy_id(data.get("id")), deleted_at=deleted_at)  # type: ignore[arg-type]


def publication_deletion_from_rest(data: dict[str, Any],
                                   deleted_at: datetime | None) -> Deletion:
    """``publications/delete`` -> the publication's global id, the form the merchant's
    choice is kept in (``Publication.id``); the body's ``id`` may be either form."""
    given = data.get("admin_graphql_api_id") or data.get("id")
    return Deletion(kind="publication", external_id=gid("Publication", legacy_id(given)),
                    deleted_at=deleted_at)


def redaction_from_rest(topic: str, data: dict[str, Any]) -> Redaction:
    """The three mandatory compliance topics."""
    customer = data.get("customer") or {}
    if topic == "shop/redact":
        return Redaction(kind="shop_redact")
    orders_key = "orders_requested" if topic == "customers/data_request" else "orders_to_redact"
    return Redaction(
        kind="customer_data_request" if topic == "customers/data_request" else "customer_redact",
        customer_id=_opt_id(customer.get("id")),
        email=customer.get("email") or None,
        order_ids=tuple(str(o) for o in data.get(orders_key) or ()),
    )
