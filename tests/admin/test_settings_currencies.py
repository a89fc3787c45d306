"""The offers section's "Other currencies" table: a merchant sets the money guardrails of
each other currency the platform sells (``offers.currency_guardrails``) on the page."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from marshmallow import ValidationError

from plugin import shops
from plugin.admin import settings as settings_service
from plugin.extensions import db
from plugin.models import AuditLog, Product
from plugin.models.types import utcnow
from plugin.offers import platform
from plugin.offers.settings import guardrails_from

ROW = "offers.currency_guardrails"


def _selling(shop, *sold: str, **settings) -> None:
    """The platform was read selling ``sold``; the catalogue is in dollars."""
    shop.settings = {**(shop.settings or {}), **settings, platform.KEY: {
        "sold": list(sold), "pinned": True, "read_at": utcnow().isoformat()}}
    db.session.add(Product(shop_id=shop.id, external_id="p1", title="Tea", currency="USD",
                           source_updated_at=utcnow()))
    db.session.commit()


def _post(client, token, **fields):
    return client.post("/admin/settings", data={"csrf_token": token, "_section": "offers",
                                                **fields})


def _row(code: str, **figures: str) -> dict[str, str]:
    """Every input of ``code``'s row as the browser posts it (empty unless given)."""
    names = ("daily_budget", "monthly_budget", "min_cart_value", "shipping_cost",
             "free_shipping_threshold")
    return {f"{ROW}.{code}.{n}": figures.get(n, "") for n in names}


def _stored(shop) -> dict:
    db.session.expire_all()
    return shops.get_shop(shop.id).settings


EUR = {"daily_budget": "90", "monthly_budget": "1300", "min_cart_value": "18"}


def test_a_row_per_other_sold_currency_and_per_configured_one_each_input_labelled(admin,
                                                                                   shop):
    client, _ = admin
    _selling(shop, "USD", "EUR", "GBP", offers={"currency_guardrails": {
        "CHF": {**EUR, "product_costs": {"p1": "3"}}}})
    html = client.get("/admin/settings").get_data(as_text=True)
    rows = re.findall(r'<tr><th scope="row">([A-Z]{3})', html)
    assert rows == ["CHF", "EUR", "GBP"]  # not USD: the catalogue's, set above the table
    inputs = re.findall(rf'<input id="({ROW}\.[A-Z]{{3}}\.\w+)" name="\1"', html)
    assert len(inputs) == 15
    for name in inputs:
        assert f'<label class="sk-visually-hidden" for="{name}">' in html
    assert f'id="{ROW}.CHF.min_cart_value" name="{ROW}.CHF.min_cart_value" ' \
           'inputmode="decimal" value="18.00"' in html
    assert "settings JSON only" in html and "product_costs" in html


def test_the_shops_own_currency_gets_no_row_and_a_configured_one_does(admin, shop):
    client, _ = admin
    _selling(shop, "USD")
    assert "Other currencies" not in client.get("/admin/settings").get_data(as_text=True)
    shop.settings = {**shop.settings, "offers": {"currency_guardrails": {"eur": EUR}}}
    db.session.commit()
    html = client.get("/admin/settings").get_data(as_text=True)
    assert re.findall(r'<tr><th scope="row">([A-Z]{3})', html) == ["EUR"]
    assert "no exchange rate from USD, which the figures above are in" in html


def test_a_filled_row_is_stored_where_the_guardrails_read_it_and_the_rest_kept(admin, shop):
    client, token = admin
    _selling(shop, "USD", "EUR", "GBP", offers={"stages": {"browsing": ["bundle"]}})
    r = _post(client, token, **{"offers.max_discount_pct": "12"},
              **_row("EUR", **EUR, shipping_cost="4.5", free_shipping_threshold="50"),
              **_row("GBP"))
    assert r.status_code == 302
    stored = _stored(shop)
    assert stored["offers"]["currency_guardrails"] == {"EUR": {
        "daily_budget": "90.00", "monthly_budget": "1300.00", "min_cart_value": "18.00",
        "shipping_cost": "4.50", "free_shipping_threshold": "50.00"}}
    assert stored["offers"]["stages"] == {"browsing": ["bundle"]}
    assert stored["offers"]["max_discount_pct"] == "12.00"
    assert stored[platform.KEY]["sold"] == ["USD", "EUR", "GBP"]
    euro = guardrails_from(stored["offers"]).in_currency("EUR")
    assert (euro.budget_currency, str(euro.daily_budget), str(euro.shipping_cost)) == (
        "EUR", "90.00", "4.50")
    entry = db.session.scalars(sa.select(AuditLog).filter_by(
        shop_id=shop.id, action="settings.changed")).one()
    assert "offers" in entry.detail["keys"]


