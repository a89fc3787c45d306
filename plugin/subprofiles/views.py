"""``/api/v1/subprofiles``: thin views over ``plugin.subprofiles`` (same key, CORS and
rate limits as the shopper API; the owner is the verified customer or the anonymous id).

The same calls are served through Shopify's app proxy (``proxy_bp``,
``/proxy/shopify/subprofiles``): the same bodies, the owner being the customer Shopify signs
in (``logged_in_customer_id``), else the browser's anonymous id as on the API.
"""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from plugin.api import access, app_proxy, linking
from plugin.api.consent import has_consent
from plugin.api.filters import apply_live_filters
from plugin.api.identity import ShopperIdentity, resolve_identity
from plugin.api.limits import per_client, per_key, per_shop
from plugin.api.schemas import ProxyQuery
from plugin.api.shopify_proxy import PROXY_URL
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
    ProxyRecsQuery,
    ReassignRequest,
    RecsQuery,
    SubProfileListSchema,
    SubProfileSchema,
    SubRecsSchema,
    UpdateRequest,
)

bp = Blueprint("subprofiles", __name__, url_prefix="/api/v1/subprofiles")
proxy_bp = Blueprint("subprofiles_proxy", __name__, url_prefix=f"{PROXY_URL}/subprofiles")
_ERRORS = (400, 401, 403, 404, 422, 429)
_TAGS = ["subprofiles"]
_PROXY_TAGS = ["shopify app proxy"]
METHODS = "GET, POST, PATCH, DELETE, OPTIONS"


@bp.before_request
def _resolve() -> Response | None:
    """Shop by public key, foreign origins refused, then who is asking (merged on identify)."""
    preflight = access.open_gate(cached=False, methods=METHODS)
    if preflight is not None:
        return preflight
    _arrive(resolve_identity(g.api_shop, request.headers),
            "Send an anonymous id (X-Shopkeeper-Shopper) or a customer token.")
    return None


@proxy_bp.before_request
def _resolve_proxied() -> None:
    """Shop and signed-in customer from Shopify's signed query, then as on the API."""
    app_proxy.open_gate(cached=False)
    _arrive(app_proxy.shopper(), "Send an anonymous id (X-Shopkeeper-Shopper) or sign in.")


def _arrive(identity: ShopperIdentity, refusal: str) -> None:
    """The owner of the call: nobody is 401; a customer's browser id is merged into them."""
    shop = g.api_shop
    if not identity.key:
        raise Unauthorized(refusal)
    if identity.customer_id and identity.anonymous_id and linking.link(shop, identity):
        service.merge_identity(shop, identity.anonymous_id, identity.customer_id)
    prompt.apply_pending(shop.id, identity.key)
    g.identity = identity
    g.owner = identity.key


bp.after_request(access.close_gate)
proxy_bp.after_request(app_proxy.close_gate)


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


def _create() -> ResponseReturnValue:
    data = CreateRequest().load(_body())
    row = service.create_subprofile(g.api_shop, g.owner, data["name"], data.get("age_band"))
    return jsonify(SubProfileSchema().dump(service.describe(row))), 201


def _update(subprofile_id: int) -> ResponseReturnValue:
    data = UpdateRequest().load(_body())
    row = service.update_subprofile(g.api_shop, g.owner, subprofile_id, name=data.get("name"),
                                    age_band=data.get("age_band", ""))
    return jsonify(SubProfileSchema().dump(service.describe(row)))


def _delete(subprofile_id: int) -> ResponseReturnValue:
    service.delete_subprofile(g.api_shop, g.owner, subprofile_id)
    return "", 204


def _set_active() -> ResponseReturnValue:
    data = ActiveRequest().load(_body())
    active = service.set_active(g.api_shop, g.owner, data["subprofile_id"])
    return jsonify(ActiveSchema().dump({"active_subprofile_id": active}))


def _orders() -> ResponseReturnValue:
    return jsonify(OrdersSchema().dump({"orders": service.recent_orders(g.api_shop, g.owner)}))


def _reassign() -> ResponseReturnValue:
    data = ReassignRequest().load(_body())
    moved = service.reassign(g.api_shop, g.owner, data["subprofile_id"],
                             order_id=data.get("order_id"), product_ids=data["product_ids"])
    return jsonify(MovedSchema().dump({"moved": moved}))


