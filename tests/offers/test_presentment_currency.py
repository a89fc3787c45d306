"""Carts in a currency other than the catalogue's: offered where the platform converts.

Shopify takes a code's fixed amount (and minimum subtotal) in the shop's currency and
converts it at checkout ("Fixed-amount discounts are set in the currency of your store.
When the customer's local currency is different from the store's currency, then the
amount of the discount is converted to the customer's currency":
help.shopify.com/en/manual/international/pricing/discounts). Such a cart is valued at
the catalogue's prices and offered an amount in the shop's currency. Saleor lists a
voucher per channel, one currency each, and Vendure keeps bare numbers: no offer there.

The Shopify answers are the documented ``discountCodeBasicCreate`` payload
(``codeDiscountNode { id }``, ``userErrors``), as in ``test_discounts``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import jwt
import pytest
import responses
import sqlalchemy as sa

from connectors.base import Credentials
from connectors.errors import InvalidPayload
from connectors.records import DiscountSpec
from connectors.shopify import ShopifyConnector
from connectors.shopify.client import API_VERSION
from plugin.extensions import db
from plugin.models import Offer, OfferLedgerEntry, Product
from plugin.offers import service
from plugin.offers.pricing import trusted_cart
from plugin.shops import save_credentials
from tests.factories import make_shop
from tests.offers.conftest import accept, configure, make_idle, quote, sells, stock

DOMAIN = "intl.myshopify.com"
GRAPHQL = f"https://{DOMAIN}/admin/api/{API_VERSION}/graphql.json"


def _eur_cart(price: str = "70.00", quantity: int = 2) -> dict:
    """Two mugs in euros; the catalogue lists the mug at GBP 60.00."""
    return {"currency": "EUR", "lines": [{"product_id": "mug", "quantity": quantity,
                                          "price": price}]}


def _shop(platform: str = "shopify", domain: str = DOMAIN, **offers):
    shop = make_shop(platform, domain)
    save_credentials(shop, Credentials(domain, access_token="shpat_x", webhook_secret="s",
                                       api_url=f"https://{domain}/api",
                                       extra={"currency": "GBP", "channel_id": "Q2g6MQ=="}))
    configure(shop, **offers)
    sells(shop, "GBP")
    stock(shop.id, ("mug",), price="60.00")
    make_idle(shop.id)
    return shop


def _latest() -> Offer:
    return db.session.scalar(sa.select(Offer).order_by(Offer.id.desc()).limit(1))


def test_shopify_cart_in_euros_is_offered_an_amount_in_the_shops_currency(client, app):
    shop = _shop()
    body = quote(client, shop, _eur_cart()).get_json()
    offer = body["offer"]
    assert offer is not None, body
    assert offer["currency"] == "GBP"
    # the signed payload names the currency the amount is in
    claims = jwt.decode(offer["token"], options={"verify_signature": False})
    assert claims["currency"] == "GBP"
    assert Decimal(claims["amount"]) == Decimal(offer["amount"])
    row = _latest()
    assert (row.currency, row.cart_value) == ("GBP", Decimal("120.00"))
    assert Decimal(offer["min_subtotal"]) == Decimal("120.00")


@pytest.mark.parametrize("reported", ["70.00", "6000.00", "1.00"])
def test_guardrails_hold_on_the_catalogue_value_whatever_the_euro_prices(client, app,
                                                                        reported):
    """Euro prices cannot be compared with pounds: the offer is sized on the catalogue's
    GBP 120.00, so the max discount (15%) and the budget (GBP 10 a day) hold in pounds."""
    shop = _shop(daily_budget=10)
    offer = quote(client, shop, _eur_cart(price=reported)).get_json()["offer"]
    assert offer is not None
    amount = Decimal(offer["amount"])
    assert amount <= Decimal("120.00") * Decimal("0.15") and amount <= 10
    assert _latest().cart_value == Decimal("120.00")


@responses.activate
def test_the_shopify_code_carries_the_amount_and_minimum_in_the_shops_currency(client, app):
    shop = _shop()
    responses.post(GRAPHQL, json={"data": {"discountCodeBasicCreate": {
        "codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/1057371143"},
        "userErrors": []}}})
    offer = quote(client, shop, _eur_cart()).get_json()["offer"]
    res = accept(client, shop, offer["token"], _eur_cart())
    assert res.status_code == 200, res.get_json()
    sent = json.loads(responses.calls[-1].request.body)["variables"]["input"]
    assert sent["customerGets"]["value"]["discountAmount"]["amount"] == offer["amount"]
    assert sent["minimumRequirement"] == {
        "subtotal": {"greaterThanOrEqualToSubtotal": "120.00"}}
    ledger = db.session.scalar(sa.select(sa.func.sum(OfferLedgerEntry.amount)))
    assert Decimal(ledger) == Decimal(offer["amount"])  # the budget is charged in pounds


def test_the_offer_is_bound_to_the_euro_cart_it_was_quoted_for(client, app):
    shop = _shop()
    offer = quote(client, shop, _eur_cart()).get_json()["offer"]
    in_pounds = {**_eur_cart(), "currency": "GBP"}
    assert accept(client, shop, offer["token"], in_pounds).status_code == 403
    assert _latest().status == "offered"


def test_free_shipping_is_not_offered_on_a_converted_cart(client, app):
    """Shopify documents converting a fixed amount, not a free-shipping code's price cap."""
    shop = _shop(stages={"idle_cart": ["free_shipping"]}, shipping_cost="6.50")
    body = quote(client, shop, _eur_cart()).get_json()
    assert body["offer"] is None and body["reason_code"] == "no_allowed_candidate"
    in_pounds = {**_eur_cart(price="60.00"), "currency": "GBP"}
    offer = quote(client, shop, in_pounds).get_json()["offer"]
    assert offer is not None and offer["discount_kind"] == "free_shipping"


