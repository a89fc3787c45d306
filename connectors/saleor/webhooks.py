"""Saleor webhook parsing: ``Saleor-Event`` -> normalized topic, body -> record.

Saleor sends no delivery id, so the id is a hash of event name and raw body: a retried
delivery (same payload) deduplicates, a new change does not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from connectors.base import header
from connectors.errors import InvalidPayload, UnknownTopic
from connectors.parsing import load_json_object, parse_datetime
from connectors.records import Cart, Customer, Deletion, Order, Product, WebhookEvent
from connectors.saleor import mapping

__all__ = ["DESTRUCTIVE", "EVENT_HEADER", "SIGNATURE_HEADER", "TOPICS", "TOPIC_MAP",
           "parse_delivery"]

EVENT_HEADER = "Saleor-Event"
SIGNATURE_HEADER = "Saleor-Signature"
API_URL_HEADER = "Saleor-Api-Url"

TOPIC_MAP: dict[str, str] = {
    "product_created": "products/upsert",
    "product_updated": "products/upsert",
    "product_variant_created": "products/upsert",
    "product_variant_updated": "products/upsert",
    "product_variant_deleted": "products/upsert",
    "product_deleted": "products/delete",
    "customer_created": "customers/upsert",
    "customer_updated": "customers/upsert",
    "customer_deleted": "customers/delete",
    "order_created": "orders/upsert",
    "order_updated": "orders/upsert",
    "order_fully_paid": "orders/upsert",
    "order_cancelled": "orders/upsert",
    "checkout_created": "carts/upsert",
    "checkout_updated": "carts/upsert",
    "app_deleted": "app/uninstalled",
}
TOPICS: tuple[str, ...] = tuple(TOPIC_MAP)
#: Events that delete or uninstall -> the ``__typename`` their signed body must carry. The
#: Saleor instance signs every app's deliveries with one key and does not sign the event
#: header, so another app's signed body re-sent here as ``app_deleted`` must not count.
DESTRUCTIVE: dict[str, str] = {"product_deleted": "ProductDeleted",
                               "customer_deleted": "CustomerDeleted",
                               "app_deleted": "AppDeleted"}


def _root(data: dict[str, Any], key: str) -> dict[str, Any]:
    """The event's object; null means Saleor could not resolve it (often a permission)."""
    value = data.get(key)
    if not isinstance(value, dict):
        errors = [str(e.get("message", e)) for e in data.get("errors") or () if e]
        raise InvalidPayload(f"payload has no {key}", {key: errors or ["missing"]})
    return value


def _record(
    event: str, topic: str, data: dict[str, Any], channel: str | None
) -> Product | Customer | Order | Cart | Deletion | None:
    if topic == "app/uninstalled":
        return None
    if event == "product_deleted":
        return Deletion("product", str(_root(data, "product")["id"]))
    if event == "customer_deleted":
        return Deletion("customer", str(_root(data, "user")["id"]))
    if event.startswith("product_variant_"):
        variant = _root(data, "productVariant")
        return mapping.product_from_node(_root(variant, "product"), channel=channel)
    if topic == "products/upsert":
        return mapping.product_from_node(_root(data, "product"), channel=channel)
    if topic == "customers/upsert":
        return mapping.customer_from_user(_root(data, "user"))
    if topic == "orders/upsert":
        order = _root(data, "order")
        # another channel's order: acknowledged, nothing to apply (see ``mapping.in_channel``)
        return mapping.order_from_node(order) if mapping.in_channel(order, channel) else None
    checkout = _root(data, "checkout")
    # another channel's checkout: acknowledged, nothing to apply, as for orders
    return mapping.cart_from_checkout(checkout) if mapping.in_channel(checkout, channel) else None


def parse_delivery(
    headers: Mapping[str, str], raw_body: bytes, *, channel: str | None = None,
    app_id: str | None = None,
) -> WebhookEvent:
    """Normalize one delivery (pure: no HTTP).

    A deletion or uninstall must say so in its body; an uninstall must also name this app
    (``app_id``, when known).
    """
    event = (header(headers, EVENT_HEADER) or "").strip().lower()
    topic = TOPIC_MAP.get(event)
    if topic is None:
        raise UnknownTopic(event)
    data = load_json_object(raw_body)
    expected = DESTRUCTIVE.get(event)
    if expected is not None and data.get("__typename") != expected:
        raise InvalidPayload(f"the body is not a {expected} event",
                             {"__typename": [f"must be {expected}"]})
    if event == "app_deleted" and app_id:
        named = data.get("app") if isinstance(data.get("app"), dict) else {}
        if named.get("id") != app_id:
            raise InvalidPayload("the uninstall names another app", {"app.id": ["not this app"]})
    try:
        record = _record(event, topic, data, channel)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidPayload(f"unexpected {event} payload", {"_body": [repr(exc)]}) from None
    issued = data.get("issuedAt")
    occurred = parse_datetime(issued, field="issuedAt") if issued else None
    if occurred is not None and isinstance(record, Product | Customer | Order | Cart):
        # Saleor does not bump Product.updatedAt on a price (channel listing) or stock
        # change, so the record is no older than the event that carried it
        record = replace(record, updated_at=max(record.updated_at, occurred))
    delivery_id = hashlib.sha256(event.encode() + b"\n" + raw_body).hexdigest()
    return WebhookEvent(topic=topic, delivery_id=delivery_id, record=record,
                        occurred_at=occurred)