def _prompt() -> ResponseReturnValue:
    data = PromptRequest().load(_body())
    answer = prompt.should_prompt(g.api_shop, g.owner, data["product_ids"],
                                  order_id=data.get("order_id"),
                                  consented=has_consent(g.api_shop, g.identity))
    return jsonify(PromptSchema().dump(answer))


def _answer() -> ResponseReturnValue:
    data = AnswerRequest().load(_body())
    choice = data.pop("choice")
    answer = prompt.answer_prompt(g.api_shop, g.owner, choice, **data)
    return jsonify(AnswerSchema().dump(answer))


def _recommendations(subprofile_id: int) -> ResponseReturnValue:
    query = RecsQuery().load(request.args)
    n = query["n"]
    row = service.get_subprofile(g.api_shop, g.owner, subprofile_id)
    found = [] if row.kind != "person" else recs.recommend_for(
        g.api_shop.id, g.owner, row.id, row.name, 3 * n)
    # the merchant's exclusions hold here too (their pins and boosts are for the shop's
    # own lists, not for what suits one person)
    found = merchandise(g.api_shop.id, access.settings_of(g.api_shop), found,
                        excludes_only=True)
    items = apply_live_filters(g.api_shop, found, n, exclude=query["cart"])
    return jsonify(SubRecsSchema().dump({
        "subprofile": service.describe(row), "title": f"For {row.name}",
        "items": [asdict(i) for i in items]}))


_LIST = "The shopper's sub-profiles and the active one"
_CREATE = "Create a sub-profile (name or relationship, optional age band)"
_UPDATE = "Rename a sub-profile or change its age band"
_DELETE = "Delete a sub-profile and its purchases from training and caches"
_ACTIVE = "Switch who the shopper is buying for (null: themselves)"
_ORDERS = "The shopper's latest orders and who each is for (to reassign them)"
_REASSIGN = "Move past purchases (an order or products) to a sub-profile or back"
_PROMPT = "Should the widget ask \"Who are you shopping for?\" now?"
_ANSWER = "Answer the prompt: me, an existing or new sub-profile, a one-off gift"
_RECS = "Recommendations for one sub-profile (\"For Maya\")"


@bp.get("")
@per_key
@per_client
@doc(summary=_LIST, tags=_TAGS, response=SubProfileListSchema, errors=_ERRORS)
def list_subprofiles() -> ResponseReturnValue:
    return _listing()


@bp.post("")
@per_key
@per_client
@doc(summary=_CREATE, tags=_TAGS, request=CreateRequest, response=SubProfileSchema,
     errors=_ERRORS, status=201)
def create_subprofile() -> ResponseReturnValue:
    return _create()


@bp.patch("/<int:subprofile_id>")
@per_key
@per_client
@doc(summary=_UPDATE, tags=_TAGS, request=UpdateRequest, response=SubProfileSchema,
     errors=(*_ERRORS, 409))
def update_subprofile(subprofile_id: int) -> ResponseReturnValue:
    return _update(subprofile_id)


@bp.delete("/<int:subprofile_id>")
@per_key
@per_client
@doc(summary=_DELETE, tags=_TAGS, errors=_ERRORS, status=204)
def delete_subprofile(subprofile_id: int) -> ResponseReturnValue:
    return _delete(subprofile_id)


@bp.post("/active")
@per_key
@per_client
@doc(summary=_ACTIVE, tags=_TAGS, request=ActiveRequest, response=ActiveSchema,
     errors=_ERRORS)
def set_active() -> ResponseReturnValue:
    return _set_active()


@bp.get("/orders")
@per_key
@per_client
@doc(summary=_ORDERS, tags=_TAGS, response=OrdersSchema, errors=_ERRORS)
def recent_orders() -> ResponseReturnValue:
    return _orders()


@bp.post("/reassign")
@per_key
@per_client
@doc(summary=_REASSIGN, tags=_TAGS, request=ReassignRequest, response=MovedSchema,
     errors=_ERRORS)
def reassign() -> ResponseReturnValue:
    return _reassign()


@bp.post("/prompt")
@per_key
@per_client
@doc(summary=_PROMPT, tags=_TAGS, request=PromptRequest, response=PromptSchema,
     errors=_ERRORS)
def should_prompt() -> ResponseReturnValue:
    return _prompt()


