"""Accepting an offer calls each platform's discount API with a single-use, expiring code.

The platform HTTP edge is mocked with ``responses``; the payload shapes are the connectors'
own (Shopify ``discountCodeBasicCreate``, Saleor ``voucherCreate`` + channel listing,
Vendure ``createPromotion``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import responses

from connectors.base import Credentials
from connectors.shopify.client import API_VERSION
from plugin.extensions import db
from plugin.models import Offer
from plugin.offers import service
from plugin.shops import save_credentials
from tests.factories import make_shop
from tests.offers.conftest import SHOPPER, accept, cart_body, configure, make_idle, quote, sells

VENDURE_FIXTURES = Path(__file__).parents[1] / "fixtures" / "vendure"


def _shop(platform: str, domain: str, credentials: Credentials):
    shop = make_shop(platform, domain)
    save_credentials(shop, credentials)
    configure(shop)
    sells(shop, "GBP")  # the carts' currency alone: Vendure's amounts are exact
    make_idle(shop.id)
    return shop


def _shopify_shop_creating_discounts():
    """A Shopify shop whose ``discountCodeBasicCreate`` answers with discount node 9."""
    domain = "offers.myshopify.com"
    shop = _shop("shopify", domain, Credentials(domain, access_token="shpat_x",
                                                webhook_secret="shpss_x"))
    url = f"https://{domain}/admin/api/{API_VERSION}/graphql.json"
    responses.post(url, json={"data": {"discountCodeBasicCreate": {
        "codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/9"}, "userErrors": []}}})
    return shop


def _accept(client, shop) -> dict:
    offer = quote(client, shop).get_json()["offer"]
    assert offer is not None
    res = accept(client, shop, offer["token"])
    assert res.status_code == 200, res.get_json()
    return {"offer": offer, **res.get_json()}


@responses.activate
def test_shopify_gets_basic_code_with_usage_limit_and_expiry(client, app):
    shop = _shopify_shop_creating_discounts()
    out = _accept(client, shop)
    sent = json.loads(responses.calls[-1].request.body)
    data = sent["variables"]["input"]
    assert "discountCodeBasicCreate" in sent["query"]
    assert data["code"] == out["code"] and data["usageLimit"] == 1
    assert data["customerGets"]["value"] == {"discountAmount": {
        "amount": out["offer"]["amount"], "appliesOnEachItem": False}}
    assert data["minimumRequirement"] == {"subtotal": {"greaterThanOrEqualToSubtotal": "100.00"}}
    assert datetime.fromisoformat(data["endsAt"]) == datetime.fromisoformat(out["expires_at"])
    assert out["discount_token"] is None
    row = db.session.query(Offer).filter_by(public_id=out["offer_id"]).one()
    assert row.platform_ref == "gid://shopify/DiscountCodeNode/9" and row.status == "accepted"


@responses.activate
def test_shopify_code_starts_a_minute_early_and_ends_when_the_offer_does(client, app):
    """``startsAt`` was our ``now``: a Shopify clock a few seconds behind ours refused the
    code just handed out as not yet active. It starts a minute early; the end, use limit
    and customer are what the offer says, whatever the start."""
    shop = _shopify_shop_creating_discounts()
    before = datetime.now(UTC)
    out = _accept(client, shop)
    after = datetime.now(UTC)
    data = json.loads(responses.calls[-1].request.body)["variables"]["input"]
    starts = datetime.fromisoformat(data["startsAt"])
    assert before - timedelta(seconds=61) <= starts <= after - timedelta(seconds=59)
    assert datetime.fromisoformat(data["endsAt"]) == datetime.fromisoformat(out["expires_at"])
    assert datetime.fromisoformat(out["expires_at"]) > after + service.CHECKOUT_GRACE
    assert data["usageLimit"] == 1 and data["appliesOncePerCustomer"] is True


@responses.activate
def test_saleor_gets_voucher_then_channel_value(client, app):
    api = "https://offers.saleor.cloud/graphql/"
    shop = _shop("saleor", "offers.saleor.cloud", Credentials(
        "offers.saleor.cloud", access_token="tok", api_url=api,
        extra={"channel": "default-channel", "channel_id": "Q2hhbm5lbDox"}))
    responses.post(api, json={"data": {"voucherCreate": {"voucher": {"id": "Vm91Y2hlcjox"},
                                                         "errors": []}}})
    responses.post(api, json={"data": {"voucherChannelListingUpdate": {
        "voucher": {"id": "Vm91Y2hlcjox"}, "errors": []}}})
    out = _accept(client, shop)
    created, listed = (json.loads(c.request.body)["variables"] for c in responses.calls)
    assert created["input"]["addCodes"] == [out["code"]]
    assert created["input"]["usageLimit"] == 1 and created["input"]["type"] == "ENTIRE_ORDER"
    assert created["input"]["discountValueType"] == "FIXED"
    assert listed["input"]["addChannels"] == [{"channelId": "Q2hhbm5lbDox",
                                               "discountValue": out["offer"]["amount"],
                                               "minAmountSpent": "100.00"}]


@responses.activate
def test_vendure_gets_coupon_promotion(client, app):
    api = "https://offers.vendure.example/admin-api"
    shop = _shop("vendure", "offers.vendure.example", Credentials(
        "offers.vendure.example", access_token="tok", webhook_secret="whsec_v", api_url=api))

    def fixture(name: str) -> dict:
        return json.loads((VENDURE_FIXTURES / name).read_text())

    def op(name: str):  # match the GraphQL operation, whatever order the connector uses
        pattern = re.compile(rf"\b(query|mutation)\s+{name}\b")
        return lambda req: (bool(pattern.search(json.loads(req.body)["query"])), name)

    tax = fixture("admin_tax_setup.json")
    tax["data"]["activeChannel"] |= {"defaultCurrencyCode": "GBP",  # the carts' currency
                                     "availableCurrencyCodes": ["GBP"]}
    responses.post(api, json=fixture("admin_promotions_by_code_none.json"),
                   match=[op("PromotionsByCode")])
    responses.post(api, json=tax, match=[op("TaxSetup")])
    responses.post(api, json=fixture("admin_create_promotion.json"), match=[op("Promotion")])
    out = _accept(client, shop)
    sent = next(json.loads(c.request.body)["variables"]["input"] for c in responses.calls
                if "createPromotion" in json.loads(c.request.body)["query"])
    assert sent["couponCode"] == out["code"] and sent["usageLimit"] == 1
    # Vendure takes fixed discounts off the net total when prices exclude tax (20 % here).
    minor = str((Decimal(out["offer"]["amount"]) * 100 / Decimal("1.2")).quantize(Decimal(1)))
    assert sent["actions"] == [{"code": "order_fixed_discount",
                                "arguments": [{"name": "discount", "value": minor}]}]
    assert {"name": "amount", "value": "10000"} in sent["conditions"][0]["arguments"]


def test_item_offers_keep_product_scope_except_on_vendure(app, shop):
    row = Offer(product_ids=["p1"], value=Decimal("5"), discount_kind="fixed",
                currency="GBP", min_subtotal=Decimal("40"), expires_at=service.utcnow())
    assert service.discount_spec(row, "shopify", customer_id="7").product_ids == ("p1",)
    assert service.discount_spec(row, "vendure", customer_id=None).product_ids == ()
    bundle = Offer(product_ids=["p1", "p2"], value=Decimal("5"), discount_kind="fixed",
                   currency="GBP", min_subtotal=Decimal("40"), expires_at=service.utcnow())
    spec = service.discount_spec(bundle, "saleor", customer_id=None)
    assert spec.product_ids == () and spec.min_subtotal == Decimal("40")
    assert spec.usage_limit == 1


def test_each_offer_has_its_own_code_the_same_on_every_attempt(app, shop):
    """A retried create must ask for the same code, so the platform (or our lookup by code)
    hands back the discount an unanswered attempt made instead of a second one."""
    def offer(public_id: str) -> Offer:
        return Offer(shop_id=shop.id, public_id=public_id, product_ids=[], value=Decimal("5"),
                     discount_kind="fixed", currency="GBP", expires_at=service.utcnow())

    first = service.discount_spec(offer("of_one"), "shopify", customer_id=None).code
    assert first == service.discount_spec(offer("of_one"), "shopify", customer_id="7").code
    assert first != service.discount_spec(offer("of_two"), "shopify", customer_id=None).code
    assert re.fullmatch(r"SK-[0-9A-F]{10}", first)


def test_generic_discount_token_is_bound_to_the_customer(client, offer_shop, shop_secret):
    from connectors.generic import verify_discount
    from plugin.api.identity import mint_customer_token

    make_idle(offer_shop.id, "cust-42")
    token = mint_customer_token(offer_shop.id, shop_secret, "cust-42")
    hdrs = {"X-Shopkeeper-Customer-Token": token, "X-Shopkeeper-Shopper": SHOPPER}
    url = f"/api/v1/offers/%s?key={offer_shop.widget_key}"
    offer = client.post(url % "quote", json={"cart": cart_body()}, headers=hdrs).get_json()
    res = client.post(url % "accept", json={"token": offer["offer"]["token"],
                                            "cart": cart_body()}, headers=hdrs)
    spec = verify_discount(shop_secret, res.get_json()["discount_token"])
    assert spec.customer_id == "cust-42" and spec.usage_limit == 1


def _excluded_cart() -> dict:
    return {"currency": "GBP", "lines": [
        {"product_id": "p1", "quantity": 1, "price": "100.00"},
        {"product_id": "p2", "quantity": 1, "price": "50.00"},
        {"product_id": "p3", "quantity": 1, "price": "50.00"}]}


def test_offer_on_a_cart_with_an_excluded_item_keeps_its_product_scope(
        client, offer_shop, shop_secret):
    """An order-wide code with a minimum subtotal lets the shopper swap the eligible items
    for excluded ones (p1 here) and still get the discount: the scope must reach the code."""
    from connectors.generic import verify_discount

    configure(offer_shop, excluded_products=["p1"])
    make_idle(offer_shop.id)
    offer = quote(client, offer_shop, _excluded_cart()).get_json()["offer"]
    assert offer is not None and offer["product_ids"] == ["p2", "p3"]
    res = accept(client, offer_shop, offer["token"], _excluded_cart())
    assert res.status_code == 200, res.get_json()
    spec = verify_discount(shop_secret, res.get_json()["discount_token"])
    assert spec.product_ids == ("p2", "p3") and spec.value == Decimal(offer["amount"])


def test_platform_without_product_scope_offers_nothing_order_wide_over_excluded_items(
        client, app):
    """Vendure (no product-scoped fixed amounts) and Saleor (one product at most) would turn
    such an offer into an order-wide code, which the exclusion forbids."""
    shop = _shop("vendure", "excl.vendure.example", Credentials(
        "excl.vendure.example", access_token="tok", webhook_secret="whsec_v",
        api_url="https://excl.vendure.example/admin-api"))
    configure(shop, excluded_products=["p1"])
    body = quote(client, shop, _excluded_cart()).get_json()
    assert body["offer"] is None and body["reason_code"] == "no_allowed_candidate", body


def test_free_shipping_spec_carries_its_budgeted_cost_as_the_cap(app, shop):
    row = Offer(product_ids=[], value=Decimal(0), amount=Decimal("4.95"),
                discount_kind="free_shipping", currency="GBP", expires_at=service.utcnow())
    spec = service.discount_spec(row, "shopify", customer_id=None)
    assert spec.kind == "free_shipping" and spec.value == Decimal("4.95")


@responses.activate
def test_unexpected_platform_answer_leaves_no_stuck_offer_or_reservation(client, app):
    """A 200 answer without the expected data (a proxy's ``{}``) broke the connector with a
    KeyError: a 500, the offer stuck in "accepting" and its budget reserved for good. The
    reservation now stays only until the reconcile job settles the creation, which gives
    up after its horizon if the platform keeps answering oddly."""
    import sqlalchemy as sa

    from plugin.models import OfferLedgerEntry
    from plugin.offers import reconcile

    api = "https://odd.vendure.example/admin-api"
    shop = _shop("vendure", "odd.vendure.example", Credentials(
        "odd.vendure.example", access_token="tok", webhook_secret="whsec_v", api_url=api))
    offer = quote(client, shop).get_json()["offer"]
    assert offer is not None
    responses.post(api, json={"data": {}})
    res = accept(client, shop, offer["token"])
    assert res.status_code == 502, res.get_json()
    row = db.session.query(Offer).filter_by(public_id=offer["id"]).one()
    db.session.refresh(row)
    assert row.status == "offered"

    def reservations() -> int:
        return db.session.scalar(sa.select(sa.func.count(OfferLedgerEntry.id)).where(
            OfferLedgerEntry.shop_id == shop.id))

    assert reservations() == 1  # the discount may exist
    later = row.expires_at + reconcile.CLAIM_MARGIN
    assert reconcile.settle_creations(shop, now=later) == 0 and reservations() == 1
    horizon = row.creating_since + reconcile.GIVE_UP_AFTER
    assert reconcile.settle_creations(shop, now=horizon) == 1 and reservations() == 0


@pytest.mark.parametrize("answer", [
    {"status": 503},
    {"status": 429, "headers": {"Retry-After": "30"}},
    {"body": requests.ConnectionError("connection reset by peer")},
], ids=["5xx", "429", "reset"])
@responses.activate
def test_an_accept_waits_seconds_on_a_failing_platform_not_minutes(client, app, monkeypatch,
                                                                   answer):
    """The shopper waits on the accept, holding one of the web server's few threads: it
    used the sync's session (six tries, Retry-After up to a minute, 30 s reads), so a
    platform outage held each accept for minutes and could take every web thread."""
    from connectors.http import RetrySession

    domain = "outage.myshopify.com"
    shop = _shop("shopify", domain, Credentials(domain, access_token="shpat_x",
                                                webhook_secret="shpss_x"))
    responses.post(f"https://{domain}/admin/api/{API_VERSION}/graphql.json", **answer)
    waits: list[float] = []
    monkeypatch.setattr(RetrySession, "_wait", lambda self, delay, kwargs: waits.append(delay))
    offer = quote(client, shop).get_json()["offer"]
    res = accept(client, shop, offer["token"])
    assert res.status_code == 502 and res.get_json()["code"] == 502
    assert len(responses.calls) <= 2 and sum(waits) <= 2
    timeouts = {call.request.req_kwargs["timeout"] for call in responses.calls}
    assert all(connect + read <= 15 for connect, read in timeouts), timeouts


def _saleor_shop():
    api = "https://offers.saleor.cloud/graphql/"
    return api, _shop("saleor", "offers.saleor.cloud", Credentials(
        "offers.saleor.cloud", access_token="tok", api_url=api,
        extra={"channel": "default-channel", "channel_id": "Q2hhbm5lbDox"}))


@pytest.mark.parametrize("platform, answer", [
    ("saleor", {"voucherCreate": "created"}),
    ("saleor", {"voucherCreate": {"voucher": "Vm91Y2hlcjox", "errors": []}}),
    ("shopify", {"discountCodeBasicCreate": "created"}),
])
@responses.activate
def test_a_garbled_discount_answer_leaves_the_offer_open_on_every_platform(
        client, app, platform, answer):
    """A 200 whose create answer has no readable shape is far likelier a proxy's or a
    gateway's than the platform's refusal: Shopify's left the offer open for a retry
    (502), Saleor's withdrew it for good as if Saleor had refused the voucher."""
    if platform == "saleor":
        api, shop = _saleor_shop()
    else:
        domain = "garbled.myshopify.com"
        api = f"https://{domain}/admin/api/{API_VERSION}/graphql.json"
        shop = _shop("shopify", domain, Credentials(domain, access_token="shpat_x",
                                                    webhook_secret="shpss_x"))
    offer = quote(client, shop).get_json()["offer"]
    assert offer is not None
    responses.post(api, json={"data": answer})
    res = accept(client, shop, offer["token"])
    assert res.status_code == 502, res.get_json()
    row = db.session.query(Offer).filter_by(public_id=offer["id"]).one()
    db.session.refresh(row)
    assert row.status == "offered"


@pytest.mark.parametrize("platform", ["saleor", "shopify"])
@responses.activate
def test_a_code_taken_by_a_discount_the_platform_cannot_find_leaves_the_offer_open(
        client, app, platform):
    """The code exists (an earlier attempt's lost answer made it) but the lookup finds no
    discount with it, e.g. a search that does not show it yet. Shopify left the offer open
    for a retry (502); Saleor withdrew it for good as if it had refused the voucher."""
    if platform == "saleor":
        api, shop = _saleor_shop()
        taken = {"voucherCreate": {"voucher": None, "errors": [
            {"field": "addCodes", "code": "ALREADY_EXISTS", "message": "Code exists."}]}}
        not_found = {"vouchers": {"edges": []}}
    else:
        domain = "taken.myshopify.com"
        api = f"https://{domain}/admin/api/{API_VERSION}/graphql.json"
        shop = _shop("shopify", domain, Credentials(domain, access_token="shpat_x",
                                                    webhook_secret="shpss_x"))
        taken = {"discountCodeBasicCreate": {"codeDiscountNode": None, "userErrors": [
            {"field": ["basicCodeDiscount", "code"], "code": "TAKEN",
             "message": "Code must be unique. Please try a different code."}]}}
        not_found = {"codeDiscountNodeByCode": None}
    offer = quote(client, shop).get_json()["offer"]
    assert offer is not None
    responses.post(api, json={"data": taken})
    responses.post(api, json={"data": not_found})
    res = accept(client, shop, offer["token"])
    assert res.status_code == 502, res.get_json()
    assert len(responses.calls) == 2  # asked to create, then looked the code up
    row = db.session.query(Offer).filter_by(public_id=offer["id"]).one()
    db.session.refresh(row)
    assert row.status == "offered"
