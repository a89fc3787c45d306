"""Which currencies a Shopify or Saleor shop sells, as the platform names them now.

Shopify: ``shop { currencyCode enabledPresentmentCurrencies }`` (the shop's currency and
those its Markets present prices in; ``shop`` needs no access scope). Saleor: the shop's
channel's ``currencyCode`` from ``channels`` (any app token may list them; the other
channels are other storefronts, where no voucher of ours applies). An answer of no readable
shape is ``TransientError``, never "sells nothing", so the reading before it is kept.
"""

from __future__ import annotations

import json

import pytest
import responses

from connectors.base import Credentials
from connectors.errors import PermissionDenied, TransientError
from connectors.http import make_session
from connectors.saleor import SaleorConnector
from connectors.shopify import ShopifyConnector
from connectors.shopify.client import API_VERSION

SHOP = "jsmith.myshopify.com"
SHOPIFY = f"https://{SHOP}/admin/api/{API_VERSION}/graphql.json"
SALEOR = "https://demo.saleor.io/graphql/"


def _shopify() -> ShopifyConnector:
    return ShopifyConnector(Credentials(SHOP, access_token="shpat_t"),
                            session=make_session(sleep=lambda s: None))


def _saleor(**extra: str) -> SaleorConnector:
    creds = Credentials("demo.saleor.io", access_token="app-token", api_url=SALEOR,
                        extra=extra)
    return SaleorConnector(creds, session=make_session(sleep=lambda s: None))


def _shop(**fields) -> dict:
    """A ``shop`` answer as the Admin API documents it (both fields non-null)."""
    return {"data": {"shop": fields}}


@responses.activate
def test_shopify_sells_its_own_currency_and_its_presentment_currencies() -> None:
    # ``CurrencyCode`` holds "non-standard codes, digital currency codes" too: no figures
    # are kept under one of those, so it gets no row
    responses.post(SHOPIFY, json=_shop(currencyCode="GBP", enabledPresentmentCurrencies=[
        "GBP", "EUR", "usd", "USDC"]))
    assert _shopify().sold_currencies() == frozenset({"GBP", "EUR", "USD"})
    sent = json.loads(responses.calls[0].request.body)["query"]
    assert "enabledPresentmentCurrencies" in sent and "currencyCode" in sent


@responses.activate
def test_shopify_without_markets_sells_its_own_currency() -> None:
    responses.post(SHOPIFY, json=_shop(currencyCode="CAD", enabledPresentmentCurrencies=[]))
    assert _shopify().sold_currencies() == frozenset({"CAD"})


@pytest.mark.parametrize("answer", [
    {"data": {"shop": None}},
    {"data": {}},
    _shop(currencyCode="GBP"),  # no presentment currencies
    _shop(currencyCode="GBP", enabledPresentmentCurrencies="EUR"),
    _shop(currencyCode="GBP", enabledPresentmentCurrencies=["EUR", 7]),
    _shop(currencyCode=None, enabledPresentmentCurrencies=["EUR"]),
    _shop(currencyCode="pounds", enabledPresentmentCurrencies=["EUR"]),
    ["not", "an", "object"],
])
@responses.activate
def test_a_garbled_shopify_answer_is_transient_not_selling_nothing(answer) -> None:
    responses.post(SHOPIFY, json=answer)
    with pytest.raises(TransientError):
        _shopify().sold_currencies()


@responses.activate
def test_shopify_refusing_the_query_is_a_permission_refusal() -> None:
    responses.post(SHOPIFY, json={"data": None, "errors": [{
        "message": "Access denied for enabledPresentmentCurrencies field.",
        "extensions": {"code": "ACCESS_DENIED"}}]})
    with pytest.raises(PermissionDenied):
        _shopify().sold_currencies()


CHANNELS = {"data": {"channels": [
    {"id": "Q2hhbm5lbDox", "slug": "default-channel", "name": "Default channel",
     "currencyCode": "USD", "isActive": True},
    {"id": "Q2hhbm5lbDoy", "slug": "channel-pln", "name": "Channel-PLN",
     "currencyCode": "PLN", "isActive": True},
    {"id": "Q2hhbm5lbDoz", "slug": "wholesale-eur", "name": "Wholesale",
     "currencyCode": "EUR", "isActive": False},
]}}


@pytest.mark.parametrize("extra, sold", [
    ({"channel": "channel-pln", "channel_id": "Q2hhbm5lbDoy"}, {"PLN"}),
    ({"channel_id": "Q2hhbm5lbDoy"}, {"PLN"}),
    ({"channel": "channel-pln"}, {"PLN"}),  # stored with its slug only
    # the merchant's channel even while deactivated: it is the one the shop mirrors
    ({"channel": "wholesale-eur", "channel_id": "Q2hhbm5lbDoz"}, {"EUR"}),
    ({}, {"USD"}),  # none chosen: the channel the connector defaults to
    ({"channel": "gone", "channel_id": "Q2hhbm5lbDo5"}, set()),  # deleted since
])
@responses.activate
def test_saleor_sells_the_currency_of_the_shops_channel_alone(extra, sold) -> None:
    responses.post(SALEOR, json=CHANNELS)
    assert _saleor(**extra).sold_currencies() == frozenset(sold)
    sent = json.loads(responses.calls[0].request.body)["query"]
    assert "channels" in sent and "currencyCode" in sent


@pytest.mark.parametrize("extra, learned", [
    ({"channel": "channel-pln"}, {"channel_id": "Q2hhbm5lbDoy"}),  # stored by slug only
    ({"channel": "channel-pln", "channel_id": "Q2hhbm5lbDoy"}, {}),
    ({}, {}),  # none chosen: the default is no choice to store
    ({"channel": "gone"}, {}),
])
@responses.activate
def test_saleor_keeps_the_id_of_a_channel_it_found_by_slug(extra, learned) -> None:
    """The sync reads the currencies first: the id it found there is not looked up again
    for the orders (``_channel_id``), and is stored with the credentials."""
    responses.post(SALEOR, json=CHANNELS)
    connector = _saleor(**extra)
    connector.sold_currencies()
    assert connector.learned == learned
    assert connector.credentials.extra.get("channel_id") == (
        learned.get("channel_id") or extra.get("channel_id"))


@pytest.mark.parametrize("answer", [
    {"data": {"channels": None}},
    {"data": {}},
    {"data": {"channels": {"id": "Q2hhbm5lbDoy"}}},
    {"data": {"channels": [{"slug": "channel-pln", "currencyCode": "PLN"}]}},  # no id
    {"data": {"channels": [{"id": "Q2hhbm5lbDoy", "slug": "channel-pln"}]}},  # no currency
    {"data": {"channels": [{"id": "Q2hhbm5lbDoy", "slug": "channel-pln",
                            "currencyCode": 985}]}},
    {"data": {"channels": ["Q2hhbm5lbDoy"]}},
])
@responses.activate
def test_a_garbled_saleor_answer_is_transient_not_selling_nothing(answer) -> None:
    responses.post(SALEOR, json=answer)
    with pytest.raises(TransientError):
        _saleor(channel="channel-pln", channel_id="Q2hhbm5lbDoy").sold_currencies()


@responses.activate
def test_saleor_refusing_the_query_is_a_permission_refusal() -> None:
    responses.post(SALEOR, json={"data": {"channels": None}, "errors": [{
        "message": "You need one of the following permissions: AUTHENTICATED_APP, "
                   "AUTHENTICATED_STAFF_USER",
        "extensions": {"exception": {"code": "PermissionDenied"}}}]})
    with pytest.raises(PermissionDenied):
        _saleor(channel="channel-pln").sold_currencies()