def test_an_emptied_row_removes_that_currency_and_keeps_the_others_costs(admin, shop):
    client, token = admin
    _selling(shop, "USD", "EUR", "GBP", offers={"currency_guardrails": {
        "EUR": {**EUR, "product_costs": {"p1": "30"}}, "GBP": EUR}})
    r = _post(client, token, **_row("EUR", **{**EUR, "min_cart_value": "25"}), **_row("GBP"))
    assert r.status_code == 302
    rows = _stored(shop)["offers"]["currency_guardrails"]
    assert list(rows) == ["EUR"]
    # the page has no input for product costs: saving the row keeps them
    assert rows["EUR"]["product_costs"] == {"p1": "30.00"}
    assert rows["EUR"]["min_cart_value"] == "25.00"
    assert guardrails_from(_stored(shop)["offers"]).currency_guardrails[
        "EUR"].product_costs == {"p1": 30}


def test_an_offers_save_without_the_table_keeps_the_stored_figures(admin, shop):
    client, token = admin
    _selling(shop, "USD", offers={"currency_guardrails": {"EUR": EUR}})
    assert _post(client, token, **{"offers.max_discount_pct": "10"}).status_code == 302
    assert _stored(shop)["offers"]["currency_guardrails"]["EUR"]["daily_budget"] == "90.00"


ROW_ERRORS = [
    ({"daily_budget": "5"}, "min_cart_value",
     "Needed for offers in this currency (or empty the whole row)."),
    ({"shipping_cost": "4"}, "monthly_budget", "Needed for offers in this currency"),
    ({**EUR, "daily_budget": "-1"}, "daily_budget", "Must be between 0 and 10000000."),
    ({**EUR, "min_cart_value": "lots"}, "min_cart_value", "Not a valid number."),
    ({**EUR, "shipping_cost": "-4"}, "shipping_cost", "Must be between 0 and 1000000."),
    ({**EUR, "free_shipping_threshold": "1e30"}, "free_shipping_threshold",
     "Must be between 0 and 1000000."),
    ({**EUR, "monthly_budget": "80"}, "monthly_budget",
     "The monthly budget cannot be below the daily budget."),
    # the offer engine makes no free-shipping offer without a shipping cost in it
    ({**EUR, "free_shipping_threshold": "50"}, "free_shipping_threshold",
     "Free shipping in this currency needs its shipping cost"),
]


@pytest.mark.parametrize(("figures", "field", "message"), ROW_ERRORS)
def test_a_bad_row_gets_its_message_next_to_the_input_and_nothing_is_saved(
        admin, shop, figures, field, message):
    client, token = admin
    _selling(shop, "USD", "EUR", "GBP")
    before = _stored(shop)
    r = _post(client, token, **_row("EUR", **figures), **_row("GBP"))
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    slot = re.search(rf'id="err-offers-currency_guardrails-EUR-{field}" role="alert">([^<]*)<',
                     html)
    assert slot and message in slot[1]
    assert f'aria-describedby="err-offers-currency_guardrails-EUR-{field}"' in html
    for name, value in figures.items():  # what the merchant typed is kept
        assert f'name="{ROW}.EUR.{name}" inputmode="decimal" value="{value}"' in html
    assert _stored(shop) == before


def test_a_row_for_something_that_is_no_currency_code_is_refused(admin, shop):
    client, token = admin
    _selling(shop, "USD", "EUR")
    r = _post(client, token, **_row("EUR"), **_row("EURO", **EUR))
    assert r.status_code == 422
    assert re.search(r'id="err-offers-currency_guardrails-EURO" role="alert">'
                     r"&#39;EURO&#39; is not a currency code \(ISO 4217", r.get_data(as_text=True))
    assert "currency_guardrails" not in (_stored(shop).get("offers") or {})


def test_the_settings_document_takes_the_figures_with_product_costs(app, shop):
    """The same schema checks a whole settings document (``save``, as an API would call it)."""
    _selling(shop, "USD", "EUR")
    problems = settings_service.problems(shop, {"offers": {"currency_guardrails": {
        "eur": {**EUR, "product_costs": {"p1": "-3"}}, "1AB": EUR}}})
    # keyed by the product, not by marshmallow's "value" of the pair
    assert sorted(problems) == ["offers.currency_guardrails.1AB",
                                "offers.currency_guardrails.EUR.product_costs.p1"]
    assert problems["offers.currency_guardrails.EUR.product_costs.p1"] == [
        "Must be between 0 and 10000000."]
    settings_service.save(shop, {"offers": {"currency_guardrails": {
        "eur": {**EUR, "product_costs": {"p1": 3}}}}})
    rails = guardrails_from(_stored(shop)["offers"]).in_currency("EUR")
    assert rails.product_costs == {"p1": 3} and rails.min_cart_value == 18


