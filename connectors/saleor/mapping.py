"""Saleor GraphQL objects (webhook subscription payloads and backfill nodes) -> records.

Webhook bodies are the ``event`` fragment of our own subscription queries (``queries.py``),
so one mapping serves both webhooks and backfill. Ids stay Saleor's base64 global ids.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.errors import InvalidPayload
from connectors.parsing import decode_json, parse_datetime, to_decimal
from connectors.records import Cart, Customer, LineItem, Order, Product, Variant

__all__ = [
    "cart_from_checkout",
    "customer_from_user",
    "editorjs_text",
    "order_from_node",
    "product_from_node",
]


def editorjs_text(description: Any) -> str:
    """Saleor stores rich text as EditorJS JSON; keep the plain text of its blocks."""
    if not description:
        return ""
    try:
        data = decode_json(description) if isinstance(description, str) else description
        blocks = data.get("blocks", [])
        return "\n".join(
            str(b.get("data", {}).get("text", "")) for b in blocks if isinstance(b, dict)
        ).strip()
    except (ValueError, AttributeError):
        return str(description)


def _money(obj: Any, field: str) -> tuple[Decimal | None, str | None]:
    if not isinstance(obj, dict) or obj.get("amount") is None:
        return None, None
    return to_decimal(obj["amount"], field=field), obj.get("currency")


def _listing(listings: list[dict[str, Any]], channel: str | None) -> dict[str, Any] | None:
    """The variant's listing in our channel, else its first listing."""
    for listing in listings:
        if channel and (listing.get("channel") or {}).get("slug") == channel:
            return listing
    return None if channel else next(iter(listings), None)


def _purchasable(listing: dict[str, Any]) -> bool:
    """Whether the channel listing sells the product at some time (``_launch`` says when).

    Saleor computes ``isAvailableForPurchase`` at query time from ``availableForPurchaseAt``
    (false before it) and sends nothing when that time comes, so a date, past or future,
    means purchasable from then on. Without the date field (older subscriptions) the flag
    is all there is, and only an explicit false refuses.
    """
    if "availableForPurchaseAt" in listing:
        return bool(listing.get("availableForPurchaseAt")) \
            or listing.get("isAvailableForPurchase") is True
    return listing.get("isAvailableForPurchase") is not False


def _launch(listing: dict[str, Any]) -> datetime | None:
    """The latest of the listing's publication and purchase dates: the product is neither
    shown nor sold before it (Saleor hides a product published with a future
    ``publishedAt``, though ``isPublished`` is already true)."""
    dates = [parse_datetime(listing[f], field=f"channelListings.{f}")
             for f in ("publishedAt", "availableForPurchaseAt") if listing.get(f)]
    return max(dates, default=None)


def product_from_node(node: dict[str, Any], *, channel: str | None = None) -> Product:
    """A ``Product`` (webhook ``product`` or backfill node)."""
    variants = []
    currency = None
    for v in node.get("variants") or ():
        listing = _listing(v.get("channelListings") or [], channel) or {}
        price, cur = _money(listing.get("price"), "variants.price")
        currency = currency or cur
        stocks = v.get("stocks")
        qty = sum(int(s.get("quantity") or 0) for s in stocks) if stocks else None
        # Saleor sells an untracked variant (``trackInventory: false``: made to order,
        # digital) whatever its stock says; absent from older subscriptions: tracked
        untracked = v.get("trackInventory") is False
        variants.append(
            Variant(
                external_id=str(v["id"]),
                title=v.get("name") or "",
                sku=v.get("sku") or None,
                price=price,
                available=bool(listing) and (untracked or qty is None or qty > 0),
                inventory_qty=qty,
            )
        )
    prices = [v.price for v in variants if v.price is not None]
    available = any(v.available for v in variants)
    available_from = None
    if isinstance(node.get("channelListings"), list):  # absent from older subscriptions
        # Saleor publishes per channel: unpublished, it is not in the storefront at all;
        # not available for purchase, it shows but cannot be bought
        listed = _listing(node["channelListings"], channel) or {}
        available = available and bool(listed.get("isPublished")) and _purchasable(listed)
        available_from = _launch(listed)
    categories = [c["name"] for c in [node.get("category") or {}] if c.get("name")]
    categories += [c["name"] for c in node.get("collections") or () if c.get("name")]
    product_type = (node.get("productType") or {}).get("name")
    return Product(
        external_id=str(node["id"]),
        title=node.get("name") or "",
        updated_at=parse_datetime(node.get("updatedAt"), field="updatedAt"),
        description=editorjs_text(node.get("description")),
        image_url=(node.get("thumbnail") or {}).get("url"),
        categories=tuple(dict.fromkeys(categories)),
        tags=(product_type,) if product_type else (),
        price=min(prices) if prices else None,
        currency=currency if prices else None,
        available=available,
        variants=tuple(variants),
        available_from=available_from,
    )


