"""The generic connector: our own signed-JSON protocol v2 for custom headless stores."""

from __future__ import annotations

from collections.abc import Mapping

from connectors import register
from connectors.base import Connector, ConnectorMeta
from connectors.errors import SignatureInvalid
from connectors.generic.discounts import sign_discount, verify_discount
from connectors.generic.webhooks import TOPICS, parse_delivery, sign_payload, verify_signature
from connectors.records import DiscountRef, DiscountSpec, WebhookEvent

__all__ = ["GenericConnector", "sign_payload", "verify_discount"]


@register
class GenericConnector(Connector):
    """Stores push signed JSON to us; there is no API to pull from, so no backfill, and
    no sold currencies to read (``sold_currencies`` stays None: PROTOCOL.md)."""

    meta = ConnectorMeta(
        key="generic",
        name="Generic signed JSON",
        webhook_topics=TOPICS,
        scopes=(),
        capabilities=frozenset({"webhooks", "discounts"}),
    )

    def verify_webhook(
        self, headers: Mapping[str, str], raw_body: bytes, *, now: float | None = None
    ) -> None:
        """Check the v2 HMAC (timestamp, topic, delivery id, raw body) and the 300 s window."""
        verify_signature(self.credentials.webhook_secret, headers, raw_body, now=now)

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookEvent:
        """Validate the body against the topic's schema and normalize it."""
        return parse_delivery(headers, raw_body)

    def create_discount(self, spec: DiscountSpec) -> DiscountRef:
        """Sign the spec with the webhook secret; the storefront verifies and applies it."""
        if not self.credentials.webhook_secret:
            raise SignatureInvalid("no webhook secret configured for this shop")
        return sign_discount(self.credentials.webhook_secret, spec)
