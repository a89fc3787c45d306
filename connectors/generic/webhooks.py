"""Generic protocol v2: HMAC-SHA256 over timestamp, topic, delivery id and raw body; parsing.

v1 signed only ``"<timestamp>.<raw body>"``: the topic header was not covered, so any
signed body (an upsert, or one of Shopkeeper's own outbound nudges) could be re-sent within
the 300 s window as ``app/uninstalled``. v1 signatures are refused with a message saying so.

See ``PROTOCOL.md`` beside this file for the text a store developer implements from.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError

from connectors.base import header
from connectors.errors import InvalidPayload, SignatureInvalid, UnknownTopic
from connectors.generic.schemas import SCHEMAS, DeleteSchema
from connectors.parsing import load_json_object, utc_from_timestamp
from connectors.records import Deletion, WebhookEvent

__all__ = [
    "DELIVERY_ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TOLERANCE_SECONDS",
    "TOPICS",
    "TOPIC_HEADER",
    "parse_delivery",
    "sign_payload",
    "verify_signature",
]

TOPIC_HEADER = "X-Shopkeeper-Topic"
DELIVERY_ID_HEADER = "X-Shopkeeper-Delivery-Id"
TIMESTAMP_HEADER = "X-Shopkeeper-Timestamp"
SIGNATURE_HEADER = "X-Shopkeeper-Signature"
TOLERANCE_SECONDS = 300
TOPICS: tuple[str, ...] = (
    "products/upsert",
    "products/delete",
    "customers/upsert",
    "customers/delete",
    "orders/upsert",
    "carts/upsert",
    "app/uninstalled",
)
_DELETES = {"products/delete": "product", "customers/delete": "customer"}
#: what a delivery id may be (it is the dedupe key): Shopify's use it too. ``\Z``, not
#: ``$`` (which also matches before a final newline); checked with fullmatch.
DELIVERY_ID_PATTERN = _DELIVERY_ID = re.compile(r"[\x20-\x7e]{1,128}\Z")
_TIMESTAMP = re.compile(r"[0-9]{1,12}\Z")


def _digest(secret: str, timestamp: str, topic: str, delivery_id: str, body: bytes) -> str:
    # newline-separated: none of the three header values may hold one, so no two different
    # (topic, delivery id, body) triples sign the same message
    message = f"{timestamp}\n{topic}\n{delivery_id}\n".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_payload(secret: str, body: bytes, timestamp: int | None = None, *, topic: str,
                 delivery_id: str) -> dict[str, str]:
    """All four headers of a delivery of ``body`` as ``topic`` with ``delivery_id``."""
    ts = str(int(time.time()) if timestamp is None else int(timestamp))
    return {TOPIC_HEADER: topic, DELIVERY_ID_HEADER: delivery_id, TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: f"v2={_digest(secret, ts, topic, delivery_id, body)}"}


def verify_signature(
    secret: str | None, headers: Mapping[str, str], raw_body: bytes, *, now: float | None = None
) -> None:
    """Raise ``SignatureInvalid`` unless a ``v2=`` signature matches and the clock is close."""
    if not secret:
        raise SignatureInvalid("no webhook secret configured for this shop")
    timestamp = (header(headers, TIMESTAMP_HEADER) or "").strip()
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureInvalid("missing or malformed timestamp")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > TOLERANCE_SECONDS:
        raise SignatureInvalid("timestamp outside the 300 s window")
    topic = header(headers, TOPIC_HEADER) or ""
    delivery_id = header(headers, DELIVERY_ID_HEADER) or ""
    if "\n" in topic or "\n" in delivery_id:
        raise SignatureInvalid("malformed topic or delivery id")
    expected = "v2=" + _digest(secret, timestamp, topic, delivery_id, raw_body)
    # Several comma-separated signatures are allowed so a store can rotate its secret.
    offered = [part.strip() for part in (header(headers, SIGNATURE_HEADER) or "").split(",")]
    matched = False
    for candidate in offered:
        matched |= hmac.compare_digest(candidate.encode(), expected.encode())
    if not matched:
        if offered and all(part.startswith("v1=") for part in offered):
            raise SignatureInvalid("v1 signatures are no longer accepted: sign with v2 "
                                   "(timestamp, topic, delivery id and body; see PROTOCOL.md)")
        raise SignatureInvalid("signature mismatch")


def _errors(exc: ValidationError) -> dict[str, list[str]]:
    """Flatten marshmallow's nested messages into ``{"lines.0.quantity": [...]}``."""
    flat: dict[str, list[str]] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            flat.setdefault(prefix or "_body", []).extend(value)
        else:
            flat.setdefault(prefix or "_body", []).append(str(value))

    walk("", exc.messages)
    return flat


def parse_delivery(headers: Mapping[str, str], raw_body: bytes) -> WebhookEvent:
    """Validate topic, delivery id and body schema; return the normalized event."""
    topic = (header(headers, TOPIC_HEADER) or "").strip()
    if topic not in TOPICS:
        raise UnknownTopic(topic)
    delivery_id = header(headers, DELIVERY_ID_HEADER) or ""
    if not _DELIVERY_ID.fullmatch(delivery_id):
        raise InvalidPayload(
            "bad delivery id", {DELIVERY_ID_HEADER: ["1-128 printable ASCII characters"]}
        )
    timestamp = header(headers, TIMESTAMP_HEADER) or ""
    occurred = utc_from_timestamp(int(timestamp)) if _TIMESTAMP.fullmatch(timestamp) else None
    data = load_json_object(raw_body)
    try:
        if topic == "app/uninstalled":
            record = None
        elif topic in _DELETES:
            loaded = DeleteSchema().load(data)
            record = Deletion(
                kind=_DELETES[topic],  # type: ignore[arg-type]
                external_id=loaded["id"],
                deleted_at=loaded["deleted_at"] or occurred,
            )
        else:
            record = SCHEMAS[topic]().load(data)
    except ValidationError as exc:
        raise InvalidPayload("body does not match the schema", _errors(exc)) from None
    return WebhookEvent(topic=topic, delivery_id=delivery_id, record=record, occurred_at=occurred)
