"""Webhook endpoint: raw bytes in, 200 out once the delivery is durably stored."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from plugin.errors import PayloadTooLarge
from plugin.openapi import doc
from plugin.webhooks.receive import receive_webhook
from plugin.webhooks.schemas import WebhookAcceptedSchema

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.post("/<connector_key>/<shop_id>")
@doc(
    summary="Receive a signed platform webhook",
    tags=["webhooks"],
    response=WebhookAcceptedSchema,
    errors=(400, 401, 404, 413, 503),
    body="raw signed JSON (see the connector's protocol)",
)
def receive(connector_key: str, shop_id: str) -> ResponseReturnValue:
    raw = raw_webhook_body()  # raw bytes first: signatures cover exactly these
    status = receive_webhook(connector_key, shop_id, request.headers, raw)
    return jsonify(WebhookAcceptedSchema().dump({"status": status}))


def raw_webhook_body() -> bytes:
    """The request's raw body, or 413 over ``WEBHOOK_MAX_BYTES``: a declared length is
    refused before reading, and a chunked body is read no further than one byte past the
    limit (``MAX_CONTENT_LENGTH``), which is how it is seen to be too large rather than
    failing its signature as a cut body."""
    limit = current_app.config["WEBHOOK_MAX_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"Webhook bodies are limited to {limit} bytes.")
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        raise PayloadTooLarge(f"Webhook bodies are limited to {limit} bytes.")
    return raw
