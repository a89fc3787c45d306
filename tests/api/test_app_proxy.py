"""The widgets through Shopify's app proxy: Shopify's signature names the shop and customer.

Requests are signed as Shopify signs them (``_signature``, proved on the documented vectors
of platforms.md and shopify.dev); the shop is the trained demo shop of ``conftest``, as a
Shopify shop whose customers have Shopify's numeric ids.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import parse_qsl, urlencode

import pytest

from connectors.manifest import load_manifest
from connectors.shopify.install import QUERY_MAX_AGE_SECONDS
from plugin.api.identity import mint_customer_token
from plugin.api.shopify_proxy import PROXY_URL
from plugin.extensions import db
from plugin.models import Impression, Interaction, RecommendationCache
from plugin.shops import customer_token_secrets, mark_uninstalled
from tests.api.conftest import ORDERS, PRODUCTS, add_order, add_products, anon_id, load_history
from tests.factories import make_shop

SECRET = "hush"
DOMAIN = "demo-shop.myshopify.com"
#: the conftest history under Shopify customer ids (c1 -> 101, ...)
CUSTOMERS = {name: str(100 + k) for k, name in enumerate(ORDERS, start=1)}
C1 = CUSTOMERS["c1"]


def _signature(pairs: list[tuple[str, str]], secret: str = SECRET) -> str:
    """Shopify's rule: values of a repeated key joined by ``,``, ``k=v`` sorted and
    concatenated without a separator, hex HMAC-SHA256 with the app's client secret."""
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    message = "".join(f"{k}={','.join(v)}" for k, v in sorted(grouped.items()))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def test_the_test_signer_reproduces_shopifys_documented_signatures():
    documented = ("extra=1&extra=2&shop=shop-name.myshopify.com&logged_in_customer_id={}"
                  "&path_prefix=%2Fapps%2Fawesome_reviews&timestamp=1317327555")
    assert _signature(parse_qsl(documented.format(1), keep_blank_values=True)) == (
        "4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb")
    assert _signature(parse_qsl(documented.format(""), keep_blank_values=True)) == (
        "e072b6d7e6622d85912a5214b860d3100dc1e73d9bc29f43796ac8c9ff8093cb")


def proxied(params: dict[str, str] | list[tuple[str, str]], *, shop: str = DOMAIN,
            customer: str = "", at: float | None = None, secret: str = SECRET,
            before: list[tuple[str, str]] = ()) -> str:
    """The query Shopify forwards: the page's own ``params`` (and ``before`` them, what a
    page might add), then Shopify's parameters and the signature over all of them."""
    page = list(params.items()) if isinstance(params, dict) else list(params)
    pairs = [*before, *page, ("shop", shop), ("logged_in_customer_id", customer),
             ("path_prefix", "/apps/shopkeeper"), ("timestamp", str(int(at or time.time())))]
    return urlencode([*pairs, ("signature", _signature(pairs, secret))])


@pytest.fixture(autouse=True)
def _app_secret(app):
    app.config["SHOPIFY_API_SECRET"] = SECRET


@pytest.fixture
def shop(app):
    """The conftest ``store``/``trained`` chain, on a Shopify shop."""
    return make_shop("shopify", DOMAIN)


@pytest.fixture
def store(shop):
    shop.settings = {"holdout_share": 0}
    db.session.commit()
    add_products(shop.id, PRODUCTS)
    load_history(shop.id, {CUSTOMERS[name]: baskets for name, baskets in ORDERS.items()})
    return shop


class Proxy:
    """Calls ``PROXY_URL`` as Shopify forwards the widget's storefront calls."""

    def __init__(self, client):
        self.client = client

    def recs(self, placement: str = "for_you", *, headers: dict | None = None,
             raw: str | None = None, **signing):
        query = raw or proxied({"key": "pk_ignored", "placement": placement,
                                **signing.pop("params", {})}, **signing)
        return self.client.get(f"{PROXY_URL}/recommendations?{query}", headers=headers or {})

    def post(self, path: str, body: dict, *, headers: dict | None = None, **signing):
        return self.client.post(f"{PROXY_URL}/{path}?{proxied({}, **signing)}", json=body,
                                headers=headers or {})


@pytest.fixture
def proxy(client) -> Proxy:
    return Proxy(client)


def ids(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [i["product_id"] for i in response.get_json()["items"]]


def _refused(response, status: int) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"code", "status", "message", "errors"} and body["code"] == status
    assert response.headers["Cache-Control"] == "private, no-store" or status == 404
    return body


def test_a_signed_in_customer_gets_the_trained_shops_own_list(proxy, trained):
    row = db.session.query(RecommendationCache).filter_by(shop_id=trained.id,
                                                         shopper_id=C1).one()
    row.items = [["p8", 1.0, "itemknn", "from the cache"], ["p10", 0.9, "itemknn", "x"]]
    db.session.commit()
    response = proxy.recs(customer=C1, params={"n": "2"})
    assert ids(response) == ["p8", "p10"]
    assert response.get_json()["personalized"] is True
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "Access-Control-Allow-Origin" not in response.headers
    assert db.session.query(Impression.shopper_id).one() == (C1,)


