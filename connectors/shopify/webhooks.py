"""Shopify webhooks: base64 HMAC-SHA256 of the raw body, topic -> normalized event."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors.base import header
from connectors.errors import InvalidPayload, SignatureInvalid, UnknownTopic
from connectors.generic.webhooks import DELIVERY_ID_PATTERN as _DELIVERY_ID
from connectors.parsing import load_json_object, parse_datetime
from connectors.records import (
    Cart,
    Customer,
    Deletion,
    Order,
    Product,
    Redaction,
    WebhookEvent,
)
from connectors.shopify import mapping

__all__ = ["SHOP_TOPICS", "TOPICS", "TOPIC_MAP", "TOPIC_SCOPES", "named_shop", "parse_delivery",
           "sign_body", "verify_hmac"]

HMAC_HEADER = "X-Shopify-Hmac-Sha256"
TOPIC_HEADER = "X-Shopify-Topic"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
TRIGGERED_AT_HEADER = "X-Shopify-Triggered-At"

#: Shopify topic -> normalized topic.
TOPIC_MAP: dict[str, str] = {
    "products/create": "products/upsert",
    "products/update": "products/upsert",
    "products/delete": "products/delete",
    # names only the inventory item: the worker re-reads its product (fetch_event_record)
    "inventory_levels/update": "products/upsert",
    "customers/create": "customers/upsert",
    "customers/update": "customers/upsert",
    "customers/delete": "customers/delete",
    "orders/create": "orders/upsert",
    "orders/updated": "orders/upsert",
    "orders/paid": "orders/upsert",
    "orders/cancelled": "orders/upsert",
    "carts/create": "carts/upsert",
    "carts/update": "carts/upsert",
    "checkouts/create": "carts/upsert",
    "checkouts/update": "carts/upsert",
    "app/uninstalled": "app/uninstalled",
    # read_publications: the storefront's chosen publication may be the one deleted
    "publications/delete": "publications/delete",
    "customers/data_request": "customers/data_request",
    "customers/redact": "customers/redact",
    "shop/redact": "shop/redact",
}
TOPICS: tuple[str, ...] = tuple(TOPIC_MAP)
COMPLIANCE_TOPICS: tuple[str, ...] = ("customers/data_request", "customers/redact", "shop/redact")
#: The access scope Shopify requires to subscribe a shop to each of its topics (None: any
#: app may): a topic whose scope the merchant has not granted is refused, so the reconcile
#: job (``plugin.install.shopify_webhooks``) skips it until they approve the scope.
TOPIC_SCOPES: dict[str, str | None] = {
    "products/create": "read_products",
    "products/update": "read_products",
    "products/delete": "read_products",
    "inventory_levels/update": "read_inventory",
    "customers/create": "read_customers",
    "customers/update": "read_customers",
    "customers/delete": "read_customers",
    "orders/create": "read_orders",
    "orders/updated": "read_orders",
    "orders/paid": "read_orders",
    "orders/cancelled": "read_orders",
    "carts/create": "read_orders",
    "carts/update": "read_orders",
    "checkouts/create": "read_orders",
    "checkouts/update": "read_orders",
    "app/uninstalled": None,
    "publications/delete": "read_publications",
}
#: The topics a shop is subscribed to through the Admin API (compliance ones are app-wide).
SHOP_TOPICS: tuple[str, ...] = tuple(t for t in TOPICS if t not in COMPLIANCE_TOPICS)
#: Stock changes need not come with a ``products/update`` (Shopify documents no such link),
#: so a sold-out product could stay recommendable without this topic.
INVENTORY_TOPIC = "inventory_levels/update"
PRODUCT_TOPICS = ("products/create", "products/update")
#: A publication (sales channel) deleted: the storefront's chosen one, perhaps.
PUBLICATION_DELETE_TOPIC = "publications/delete"


def _stock_untold(topic: str, data: Mapping[str, Any]) -> bool:
    """Whether a product body cannot say if its variants are in stock: ``inventory_management``
    (is stock tracked?) left the product payload in API 2024-07, and without it a sold-out
    variant that denies overselling reads as available. The worker reads the product back."""
    variants = data.get("variants") if topic in PRODUCT_TOPICS else None
    return isinstance(variants, list) and any(
        isinstance(v, dict) and "inventory_management" not in v for v in variants)


def sign_body(secret: str, raw_body: bytes) -> str:
    """``base64(HMAC-SHA256(secret, raw body))`` as Shopify puts in the HMAC header."""
    return base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()).decode()


def verify_hmac(secret: str | None, headers: Mapping[str, str], raw_body: bytes) -> None:
    """Raise ``SignatureInvalid`` unless the header matches; compliance topics rely on this."""
    if not secret:
        raise SignatureInvalid("no Shopify client secret configured")
    offered = header(headers, HMAC_HEADER)
    if not offered:
        raise SignatureInvalid("missing X-Shopify-Hmac-Sha256")
    if not hmac.compare_digest(offered.strip().encode(), sign_body(secret, raw_body).encode()):
        raise SignatureInvalid("HMAC mismatch")


def named_shop(topic: str, data: Mapping[str, Any]) -> str | None:
    """The shop a destructive delivery's body names (``None`` for other topics).

    Shopify signs the body, not the topic header, with one secret for every shop: a body
    signed for one shop, re-sent to another shop's URL as ``app/uninstalled`` or
    ``shop/redact``, must not uninstall or erase that shop. These bodies name their shop.
    """
    if topic == "app/uninstalled":
        return str(data.get("myshopify_domain") or "").strip().lower()
    if topic in COMPLIANCE_TOPICS:
        return str(data.get("shop_domain") or "").strip().lower()
    return None


def parse_delivery(
    headers: Mapping[str, str], raw_body: bytes, *, currency: str | None,
    shop_domain: str | None = None, read_products_back: bool = False,
) -> WebhookEvent:
    """Normalize one delivery; ``currency`` is the shop's (REST product bodies lack it).

    With ``shop_domain``, an uninstall or a compliance delivery must name that shop.
    ``read_products_back``: a product body is read back from Shopify (the shop's storefront
    sells through a publication, and the REST body does not say what is published where).
    """
    topic = (header(headers, TOPIC_HEADER) or "").strip()
    normalized = TOPIC_MAP.get(topic)
    if normalized is None:
        raise UnknownTopic(topic)
    delivery_id = (header(headers, WEBHOOK_ID_HEADER) or "").strip()
    if not delivery_id:
        raise InvalidPayload("missing webhook id", {WEBHOOK_ID_HEADER: ["required"]})
    if not _DELIVERY_ID.fullmatch(delivery_id):  # stored as the dedupe key (String(255))
        raise InvalidPayload("invalid webhook id",
                             {WEBHOOK_ID_HEADER: ["1 to 128 printable ASCII characters"]})
    triggered = header(headers, TRIGGERED_AT_HEADER)
    occurred = parse_datetime(triggered, field=TRIGGERED_AT_HEADER) if triggered else None
    data = load_json_object(raw_body)
    named = named_shop(topic, data)
    if shop_domain is not None and named is not None and named != shop_domain.lower():
        raise InvalidPayload(f"{topic} delivery names another shop",
                             {"_body": ["the shop named in the body is not this shop"]})
    try:
        record = _record(topic, normalized, data, currency=currency, occurred=occurred)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidPayload(f"unexpected {topic} payload", {"_body": [repr(exc)]}) from None
    return WebhookEvent(
        topic=normalized, delivery_id=delivery_id, record=record, occurred_at=occurred,
        needs_fetch=topic == INVENTORY_TOPIC or _stock_untold(topic, data)
        or (read_products_back and topic in PRODUCT_TOPICS),
    )


def _record(
    topic: str,
    normalized: str,
    data: dict[str, Any],
    *,
    currency: str | None,
    occurred: datetime | None,
) -> Product | Customer | Order | Cart | Deletion | Redaction | None:
    if normalized == "app/uninstalled":
        return None
    if topic in COMPLIANCE_TOPICS:
        return mapping.redaction_from_rest(topic, data)
    if topic == INVENTORY_TOPIC:
        return mapping.inventory_item_from_rest(data, fallback_updated_at=occurred)
    if topic == PUBLICATION_DELETE_TOPIC:
        return mapping.publication_deletion_from_rest(data, occurred)
    if normalized.endswith("/delete"):
        return mapping.deletion_from_rest(normalized.split("s/")[0], data, occurred)
    if normalized == "products/upsert":
        return mapping.product_from_rest(data, currency=currency, fallback_updated_at=occurred)
    if normalized == "customers/upsert":
        return mapping.customer_from_rest(data, fallback_updated_at=occurred)
    if normalized == "orders/upsert":
        return mapping.order_from_rest(data, fallback_updated_at=occurred)
    return mapping.cart_from_rest(
        data, checkout=topic.startswith("checkouts/"), fallback_updated_at=occurred
    )
