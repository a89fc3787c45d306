"""Vendure answers read strictly: only Vendure's own error list is a refusal.

Vendure answers a refusal in a GraphQL ``errors`` list (``FORBIDDEN`` with HTTP 200 for an
expired session or a missing permission, tests/fixtures/vendure/SOURCES.md; Apollo's 400
for a query the schema rejects) or, for a mutation, an ``ErrorResult`` (``errorCode``,
``message``). Anything else (a proxy's 404 page, a WAF's 403, JSON of another shape) is no
Vendure answer: ``TransientError``, tried again later, never read as refused or as done.
HTTP is mocked at the edge with ``responses``; the connector's own session is used.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from connectors.base import Credentials
from connectors.errors import AuthFailed, InvalidPayload, PermissionDenied, TransientError
from connectors.guarded_http import make_guarded_session
from connectors.records import DiscountSpec
from connectors.vendure import VendureConnector

FIXTURES = Path(__file__).parents[1] / "fixtures" / "vendure"
API_URL = "https://vendure.example/admin-api"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def connector(session: requests.Session | None = None, **extra: str) -> VendureConnector:
    """With ``session``, else its own (as in production), which never waits here."""
    token = None if "username" in extra else "tok"
    shop = VendureConnector(Credentials("vendure.example", access_token=token,
                                        webhook_secret="s", api_url=API_URL, extra=extra),
                            session=session)
    if session is None:
        shop.session.sleep = lambda _seconds: None
    return shop


#: the connector's own retrying session (sync, jobs), the bounded one an accept uses
#: (``plugin.offers.service.shopper_session``), and a bare one: each read the same
SESSIONS = {"own": lambda: None,
            "guarded": lambda: make_guarded_session(sleep=lambda _s: None),
            "bare": requests.Session}


# -- HTTP statuses ----------------------------------------------------------------------------
PROXY_ANSWERS = [
    {"status": 404, "body": "<html><body>404 Not Found</body></html>",
     "content_type": "text/html"},
    {"status": 404, "json": {"message": "Not Found"}},
    {"status": 400, "body": "<html>400 Bad Request (nginx)</html>", "content_type": "text/html"},
    {"status": 403, "body": "<html>Access denied (WAF)</html>", "content_type": "text/html"},
    {"status": 401, "body": ""},
    {"status": 413, "json": {"error": "payload too large"}},
]


@pytest.mark.parametrize("session", SESSIONS)
@pytest.mark.parametrize("answer", PROXY_ANSWERS,
                         ids=["404-html", "404-json", "400-html", "403-html", "401-empty",
                              "413-json"])
@responses.activate
def test_a_4xx_without_vendures_errors_is_transient(answer, session) -> None:
    """A proxy's or gateway's page is not Vendure refusing: read as InvalidPayload (or, for
    401/403, as dead credentials) an accept withdrew its offer and a shop was flagged for
    re-authorisation because of a misrouted request."""
    responses.add("POST", API_URL, **answer)
    with pytest.raises(TransientError):
        connector(SESSIONS[session]()).find_discount("SK-1")


@pytest.mark.parametrize("session", SESSIONS)
@pytest.mark.parametrize("status", [200, 401, 403])
@responses.activate
def test_vendures_forbidden_stays_a_refusal_whatever_the_status(status, session) -> None:
    responses.add("POST", API_URL, status=status, json=load("admin_forbidden.json"))
    with pytest.raises(PermissionDenied):
        connector(SESSIONS[session]()).find_discount("SK-1")


@responses.activate
def test_a_query_the_schema_rejects_stays_a_refusal() -> None:
    """Apollo answers a query that fails validation with 400 and its ``errors`` list."""
    responses.add("POST", API_URL, status=400, json={"errors": [{
        "message": 'Cannot query field "nope" on type "Query".',
        "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]})
    with pytest.raises(InvalidPayload) as caught:
        connector().find_discount("SK-1")
    assert not isinstance(caught.value, TransientError)


# -- the create-discount path: shapes checked ---------------------------------------------------
def gql(operation: str):
    """responses matcher: the GraphQL operation by name."""
    def match(request) -> tuple[bool, str]:
        found = re.search(rf"\b(query|mutation) {operation}\b",
                          json.loads(request.body)["query"])
        return (True, "") if found else (False, f"not {operation}")
    return match


def spec(**overrides: Any) -> DiscountSpec:
    values = {"code": "FIXTURE10", "kind": "percent", "value": Decimal("10"),
              "expires_at": datetime.now(UTC) + timedelta(hours=2)}
    return DiscountSpec(**{**values, **overrides})


def _created_promotions() -> int:
    return sum(gql("Promotion")(c.request)[0] for c in responses.calls)


@pytest.mark.parametrize("listing", [
    None, {"promotions": None}, {"promotions": "none"}, {"promotions": {"items": None}},
    {"promotions": {"items": {"id": "1"}}}, {"promotions": {"items": ["1"]}},
    {"promotions": {"items": [{"couponCode": "FIXTURE10"}]}},
    {"promotions": {"items": [{"id": None, "couponCode": "FIXTURE10"}]}},
    {"promotions": {"items": [{"id": ["1"], "couponCode": "FIXTURE10"}]}},
], ids=["null", "promotions-null", "promotions-text", "items-null", "items-object",
        "item-text", "item-without-id", "id-null", "id-list"])
@responses.activate
def test_a_garbled_promotion_listing_is_transient_and_creates_nothing(listing) -> None:
    """The listing that finds an existing promotion by code (a retried create) raised
    KeyError/TypeError: a crash, not "try again". Read as "none there" it would mint a
    second discount for the same code."""
    responses.add("POST", API_URL, match=[gql("PromotionsByCode")], json={"data": listing})
    with pytest.raises(TransientError, match="promotions"):
        connector().create_discount(spec())
    with pytest.raises(TransientError, match="promotions"):
        connector().find_discount("FIXTURE10")
    assert _created_promotions() == 0


@responses.activate
def test_a_promotion_listing_for_another_code_is_not_ours() -> None:
    """Vendure's own listing, items of another code left out: nothing found."""
    other = load("admin_promotions_by_code.json")
    other["data"]["promotions"]["items"][0]["couponCode"] = "OTHER"
    responses.add("POST", API_URL, match=[gql("PromotionsByCode")], json=other)
    assert connector().find_discount("FIXTURE10") is None


