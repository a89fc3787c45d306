"""The shopper API behind Shopify's app proxy (thin views; see ``shopify_proxy``).

A theme points the widget loader at ``data-api="/apps/shopkeeper"``: its calls then stay
on the storefront's own origin (no CORS), and Shopify forwards them here signed, naming
the shop and the signed-in customer. The answers are the shopper API's, from the same
domain code (consent, holdout, impressions), for the same paths; the cart offer's and the
sub-profiles' calls are served the same way beside their API views (``proxy_bp`` in
``plugin.offers.views`` and ``plugin.subprofiles.views``), behind ``open_gate``.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from plugin.api import consent, events, service
from plugin.api.identity import SHOPPER_HEADER, ShopperIdentity
from plugin.api.limits import per_shop
from plugin.api.schemas import (
    ConfigSchema,
    ConsentSchema,
    EventsRequest,
    ProxyQuery,
    ProxyRecommendationsQuery,
    RecommendationsQuery,
    RecommendationsSchema,
    StoredSchema,
)
from plugin.api.shopify_proxy import PROXY_URL, proxy_identity, proxy_shop, verified_params
from plugin.api.views import json_body
from plugin.errors import BadRequest, Forbidden, Unprocessable
from plugin.openapi import doc

bp = Blueprint("app_proxy", __name__, url_prefix=PROXY_URL)

_ERRORS = (401, 403, 404, 422, 429)
_QUERY, _CONFIG = RecommendationsQuery(), ConfigSchema()
_EVENTS, _STORED, _CONSENT = EventsRequest(), StoredSchema(), ConsentSchema()


#: what a write through the proxy may be (the sub-profile calls patch and delete too)
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def open_gate(*, cached: bool = True) -> None:
    """``before_request`` of every blueprint behind the proxy (this one, offers,
    sub-profiles): Shopify's signature and timestamp first (401), then the shop it names
    (404). ``cached`` as in ``proxy_shop``."""
    g.api_shop = None
    g.proxy_params = verified_params(request.query_string.decode("utf-8", "replace"),
                                     current_app.config.get("SHOPIFY_API_SECRET"))
    if request.method in _WRITES and request.headers.get("Sec-Fetch-Site") == "cross-site":
        # another site's page posting through the storefront (a beacon needs no preflight).
        # Best effort only: Shopify documents no forwarding of Sec-Fetch-Site or Origin
        # ("other headers are also stripped"), so behind the real proxy this may never fire.
        raise Forbidden("Another site may not write through this shop's app proxy.")
    g.api_shop = proxy_shop(g.proxy_params, cached=cached)


def close_gate(response: Response) -> Response:
    """Answers name a shopper: neither Shopify nor a browser may keep or share them."""
    response.headers["Cache-Control"] = "private, no-store"
    return response


bp.before_request(open_gate)
bp.after_request(close_gate)


def shopper(*, required: bool = False) -> ShopperIdentity:
    """Shopify's signed-in customer and the browser's anonymous id (``proxy_identity``);
    ``required``: one of them, else 422 as on the API."""
    anonymous = request.headers.get(SHOPPER_HEADER) or request.args.get("shopper")
    identity = proxy_identity(g.proxy_params, anonymous)
    if required and not identity.key:
        raise Unprocessable("The request is invalid.", {SHOPPER_HEADER: [
            "Send an anonymous id (anon_ + 22 urlsafe characters) or sign in."]})
    return identity


def _json_only() -> object:
    """A JSON body sent as JSON. Events may come as a ``text/plain`` beacon, but consent is
    a fetch the widgets always send as ``application/json``: only that makes another site's
    form or beacon through the storefront (which Shopify would sign for whoever's storefront
    cookies went with it) unable to answer for the shopper, since a cross-site JSON post
    needs a preflight the proxy never grants."""
    body = request.get_json(silent=True)
    if body is None:
        raise BadRequest("The body must be a JSON object sent as application/json.")
    return body


@bp.get("/config")
@per_shop
@doc(summary="Widget configuration, through Shopify's app proxy", tags=["shopify app proxy"],
     query=ProxyQuery, response=ConfigSchema, errors=_ERRORS)
def get_config() -> ResponseReturnValue:
    return jsonify(_CONFIG.dump(service.shop_config(g.api_shop)))


@bp.get("/recommendations")
@per_shop
@doc(summary="Recommendations for a placement, through Shopify's app proxy",
     tags=["shopify app proxy"], query=ProxyRecommendationsQuery,
     response=RecommendationsSchema, errors=_ERRORS)
def get_recommendations() -> ResponseReturnValue:
    params = _QUERY.load(request.args)
    return jsonify(service.recommend(g.api_shop, shopper(), service.RecsQuery(**params)))


@bp.post("/events")
@per_shop
@doc(summary="Store a batch of widget events, through Shopify's app proxy",
     tags=["shopify app proxy"], query=ProxyQuery, request=EventsRequest,
     response=StoredSchema, errors=_ERRORS, status=202)
def post_events() -> ResponseReturnValue:
    batch = _EVENTS.load(json_body())
    stored = events.store_events(g.api_shop, shopper(required=True), batch["events"])
    return jsonify(_STORED.dump({"stored": stored})), 202


@bp.post("/consent")
@per_shop
@doc(summary="Record the shopper's consent answer, through Shopify's app proxy",
     tags=["shopify app proxy"], query=ProxyQuery, request=ConsentSchema,
     response=ConsentSchema, errors=_ERRORS)
def post_consent() -> ResponseReturnValue:
    answer = _CONSENT.load(_json_only())
    granted = consent.record_consent(g.api_shop, shopper(required=True), answer["granted"])
    return jsonify(_CONSENT.dump({"granted": granted}))
