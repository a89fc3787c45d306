"""``/api/v1``: thin views over ``plugin.api`` domain code (contract v1, see README.md)."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from plugin.api import access, consent, events, limits, service
from plugin.api.identity import SHOPPER_HEADER, ShopperIdentity, resolve_identity
from plugin.api.limits import per_client, per_key
from plugin.api.schemas import (
    ConfigSchema,
    ConsentSchema,
    EventsRequest,
    KeyQuery,
    RecommendationsQuery,
    RecommendationsSchema,
    StoredSchema,
)
from plugin.errors import BadRequest, Unprocessable
from plugin.openapi import doc

bp = Blueprint("api", __name__, url_prefix="/api/v1")


# app-wide: other blueprints use the same limits (offers, sub-profiles)
bp.record_once(lambda state: limits.init_app(state.app))

_ERRORS = (400, 403, 404, 422, 429)
# Schemas hold no per-call state: build them once, not per request (measurable at load).
_QUERY, _CONFIG = RecommendationsQuery(), ConfigSchema()
_EVENTS, _STORED, _CONSENT = EventsRequest(), StoredSchema(), ConsentSchema()


@bp.before_request
def _resolve_shop() -> Response | None:
    """Every call names a shop by its public key; foreign browser origins are refused."""
    return access.open_gate()


bp.after_request(access.close_gate)


def _identity(*, required: bool = False) -> ShopperIdentity:
    headers = request.headers
    if SHOPPER_HEADER not in headers and request.args.get("shopper"):
        # sendBeacon cannot set headers: the anonymous id may ride in the query (same
        # trust as the header: a random id, never a customer identity).
        headers = {**dict(headers), SHOPPER_HEADER: request.args["shopper"]}
    identity = resolve_identity(g.api_shop, headers)
    if required and not identity.key:
        raise Unprocessable("The request is invalid.", {"X-Shopkeeper-Shopper": [
            "Send an anonymous id (anon_ + 22 urlsafe characters) or a customer token."]})
    return identity


def json_body() -> object:
    """JSON, also when ``sendBeacon`` sends it as ``text/plain`` (no preflight)."""
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise BadRequest("The body must be a JSON object.")
    return body


@bp.get("/config")
@per_key
@per_client
@doc(summary="Widget configuration of a shop", tags=["shopper api"], query=KeyQuery,
     response=ConfigSchema, errors=_ERRORS)
def get_config() -> ResponseReturnValue:
    return jsonify(_CONFIG.dump(service.shop_config(g.api_shop)))


@bp.get("/recommendations")
@per_key
@per_client
@doc(summary="Recommendations for a placement", tags=["shopper api"],
     query=RecommendationsQuery, response=RecommendationsSchema, errors=_ERRORS)
def get_recommendations() -> ResponseReturnValue:
    params = _QUERY.load(request.args)
    answer = service.recommend(g.api_shop, _identity(), service.RecsQuery(**params))
    return jsonify(answer)  # built in the schema's dumped form: the hottest path skips a dump


@bp.post("/events")
@per_key
@per_client
@doc(summary="Store a batch of widget events (max 50)", tags=["shopper api"], query=KeyQuery,
     request=EventsRequest, response=StoredSchema, errors=_ERRORS, status=202)
def post_events() -> ResponseReturnValue:
    batch = _EVENTS.load(json_body())
    stored = events.store_events(g.api_shop, _identity(required=True), batch["events"])
    return jsonify(_STORED.dump({"stored": stored})), 202


@bp.post("/consent")
@per_key
@per_client
@doc(summary="Record the shopper's consent answer", tags=["shopper api"], query=KeyQuery,
     request=ConsentSchema, response=ConsentSchema, errors=_ERRORS)
def post_consent() -> ResponseReturnValue:
    answer = _CONSENT.load(json_body())
    granted = consent.record_consent(g.api_shop, _identity(required=True), answer["granted"])
    return jsonify(_CONSENT.dump({"granted": granted}))
