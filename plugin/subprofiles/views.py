"""``/api/v1/subprofiles``: thin views over ``plugin.subprofiles`` (same key, CORS and
rate limits as the shopper API; the owner is the verified customer or the anonymous id)."""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from plugin.api import access, linking
from plugin.api.consent import has_consent
from plugin.api.filters import apply_live_filters
from plugin.api.identity import resolve_identity
from plugin.api.limits import per_client, per_key
from plugin.errors import BadRequest, Unauthorized
from plugin.merchandising import merchandise
from plugin.openapi import doc
from plugin.subprofiles import prompt, recs, service
from plugin.subprofiles.schemas import (
    ActiveRequest,
    ActiveSchema,
    AnswerRequest,
    AnswerSchema,
    CreateRequest,
    MovedSchema,
    OrdersSchema,
    PromptRequest,
    PromptSchema,
    ReassignRequest,
    RecsQuery,
    SubProfileListSchema,
    SubProfileSchema,
    SubRecsSchema,
    UpdateRequest,
)

bp = Blueprint("subprofiles", __name__, url_prefix="/api/v1/subprofiles")
_ERRORS = (400, 401, 403, 404, 422, 429)
_TAGS = ["subprofiles"]
METHODS = "GET, POST, PATCH, DELETE, OPTIONS"


@bp.before_request
def _resolve() -> Response | None:
    """Shop by public key, foreign origins refused, then who is asking (merged on identify)."""
    preflight = access.open_gate(cached=False, methods=METHODS)
    if preflight is not None:
        return preflight
    shop = g.api_shop
    identity = resolve_identity(shop, request.headers)
    if not identity.key:
        raise Unauthorized("Send an anonymous id (X-Shopkeeper-Shopper) or a customer token.")
    if identity.customer_id and identity.anonymous_id and linking.link(shop, identity):
        service.merge_identity(shop, identity.anonymous_id, identity.customer_id)
    prompt.apply_pending(shop.id, identity.key)
    g.identity = identity
    g.owner = identity.key
    return None


bp.after_request(access.close_gate)


def _body() -> object:
    body = request.get_json(silent=True)
    if body is None:
        raise BadRequest("The body must be a JSON object.")
    return body


def _listing() -> Response:
    state = service.prompt_state(g.api_shop, g.owner)
    return jsonify(SubProfileListSchema().dump({
        "subprofiles": [service.describe(r) for r in service.list_subprofiles(g.api_shop,
                                                                               g.owner)],
        "active_subprofile_id": state.active_subprofile_id if state else None,
        "age_bands": list(service.AGE_BANDS)}))


@bp.get("")
@per_key
@per_client
@doc(summary="The shopper's sub-profiles and the active one", tags=_TAGS,
     response=SubProfileListSchema, errors=_ERRORS)
def list_subprofiles() -> ResponseReturnValue:
    return _listing()


@bp.post("")
@per_key
@per_client
@doc(summary="Create a sub-profile (name or relationship, optional age band)", tags=_TAGS,
     request=CreateRequest, response=SubProfileSchema, errors=_ERRORS, status=201)
def create_subprofile() -> ResponseReturnValue:
    data = CreateRequest().load(_body())
    row = service.create_subprofile(g.api_shop, g.owner, data["name"], data.get("age_band"))
    return jsonify(SubProfileSchema().dump(service.describe(row))), 201


@bp.patch("/<int:subprofile_id>")
@per_key
@per_client
@doc(summary="Rename a sub-profile or change its age band", tags=_TAGS,
     request=UpdateRequest, response=SubProfileSchema, errors=(*_ERRORS, 409))
def update_subprofile(subprofile_id: int) -> ResponseReturnValue:
    data = UpdateRequest().load(_body())
    row = service.update_subprofile(g.api_shop, g.owner, subprofile_id, name=data.get("name"),
                                    age_band=data.get("age_band", ""))
    return jsonify(SubProfileSchema().dump(service.describe(row)))