def test_a_stored_figure_the_schema_refuses_is_shown_at_its_input_and_can_be_fixed(admin,
                                                                                     shop):
    """Stored before a rule existed, or written around the page: the page loads, shows
    the stored value with its error, and saving the row fixed stores it."""
    client, token = admin
    _selling(shop, "USD", "EUR", offers={"max_discount_pct": "12", "currency_guardrails": {
        "EUR": {**EUR, "min_cart_value": "-5", "free_shipping_threshold": "50"}}})
    r = client.get("/admin/settings")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    for field, message in (("min_cart_value", "Must be between 0 and 1000000."),
                           ("free_shipping_threshold", "needs its shipping cost")):
        slot = re.search(rf'id="err-offers-currency_guardrails-EUR-{field}" role="alert">'
                         r"([^<]*)<", html)
        assert slot and message in slot[1], field
    assert f'name="{ROW}.EUR.min_cart_value" inputmode="decimal" value="-5"' in html
    assert 'name="offers.max_discount_pct"' in html and 'value="12.00"' in html
    r = _post(client, token, **_row("EUR", **EUR, shipping_cost="4", free_shipping_threshold="50"))
    assert r.status_code == 302
    assert _stored(shop)["offers"]["currency_guardrails"]["EUR"]["min_cart_value"] == "18.00"
    assert client.get("/admin/settings").status_code == 200


def test_a_stored_list_line_or_section_the_schema_refuses_does_not_fail_the_page(admin, shop):
    client, _ = admin
    _selling(shop, "USD", offers={"daily_budget": "500", "monthly_budget": "lots"},
             merchandising=[{"action": "pin", "field": "tag", "value": "tea"},
                            {"action": "melt", "field": "tag", "value": "x"}])
    r = client.get("/admin/settings")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert re.search(r'id="err-offers-monthly_budget" role="alert">Not a valid number', html)
    assert "line 2: action: Must be one of" in html and "pin tag tea" in html


def test_figures_under_the_shops_own_currency_are_refused_on_save_and_marked_on_the_page(
        admin, shop):
    """They would replace the shop's own figures for carts in it."""
    client, _ = admin
    _selling(shop, "USD", "EUR")
    problems = settings_service.problems(shop, {"offers": {"currency_guardrails": {
        "usd": EUR, "EUR": EUR}}})
    assert problems == {f"{ROW}.USD": [
        "USD is the shop's own currency: its figures are the ones above (empty this row)."]}
    before = _stored(shop)
    with pytest.raises(ValidationError) as refused:
        settings_service.save(shop, {"offers": {"currency_guardrails": {"USD": EUR}}})
    assert list(refused.value.messages) == [f"{ROW}.USD"]
    assert _stored(shop) == before
    # stored around the page: shown with its error on the row, which can be emptied
    shop.settings = {**shop.settings, "offers": {"currency_guardrails": {"USD": EUR}}}
    db.session.commit()
    html = client.get("/admin/settings").get_data(as_text=True)
    assert re.search(r'id="err-offers-currency_guardrails-USD" role="alert">USD is the '
                     r"shop&#39;s own currency", html)


def test_a_lower_case_code_stored_shows_its_figures_and_a_save_stores_it_once(admin, shop):
    """``eur`` from an API write or an older release: its row shows its figures (also
    while another row is refused), and saving the page stores ``EUR`` alone, with the
    product costs it had."""
    client, token = admin
    _selling(shop, "USD", "EUR", "GBP", offers={"currency_guardrails": {
        "eur": {**EUR, "product_costs": {"p1": "3"}}, "GBP": {**EUR, "min_cart_value": "-1"}}})
    html = client.get("/admin/settings").get_data(as_text=True)
    assert f'name="{ROW}.EUR.daily_budget" inputmode="decimal" value="90"' in html
    assert re.search(r'id="err-offers-currency_guardrails-GBP-min_cart_value" role="alert">'
                     r"Must be between 0 and", html)
    r = _post(client, token, **_row("EUR", **EUR), **_row("GBP", **EUR))
    assert r.status_code == 302
    rows = _stored(shop)["offers"]["currency_guardrails"]
    assert sorted(rows) == ["EUR", "GBP"]
    assert rows["EUR"]["daily_budget"] == "90.00" and rows["EUR"]["product_costs"] == {
        "p1": "3.00"}


def test_a_lower_case_code_stored_with_a_refused_figure_shows_it_at_its_input(admin, shop):
    client, _ = admin
    _selling(shop, "USD", "EUR", offers={"currency_guardrails": {
        "eur": {**EUR, "min_cart_value": "-5"}}})
    html = client.get("/admin/settings").get_data(as_text=True)
    assert f'name="{ROW}.EUR.min_cart_value" inputmode="decimal" value="-5"' in html
    assert f'name="{ROW}.EUR.daily_budget" inputmode="decimal" value="90"' in html
    assert re.findall(r'<tr><th scope="row">([A-Z]{3})', html) == ["EUR"]