def test_the_proxy_answers_what_the_api_answers_for_that_customer(proxy, client, trained):
    """Same domain code: the customer Shopify signs in is the customer a token proves."""
    token = mint_customer_token(trained.id, customer_token_secrets(trained)[0], C1)
    api = client.get("/api/v1/recommendations", headers={"X-Shopkeeper-Customer-Token": token},
                     query_string={"key": trained.widget_key, "placement": "for_you", "n": 5})
    through_proxy = proxy.recs(customer=C1, params={"n": "5"})
    assert ids(through_proxy) == ids(api) and len(ids(api)) == 5
    assert through_proxy.get_json()["personalized"] is api.get_json()["personalized"] is True


def test_nobody_signed_in_is_the_widgets_anonymous_shopper(proxy, trained):
    browser = anon_id()
    response = proxy.recs(customer="", headers={"X-Shopkeeper-Shopper": browser})
    assert response.get_json()["personalized"] is False
    assert {i["source"] for i in response.get_json()["items"]} == {"popular"}
    assert db.session.query(Impression.shopper_id).one() == (browser,)
    assert ids(proxy.recs("reorder", customer="")) == []


@pytest.mark.parametrize("tamper", [
    lambda q: q.replace(f"logged_in_customer_id={C1}", "logged_in_customer_id=102"),
    lambda q: q.replace("placement=for_you", "placement=reorder"),
    lambda q: q + "&n=3",
    lambda q: q.split("&signature=")[0],
    lambda q: q.replace("signature=", "signature=0"),
])
def test_a_tampered_query_is_refused(proxy, trained, tamper):
    query = proxied({"placement": "for_you"}, customer=C1)
    _refused(proxy.recs(raw=tamper(query)), 401)
    assert db.session.query(Impression).count() == 0


def test_another_apps_signature_is_refused(proxy, trained):
    _refused(proxy.recs(customer=C1, secret="not-our-app"), 401)


@pytest.mark.parametrize("age", [QUERY_MAX_AGE_SECONDS + 30, 86400, -QUERY_MAX_AGE_SECONDS - 30])
def test_a_replayed_or_future_timestamp_is_refused(proxy, trained, age):
    body = _refused(proxy.recs(customer=C1, at=time.time() - age), 401)
    assert "too long ago" in body["message"]
    assert proxy.recs(customer=C1, at=time.time() - 60).status_code == 200


def test_a_customer_id_added_by_the_page_never_signs_anyone_in(proxy, trained):
    """Shopify joins a repeated parameter's values before signing, so a page adding its own
    ``logged_in_customer_id`` beside Shopify's empty one would carry a valid signature."""
    response = proxy.recs(customer="", before=[("logged_in_customer_id", C1)])
    body = _refused(response, 401)
    assert body["errors"] == {"logged_in_customer_id": ["Given more than once."]}
    assert db.session.query(Impression).count() == 0


def test_a_customer_id_that_is_no_shopify_id_is_refused(proxy, trained):
    body = _refused(proxy.recs(customer=f"{C1}x"), 401)
    assert body["errors"] == {"logged_in_customer_id": ["Not a Shopify customer id."]}
    assert db.session.query(Impression).count() == 0


def test_the_shop_not_each_client_address_is_rate_limited(proxy, app, trained):
    """Every shopper arrives from Shopify's addresses: a per-client limit would be one
    bucket for all of them. The shop takes the widget key's limit instead."""
    app.config.update(API_RATE_LIMIT_PER_CLIENT="1 per minute",
                      API_RATE_LIMIT_PER_KEY="2 per minute")
    assert [proxy.recs(customer=C1).status_code for _ in range(2)] == [200, 200]
    limited = _refused(proxy.recs(customer=C1), 429)
    assert limited["message"].startswith("Too many requests")


@pytest.mark.parametrize("domain", ["unknown-shop.myshopify.com", "", "DEMO-SHOP.evil.com"])
def test_an_unknown_shop_is_404(proxy, trained, domain):
    _refused(proxy.recs(customer=C1, shop=domain), 404)


def test_a_generic_shop_with_a_shopify_domain_is_not_reached(proxy, app):
    shop = make_shop("generic", "lookalike.myshopify.com")
    add_products(shop.id, PRODUCTS)
    _refused(proxy.recs(shop="lookalike.myshopify.com"), 404)


def test_an_uninstalled_shop_is_404(proxy, trained):
    assert proxy.recs(customer=C1).status_code == 200  # its snapshot is in the cache now
    mark_uninstalled(trained)
    db.session.commit()
    _refused(proxy.recs(customer=C1), 404)