@bp.delete("/<int:subprofile_id>")
@per_key
@per_client
@doc(summary="Delete a sub-profile and its purchases from training and caches", tags=_TAGS,
     errors=_ERRORS, status=204)
def delete_subprofile(subprofile_id: int) -> ResponseReturnValue:
    service.delete_subprofile(g.api_shop, g.owner, subprofile_id)
    return "", 204


@bp.post("/active")
@per_key
@per_client
@doc(summary="Switch who the shopper is buying for (null: themselves)", tags=_TAGS,
     request=ActiveRequest, response=ActiveSchema, errors=_ERRORS)
def set_active() -> ResponseReturnValue:
    data = ActiveRequest().load(_body())
    active = service.set_active(g.api_shop, g.owner, data["subprofile_id"])
    return jsonify(ActiveSchema().dump({"active_subprofile_id": active}))


@bp.get("/orders")
@per_key
@per_client
@doc(summary="The shopper's latest orders and who each is for (to reassign them)",
     tags=_TAGS, response=OrdersSchema, errors=_ERRORS)
def recent_orders() -> ResponseReturnValue:
    return jsonify(OrdersSchema().dump({"orders": service.recent_orders(g.api_shop, g.owner)}))


@bp.post("/reassign")
@per_key
@per_client
@doc(summary="Move past purchases (an order or products) to a sub-profile or back",
     tags=_TAGS, request=ReassignRequest, response=MovedSchema, errors=_ERRORS)
def reassign() -> ResponseReturnValue:
    data = ReassignRequest().load(_body())
    moved = service.reassign(g.api_shop, g.owner, data["subprofile_id"],
                             order_id=data.get("order_id"), product_ids=data["product_ids"])
    return jsonify(MovedSchema().dump({"moved": moved}))


@bp.post("/prompt")
@per_key
@per_client
@doc(summary="Should the widget ask \"Who are you shopping for?\" now?", tags=_TAGS,
     request=PromptRequest, response=PromptSchema, errors=_ERRORS)
def should_prompt() -> ResponseReturnValue:
    data = PromptRequest().load(_body())
    answer = prompt.should_prompt(g.api_shop, g.owner, data["product_ids"],
                                  order_id=data.get("order_id"),
                                  consented=has_consent(g.api_shop, g.identity))
    return jsonify(PromptSchema().dump(answer))


@bp.post("/prompt/answer")
@per_key
@per_client
@doc(summary="Answer the prompt: me, an existing or new sub-profile, a one-off gift",
     tags=_TAGS, request=AnswerRequest, response=AnswerSchema, errors=_ERRORS)
def answer_prompt() -> ResponseReturnValue:
    data = AnswerRequest().load(_body())
    choice = data.pop("choice")
    answer = prompt.answer_prompt(g.api_shop, g.owner, choice, **data)
    return jsonify(AnswerSchema().dump(answer))


@bp.get("/<int:subprofile_id>/recommendations")
@per_key
@per_client
@doc(summary="Recommendations for one sub-profile (\"For Maya\")", tags=_TAGS,
     query=RecsQuery, response=SubRecsSchema, errors=_ERRORS)
def recommendations(subprofile_id: int) -> ResponseReturnValue:
    query = RecsQuery().load(request.args)
    n = query["n"]
    row = service.get_subprofile(g.api_shop, g.owner, subprofile_id)
    found = [] if row.kind != "person" else recs.recommend_for(
        g.api_shop.id, g.owner, row.id, row.name, 3 * n)
    # the merchant's exclusions hold here too (their pins and boosts are for the shop's
    # own lists, not for what suits one person)
    rules = [r for r in access.settings_of(g.api_shop).get("merchandising") or []
             if r.get("action") == "exclude"]
    if rules:
        found = merchandise(g.api_shop.id, {"merchandising": rules}, found)
    items = apply_live_filters(g.api_shop, found, n, exclude=query["cart"])
    return jsonify(SubRecsSchema().dump({
        "subprofile": service.describe(row), "title": f"For {row.name}",
        "items": [asdict(i) for i in items]}))
