"""A shop is quoted only offers its platform can honour in the cart's currency.

Vendure's ``order_fixed_discount`` and ``minimum_order_amount`` hold bare minor units taken
in whatever currency the order is in, so a channel selling several currencies cannot honour
any offer (each is a fixed amount with a minimum subtotal) unless the Shopkeeper plugin's
order-currency condition limits each promotion to the offer's currency. The sync reads what
the channel sells and whether it has that condition (``plugin.offers.platform``); quotes use
that reading and ask the platform nothing; the connector's own check at accept stays the
backstop for a stale reading.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import responses
import sqlalchemy as sa

from connectors.base import Credentials
from connectors.vendure.discounts import ORDER_CURRENCY
from plugin.extensions import db
from plugin.ingestion.sync import run_sync
from plugin.models import Offer, OfferLedgerEntry, Product
from plugin.models.types import utcnow
from plugin.offers import platform
from plugin.shops import connector_for, save_credentials
from tests.admin.conftest import sign_in
from tests.factories import make_shop
from tests.offers.conftest import accept, cart_body, configure, make_idle, quote, sells

FIXTURES = Path(__file__).parents[1] / "fixtures" / "vendure"


def _vendure(domain: str = "cur.vendure.example"):
    shop = make_shop("vendure", domain)
    save_credentials(shop, Credentials(domain, access_token="tok", webhook_secret="whsec_v",
                                       api_url=f"https://{domain}/admin-api"))
    configure(shop)
    make_idle(shop.id)
    return shop


def _api(shop) -> str:
    return f"https://{shop.domain}/admin-api"


def _op(name: str):
    """Match one GraphQL operation by name."""
    pattern = re.compile(rf"\b(query|mutation)\s+{name}\b")
    return lambda req: (bool(pattern.search(json.loads(req.body)["query"])), name)


def _channel_sells(shop, currencies: list[str], *, pinned: bool = False) -> None:
    """The channel's currencies, and its promotion conditions (the plugin's currency
    condition among them when ``pinned``)."""
    responses.post(_api(shop), match=[_op("ChannelCurrencies")], json={"data": {
        "activeChannel": {"defaultCurrencyCode": currencies[0],
                          "availableCurrencyCodes": currencies}}})
    codes = ["minimum_order_amount", "customer_group"] + ([ORDER_CURRENCY] if pinned else [])
    responses.post(_api(shop), match=[_op("PromotionConditions")], json={"data": {
        "promotionConditions": [{"code": c} for c in codes]}})


@pytest.mark.parametrize("sold, pinned, quoted", [
    (["GBP"], False, True),  # the carts' currency alone: amounts are exact
    (["GBP", "EUR"], False, False),  # an order can switch to euros with the coupon on
    (["GBP", "EUR"], True, True),  # the plugin holds the coupon to orders in pounds
    (["EUR"], False, False),  # one currency, not the cart's
    (["EUR", "USD"], True, False),  # several, none the cart's
])
@responses.activate
def test_vendure_shop_is_quoted_only_in_a_currency_its_amounts_are_exact_in(
        client, app, sold, pinned, quoted):
    shop = _vendure()
    _channel_sells(shop, sold, pinned=pinned)
    assert platform.refresh(shop, connector_for(shop))
    db.session.commit()
    asked = len(responses.calls)
    body = quote(client, shop).get_json()
    assert len(responses.calls) == asked  # the quote asks the platform nothing
    assert (body["offer"] is not None) is quoted, body
    if not quoted:
        assert body["reason_code"] == "no_allowed_candidate"
    else:
        assert body["offer"]["currency"] == "GBP"


@responses.activate
def test_each_cart_is_quoted_in_its_own_currency_where_the_plugin_pins_it(client, app):
    """A pounds-and-euros channel: a euro cart is quoted in euros, against a catalogue that
    prices in euros (a catalogue in pounds cannot cap a euro cart: ``pricing``)."""
    shop = _vendure()
    sells(shop, "EUR", "GBP", pinned=True)
    body = quote(client, shop, cart_body(currency="EUR")).get_json()
    assert body["offer"] is None and body["reason_code"] == "currency_mismatch", body
    db.session.execute(sa.update(Product).where(Product.shop_id == shop.id)
                       .values(currency="EUR"))
    db.session.commit()
    body = quote(client, shop, cart_body(currency="EUR")).get_json()
    assert body["offer"] is not None and body["offer"]["currency"] == "EUR", body


@responses.activate
def test_a_pinned_offer_becomes_a_promotion_for_orders_in_its_currency(client, app):
    shop = _vendure()
    sells(shop, "EUR", "GBP", pinned=True)
    offer = quote(client, shop).get_json()["offer"]
    assert offer is not None
    tax = json.loads((FIXTURES / "admin_tax_setup.json").read_text())
    tax["data"]["activeChannel"] |= {"defaultCurrencyCode": "GBP",
                                     "availableCurrencyCodes": ["GBP", "EUR"]}
    tax["data"]["promotionConditions"] = [{"code": "minimum_order_amount"},
                                          {"code": ORDER_CURRENCY}]
    responses.post(_api(shop), json=json.loads(
        (FIXTURES / "admin_promotions_by_code_none.json").read_text()),
        match=[_op("PromotionsByCode")])
    responses.post(_api(shop), json=tax, match=[_op("TaxSetup")])
    responses.post(_api(shop), json=json.loads(
        (FIXTURES / "admin_create_promotion.json").read_text()), match=[_op("Promotion")])
    res = accept(client, shop, offer["token"])
    assert res.status_code == 200, res.get_json()
    sent = next(json.loads(c.request.body)["variables"]["input"] for c in responses.calls
                if "createPromotion" in json.loads(c.request.body)["query"])
    assert {"code": ORDER_CURRENCY,
            "arguments": [{"name": "currencyCode", "value": "GBP"}]} in sent["conditions"]


@responses.activate
def test_vendure_shop_never_read_is_quoted_nothing_and_asked_nothing(client, app):
    shop = _vendure()
    body = quote(client, shop).get_json()
    assert body["offer"] is None and body["reason_code"] == "no_allowed_candidate", body
    assert len(responses.calls) == 0


def test_other_platforms_need_no_reading(client, app):
    """Shopify, Saleor and generic stores keep an amount in the offer's currency."""
    shop = make_shop("generic")
    configure(shop)
    make_idle(shop.id)
    assert platform.amount_currencies(shop) is None
    assert quote(client, shop).get_json()["offer"] is not None


