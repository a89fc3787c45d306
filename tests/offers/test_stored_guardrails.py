"""Guardrails stored out of the settings page's bounds (by an older release, or written
around the page): serving applies none of them; offers stop, logged and shown, never a 500."""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from html import unescape

import pytest
from marshmallow import ValidationError

from plugin.admin.schemas import OffersSchema
from plugin.fields import BoundedDecimal
from plugin.offers import service
from plugin.offers.settings import LIMITS, guardrails_from
from tests.admin.conftest import sign_in
from tests.offers.conftest import accept, configure, make_idle, quote


def _page_bounds() -> dict[str, tuple[Decimal, Decimal]]:
    """Each bounded figure of the offers section as the page's schema checks it."""
    out = {}
    for name, field in OffersSchema().fields.items():
        if isinstance(field, BoundedDecimal):
            out[name] = (field.minimum, field.maximum)
        else:
            for rule in getattr(field, "validators", []):
                if hasattr(rule, "min") and hasattr(rule, "max") and rule.max is not None:
                    out[name] = (Decimal(rule.min), Decimal(rule.max))
    return out


def test_the_page_and_serving_read_one_table_of_bounds():
    bounds = _page_bounds()
    assert set(bounds) >= {"max_discount_pct", "margin_floor_pct", "default_margin_pct",
                           "daily_budget", "monthly_budget", "frequency_cap_days",
                           "min_cart_value", "free_shipping_threshold"}
    for name, (low, high) in bounds.items():
        assert (Decimal(LIMITS[name][0]), Decimal(LIMITS[name][1])) == (low, high), name


@pytest.mark.parametrize("name", sorted(_page_bounds()))
@pytest.mark.parametrize("side", ["below", "above"])
def test_a_figure_the_page_refuses_is_refused_where_serving_reads_it(name, side):
    low, high = _page_bounds()[name]
    value = low - 1 if side == "below" else high + 1
    raw = {name: str(value)}
    if name == "daily_budget" and side == "above":
        raw["monthly_budget"] = str(value)  # refused for its own bound, not the pair's
    with pytest.raises(ValidationError):
        OffersSchema().load(raw)
    with pytest.raises(ValueError, match=name):
        guardrails_from(raw)
    rails = guardrails_from(raw, drop_refused=True)
    assert name in rails.refused
    assert getattr(rails, name) == getattr(guardrails_from(None), name)  # not applied


def test_the_page_s_largest_figures_are_taken():
    raw = {name: str(high) for name, (_, high) in _page_bounds().items()}
    rails = guardrails_from(raw)
    assert rails.max_discount_pct == 90 and rails.refused == ()


@pytest.mark.parametrize("raw", [
    {"monthly_budget": "50", "daily_budget": "100"},  # the page's rule across the two
    {"offer_ttl_minutes": 0}, {"offer_ttl_minutes": -5}, {"idle_minutes": 0},
    {"discount_levels_pct": [5, 95]}, {"discount_levels_pct": [0]},
    {"attribution_window_days": 0}, {"lapsed_days": -1}, {"nudge_period_days": 10**6},
    {"shipping_cost": "-1"}, {"product_costs": {"p1": "-3"}},
    {"excluded_products": [""]}, {"max_discount_pct": "lots"}, {"max_discount_pct": "NaN"},
    {"frequency_cap_days": "7.5"},
])
def test_figures_without_a_page_input_have_bounds_too(raw):
    with pytest.raises(ValueError):
        guardrails_from(raw)
    assert guardrails_from(raw, drop_refused=True).refused


def test_quote_with_a_stored_refused_figure_makes_no_offer_and_logs_why(client, shop,
                                                                        caplog):
    configure(shop, max_discount_pct=150)  # used to be a 500 on every quote
    make_idle(shop.id)
    with caplog.at_level(logging.WARNING, logger="plugin.offers.settings"):
        r = quote(client, shop)
    assert r.status_code == 200
    assert r.json["offer"] is None and r.json["reason_code"] == "settings_refused"
    assert "offers.max_discount_pct left out" in caplog.text


def test_quote_with_a_figure_above_the_page_s_bound_makes_no_offer(client, shop):
    """95 %: below the old serving bound (100), above the page's (90)."""
    configure(shop, max_discount_pct=95, discount_levels_pct=[5, 10, 15])
    make_idle(shop.id)
    r = quote(client, shop)
    assert r.json["offer"] is None and r.json["reason_code"] == "settings_refused"
    configure(shop, max_discount_pct=15)
    assert service.guardrails_for(shop).refused == ()


def test_an_offer_quoted_before_a_refused_figure_was_stored_is_not_accepted(client, shop):
    configure(shop)
    make_idle(shop.id)
    offer = quote(client, shop).json["offer"]
    assert offer is not None
    configure(shop, offer_ttl_minutes=0)  # written around the page
    r = accept(client, shop, offer["token"])
    assert r.status_code == 409 and service.PAUSED in r.get_data(as_text=True)


def test_the_admin_is_told_offers_are_paused_and_which_figure_to_correct(app, client, shop):
    configure(shop, max_discount_pct="95", offer_ttl_minutes=0)
    sign_in(app, client, shop)
    html = client.get("/admin/settings").get_data(as_text=True)
    note = re.search(r'id="offer-permission-note" role="status">([^<]*)<', html)
    assert note and "Offers are paused: the stored Max discount and " \
        "offers.offer_ttl_minutes (set in the settings JSON) are outside" in unescape(note[1])
    assert re.search(r'id="err-offers-max_discount_pct" role="alert">Must be between 0 '
                     r"and 90", html)
    dash = client.get("/admin/").get_data(as_text=True)
    assert 'id="offers-blocked"' in dash and "Offers are paused" in dash
