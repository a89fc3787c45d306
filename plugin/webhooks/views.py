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
    limit = current_app.config["WEBHOOK_MAX_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"Webhook bodies are limited to {limit} bytes.")
    raw = request.get_data(cache=True)  # raw bytes first: signatures cover exactly these
    if len(raw) > limit:
        raise PayloadTooLarge(f"Webhook bodies are limited to {limit} bytes.")
    status = receive_webhook(connector_key, shop_id, request.headers, raw)
    return jsonify(WebhookAcceptedSchema().dump({"status": status}))
