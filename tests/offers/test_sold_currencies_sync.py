"""Every platform that can name the currencies a shop sells has them read at each sync.

The settings page's "Other currencies" table lists a row for each sold currency besides
the shop's own (``plugin.admin.settings.other_currencies``). Vendure's reading also decides
which offers are quoted; where amounts keep their currency (Shopify, Saleor) it changes no
offer. A platform error, a missing permission among them, keeps the old reading and the
sync goes on.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import responses

from connectors.base import Credentials
from connectors.http import make_session
from connectors.shopify.client import API_VERSION
from plugin import shops
from plugin.extensions import db
from plugin.ingestion.sync import run_sync
from plugin.models.types import utcnow
from plugin.offers import platform
from tests.admin.conftest import sign_in
from tests.offers.conftest import configure, make_idle, quote, sells

SHOPIFY_DOMAIN = "markets.myshopify.com"
SHOPIFY = f"https://{SHOPIFY_DOMAIN}/admin/api/{API_VERSION}/graphql.json"
SALEOR = "https://sold.saleor.example/graphql/"

#: ``shop { currencyCode enabledPresentmentCurrencies }`` of a shop selling in pounds with
#: Markets presenting euros and dollars
PRESENTS_EUR_USD = {"data": {"shop": {"currencyCode": "GBP",
                                      "enabledPresentmentCurrencies": ["GBP", "EUR", "USD"]}}}
ACCESS_DENIED = {"data": None, "errors": [{
    "message": "Access denied for shop field.",
    "extensions": {"code": "ACCESS_DENIED"}}]}
NO_CUSTOMERS = {"data": {"customers": {"pageInfo": {"hasNextPage": False, "endCursor": None},
                                       "nodes": []}}}


def _shopify_shop():
    shop = shops.create_shop("shopify", SHOPIFY_DOMAIN, Credentials(
        SHOPIFY_DOMAIN, access_token="shpat_test",
        extra={"currency": "GBP", "timezone": "Europe/London"}))
    configure(shop)  # a catalogue in pounds: the shop's own currency
    make_idle(shop.id)
    return shop


def _saleor_shop():
    domain = "sold.saleor.example"
    shop = shops.create_shop("saleor", domain, Credentials(
        domain, access_token="app-token", api_url=SALEOR,
        extra={"channel": "channel-pln", "channel_id": "Q2hhbm5lbDoy"}))
    configure(shop)
    return shop


def _sync_shopify(shop_id: str, currencies: object) -> list[str]:
    """A customers sync where Shopify answers the currencies query with ``currencies``;
    returns the operations the sync sent."""
    def shopify(request):
        query = json.loads(request.body)["query"]
        answer = currencies if "enabledPresentmentCurrencies" in query else NO_CUSTOMERS
        return 200, {}, json.dumps(answer)

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, SHOPIFY, callback=shopify)
        result = run_sync(shop_id, "customers", session=make_session(sleep=lambda s: None))
        sent = [json.loads(call.request.body)["query"] for call in rsps.calls]
    assert result.finished, result
    db.session.expire_all()
    return sent


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr><th scope="row">([A-Z]{3})', html)


def test_a_shopify_sync_reads_the_presentment_currencies_and_the_page_names_them(app,
                                                                                client):
    shop = _shopify_shop()
    sent = _sync_shopify(shop.id, PRESENTS_EUR_USD)
    assert any("enabledPresentmentCurrencies" in q for q in sent)
    shop = shops.get_shop(shop.id)
    assert shop.settings[platform.KEY]["sold"] == ["EUR", "GBP", "USD"]
    sign_in(app, client, shop)
    html = client.get("/admin/settings").get_data(as_text=True)
    # Shopify converts the shop's amounts at checkout, so the figures above apply to EUR
    # and USD carts too: a row of their own would take figures that are never used.
    assert _rows(html) == []
    assert re.search(r'id="converted-currencies-note">Carts in EUR, USD get offers under '
                     r'the figures above', html)
    assert 'id="offer-amounts-note"' not in html


def test_where_amounts_keep_their_currency_the_reading_changes_no_offer(app, client):
    """Shopify takes an offer's amounts in the shop's currency whatever the cart's: a shop
    read selling three currencies is quoted as before, and asked nothing at quote time."""
    shop = _shopify_shop()
    sells(shop, "EUR", "GBP", "USD")
    assert platform.amount_currencies(shop) is None
    assert platform.amounts_exact(shop, "EUR") is True
    assert platform.note(shop) is None
    with responses.RequestsMock():  # any request to a platform would fail the quote
        body = quote(client, shop).get_json()
    assert body["offer"] is not None and body["offer"]["currency"] == "GBP", body


@pytest.mark.parametrize("answer", [
    ACCESS_DENIED,
    {"data": {"shop": None}},  # a proxy's answer, more likely than Shopify's
    {"data": {"shop": {"currencyCode": "GBP", "enabledPresentmentCurrencies": None}}},
])
def test_a_refused_or_garbled_answer_keeps_the_old_reading_and_the_sync_goes_on(
        app, answer):
    shop = _shopify_shop()
    sells(shop, "GBP", "EUR")
    before = shop.settings[platform.KEY]
    # old enough to be read again
    shop.settings = {**shop.settings, platform.KEY: {
        **before, "read_at": (utcnow() - platform.MAX_AGE - timedelta(minutes=1)).isoformat()}}
    db.session.commit()
    stale = shop.settings[platform.KEY]
    sent = _sync_shopify(shop.id, answer)  # finished: the customers page was read
    assert any("enabledPresentmentCurrencies" in q for q in sent)
    assert any("customers" in q for q in sent)
    kept = dict(shops.get_shop(shop.id).settings[platform.KEY])
    assert kept.pop("tried_at") and kept == stale
    # the failed attempt is remembered: the next sync (30 min on) does not ask again
    sent = _sync_shopify(shop.id, answer)
    assert any("customers" in q for q in sent)
    assert not any("enabledPresentmentCurrencies" in q for q in sent)


def test_a_shop_never_read_that_shopify_refuses_stays_unread(app):
    shop = _shopify_shop()
    assert any("enabledPresentmentCurrencies" in q for q in _sync_shopify(shop.id,
                                                                           ACCESS_DENIED))
    assert set(shops.get_shop(shop.id).settings[platform.KEY]) == {"tried_at"}
    assert platform.sold(shops.get_shop(shop.id)) == []
    assert not any("enabledPresentmentCurrencies" in q for q in _sync_shopify(shop.id,
                                                                               ACCESS_DENIED))


@responses.activate
def test_a_saleor_refresh_reads_the_shops_channel(app):
    shop = _saleor_shop()
    responses.post(SALEOR, json={"data": {"channels": [
        {"id": "Q2hhbm5lbDox", "slug": "default-channel", "name": "Default channel",
         "currencyCode": "USD", "isActive": True},
        {"id": "Q2hhbm5lbDoy", "slug": "channel-pln", "name": "Channel-PLN",
         "currencyCode": "PLN", "isActive": True}]}})
    assert platform.refresh(shop, shops.connector_for(shop,
                                                      session=make_session(sleep=lambda s: 0)))
    db.session.expire_all()
    shop = shops.get_shop(shop.id)
    assert shop.settings[platform.KEY]["sold"] == ["PLN"]
    assert platform.amount_currencies(shop) is None


@responses.activate
def test_a_saleor_refusal_keeps_the_old_reading(app):
    shop = _saleor_shop()
    sells(shop, "PLN")
    stored = shop.settings[platform.KEY]
    responses.post(SALEOR, json={"data": {"channels": None}, "errors": [{
        "message": "You need one of the following permissions: AUTHENTICATED_APP, "
                   "AUTHENTICATED_STAFF_USER",
        "extensions": {"exception": {"code": "PermissionDenied"}}}]})
    later = utcnow() + platform.MAX_AGE + timedelta(minutes=1)
    assert not platform.refresh(shop, shops.connector_for(
        shop, session=make_session(sleep=lambda s: 0)), now=later)
    assert len(responses.calls) == 1
    db.session.expire_all()
    kept = dict(shops.get_shop(shop.id).settings[platform.KEY])
    assert kept.pop("tried_at") == later.isoformat() and kept == stored