@responses.activate
def test_a_sync_reads_the_currencies_again_only_once_the_reading_is_old(client, app):
    shop = _vendure()
    _channel_sells(shop, ["GBP"])
    products = json.loads((FIXTURES / "admin_products_page.json").read_text())
    responses.post(_api(shop), match=[_op("Products")], json=products)
    assert run_sync(shop.id, "products").finished
    db.session.refresh(shop)
    assert shop.settings[platform.KEY]["sold"] == ["GBP"]
    assert platform.amount_currencies(shop) == frozenset({"GBP"})
    read_at = shop.settings[platform.KEY]["read_at"]
    assert not platform.refresh(shop, connector_for(shop))  # fresh: not asked again
    assert shop.settings[platform.KEY]["read_at"] == read_at
    later = utcnow() + platform.MAX_AGE
    responses.replace("POST", _api(shop), match=[_op("ChannelCurrencies")], json={"data": {
        "activeChannel": {"defaultCurrencyCode": "GBP",
                          "availableCurrencyCodes": ["GBP", "EUR"]}}})
    assert platform.refresh(shop, connector_for(shop), now=later)
    assert platform.amount_currencies(shop) == frozenset()


@responses.activate
def test_an_unreadable_channel_keeps_the_last_reading(client, app):
    shop = _vendure()
    sells(shop, "GBP")
    forbidden = json.loads((FIXTURES / "admin_forbidden.json").read_text())
    responses.post(_api(shop), json=forbidden)  # an expired token: AuthFailed
    stale = utcnow() + platform.MAX_AGE + timedelta(minutes=1)
    assert not platform.refresh(shop, connector_for(shop), now=stale)
    assert len(responses.calls) >= 1
    assert platform.amount_currencies(shop) == frozenset({"GBP"})


