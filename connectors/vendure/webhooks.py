"""Deliveries from the Shopkeeper Vendure plugin: native topics -> Shopkeeper topics.

The plugin (``vendure-plugin/shopkeeper-plugin.js``) signs with generic protocol v2 and sends
thin bodies ``{"id", "type", "occurred_at", ...}``. Parsing is pure: an upsert becomes a
placeholder record carrying only the id, flagged ``needs_fetch`` so the worker asks
``VendureConnector.fetch_event_record`` for the current state. Deletions need no fetch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from connectors.base import header
from connectors.errors import InvalidPayload, UnknownTopic
from connectors.generic.webhooks import DELIVERY_ID_HEADER, TIMESTAMP_HEADER, TOPIC_HEADER
from connectors.parsing import load_json_object, parse_datetime, utc_from_timestamp
from connectors.records import Cart, Customer, Deletion, Order, Product, WebhookEvent
from connectors.vendure.mapping import CART_STATES

__all__ = ["TOPICS", "parse_delivery"]

#: Native topics the plugin sends (kept in step with ``TOPICS`` in shopkeeper-plugin.js).
TOPICS: tuple[str, ...] = (
    "product.created",
    "product.updated",
    "product.deleted",
    "variant.created",
    "variant.updated",
    "variant.deleted",
    "stock.movement",
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "order.placed",
    "order.state",
    "app.uninstalled",  # sent by vendure-plugin/disconnect.js when the merchant leaves
)
# ``\Z``, not ``$`` (which also matches before a final newline); checked with fullmatch.
_DELIVERY_ID = re.compile(r"[\x20-\x7e]{1,128}\Z")
_ID = re.compile(r"[\x21-\x7e]{1,64}\Z")
_CURRENCY = re.compile(r"[A-Z]{3}\Z")


def _occurred(headers: Mapping[str, str], body: dict[str, object]) -> datetime:
    if body.get("occurred_at") is not None:
        return parse_datetime(body["occurred_at"], field="occurred_at")
    timestamp = header(headers, TIMESTAMP_HEADER) or ""
    if timestamp.isdigit():
        return utc_from_timestamp(int(timestamp))
    return datetime.now(UTC)


def _entity_id(body: dict[str, object]) -> str:
    value = body.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidPayload("body needs the entity id", {"id": ["1-64 printable characters"]})
    return value


def parse_delivery(headers: Mapping[str, str], raw_body: bytes) -> WebhookEvent:
    """Validate a plugin delivery and map it onto the normalized vocabulary."""
    topic = (header(headers, TOPIC_HEADER) or "").strip()
    if topic not in TOPICS:
        raise UnknownTopic(topic)
    delivery_id = header(headers, DELIVERY_ID_HEADER) or ""
    if not _DELIVERY_ID.fullmatch(delivery_id):
        raise InvalidPayload(
            "bad delivery id", {DELIVERY_ID_HEADER: ["1-128 printable ASCII characters"]}
        )
    body = load_json_object(raw_body)
    at = _occurred(headers, body)
    if topic == "app.uninstalled":
        return WebhookEvent("app/uninstalled", delivery_id, None, at)
    entity_id = _entity_id(body)

    def event(normalized: str, record: object, needs_fetch: bool = True) -> WebhookEvent:
        return WebhookEvent(normalized, delivery_id, record, at, needs_fetch)  # type: ignore[arg-type]

    kind = topic.partition(".")[0]
    if topic == "product.deleted":
        return event("products/delete", Deletion("product", entity_id, at), needs_fetch=False)
    if kind in ("product", "variant", "stock"):
        # Variant and stock deliveries name their product: the product is re-read as a whole.
        return event("products/upsert", Product(external_id=entity_id, title="", updated_at=at))
    if topic == "customer.deleted":
        return event("customers/delete", Deletion("customer", entity_id, at), needs_fetch=False)
    if kind == "customer":
        return event("customers/upsert", Customer(external_id=entity_id, updated_at=at))
    state = body.get("state")
    if not isinstance(state, str) or not state:
        raise InvalidPayload("order deliveries carry the order state", {"state": ["required"]})
    if state in CART_STATES and topic != "order.placed":
        return event("carts/upsert", Cart(external_id=entity_id, updated_at=at, lines=()))
    currency = body.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise InvalidPayload("order deliveries carry the currency", {"currency": ["ISO 4217"]})
    placeholder = Order(
        external_id=entity_id, created_at=at, updated_at=at, currency=currency, lines=()
    )
    return event("orders/upsert", placeholder)
