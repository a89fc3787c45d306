"""The cart offer's and the sub-profiles' calls through Shopify's app proxy.

Same domain code as ``/api/v1/offers`` and ``/api/v1/subprofiles``; the shop and the
signed-in customer come from Shopify's signed query (``proxied`` signs as Shopify does).
"""

from __future__ import annotations

import json

import pytest
import responses
import sqlalchemy as sa

from connectors.base import Credentials
from connectors.shopify.client import API_VERSION
from plugin.api.identity import mint_customer_token
from plugin.api.shopify_proxy import PROXY_URL
from plugin.extensions import db
from plugin.models import Offer, SubProfile
from plugin.shops import customer_token_secrets, save_credentials
from tests.api.conftest import anon_id
from tests.api.test_app_proxy import DOMAIN, SECRET, _refused, proxied
from tests.factories import make_shop
from tests.offers.conftest import cart_body, configure, make_idle, sells

OTHER_DOMAIN = "other-shop.myshopify.com"
ALICE, BOB, CAROL = "7001", "7002", "7003"  # Shopify customer ids
PRIVATE = "private, no-store"


@pytest.fixture(autouse=True)
def _app_secret(app):
    app.config["SHOPIFY_API_SECRET"] = SECRET


def _offer_shop(domain: str = DOMAIN):
    """A Shopify shop with offers on whose ``discountCodeBasicCreate`` answers node 9."""
    shop = make_shop("shopify", domain)
    save_credentials(shop, Credentials(domain, access_token="shpat_x", webhook_secret="x"))
    configure(shop)
    sells(shop, "GBP")
    for customer in (ALICE, BOB):
        make_idle(shop.id, customer)
    responses.post(f"https://{domain}/admin/api/{API_VERSION}/graphql.json", json={"data": {
        "discountCodeBasicCreate": {"codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/9"},
                                    "userErrors": []}}})
    return shop


class Door:
    """Calls under ``PROXY_URL`` as Shopify forwards them for one shop and customer."""

    def __init__(self, client, customer: str = "", shop: str = DOMAIN,
                 headers: dict | None = None):
        self.client, self.customer, self.shop = client, customer, shop
        self.headers = headers or {}

    def open(self, method: str, path: str, body: dict | None = None, **query):
        signed = proxied(query, customer=self.customer, shop=self.shop)
        return self.client.open(f"{PROXY_URL}{path}?{signed}", method=method, json=body,
                                headers=self.headers)

    def quote(self, cart: dict | None = None):
        return self.open("POST", "/offers/quote", {"cart": cart or cart_body()})

    def offer(self) -> dict:
        answer = self.quote()
        assert answer.status_code == 200, answer.get_json()
        assert answer.headers["Cache-Control"] == PRIVATE
        offer = answer.get_json()["offer"]
        assert offer is not None and offer["token"]
        return offer

    def accept(self, token: str, cart: dict | None = None):
        return self.open("POST", "/offers/accept", {"token": token, "cart": cart or cart_body()})

    def dismiss(self, token: str):
        return self.open("POST", "/offers/dismiss", {"token": token, "cart": cart_body()})

    def create(self, name: str) -> int:
        created = self.open("POST", "/subprofiles", {"name": name})
        assert created.status_code == 201, created.get_json()
        assert created.headers["Cache-Control"] == PRIVATE
        return created.get_json()["id"]

    def names(self) -> list[str]:
        listing = self.open("GET", "/subprofiles")
        assert listing.status_code == 200, listing.get_json()
        return [p["name"] for p in listing.get_json()["subprofiles"]]


def _offer_rows() -> list[tuple[str, str]]:
    return [tuple(r) for r in db.session.execute(sa.select(Offer.shopper_id, Offer.status))]


# --- the cart offer -----------------------------------------------------------------------


@responses.activate
def test_a_signed_in_customer_gets_and_accepts_an_offer_for_themselves(client, app):
    shop = _offer_shop()
    alice = Door(client, ALICE)
    offer = alice.offer()
    accepted = alice.accept(offer["token"])
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.headers["Cache-Control"] == PRIVATE
    assert "Access-Control-Allow-Origin" not in accepted.headers
    sent = json.loads(responses.calls[-1].request.body)["variables"]["input"]
    assert sent["code"] == accepted.get_json()["code"]
    # the discount is Alice's alone, as Shopify names her
    assert sent["context"] == {"customers": {"add": [f"gid://shopify/Customer/{ALICE}"]}}
    assert _offer_rows() == [(ALICE, "accepted")]
    assert db.session.scalar(sa.select(Offer.shop_id)) == shop.id


