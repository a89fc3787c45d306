"""A Shopify theme pointing the loader at its app proxy (``data-api="/apps/shopkeeper"``):
the widgets call the storefront's own origin, and "Shopify" (a route here, signing as
Shopify does) forwards the calls to ``PROXY_URL`` with the signed-in customer."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from plugin.api.shopify_proxy import PROXY_URL
from tests.widgets.helpers import READY, assert_clean, interactions

pytestmark = pytest.mark.browser

SECRET = "hush"
DOMAIN = "demo-shop.myshopify.com"
PREFIX = "/apps/shopkeeper"
CUSTOMER = "15100"  # the seeded sample's first customer


def _as_shopify_shop(shop, app) -> None:
    from plugin.api.access import forget_shops
    from plugin.extensions import db

    shop.platform, shop.domain = "shopify", DOMAIN
    db.session.commit()
    forget_shops()
    app.config["SHOPIFY_API_SECRET"] = SECRET


#: what Shopify is documented to forward: "Both the request method and request body are
#: forwarded" (form submissions and AJAX), the Cookie header and "other headers" stripped,
#: X-Forwarded-For/-Host added (shopify.dev/docs/apps/build/online-store/app-proxies/
#: authenticate-app-proxies). Its examples are GETs and POSTs; Content-Type goes with a
#: form's body (its multipart boundary is in it). Nothing else is relied on: no other
#: method, no X-Shopkeeper-* header, no Sec-Fetch-Site or Origin.
FORWARDED_METHODS = frozenset({"GET", "POST"})
FORWARDED_HEADERS = frozenset({"content-type"})


#: the storefront's customer session cookie of this imitation (Shopify's own is opaque)
SESSION_COOKIE = "storefront_customer"


def _sign_in(page, live, customer: str) -> None:
    """The shopper signs in to the storefront: a session cookie on its origin, from which
    "Shopify" tells ``logged_in_customer_id``, as the real one does from its own."""
    page.context.add_cookies([{"name": SESSION_COOKIE, "value": customer, "url": live.url}])


def _shopify_proxy(live, forwarded: list):
    """Shopify's side: the query plus ``shop``, ``logged_in_customer_id``, ``path_prefix``,
    ``timestamp`` and the ``signature`` over them all, sent on to the proxy URL with only
    what Shopify documents it forwards (a method it would not forward is a 405 here).

    The customer is the one the request's storefront session cookie names, not one taken
    on trust: a widget call sent without the page's cookies (``credentials: "omit"``)
    reaches the app as nobody's, as it does on a real storefront."""

    def handler(route):
        if route.request.method not in FORWARDED_METHODS:
            forwarded.append(route.request)
            route.fulfill(status=405, json={"refused": route.request.method})
            return
        cookies = dict(c.strip().split("=", 1) for c in
                       (route.request.header_value("cookie") or "").split(";") if "=" in c)
        signed_in = cookies.get(SESSION_COOKIE, "")
        url = urlsplit(route.request.url)
        pairs = [*parse_qsl(url.query, keep_blank_values=True), ("shop", DOMAIN),
                 ("logged_in_customer_id", signed_in), ("path_prefix", PREFIX),
                 ("timestamp", str(int(time.time())))]
        grouped: dict[str, list[str]] = {}
        for key, value in pairs:
            grouped.setdefault(key, []).append(value)
        message = "".join(f"{k}={','.join(v)}" for k, v in sorted(grouped.items()))
        signature = hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
        target = (f"{live.url}{PROXY_URL}{url.path.removeprefix(PREFIX)}?"
                  f"{urlencode([*pairs, ('signature', signature)])}")
        forwarded.append(route.request)
        headers = {k: v for k, v in route.request.headers.items()
                   if k.lower() in FORWARDED_HEADERS}
        headers |= {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Host": DOMAIN}
        route.fulfill(response=route.fetch(url=target, headers=headers))

    return handler


def _loader_through_the_proxy(route):
    response = route.fetch()
    tag = '<script async src="/widgets/loader.js"'
    body = response.text().replace(tag, f'{tag} data-api="{PREFIX}"', 1)
    assert f'data-api="{PREFIX}"' in body
    route.fulfill(response=response, body=body)


def test_the_widgets_work_through_the_app_proxy_with_shopifys_customer(demo_shop, live, page,
                                                                        app):
    _as_shopify_shop(demo_shop, app)
    forwarded: list = []
    page.route(f"{live.url}/demo/", _loader_through_the_proxy)
    page.route(f"**{PREFIX}/**", _shopify_proxy(live, forwarded))
    _sign_in(page, live, CUSTOMER)
    direct = []
    page.on("request", lambda r: direct.append(r.url) if "/api/v1/" in r.url else None)

    with page.expect_response(lambda r: f"{PREFIX}/recommendations" in r.url) as answer:
        page.goto(live.url + "/demo/")
    page.wait_for_selector(READY)
    body = answer.value.json()
    assert body["personalized"] is True and body["items"]  # the customer Shopify named
    assert answer.value.headers["cache-control"] == "private, no-store"
    assert direct == []
    assert {urlsplit(r.url).netloc for r in forwarded} == {urlsplit(live.url).netloc}

    with page.expect_response(lambda r: f"{PREFIX}/events" in r.url) as stored:
        page.locator("shopkeeper-for-you .sk-add").first.click()
    assert stored.value.status == 202 and stored.value.json() == {"stored": 1}
    assert [r.product_external_id for r in interactions(
        demo_shop.id, shopper_id=CUSTOMER, kind="add_to_cart")] == [
        body["items"][0]["product_id"]]
    assert_clean(page)


def test_the_cart_offer_works_through_the_app_proxy_for_shopifys_customer(demo_shop, live,
                                                                         page, app):
    """Quote and accept through ``/apps/shopkeeper/offers/...``: the offer is quoted for the
    customer Shopify signs in, and the discount created on Shopify is held to them."""
    import math
    from datetime import timedelta

    import responses
    import sqlalchemy as sa

    from connectors.base import Credentials
    from connectors.shopify.client import API_VERSION
    from plugin.extensions import db
    from plugin.models import Interaction, Offer, Product
    from plugin.models.types import utcnow
    from plugin.shops import save_credentials
    from tests.offers.conftest import sells

    _as_shopify_shop(demo_shop, app)
    save_credentials(demo_shop, Credentials(DOMAIN, access_token="shpat_x", webhook_secret="x"))
    demo_shop.settings = {**demo_shop.settings, "offers_enabled": True,
                          "offers": {"stages": {"idle_cart": ["percent_cart"]}}}
    db.session.commit()
    sells(demo_shop, "GBP")
    product = db.session.scalars(sa.select(Product).where(
        Product.shop_id == demo_shop.id, Product.price > 1).order_by(Product.external_id)
    ).first()
    db.session.add(Interaction(shop_id=demo_shop.id, shopper_id=CUSTOMER,  # an idle cart
                               product_external_id=product.external_id, kind="add_to_cart",
                               occurred_at=utcnow() - timedelta(hours=2), context={}))
    db.session.commit()
    basket = [{"id": product.external_id, "title": product.title,
               "price": float(product.price), "qty": math.ceil(40 / float(product.price))}]

    forwarded: list = []
    page.route(f"{live.url}/demo/cart", _loader_through_the_proxy)
    page.route(f"**{PREFIX}/**", _shopify_proxy(live, forwarded))
    _sign_in(page, live, CUSTOMER)
    direct = []
    page.on("request", lambda r: direct.append(r.url) if "/api/v1/" in r.url else None)
    shopify = responses.RequestsMock(assert_all_requests_are_fired=False)
    shopify.post(f"https://{DOMAIN}/admin/api/{API_VERSION}/graphql.json", json={"data": {
        "discountCodeBasicCreate": {"codeDiscountNode": {
            "id": "gid://shopify/DiscountCodeNode/9"}, "userErrors": []}}})
    with shopify:
        page.add_init_script(f"localStorage.setItem('demo:cart', {json.dumps(json.dumps(basket))})")
        with page.expect_response(lambda r: f"{PREFIX}/offers/quote" in r.url) as quoted:
            page.goto(live.url + "/demo/cart")
        slot = '[data-shopkeeper="cart-offer"]'
        page.wait_for_selector(f'{slot}[data-shopkeeper-state="ready"]', state="attached")
        assert quoted.value.headers["cache-control"] == "private, no-store"
        with page.expect_response(lambda r: f"{PREFIX}/offers/accept" in r.url) as accepted:
            page.get_by_role("button", name=re.compile(r"^Apply ")).click()
        page.wait_for_selector(f'{slot}[data-shopkeeper-state="accepted"]', state="attached")
        page.wait_for_selector("#cart-discount:not([hidden])")
        sent = json.loads(shopify.calls[-1].request.body)["variables"]["input"]
    code = page.text_content("#cart-discount-code")
    assert accepted.value.status == 200 and accepted.value.json()["code"] == code
    assert sent["code"] == code
    assert sent["context"] == {"customers": {"add": [f"gid://shopify/Customer/{CUSTOMER}"]}}
    assert db.session.execute(sa.select(Offer.shopper_id, Offer.status)).all() == [
        (CUSTOMER, "accepted")]
    db.session.rollback()
    assert direct == [] and forwarded
    assert_clean(page)


def test_an_anonymous_shopper_is_known_through_the_app_proxy_without_any_header(
        demo_shop, live, page, app):
    """Nobody signed in: Shopify forwards no X-Shopkeeper-Shopper header, so the widgets
    name the browser's id in the query, and its events are stored under that id."""
    _as_shopify_shop(demo_shop, app)
    forwarded: list = []
    page.route(f"{live.url}/demo/", _loader_through_the_proxy)
    page.route(f"**{PREFIX}/**", _shopify_proxy(live, forwarded))

    page.goto(live.url + "/demo/")
    page.wait_for_selector(READY)
    shopper = page.evaluate("window.Shopkeeper.shopper")
    with page.expect_response(lambda r: f"{PREFIX}/events" in r.url) as stored:
        page.locator("shopkeeper-for-you .sk-add").first.click()
    assert stored.value.status == 202 and stored.value.json() == {"stored": 1}
    assert [r.kind for r in interactions(demo_shop.id, shopper_id=shopper,
                                         kind="add_to_cart")] == ["add_to_cart"]
    assert all(r.method in FORWARDED_METHODS for r in forwarded)
    assert all("x-shopkeeper-shopper" not in r.headers for r in forwarded)
    assert_clean(page)


def test_a_delete_through_the_app_proxy_is_a_post_naming_the_method(demo_shop, live, page,
                                                                      app):
    """A sub-profile DELETE (or PATCH) goes out as ``POST ...?_method=DELETE``: it reaches
    the view (404 for no such sub-profile), not the proxy's refusal of the method."""
    _as_shopify_shop(demo_shop, app)
    forwarded: list = []
    page.route(f"{live.url}/demo/", _loader_through_the_proxy)
    page.route(f"**{PREFIX}/**", _shopify_proxy(live, forwarded))
    _sign_in(page, live, CUSTOMER)
    page.goto(live.url + "/demo/")
    page.wait_for_selector(READY)

    with page.expect_response(lambda r: f"{PREFIX}/subprofiles/987654" in r.url) as gone:
        page.evaluate("window.Shopkeeper.api.request('DELETE', '/subprofiles/987654')")
    assert gone.value.status == 404
    assert gone.value.request.method == "POST"
    assert dict(parse_qsl(urlsplit(gone.value.url).query))["_method"] == "DELETE"