@pytest.mark.parametrize("platform", ["saleor", "vendure", "generic"])
def test_other_platforms_keep_the_mismatch(client, app, platform):
    """Saleor's voucher is listed in the shop's channel only (a euro cart is in another
    channel), Vendure's amounts are bare numbers, a generic store converts nothing."""
    shop = _shop(platform, f"intl-{platform}.example")
    body = quote(client, shop, _eur_cart()).get_json()
    assert body["offer"] is None and body["reason_code"] == "currency_mismatch"


def test_a_catalogue_in_two_currencies_is_still_a_mismatch(app):
    shop = _shop()
    db.session.add(Product(shop_id=shop.id, external_id="cup", title="Cup",
                           price=Decimal("9.00"), currency="USD", categories=[], tags=[],
                           source_updated_at=datetime.now(UTC)))
    db.session.commit()
    cart = service.CartIn("EUR", [{"product_id": "mug", "quantity": 1, "price": "70"},
                                  {"product_id": "cup", "quantity": 1, "price": "8"}])
    assert trusted_cart(shop.id, cart, converts=True)[1] == "currency_mismatch"
    valued, why = trusted_cart(shop.id, service.CartIn("EUR", cart.lines[:1]), converts=True)
    assert why is None and (valued.currency, valued.subtotal) == ("GBP", Decimal("60.00"))


@responses.activate
def test_shopify_refuses_a_discount_not_in_the_shops_currency(app):
    """Shopify would read EUR 15 as GBP 15: the spec is refused before any call."""
    shopify = ShopifyConnector(Credentials(DOMAIN, access_token="shpat_x",
                                           extra={"currency": "GBP"}))
    spec = DiscountSpec(code="SK-X", kind="fixed", value=Decimal("15"), currency="EUR",
                        expires_at=datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(InvalidPayload):
        shopify.create_discount(spec)
    assert len(responses.calls) == 0


def _resigned(shop, token: str, **changes) -> str:
    """``token`` with ``changes`` to its claims, signed again with the shop's own key (a
    leaked key, or a bug that signs the wrong row): only the row's binding can refuse it."""
    from plugin.offers import keys

    claims = {**jwt.decode(token, options={"verify_signature": False}), **changes}
    kid, key = keys.signing_key(shop.id)
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid})


def test_a_token_whose_currency_was_altered_is_refused(client, app):
    shop = _shop()
    offer = quote(client, shop, _eur_cart()).get_json()["offer"]
    head, _, sig = offer["token"].split(".")
    forged = jwt.encode({**jwt.decode(offer["token"], options={"verify_signature": False}),
                         "currency": "EUR"}, "x" * 32, algorithm="HS256").split(".")[1]
    assert accept(client, shop, f"{head}.{forged}.{sig}", _eur_cart()).status_code == 403
    resigned = _resigned(shop, offer["token"], currency="EUR")
    assert accept(client, shop, resigned, _eur_cart()).status_code == 403
    assert _latest().status == "offered"  # nothing was claimed or reserved
    assert db.session.scalar(sa.select(sa.func.count(OfferLedgerEntry.id))) == 0


@pytest.mark.parametrize("platform", ["shopify", "saleor"])
def test_free_shipping_progress_is_not_promised_to_a_cart_in_another_currency(client, app,
                                                                              platform):
    # the threshold is the shop's money: "EUR 10 to go" measured against GBP 150 was wrong,
    # converted (Shopify) or refused (Saleor) alike
    shop = _shop(platform, f"{platform}-fs.example", free_shipping_threshold="150")
    assert quote(client, shop, _eur_cart()).get_json()["free_shipping"] is None
    gbp = {**_eur_cart("60.00"), "currency": "GBP"}
    assert quote(client, shop, gbp).get_json()["free_shipping"]["remaining"] == "30.00"
