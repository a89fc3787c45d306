"""``/api/v1/offers``: thin views over ``plugin.offers.service`` and the uplift report.

The shopper's three calls (quote, accept, dismiss) are also served through Shopify's app
proxy (``proxy_bp``, ``/proxy/shopify/offers``): the same bodies, with the shop and the
signed-in customer from Shopify's signed query (``plugin.api.app_proxy``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from plugin.api import access, app_proxy, linking
from plugin.api.consent import has_consent
from plugin.api.identity import ShopperIdentity, resolve_identity
from plugin.api.limits import (
    offer_accepts,
    per_client,
    per_key,
    per_shop,
    proxied_offer_accepts,
)
from plugin.api.schemas import ProxyQuery
from plugin.api.shopify_proxy import PROXY_URL
from plugin.errors import BadRequest, Unprocessable
from plugin.models.types import utcnow
from plugin.offers import attribution, service
from plugin.offers.admin_auth import require_admin
from plugin.offers.schemas import (
    AcceptResponse,
    QuoteRequest,
    QuoteResponse,
    TokenRequest,
    UpliftQuery,
    UpliftResponse,
)
from plugin.openapi import doc

bp = Blueprint("offers", __name__, url_prefix="/api/v1/offers")
proxy_bp = Blueprint("offers_proxy", __name__, url_prefix=f"{PROXY_URL}/offers")

_ERRORS = (400, 403, 404, 409, 422, 429)
_PROXY_ERRORS = (401, *_ERRORS)
_PROXY_TAGS = ["shopify app proxy"]
Identify = Callable[[], ShopperIdentity]


@bp.before_request
def _resolve_shop() -> Response | None:
    """Same gate as the shopper API: public widget key, foreign browser origins refused."""
    return access.open_gate(cached=False)


bp.after_request(access.close_gate)


@proxy_bp.before_request
def _resolve_proxied_shop() -> None:
    """Shopify's signed query names the shop (read as on the API: the row, not a snapshot)."""
    app_proxy.open_gate(cached=False)


proxy_bp.after_request(app_proxy.close_gate)


def _proxied_identity() -> ShopperIdentity:
    return app_proxy.shopper(required=True)


def _identity() -> ShopperIdentity:
    identity = resolve_identity(g.api_shop, request.headers)
    if not identity.key:
        raise Unprocessable("The request is invalid.", {"X-Shopkeeper-Shopper": [
            "Send an anonymous id (anon_ + 22 urlsafe characters) or a customer token."]})
    return identity


def _body() -> object:
    body = request.get_json(silent=True)
    if body is None:
        raise BadRequest("The body must be a JSON object.")
    return body


def _cart(data: dict) -> service.CartIn:
    cart = data["cart"]
    return service.CartIn(currency=cart["currency"].upper(), lines=cart["lines"],
                          discount_codes=cart.get("discount_codes") or [])


def _quote(identify: Identify) -> ResponseReturnValue:
    data = QuoteRequest().load(_body())
    identity = identify()
    cart = _cart(data)
    if not has_consent(g.api_shop, identity):
        return jsonify(QuoteResponse().dump({"offer": None, "reason_code": "no_consent",
                                             "free_shipping": None, "holdout": False,
                                             "stage": None}))
    linking.link(g.api_shop, identity)  # pre-login cart and wishlist events set the stage
    answer = service.quote(g.api_shop, identity.key or "", cart,
                           is_customer=identity.customer_id is not None)
    return jsonify(QuoteResponse().dump(answer))


def _accept(identify: Identify) -> ResponseReturnValue:
    data = TokenRequest().load(_body())
    identity = identify()
    answer = service.accept(g.api_shop, identity.key or "", data["token"], _cart(data),
                            customer_id=identity.customer_id)
    return jsonify(AcceptResponse().dump(answer))


def _dismiss(identify: Identify) -> ResponseReturnValue:
    data = TokenRequest().load(_body())
    service.dismiss(g.api_shop, identify().key or "", data["token"], _cart(data))
    return jsonify({"dismissed": True})


_QUOTE = "The offer for this cart, or none (with the free-shipping progress)"
_ACCEPT = "Accept a signed offer: creates a single-use discount on the platform"
_DISMISS = "Dismiss a signed offer (it stops standing)"


@bp.post("/quote")
@per_key
@per_client
@doc(summary=_QUOTE, tags=["offers"], request=QuoteRequest, response=QuoteResponse,
     errors=_ERRORS)
def post_quote() -> ResponseReturnValue:
    return _quote(_identity)


@bp.post("/accept")
@per_key
@per_client
@offer_accepts
@doc(summary=_ACCEPT, tags=["offers"], request=TokenRequest, response=AcceptResponse,
     errors=(*_ERRORS, 502))
def post_accept() -> ResponseReturnValue:
    return _accept(_identity)


@bp.post("/dismiss")
@per_key
@per_client
@doc(summary=_DISMISS, tags=["offers"], request=TokenRequest, errors=_ERRORS)
def post_dismiss() -> ResponseReturnValue:
    return _dismiss(_identity)


@proxy_bp.post("/quote")
@per_shop
@doc(summary=f"{_QUOTE}, through Shopify's app proxy", tags=_PROXY_TAGS, query=ProxyQuery,
     request=QuoteRequest, response=QuoteResponse, errors=_PROXY_ERRORS)
def proxy_quote() -> ResponseReturnValue:
    return _quote(_proxied_identity)


@proxy_bp.post("/accept")
@per_shop
@proxied_offer_accepts
@doc(summary=f"{_ACCEPT}, through Shopify's app proxy", tags=_PROXY_TAGS, query=ProxyQuery,
     request=TokenRequest, response=AcceptResponse, errors=(*_PROXY_ERRORS, 502))
def proxy_accept() -> ResponseReturnValue:
    return _accept(_proxied_identity)


@proxy_bp.post("/dismiss")
@per_shop
@doc(summary=f"{_DISMISS}, through Shopify's app proxy", tags=_PROXY_TAGS, query=ProxyQuery,
     request=TokenRequest, errors=_PROXY_ERRORS)
def proxy_dismiss() -> ResponseReturnValue:
    return _dismiss(_proxied_identity)


@bp.get("/uplift")
@per_key
@doc(summary="Treatment vs holdout: conversion and revenue per visitor with 95% CIs "
     "(admin token)", tags=["offers"], query=UpliftQuery, response=UpliftResponse,
     errors=(401, 404, 422, 429))
def get_uplift() -> ResponseReturnValue:
    params = UpliftQuery().load(request.args)
    require_admin(g.api_shop, request.headers.get("Authorization"))
    until = utcnow()
    report = attribution.uplift_report(g.api_shop.id, service.guardrails_for(g.api_shop),
                                       until - timedelta(days=params["days"]), until)
    return jsonify(UpliftResponse().dump(report))
