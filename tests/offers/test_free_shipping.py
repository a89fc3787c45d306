"""Free shipping is offered only where the platform caps it at the budgeted shipping cost.

The guardrails and the budget charge a free-shipping offer with ``shipping_cost``. Shopify
(``maximumShippingPrice``), Saleor (a FIXED shipping voucher) and generic stores (the
token's ``value``) keep the saving within it; Vendure's ``free_shipping`` action waives
any shipping price, so a Vendure shop is never quoted free shipping.
"""

from __future__ import annotations

import json

import responses

from connectors.base import Credentials
from connectors.shopify.client import API_VERSION
from connectors.vendure.connector import VendureConnector
from plugin.extensions import db
from plugin.models import Offer
from plugin.shops import save_credentials
from tests.factories import make_shop
from tests.offers.conftest import accept, configure, make_idle, quote, sells

ONLY_FREE_SHIPPING = {"stages": {"idle_cart": ["free_shipping"]}, "shipping_cost": "6.50"}


def _shop(platform: str, domain: str, credentials: Credentials):
    shop = make_shop(platform, domain)
    save_credentials(shop, credentials)
    configure(shop, **ONLY_FREE_SHIPPING)
    sells(shop, "GBP")  # amounts are exact: only free shipping is held back on Vendure
    make_idle(shop.id)
    return shop


def _vendure(domain: str = "ship.vendure.example"):
    return _shop("vendure", domain, Credentials(
        domain, access_token="tok", webhook_secret="whsec_v",
        api_url=f"https://{domain}/admin-api"))


@responses.activate
def test_shopify_quotes_free_shipping_capped_at_the_shipping_cost(client, app):
    domain = "ship.myshopify.com"
    shop = _shop("shopify", domain, Credentials(domain, access_token="shpat_x",
                                                webhook_secret="shpss_x"))
    offer = quote(client, shop).get_json()["offer"]
    assert offer is not None and offer["discount_kind"] == "free_shipping"
    assert offer["amount"] == "6.50"
    responses.post(f"https://{domain}/admin/api/{API_VERSION}/graphql.json", json={"data": {
        "discountCodeFreeShippingCreate": {"codeDiscountNode": {
            "id": "gid://shopify/DiscountCodeNode/3"}, "userErrors": []}}})
    assert accept(client, shop, offer["token"]).status_code == 200
    sent = json.loads(responses.calls[-1].request.body)["variables"]["input"]
    assert sent["maximumShippingPrice"] == "6.50"


def test_vendure_is_not_quoted_free_shipping(client, app):
    shop = _vendure()
    body = quote(client, shop).get_json()
    assert body["offer"] is None and body["reason_code"] == "no_allowed_candidate", body


@responses.activate
def test_vendure_free_shipping_quoted_before_the_fix_is_withdrawn_at_accept(
        client, app, monkeypatch):
    """An offer quoted while Vendure still got free shipping must not become a promotion
    that waives any shipping price; nothing is created or reserved, the offer is gone."""
    shop = _vendure("old.vendure.example")
    with monkeypatch.context() as patch:
        patch.setattr(VendureConnector, "caps_free_shipping", True)
        offer = quote(client, shop).get_json()["offer"]
    assert offer is not None and offer["discount_kind"] == "free_shipping"
    res = accept(client, shop, offer["token"])
    assert res.status_code == 409, res.get_json()
    assert len(responses.calls) == 0
    row = db.session.query(Offer).filter_by(public_id=offer["id"]).one()
    assert row.status == "superseded" and row.code is None
    assert accept(client, shop, offer["token"]).status_code == 409
