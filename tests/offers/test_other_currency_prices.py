"""A cart in another currency the catalogue prices in is valued, and offered, in it.

A Vendure channel selling dollars and euros lists each variant in both; the catalogue keeps
both (``Product.prices``), so a euro cart is capped by the euro prices. Its offer is in
euros, so every money guardrail must be in euros too: the merchant's own figures
(``currency_guardrails``), never the dollar ones through a guessed exchange rate. Without
them the cart is refused as before (``currency_mismatch``).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from connectors.base import Credentials
from plugin.extensions import db
from plugin.models import Offer, OfferLedgerEntry, Product, Variant
from plugin.models.types import utcnow
from plugin.offers import budget, service
from plugin.offers.pricing import trusted_cart
from plugin.offers.settings import guardrails_from
from plugin.shops import save_credentials
from tests.factories import make_shop
from tests.offers.conftest import OFFER_SETTINGS, cart_body, configure, make_idle, quote, sells

EUR = {"daily_budget": 80, "monthly_budget": 900, "min_cart_value": 18}


def _vendure(**offers):
    """A dollars-and-euros Vendure channel whose plugin pins coupons to their currency;
    p1 is listed at 60 dollars and 55 euros (its variant v1 at 52 euros)."""
    shop = make_shop("vendure", "eur.vendure.example")
    save_credentials(shop, Credentials("eur.vendure.example", access_token="tok",
                                       webhook_secret="whsec_v",
                                       api_url="https://eur.vendure.example/admin-api"))
    configure(shop, **offers)
    sells(shop, "USD", "EUR", pinned=True)
    db.session.execute(sa.update(Product).where(Product.shop_id == shop.id).values(
        currency="USD", price=Decimal("60.00"), prices={"USD": "60.00", "EUR": "55.00"}))
    p1 = db.session.scalar(sa.select(Product).where(Product.shop_id == shop.id,
                                                    Product.external_id == "p1"))
    db.session.add(Variant(shop_id=shop.id, product_id=p1.id, external_id="v1",
                           price=Decimal("60.00"), prices={"USD": "60.00", "EUR": "52.00"}))
    db.session.commit()
    make_idle(shop.id)
    return shop


def _cart(currency: str = "EUR", price: str = "90.00", **line) -> service.CartIn:
    return service.CartIn(currency, [{"product_id": "p1", "quantity": 2,
                                      "price": Decimal(price), **line}])


def test_a_cart_is_valued_at_the_catalogue_price_in_its_own_currency(app):
    shop = _vendure()
    valued, refused = trusted_cart(shop.id, _cart())
    assert refused is None and valued.currency == "EUR"
    assert valued.lines[0]["price"] == Decimal("55.00")  # the product's euro price
    valued, _ = trusted_cart(shop.id, _cart(variant_id="v1"))
    assert valued.lines[0]["price"] == Decimal("52.00")  # the variant's, first
    valued, _ = trusted_cart(shop.id, _cart(price="40.00"))
    assert valued.lines[0]["price"] == Decimal("40.00")  # a lower reported price stands
    valued, _ = trusted_cart(shop.id, _cart("USD", variant_id="v1"))
    assert valued.lines[0]["price"] == Decimal("60.00")  # the default currency as before


def test_a_currency_the_catalogue_has_no_price_in_is_still_refused(app):
    shop = _vendure()
    assert trusted_cart(shop.id, _cart("GBP"))[1] == "currency_mismatch"
    db.session.execute(sa.update(Product).values(prices=None))
    db.session.execute(sa.update(Variant).values(prices=None))
    assert trusted_cart(shop.id, _cart())[1] == "currency_mismatch"


def test_a_line_without_a_price_in_the_cart_currency_counts_as_nothing(app):
    shop = _vendure()
    db.session.execute(sa.update(Product).where(Product.external_id == "p2")
                       .values(prices={"USD": "60.00"}))
    cart = service.CartIn("EUR", [*_cart().lines, {"product_id": "p2", "quantity": 1,
                                                   "price": Decimal("30.00")}])
    valued, refused = trusted_cart(shop.id, cart)
    assert refused is None and [ln["price"] for ln in valued.lines] == [Decimal("55.00"), 0]


def test_a_euro_cart_is_offered_euros_under_the_euro_guardrails(client, app):
    shop = _vendure(currency_guardrails={"EUR": EUR})
    body = quote(client, shop, cart_body(currency="EUR", price="90.00")).get_json()
    assert body["offer"] is not None and body["offer"]["currency"] == "EUR", body
    row = db.session.scalar(sa.select(Offer).where(Offer.shop_id == shop.id))
    assert row.cart_value == Decimal("110.00")  # 2 x 55 euros, not the 180 claimed
    assert Decimal(body["offer"]["amount"]) <= Decimal("110.00") * 15 / 100


def test_without_the_merchants_euro_figures_a_euro_cart_is_refused(client, app):
    shop = _vendure()
    body = quote(client, shop, cart_body(currency="EUR")).get_json()
    assert body["offer"] is None and body["reason_code"] == "currency_mismatch"


def test_a_known_cost_without_its_euro_cost_refuses_the_euro_cart(client, app):
    """The margin floor with a dollar cost would need an exchange rate."""
    shop = _vendure(product_costs={"p1": 30}, currency_guardrails={"EUR": EUR})
    body = quote(client, shop, cart_body(currency="EUR")).get_json()
    assert body["offer"] is None and body["reason_code"] == "currency_mismatch"
    # with its euro cost, the floor applies in euros: a 54-euro cost leaves no margin
    configure(shop, product_costs={"p1": 30}, currency_guardrails={
        "EUR": {**EUR, "product_costs": {"p1": 54}}})
    body = quote(client, shop, cart_body(currency="EUR", price="90.00")).get_json()
    assert body["offer"] is None and body["reason_code"] == "no_allowed_candidate", body


def test_the_euro_minimum_cart_value_applies_to_a_euro_cart(client, app):
    shop = _vendure(currency_guardrails={"EUR": {**EUR, "min_cart_value": 200}})
    body = quote(client, shop, cart_body(currency="EUR", price="90.00")).get_json()
    assert body["offer"] is None and body["reason_code"] == "below_min_cart_value"


def _spend(shop, currency: str, amount: str, at=None) -> None:
    now = at or utcnow()
    offer = Offer(public_id=f"of_{currency}_{amount}", shop_id=shop.id, shopper_id="s",
                  cart_hash="h", stage="idle_cart", currency=currency, status="accepted",
                  amount=Decimal(amount), created_at=now, accepted_at=now,
                  expires_at=now + timedelta(minutes=30))
    db.session.add(offer)
    db.session.flush()
    budget.reserve(offer, now)
    db.session.commit()


def test_each_currency_spends_its_own_budget(app):
    """Dollars and euros are never added up: each is spent against its own figures."""
    shop = _vendure(currency_guardrails={"EUR": EUR})
    rails = service.guardrails_for(shop)
    now = utcnow()  # one moment: spent at 23:59:59.9 and read after midnight, the day's
    _spend(shop, "EUR", "30.00", now)  # spend was yesterday's and the day's budget whole
    _spend(shop, "USD", "10.00", now)
    assert budget.remaining(shop.id, rails, now) == (Decimal(90), Decimal(990))
    assert budget.remaining(shop.id, rails.in_currency("eur"), now) == (Decimal(50),
                                                                        Decimal(870))
    # without its own budget, a euro spend is the shop's (never undercounted)
    plain = guardrails_from(OFFER_SETTINGS)
    assert budget.remaining(shop.id, plain, now) == (Decimal(60), Decimal(960))


def test_a_spent_euro_budget_stops_euro_offers_but_not_dollar_ones(client, app):
    shop = _vendure(currency_guardrails={"EUR": {**EUR, "daily_budget": 1}})
    body = quote(client, shop, cart_body(currency="EUR", price="90.00")).get_json()
    assert body["offer"] is None and body["reason_code"] == "no_allowed_candidate", body
    body = quote(client, shop, cart_body(currency="USD", price="60.00")).get_json()
    assert body["offer"] is not None and body["offer"]["currency"] == "USD", body


def test_accept_checks_the_budget_of_the_offers_currency(client, app, monkeypatch):
    from tests.offers.conftest import accept

    # one moment for the spend and the accept's budget read: spent at 23:59:59.99 and
    # accepted just after midnight, the spend was yesterday's and the euro day whole
    now = utcnow()
    monkeypatch.setattr(service, "utcnow", lambda: now)
    shop = _vendure(currency_guardrails={"EUR": EUR})
    body = quote(client, shop, cart_body(currency="EUR", price="90.00")).get_json()
    assert body["offer"] is not None
    _spend(shop, "EUR", "79.00", now)  # the euro day's budget is nearly gone; the dollar one not
    res = accept(client, shop, body["offer"]["token"], cart_body(currency="EUR", price="90.00"))
    assert res.status_code == 409 and "budget" in res.get_json()["message"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OfferLedgerEntry)) == 1


@pytest.mark.parametrize("raw", [
    {"EUR": {"daily_budget": 80, "monthly_budget": 900}},  # no minimum: the shop's is in USD
    {"EURO": EUR},
    {"EUR": {**EUR, "daily_budget": -1}},
])
def test_currency_guardrails_need_their_own_budgets_and_minimum(raw):
    with pytest.raises(ValueError):
        guardrails_from({"currency_guardrails": raw})


def test_the_budget_currency_cannot_be_set_from_the_settings():
    rails = guardrails_from({"budget_currency": "EUR", "currency_guardrails": {"eur": EUR}})
    assert rails.budget_currency is None and rails.in_currency("EUR").budget_currency == "EUR"
    assert rails.in_currency("USD") is rails
    assert "free_shipping" not in {k for kinds in rails.in_currency("EUR").stages.values()
                                   for k in kinds}  # no euro shipping cost given


#: Figures the settings page refuses (tests/admin/test_settings_currencies.py): serving
#: must not take them either.
REFUSED_ROWS = [
    {**EUR, "min_cart_value": -5},
    {**EUR, "shipping_cost": -1},
    {**EUR, "free_shipping_threshold": "1e30", "shipping_cost": 4},
    {**EUR, "monthly_budget": 50},  # below the daily budget
    {**EUR, "free_shipping_threshold": 50},  # no shipping cost: it would do nothing
    {**EUR, "product_costs": {"p1": -3}},
    {**EUR, "product_costs": {"p1": "lots"}},
    "90 a day",
]


@pytest.mark.parametrize("row", REFUSED_ROWS)
def test_the_parser_refuses_what_the_settings_schema_refuses(row):
    from marshmallow import ValidationError

    from plugin.admin.schemas import OffersSchema

    with pytest.raises(ValidationError):
        OffersSchema().load({"currency_guardrails": {"EUR": row}})
    with pytest.raises(ValueError):
        guardrails_from({"currency_guardrails": {"EUR": row}})
    # serving leaves that currency out (offered nothing) and keeps the others'
    rails = guardrails_from({"min_cart_value": 25, "currency_guardrails": {
        "EUR": row, "GBP": EUR}}, drop_refused=True)
    assert sorted(rails.currency_guardrails) == ["GBP"] and rails.min_cart_value == 25


def test_a_stored_euro_figure_the_page_refuses_offers_nothing_in_euros_not_an_error(
        client, app):
    shop = _vendure(currency_guardrails={"EUR": {**EUR, "min_cart_value": -5}})
    res = quote(client, shop, cart_body(currency="EUR", price="90.00"))
    assert res.status_code == 200
    assert res.get_json()["reason_code"] == "currency_mismatch"
    body = quote(client, shop, cart_body(currency="USD", price="60.00")).get_json()
    assert body["offer"] is not None, body  # the shop's own currency is not affected


def test_figures_under_the_shops_own_currency_never_replace_its_own(client, app):
    """A dollar cart in a dollar shop keeps the shop's minimum (20), budgets and costs."""
    shop = _vendure(currency_guardrails={"USD": {**EUR, "min_cart_value": 500}, "EUR": EUR})
    body = quote(client, shop, cart_body(currency="USD", price="60.00")).get_json()
    assert body["offer"] is not None and body["offer"]["currency"] == "USD", body
    rails = service.guardrails_for(shop)
    assert sorted(rails.currency_guardrails) == ["EUR"] and rails.min_cart_value == 20