def customer_from_user(node: dict[str, Any]) -> Customer:
    """A ``User`` (customer)."""
    joined = node.get("dateJoined")
    return Customer(
        external_id=str(node["id"]),
        updated_at=parse_datetime(node.get("updatedAt") or joined, field="updatedAt"),
        email=node.get("email") or None,
        created_at=parse_datetime(joined, field="dateJoined") if joined else None,
    )


def _lines(lines: Any) -> tuple[LineItem, ...]:
    out = []
    for line in lines or ():
        variant = line.get("variant") or {}
        product = variant.get("product") or {}
        if not product.get("id") or int(line.get("quantity") or 0) <= 0:
            continue  # deleted products can't be recommended
        price, _ = _money((line.get("unitPrice") or {}).get("gross"), "lines.unitPrice")
        out.append(
            LineItem(
                product_id=str(product["id"]),
                quantity=int(line["quantity"]),
                price=price if price is not None else Decimal("0"),
                variant_id=str(variant["id"]) if variant.get("id") else None,
            )
        )
    return tuple(out)


def in_channel(node: dict[str, Any], channel: str | None) -> bool:
    """Whether an ``Order`` or ``Checkout`` is in the shop's channel (its currency and
    catalogue).

    Unknown when no channel is configured or the payload predates ``channel { slug }`` in
    our subscription (updated by ``refresh_webhooks``): then it counts as ours, as before.
    """
    named = node.get("channel")
    slug = named.get("slug") if isinstance(named, dict) else None
    return not channel or not isinstance(slug, str) or not slug or slug == channel


def order_from_node(node: dict[str, Any]) -> Order:
    """An ``Order``; voucher codes become discount codes."""
    total, currency = _money((node.get("total") or {}).get("gross"), "total")
    if not currency:
        raise InvalidPayload("order without currency", {"total.gross.currency": ["required"]})
    created = parse_datetime(node.get("created"), field="created")
    code = node.get("voucherCode") or (node.get("voucher") or {}).get("code")
    user = node.get("user") or {}
    return Order(
        external_id=str(node["id"]),
        created_at=created,
        updated_at=_updated(node.get("updatedAt"), created),
        currency=currency,
        lines=_lines(node.get("lines")),
        customer_id=str(user["id"]) if user.get("id") else None,
        discount_codes=(code,) if code else (),
        total=total,
        cancelled=node.get("status") == "CANCELED",
    )


def _updated(value: Any, fallback: datetime) -> datetime:
    return parse_datetime(value, field="updatedAt") if value else fallback


def cart_from_checkout(node: dict[str, Any]) -> Cart:
    """A ``Checkout`` (cart)."""
    _, currency = _money((node.get("totalPrice") or {}).get("gross"), "totalPrice")
    user = node.get("user") or {}
    return Cart(
        external_id=str(node.get("token") or node["id"]),
        updated_at=parse_datetime(node.get("updatedAt") or node.get("lastChange"),
                                  field="updatedAt"),
        lines=_lines(node.get("lines")),
        customer_id=str(user["id"]) if user.get("id") else None,
        currency=currency,
    )