@bp.post("/prompt/answer")
@per_key
@per_client
@doc(summary=_ANSWER, tags=_TAGS, request=AnswerRequest, response=AnswerSchema,
     errors=_ERRORS)
def answer_prompt() -> ResponseReturnValue:
    return _answer()


@bp.get("/<int:subprofile_id>/recommendations")
@per_key
@per_client
@doc(summary=_RECS, tags=_TAGS, query=RecsQuery, response=SubRecsSchema, errors=_ERRORS)
def recommendations(subprofile_id: int) -> ResponseReturnValue:
    return _recommendations(subprofile_id)


# --- the same calls through Shopify's app proxy: per-shop limit (every shopper arrives
# from Shopify's addresses), Shopify's signed query documented; 401 also for a bad signature


def _via_proxy(summary: str) -> str:
    return f"{summary}, through Shopify's app proxy"


@proxy_bp.get("")
@per_shop
@doc(summary=_via_proxy(_LIST), tags=_PROXY_TAGS, query=ProxyQuery,
     response=SubProfileListSchema, errors=_ERRORS)
def proxy_list_subprofiles() -> ResponseReturnValue:
    return _listing()


@proxy_bp.post("")
@per_shop
@doc(summary=_via_proxy(_CREATE), tags=_PROXY_TAGS, query=ProxyQuery, request=CreateRequest,
     response=SubProfileSchema, errors=_ERRORS, status=201)
def proxy_create_subprofile() -> ResponseReturnValue:
    return _create()


@proxy_bp.patch("/<int:subprofile_id>")
@per_shop
@doc(summary=_via_proxy(_UPDATE), tags=_PROXY_TAGS, query=ProxyQuery, request=UpdateRequest,
     response=SubProfileSchema, errors=(*_ERRORS, 409))
def proxy_update_subprofile(subprofile_id: int) -> ResponseReturnValue:
    return _update(subprofile_id)


@proxy_bp.delete("/<int:subprofile_id>")
@per_shop
@doc(summary=_via_proxy(_DELETE), tags=_PROXY_TAGS, query=ProxyQuery, errors=_ERRORS,
     status=204)
def proxy_delete_subprofile(subprofile_id: int) -> ResponseReturnValue:
    return _delete(subprofile_id)


@proxy_bp.post("/active")
@per_shop
@doc(summary=_via_proxy(_ACTIVE), tags=_PROXY_TAGS, query=ProxyQuery, request=ActiveRequest,
     response=ActiveSchema, errors=_ERRORS)
def proxy_set_active() -> ResponseReturnValue:
    return _set_active()


@proxy_bp.get("/orders")
@per_shop
@doc(summary=_via_proxy(_ORDERS), tags=_PROXY_TAGS, query=ProxyQuery, response=OrdersSchema,
     errors=_ERRORS)
def proxy_recent_orders() -> ResponseReturnValue:
    return _orders()


@proxy_bp.post("/reassign")
@per_shop
@doc(summary=_via_proxy(_REASSIGN), tags=_PROXY_TAGS, query=ProxyQuery,
     request=ReassignRequest, response=MovedSchema, errors=_ERRORS)
def proxy_reassign() -> ResponseReturnValue:
    return _reassign()


@proxy_bp.post("/prompt")
@per_shop
@doc(summary=_via_proxy(_PROMPT), tags=_PROXY_TAGS, query=ProxyQuery, request=PromptRequest,
     response=PromptSchema, errors=_ERRORS)
def proxy_should_prompt() -> ResponseReturnValue:
    return _prompt()


@proxy_bp.post("/prompt/answer")
@per_shop
@doc(summary=_via_proxy(_ANSWER), tags=_PROXY_TAGS, query=ProxyQuery, request=AnswerRequest,
     response=AnswerSchema, errors=_ERRORS)
def proxy_answer_prompt() -> ResponseReturnValue:
    return _answer()


@proxy_bp.get("/<int:subprofile_id>/recommendations")
@per_shop
@doc(summary=_via_proxy(_RECS), tags=_PROXY_TAGS, query=ProxyRecsQuery,
     response=SubRecsSchema, errors=_ERRORS)
def proxy_recommendations(subprofile_id: int) -> ResponseReturnValue:
    return _recommendations(subprofile_id)