def _to_the_group(group_answer: Any) -> None:
    responses.add("POST", API_URL, match=[gql("PromotionsByCode")],
                  json=load("admin_promotions_by_code_none.json"))
    responses.add("POST", API_URL, match=[gql("Group")], json={"data": group_answer})
    responses.add("POST", API_URL, match=[gql("Promotion")],
                  json=load("admin_create_promotion.json"))


@pytest.mark.parametrize("answer", [
    None, {}, {"createCustomerGroup": None}, {"createCustomerGroup": "1"},
    {"createCustomerGroup": {}}, {"createCustomerGroup": {"id": None}},
    {"createCustomerGroup": {"id": ["1"]}}, {"createCustomerGroup": {"id": ""}},
])
@responses.activate
def test_a_customer_group_nobody_confirmed_is_transient(answer) -> None:
    """``createCustomerGroup`` answers the group (``CustomerGroup!``) or an ``errors`` list.
    Anything else raised KeyError/TypeError, or (``str(None)``) limited the promotion to
    a group "None": an offer nobody could use. No promotion is made without the group."""
    _to_the_group(answer)
    with pytest.raises(TransientError, match="createCustomerGroup"):
        connector().create_discount(spec(customer_id="1"))
    assert _created_promotions() == 0


@responses.activate
def test_a_customer_group_vendure_refused_is_a_refusal() -> None:
    responses.add("POST", API_URL, match=[gql("PromotionsByCode")],
                  json=load("admin_promotions_by_code_none.json"))
    responses.add("POST", API_URL, match=[gql("Group")], json={"errors": [{
        "message": 'No Customer with the id "1" could be found',
        "extensions": {"code": "ENTITY_NOT_FOUND"}}], "data": None})
    with pytest.raises(InvalidPayload) as caught:
        connector().create_discount(spec(customer_id="1"))
    assert not isinstance(caught.value, TransientError)
    assert _created_promotions() == 0


@responses.activate
def test_the_customer_group_vendure_made_limits_the_promotion() -> None:
    _to_the_group(load("admin_create_customer_group.json")["data"])
    connector().create_discount(spec(customer_id="1"))
    sent = next(json.loads(c.request.body)["variables"]["input"] for c in responses.calls
                if gql("Promotion")(c.request)[0])
    assert sent["conditions"] == [{"code": "customer_group", "arguments": [
        {"name": "customerGroupId", "value": "1"}]}]


@pytest.mark.parametrize("answer", [
    None, {"productVariants": None}, {"productVariants": {"items": "89"}},
    {"productVariants": {"items": [{"name": "mug"}]}}, {"productVariants": {"items": [89]}},
])
@responses.activate
def test_a_garbled_variant_listing_is_transient(answer) -> None:
    responses.add("POST", API_URL, match=[gql("PromotionsByCode")],
                  json=load("admin_promotions_by_code_none.json"))
    responses.add("POST", API_URL, match=[gql("VariantIds")], json={"data": answer})
    with pytest.raises(TransientError, match="productVariants"):
        connector().create_discount(spec(product_ids=("55",)))
    assert _created_promotions() == 0


