"""``/api/v1/offers``: thin views over ``plugin.offers.service`` and the uplift report."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from plugin.api import access, linking
from plugin.api.consent import has_consent
from plugin.api.identity import ShopperIdentity, resolve_identity
from plugin.api.limits import offer_accepts, per_client, per_key
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

_ERRORS = (400, 403, 404, 409, 422, 429)


@bp.before_request
def _resolve_shop() -> Response | None:
    """Same gate as the shopper API: public widget key, foreign browser origins refused."""
    return access.open_gate(cached=False)


bp.after_request(access.close_gate)


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


@bp.post("/quote")
@per_key
@per_client
@doc(summary="The offer for this cart, or none (with the free-shipping progress)",
     tags=["offers"], request=QuoteRequest, response=QuoteResponse, errors=_ERRORS)
def post_quote() -> ResponseReturnValue:
    data = QuoteRequest().load(_body())
    identity = _identity()
    cart = _cart(data)
    if not has_consent(g.api_shop, identity):
        return jsonify(QuoteResponse().dump({"offer": None, "reason_code": "no_consent",
                                             "free_shipping": None, "holdout": False,
                                             "stage": None}))
    linking.link(g.api_shop, identity)  # pre-login cart and wishlist events set the stage
    answer = service.quote(g.api_shop, identity.key or "", cart,
                           is_customer=identity.customer_id is not None)
    return jsonify(QuoteResponse().dump(answer))


@bp.post("/accept")
@per_key
@per_client
@offer_accepts
@doc(summary="Accept a signed offer: creates a single-use discount on the platform",
     tags=["offers"], request=TokenRequest, response=AcceptResponse,
     errors=(*_ERRORS, 502))
def post_accept() -> ResponseReturnValue:
    data = TokenRequest().load(_body())
    identity = _identity()
    answer = service.accept(g.api_shop, identity.key or "", data["token"], _cart(data),
                            customer_id=identity.customer_id)
    return jsonify(AcceptResponse().dump(answer))


@bp.post("/dismiss")
@per_key
@per_client
@doc(summary="Dismiss a signed offer (it stops standing)", tags=["offers"],
     request=TokenRequest, errors=_ERRORS)
def post_dismiss() -> ResponseReturnValue:
    data = TokenRequest().load(_body())
    service.dismiss(g.api_shop, _identity().key or "", data["token"], _cart(data))
    return jsonify({"dismissed": True})


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