@responses.activate
def test_another_sites_text_plain_post_through_the_proxy_accepts_and_creates_nothing(
        client, app):
    """A form or beacon of another site reaches the proxy through the storefront with no
    preflight only as text/plain (or a form), signed by Shopify for the customer whose
    storefront cookies went with it. The request guard's NUL scan parsed every body as
    JSON and Werkzeug kept that parse, so these views, which ask for JSON, took it."""
    _offer_shop()
    alice = Door(client, ALICE)
    offer = alice.offer()
    for path, body in [("/offers/accept", {"token": offer["token"], "cart": cart_body()}),
                       ("/subprofiles", {"name": "Forged"})]:
        signed = proxied({}, customer=ALICE)
        forged = client.post(f"{PROXY_URL}{path}?{signed}", data=json.dumps(body),
                             content_type="text/plain")
        assert _refused(forged, 400)["message"] == "The body must be a JSON object."
    assert _offer_rows() == [(ALICE, "offered")]
    assert alice.names() == []
    assert [c for c in responses.calls if "graphql" in c.request.url] == []


@responses.activate
def test_an_offer_quoted_for_one_customer_is_refused_for_another(client, app):
    _offer_shop()
    offer = Door(client, ALICE).offer()
    for stranger in (Door(client, BOB), Door(client, "", headers={
            "X-Shopkeeper-Shopper": anon_id()})):
        body = _refused(stranger.accept(offer["token"]), 403)
        assert body["message"] == "This offer is not valid for this cart."
        _refused(stranger.dismiss(offer["token"]), 403)
    assert _offer_rows() == [(ALICE, "offered")] and len(responses.calls) == 0
    assert Door(client, ALICE).dismiss(offer["token"]).get_json() == {"dismissed": True}
    assert _offer_rows() == [(ALICE, "dismissed")]


@responses.activate
def test_an_offer_of_one_shop_is_refused_by_another_shop(client, app):
    _offer_shop()
    other = _offer_shop(OTHER_DOMAIN)
    offer = Door(client, ALICE).offer()
    _refused(Door(client, ALICE, shop=OTHER_DOMAIN).accept(offer["token"]), 403)
    # nor is it taken on the other shop's API for the same customer
    token = mint_customer_token(other.id, customer_token_secrets(other)[0], ALICE)
    api = client.post("/api/v1/offers/accept", query_string={"key": other.widget_key},
                      json={"token": offer["token"], "cart": cart_body()},
                      headers={"X-Shopkeeper-Customer-Token": token})
    assert api.status_code == 403
    assert _offer_rows() == [(ALICE, "offered")] and len(responses.calls) == 0


@responses.activate
def test_a_tampered_offer_token_or_cart_is_refused(client, app):
    _offer_shop()
    alice = Door(client, ALICE)
    offer = alice.offer()
    head, payload, sig = offer["token"].split(".")
    _refused(alice.accept(f"{head}.{payload}.{sig[:-2]}AA"), 403)
    _refused(alice.accept(offer["token"], cart_body(quantity=3)), 403)
    assert _offer_rows() == [(ALICE, "offered")] and len(responses.calls) == 0


@responses.activate
def test_a_forged_proxy_signature_reaches_no_offer(client, app):
    _offer_shop()
    offer = Door(client, ALICE).offer()
    query = proxied({}, customer=ALICE).replace(f"logged_in_customer_id={ALICE}",
                                                f"logged_in_customer_id={BOB}")
    bob_quote = client.post(f"{PROXY_URL}/offers/quote?{query}", json={"cart": cart_body()})
    _refused(bob_quote, 401)
    forged = client.post(f"{PROXY_URL}/offers/accept?{query}",
                         json={"token": offer["token"], "cart": cart_body()})
    _refused(forged, 401)
    assert _offer_rows() == [(ALICE, "offered")]