@responses.activate
def test_products_without_variants_are_refused() -> None:
    responses.add("POST", API_URL, match=[gql("PromotionsByCode")],
                  json=load("admin_promotions_by_code_none.json"))
    responses.add("POST", API_URL, match=[gql("VariantIds")],
                  json={"data": {"productVariants": {"items": []}}})
    with pytest.raises(InvalidPayload, match="no variants") as caught:
        connector().create_discount(spec(product_ids=("55",)))
    assert not isinstance(caught.value, TransientError)


def _setup(change) -> dict[str, Any]:
    setup = load("admin_tax_setup.json")
    change(setup["data"])
    return setup


@pytest.mark.parametrize("change", [
    lambda d: d.update(activeChannel=None),
    lambda d: d.update(activeChannel="USD"),
    lambda d: d["activeChannel"].pop("pricesIncludeTax"),
    lambda d: d.update(taxRates=None),
    lambda d: d["taxRates"].update(items="20"),
    lambda d: d["taxRates"]["items"].__setitem__(1, "20"),
    lambda d: d["taxRates"]["items"][1].update(zone=None),
    lambda d: d["taxRates"]["items"][1].update(value="twenty"),
], ids=["channel-null", "channel-text", "no-prices-include-tax", "rates-null", "items-text",
        "rate-text", "zone-null", "value-text"])
@responses.activate
def test_a_garbled_tax_setup_is_transient(change) -> None:
    responses.add("POST", API_URL, match=[gql("PromotionsByCode")],
                  json=load("admin_promotions_by_code_none.json"))
    responses.add("POST", API_URL, match=[gql("TaxSetup")], json=_setup(change))
    with pytest.raises(TransientError, match="TaxSetup"):
        connector().create_discount(spec(kind="fixed", value=Decimal("5"), currency="USD"))
    assert _created_promotions() == 0


# -- logging in -----------------------------------------------------------------------------------
def _login(answer: Any, token: str | None = None) -> None:
    headers = {"vendure-auth-token": token} if token else {}
    responses.add("POST", API_URL, match=[gql("Login")], json={"data": answer},
                  headers=headers)


@pytest.mark.parametrize("answer", [
    None, {}, {"login": None}, {"login": "errorCode"}, {"login": ["errorCode"]},
    {"login": {}}, {"login": {"errorCode": None}}, {"login": {"errorCode": ["X"]}},
], ids=["null", "empty", "login-null", "login-text", "login-list", "login-empty",
        "code-null", "code-list"])
@responses.activate
def test_a_garbled_login_answer_is_transient(answer) -> None:
    """Neither the user nor Vendure's ``ErrorResult``: a text or list holding "errorCode"
    was read as refused credentials (and raised TypeError naming it), a null one as a
    login that gave no token (the shop flagged for re-authorisation)."""
    _login(answer, token="from-a-proxy")
    shop = connector(username="superadmin", password="pw")
    with pytest.raises(TransientError, match="login"):
        shop.find_discount("SK-1")
    assert shop.client._token is None  # nothing from that answer is kept


@responses.activate
def test_a_login_vendure_refused_is_auth_failed() -> None:
    _login({"login": {"errorCode": "INVALID_CREDENTIALS_ERROR",
                      "message": "The provided credentials are invalid"}})
    with pytest.raises(AuthFailed, match="INVALID_CREDENTIALS_ERROR") as caught:
        connector(username="superadmin", password="wrong").find_discount("SK-1")
    assert not isinstance(caught.value, TransientError)


@responses.activate
def test_a_login_without_a_token_header_is_auth_failed() -> None:
    """The user logged in but no bearer token came back: 'bearer' is no tokenMethod, a
    setting the merchant must change."""
    _login({"login": {"id": "1"}})
    with pytest.raises(AuthFailed, match="no token"):
        connector(username="superadmin", password="pw").find_discount("SK-1")


@responses.activate
def test_a_login_vendure_confirmed_is_used() -> None:
    _login({"login": {"id": "1"}}, token="fresh")
    responses.add("POST", API_URL, match=[gql("PromotionsByCode")],
                  json=load("admin_promotions_by_code_none.json"))
    assert connector(username="superadmin", password="pw").find_discount("SK-1") is None
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer fresh"
