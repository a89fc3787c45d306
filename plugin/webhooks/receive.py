"""Verify, validate and store one webhook delivery; no processing happens in the request."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import connectors
from connectors.base import Connector
from connectors.errors import (
    InvalidPayload,
    SignatureInvalid,
    TransientError,
    UnknownConnector,
    UnknownTopic,
)
from plugin import shops
from plugin.errors import BadRequest, NotFound, ServiceUnavailable, Unauthorized
from plugin.extensions import db
from plugin.models import Shop
from plugin.webhooks.inbox import store_delivery

log = logging.getLogger("shopkeeper.webhooks")

#: Request headers never written to the inbox.
DROPPED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


def receive_webhook(
    connector_key: str, shop_id: str, headers: Mapping[str, str], raw_body: bytes
) -> str:
    """Return ``"accepted"`` or ``"duplicate"``; raise an HTTP-mapped error otherwise.

    The signature is checked over the raw bytes before anything parses them; a failure
    stores nothing.
    """
    try:
        connectors.get(connector_key)
    except UnknownConnector:
        raise NotFound("Unknown connector.") from None
    shop = shops.get_shop(shop_id, active_only=True)
    if shop.platform != connector_key:
        raise NotFound("Unknown shop.")
    connector = shops.connector_for(shop)
    try:
        connector.verify_webhook(headers, raw_body)
    except TransientError:  # e.g. Saleor's key set unreachable: the sender will retry
        log.warning("webhook.verification_unavailable", extra={"shop_id": shop.id})
        raise ServiceUnavailable("Cannot verify the signature right now; retry later.") from None
    except SignatureInvalid:
        log.warning("webhook.signature_invalid", extra={"shop_id": shop.id})
        raise Unauthorized("Webhook signature is missing or invalid.") from None
    return store_verified(shop, connector, headers, raw_body)


def store_verified(shop: Shop, connector: Connector, headers: Mapping[str, str],
                   raw_body: bytes) -> str:
    """Validate and store a delivery whose signature the caller has checked:
    ``"accepted"`` or ``"duplicate"``. ``connector`` only parses (Shopify's app-wide
    webhooks are verified with the app secret, so an uninstalled shop's bare connector will
    do)."""
    try:
        event = connector.parse_webhook(headers, raw_body)
    except UnknownTopic as err:
        raise BadRequest(f"Unknown topic {err.topic!r}.", {"topic": ["Unknown topic."]}) from None
    except InvalidPayload as err:
        raise BadRequest("The webhook body is invalid.", getattr(err, "errors", None)) from None
    kept = {k: v for k, v in headers.items() if k.lower() not in DROPPED_HEADERS}
    created = store_delivery(
        shop_id=shop.id,
        connector=shop.platform,
        topic=event.topic,
        delivery_id=event.delivery_id,
        headers=kept,
        body=raw_body,
    )
    db.session.commit()
    log.info("webhook.stored" if created else "webhook.duplicate",
             extra={"shop_id": shop.id, "topic": event.topic})
    return "accepted" if created else "duplicate"