@responses.activate
def test_offer_refusals_are_json_and_private(client, app):
    shop = _offer_shop()
    _refused(Door(client).quote(), 422)  # nobody: neither signed in nor an anonymous id
    _refused(Door(client, ALICE).open("POST", "/offers/quote", {"cart": {}}), 422)
    _refused(Door(client, ALICE, headers={"Sec-Fetch-Site": "cross-site"}).quote(), 403)
    _refused(Door(client, ALICE, shop="unknown.myshopify.com").quote(), 404)
    _refused(client.post(f"{PROXY_URL}/offers/quote", json={"cart": cart_body()}), 401)
    shop.settings = {**shop.settings, "consent_required": True}
    db.session.commit()
    no_consent = Door(client, ALICE).quote()
    assert no_consent.status_code == 200 and no_consent.headers["Cache-Control"] == PRIVATE
    assert no_consent.get_json()["reason_code"] == "no_consent"


@responses.activate
def test_an_anonymous_browser_gets_the_apis_anonymous_offer(client, app):
    shop = _offer_shop()
    browser = anon_id()
    make_idle(shop.id, browser)
    door = Door(client, "", headers={"X-Shopkeeper-Shopper": browser})
    offer = door.offer()
    assert door.accept(offer["token"]).status_code == 200
    assert _offer_rows() == [(browser, "accepted")]
    sent = json.loads(responses.calls[-1].request.body)["variables"]["input"]
    assert "customers" not in sent["context"]  # nobody to hold it to, as on the API


@responses.activate
def test_accepts_through_the_proxy_are_counted_per_customer_and_per_shop_for_anonymous(
        client, app):
    """Every shopper arrives from Shopify's addresses, so the per-address accept limit would
    be one bucket for every Shopify shop's shoppers. Through the proxy a signed-in customer
    has a bucket of their own (the per-address figure), and anonymous shoppers, whose ids
    cost nothing to invent, share one per shop, which cannot starve the customers'."""
    shop = _offer_shop()
    _offer_shop(OTHER_DOMAIN)
    app.config.update(OFFER_ACCEPTS_PER_CLIENT="1 per hour",
                      OFFER_ACCEPTS_PER_PROXIED_SHOP="2 per hour")
    strangers = [anon_id() for _ in range(3)]
    for stranger in strangers:
        make_idle(shop.id, stranger)
    first, second, third = (Door(client, headers={"X-Shopkeeper-Shopper": s})
                            for s in strangers)
    assert first.accept(first.offer()["token"]).status_code == 200
    assert second.accept(second.offer()["token"]).status_code == 200
    assert _refused(third.accept(third.offer()["token"]), 429)["message"].startswith(
        "Too many requests")  # the shop's anonymous bucket is spent ...
    alice, bob = Door(client, ALICE), Door(client, BOB)
    alices = alice.offer()["token"]
    assert alice.accept(alices).status_code == 200  # ... not the customers'
    assert bob.accept(bob.offer()["token"]).status_code == 200
    elsewhere = Door(client, ALICE, shop=OTHER_DOMAIN)
    assert elsewhere.accept(elsewhere.offer()["token"]).status_code == 200  # another shop
    again = _refused(alice.accept(alices), 429)  # counted before the offer is looked at
    assert again["message"].startswith("Too many requests")  # Alice's own bucket is spent


# --- "Who are you shopping for?" ---------------------------------------------------------


@pytest.fixture
def sub_shop(app):
    shop = make_shop("shopify", DOMAIN)
    make_shop("shopify", OTHER_DOMAIN)
    return shop


def test_a_signed_in_customers_subprofiles_are_theirs_on_the_api_too(client, sub_shop):
    alice = Door(client, ALICE)
    maya = alice.create("Maya")
    assert alice.names() == ["Maya"]
    renamed = alice.open("PATCH", f"/subprofiles/{maya}", {"name": "My daughter"})
    assert renamed.status_code == 200 and renamed.headers["Cache-Control"] == PRIVATE
    assert db.session.execute(sa.select(SubProfile.owner_id, SubProfile.name)).all() == [
        (ALICE, "My daughter")]
    token = mint_customer_token(sub_shop.id, customer_token_secrets(sub_shop)[0], ALICE)
    api = client.get("/api/v1/subprofiles", query_string={"key": sub_shop.widget_key},
                     headers={"X-Shopkeeper-Customer-Token": token})
    assert [p["name"] for p in api.get_json()["subprofiles"]] == ["My daughter"]
    active = alice.open("POST", "/subprofiles/active", {"subprofile_id": maya})
    assert active.get_json() == {"active_subprofile_id": maya}
    recs = alice.open("GET", f"/subprofiles/{maya}/recommendations", n="3")
    assert recs.status_code == 200 and recs.get_json()["title"] == "For My daughter"
    assert alice.open("DELETE", f"/subprofiles/{maya}").status_code == 204
    assert alice.names() == []