def test_without_the_app_secret_configured_nothing_is_served(proxy, app, trained):
    app.config["SHOPIFY_API_SECRET"] = ""
    _refused(proxy.recs(customer=C1), 404)


def test_one_shops_customer_id_never_reaches_another_shops_data(proxy, trained):
    other = make_shop("shopify", "other-shop.myshopify.com")
    # no control group: with the default 10 %, customer 555 of a shop with a random id
    # was in it one run in ten, and got no "usual?" list
    other.settings = {"holdout_share": 0}
    db.session.commit()
    add_products(other.id, ["q1", "q2", "q3"], prefix="Other ")
    add_order(other.id, "555", "o-1", ["q1", "q2"], trained.created_at)
    add_order(other.id, "555", "o-2", ["q1"], trained.created_at)
    assert ids(proxy.recs("reorder", customer="555", shop="other-shop.myshopify.com")) == [
        "q1"]  # the other shop's own customer has a history there
    assert ids(proxy.recs("reorder", customer="555")) == []  # but not in the demo shop
    mine = proxy.recs(customer="555", params={"n": "10"})
    assert set(ids(mine)) <= set(PRODUCTS) and mine.get_json()["personalized"] is False
    assert ids(proxy.recs("reorder", customer=C1, shop="other-shop.myshopify.com")) == []


@pytest.mark.parametrize(("params", "field"), [
    ({"placement": "nope"}, "placement"), ({"placement": "for_you", "n": "0"}, "n"),
    ({"placement": "product"}, "product_id"),
])
def test_bad_params_are_422_like_the_api(proxy, trained, params, field):
    query = proxied(params, customer=C1)
    body = _refused(proxy.client.get(f"{PROXY_URL}/recommendations?{query}"), 422)
    assert field in body["errors"]


def test_the_holdout_arm_is_drawn_as_on_the_api(proxy, trained):
    trained.settings = {**trained.settings, "holdout_share": 1.0}
    db.session.commit()
    body = proxy.recs(customer=C1).get_json()
    assert body["holdout"] is True and body["personalized"] is False
    assert {i["source"] for i in body["items"]} == {"popular"}


def test_consent_is_asked_and_kept_as_on_the_api(proxy, trained):
    trained.settings = {**trained.settings, "consent_required": True}
    db.session.commit()
    assert proxy.recs(customer=C1).get_json()["personalized"] is False
    event = {"events": [{"type": "click", "product_id": "p4"}]}
    assert proxy.post("events", event, customer=C1).get_json() == {"stored": 0}
    assert proxy.post("consent", {"granted": True}, customer=C1).get_json() == {"granted": True}
    assert proxy.recs(customer=C1).get_json()["personalized"] is True
    answer = proxy.post("events", event, customer=C1)
    assert answer.status_code == 202 and answer.get_json() == {"stored": 1}
    assert answer.headers["Cache-Control"] == "private, no-store"
    assert db.session.query(Interaction.shopper_id).filter_by(
        shop_id=trained.id, kind="click").one() == (C1,)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_consent_through_the_proxy_is_json_only(proxy, trained, content_type):
    """Another site's form or beacon can reach the proxy through the storefront, signed by
    Shopify for whoever's storefront cookies went with it, and needs no preflight only
    with these types: it cannot answer for the shopper. The widgets send JSON."""
    trained.settings = {**trained.settings, "consent_required": True}
    db.session.commit()
    refused = proxy.client.post(f"{PROXY_URL}/consent?{proxied({}, customer=C1)}",
                                data='{"granted": true}', content_type=content_type)
    assert _refused(refused, 400)["message"].endswith("application/json.")
    assert proxy.recs(customer=C1).get_json()["personalized"] is False


def test_events_need_a_shopper_and_refuse_another_sites_page(proxy, trained):
    event = {"events": [{"type": "view", "product_id": "p1"}]}
    _refused(proxy.post("events", event), 422)
    browser = {"X-Shopkeeper-Shopper": anon_id()}
    assert proxy.post("events", event, headers=browser).status_code == 202
    _refused(proxy.post("events", event, headers={**browser, "Sec-Fetch-Site": "cross-site"}),
             403)
    _refused(proxy.post("events", {"events": []}, headers=browser), 422)


def test_config_is_served_and_nothing_is_html(proxy, trained):
    response = proxy.client.get(f"{PROXY_URL}/config?{proxied({})}")
    assert response.status_code == 200 and response.get_json()["shop_id"] == trained.id
    assert proxy.client.get(f"{PROXY_URL}/nothing?{proxied({})}").mimetype == "application/json"
    _refused(proxy.client.get(f"{PROXY_URL}/config"), 401)


def test_the_manifest_names_the_proxy_url_served(app):
    urls = load_manifest()["platforms"]["shopify"]["urls"]
    assert urls["app_proxy_url"] == PROXY_URL
    assert f"{PROXY_URL}/recommendations" in {r.rule for r in app.url_map.iter_rules()}