@responses.activate
def test_a_failed_reading_is_asked_again_at_most_hourly_and_the_old_one_still_shown(
        client, app):
    """Nothing was stored for a failed attempt, so every sync (every 30 min) asked a
    failing platform again; the attempt is noted beside the old reading, which the
    settings page still shows and quotes still use."""
    shop = _vendure()
    sells(shop, "GBP", "EUR")
    read_at = shop.settings[platform.KEY]["read_at"]
    forbidden = json.loads((FIXTURES / "admin_forbidden.json").read_text())
    responses.post(_api(shop), json=forbidden)
    failed = utcnow() + platform.MAX_AGE
    assert not platform.refresh(shop, connector_for(shop), now=failed)
    db.session.commit()
    asked = len(responses.calls)
    assert asked >= 1
    for minutes in (30, 59):  # the next syncs within the hour ask nothing
        later = failed + timedelta(minutes=minutes)
        assert not platform.refresh(shop, connector_for(shop), now=later)
        assert len(responses.calls) == asked
    stored = shop.settings[platform.KEY]
    assert stored["read_at"] == read_at and stored["tried_at"] == failed.isoformat()
    assert platform.sold(shop) == ["EUR", "GBP"]
    sign_in(app, client, shop)
    html = client.get("/admin/settings").get_data(as_text=True)
    assert "this channel sells several currencies (EUR, GBP)" in html
    # an hour after the failure it is asked again, and a reading replaces the note
    responses.reset()  # Vendure answers again
    _channel_sells(shop, ["GBP"])
    again = failed + platform.MAX_AGE
    assert platform.refresh(shop, connector_for(shop), now=again)
    db.session.commit()
    assert shop.settings[platform.KEY] == {"sold": ["GBP"], "pinned": False,
                                           "read_at": again.isoformat()}


@responses.activate
def test_offer_quoted_before_a_second_currency_was_read_is_withdrawn_at_accept(client, app):
    shop = _vendure()
    sells(shop, "GBP")
    offer = quote(client, shop).get_json()["offer"]
    assert offer is not None
    sells(shop, "GBP", "EUR")
    res = accept(client, shop, offer["token"])
    assert res.status_code == 409, res.get_json()
    assert len(responses.calls) == 0  # nothing asked of Vendure, nothing reserved
    row = db.session.query(Offer).filter_by(public_id=offer["id"]).one()
    assert row.status == "superseded" and row.code is None


@responses.activate
def test_accept_still_refuses_when_the_reading_is_stale(client, app):
    """The channel added euros since the last sync: the connector's own check refuses the
    amount before it creates the customer group or the promotion, and the offer is
    withdrawn with its reservation (asked again, the platform would refuse again)."""
    shop = _vendure()
    sells(shop, "GBP")
    offer = quote(client, shop).get_json()["offer"]
    assert offer is not None
    tax = json.loads((FIXTURES / "admin_tax_setup.json").read_text())
    tax["data"]["activeChannel"] |= {"defaultCurrencyCode": "GBP",
                                     "availableCurrencyCodes": ["GBP", "EUR"]}
    responses.post(_api(shop), json=json.loads(
        (FIXTURES / "admin_promotions_by_code_none.json").read_text()),
        match=[_op("PromotionsByCode")])
    responses.post(_api(shop), json=tax, match=[_op("TaxSetup")])
    res = accept(client, shop, offer["token"])
    assert res.status_code == 409, res.get_json()
    sent = [json.loads(c.request.body)["query"] for c in responses.calls]
    assert not any("createPromotion" in q or "createCustomerGroup" in q for q in sent)
    row = db.session.scalar(sa.select(Offer).where(Offer.public_id == offer["id"]))
    db.session.refresh(row)
    assert row.status == "superseded"
    assert db.session.scalar(sa.select(sa.func.count(OfferLedgerEntry.id))) == 0


@pytest.mark.parametrize("sold, pinned, shown", [
    (None, False, "Offers wait for the first sync"),
    (["EUR", "GBP"], False, "this channel sells several currencies (EUR, GBP)"),
    (["EUR", "GBP"], True, None),
    (["GBP"], False, None),
])
def test_settings_page_says_why_offers_are_held_back(app, client, sold, pinned, shown):
    shop = _vendure()
    if sold is not None:
        sells(shop, *sold, pinned=pinned)
    sign_in(app, client, shop)
    html = client.get("/admin/settings").get_data(as_text=True)
    if shown is None:
        assert 'id="offer-amounts-note"' not in html
    else:
        assert 'id="offer-amounts-note"' in html and shown in html