def test_another_customer_or_shop_never_reaches_them(client, sub_shop):
    maya = Door(client, ALICE).create("Maya")
    bob = Door(client, BOB)
    assert bob.names() == []
    for method, path, body in [("PATCH", f"/subprofiles/{maya}", {"name": "Mine"}),
                               ("DELETE", f"/subprofiles/{maya}", None),
                               ("GET", f"/subprofiles/{maya}/recommendations", None),
                               ("POST", "/subprofiles/active", {"subprofile_id": maya})]:
        _refused(bob.open(method, path, body), 404)
        _refused(Door(client, ALICE, shop=OTHER_DOMAIN).open(method, path, body), 404)
    assert Door(client, ALICE, shop=OTHER_DOMAIN).names() == []
    assert db.session.execute(sa.select(SubProfile.owner_id, SubProfile.name,
                                        SubProfile.shop_id)).all() == [
        (ALICE, "Maya", sub_shop.id)]


def test_nobody_signed_in_gets_the_apis_anonymous_answer(client, sub_shop):
    """No id at all: 401, as on the API. An anonymous browser id owns its own, as on the
    API; a customer token is no way in through the proxy (Shopify names the customer)."""
    _refused(Door(client).open("GET", "/subprofiles"), 401)
    api = client.get("/api/v1/subprofiles", query_string={"key": sub_shop.widget_key})
    assert api.status_code == 401
    Door(client, ALICE).create("Maya")
    token = mint_customer_token(sub_shop.id, customer_token_secrets(sub_shop)[0], ALICE)
    _refused(Door(client, headers={"X-Shopkeeper-Customer-Token": token}).open(
        "GET", "/subprofiles"), 401)
    browser = {"X-Shopkeeper-Shopper": anon_id()}
    anonymous = Door(client, headers={**browser, "X-Shopkeeper-Customer-Token": token})
    assert anonymous.names() == []  # not Alice's
    anonymous.create("Leo")
    assert anonymous.names() == ["Leo"]
    # signing in on the storefront merges the browser's sub-profiles into the customer's
    assert Door(client, BOB, headers=browser).names() == ["Leo"]
    assert Door(client, BOB).names() == ["Leo"] and Door(client, ALICE).names() == ["Maya"]


def test_subprofile_refusals_are_json_and_private(client, sub_shop):
    alice = Door(client, ALICE)
    maya = alice.create("Maya")
    _refused(alice.open("POST", "/subprofiles", {"name": ""}), 422)
    _refused(alice.open("PATCH", f"/subprofiles/{maya}", {"colour": "red"}), 422)
    cross = Door(client, ALICE, headers={"Sec-Fetch-Site": "cross-site"})
    for method, body in [("PATCH", {"name": "x"}), ("DELETE", None)]:
        _refused(cross.open(method, f"/subprofiles/{maya}", body), 403)
    _refused(client.get(f"{PROXY_URL}/subprofiles"), 401)
    tampered = proxied({}, customer=BOB).replace(f"logged_in_customer_id={BOB}",
                                                 f"logged_in_customer_id={ALICE}")
    _refused(client.get(f"{PROXY_URL}/subprofiles?{tampered}"), 401)
    assert alice.names() == ["Maya"]


def test_the_proxy_serves_every_shopper_call_of_the_two_widgets(app):
    rules = {(r.rule.removeprefix("/api/v1"), m) for r in app.url_map.iter_rules()
             for m in r.methods - {"HEAD", "OPTIONS"}
             if r.rule.startswith(("/api/v1/offers", "/api/v1/subprofiles"))
             and not r.rule.endswith("/uplift")}
    proxied_rules = {(r.rule.removeprefix(PROXY_URL), m) for r in app.url_map.iter_rules()
                     for m in r.methods - {"HEAD", "OPTIONS"} if r.rule.startswith(PROXY_URL)}
    assert rules and rules <= proxied_rules
