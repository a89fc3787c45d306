"""The merchant's repurchase overrides (Settings → Repurchase overrides) change what
shoppers are shown, at once and on every path, whatever the model learned.

Thirty shoppers buy milk (``p1``, category "Dairy") and bread every week and a toilet seat
(``seat``) once: the model calls milk a consumable due every seven days and the seat a
durable. The merchant knows better for their shop.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa

from plugin.api import access
from plugin.api.overrides import DAY, Override
from plugin.extensions import db
from plugin.models import RecommendationCache
from plugin.models.types import utcnow
from tests.api.conftest import (
    PRODUCTS,
    Api,
    add_order,
    add_products,
    customer_headers,
    fitted_recommender,
    ids,
    weekly_grocer,
)

EVERY_WEEK = "you usually reorder this every ~7 days"


@pytest.fixture
def grocer(shop):
    weekly_grocer(shop, seat=True, categories={"p1": "Dairy", "seat": "Bathroom"})
    repurchase = fitted_recommender(shop).repurchase_
    kind = {pid: repurchase.kind_[repurchase.data_.item_index(pid)] for pid in ("p1", "seat")}
    assert kind == {"p1": "consumable", "seat": "durable"}
    return shop


@pytest.fixture
def grocer_api(client, grocer) -> Api:
    return Api(client, grocer)


def _override(shop, *lines) -> None:
    """What a save on the settings page stores (the API forgets its copy at once)."""
    shop.settings = {**shop.settings, "repurchase_overrides": list(lines)}
    db.session.commit()
    access.forget_shops()


def _line(field: str, value: str, kind: str, cycle_days: int | None = None) -> dict:
    return {"field": field, "value": value, "kind": kind, "cycle_days": cycle_days}


def _bought(shop, customer: str, item: str, *days_ago: float) -> None:
    for days in days_ago:
        add_order(shop.id, customer, f"{customer}-{item}-{days}", [item],
                  utcnow() - timedelta(days=days))


def _twins(shop, name: str, item: str, *days_ago: float) -> tuple[str, str]:
    """Two shoppers with one history: one asked before the save, one after (each is read
    once per request, and the test client's requests share their ``g``)."""
    for who in (f"{name}-before", f"{name}-after"):
        _bought(shop, who, item, *days_ago)
    return f"{name}-before", f"{name}-after"


def _for_you(api, shop, customer: str) -> list[str]:
    return ids(api.recs(n=11, headers=customer_headers(shop, customer)))


def _usual(api, shop, customer: str) -> list[tuple[str, str]]:
    body = api.recs("reorder", n=8, headers=customer_headers(shop, customer)).get_json()
    return [(i["product_id"], i["reason"]) for i in body["items"]]


def _cached(shop, customer: str) -> list[str]:
    row = db.session.scalar(sa.select(RecommendationCache.items).where(
        RecommendationCache.shop_id == shop.id, RecommendationCache.shopper_id == customer))
    return [i for i, *_ in row]


@pytest.mark.parametrize("line", [_line("product", "p1", "durable"),
                                  _line("category", "dAIRY", "durable")],
                         ids=["product", "category"])
def test_a_durable_override_hides_a_bought_item_the_model_thinks_consumable(
        grocer_api, grocer, line):
    """Milk bought a month ago is due by the model: in the cached list of a shopper it was
    fitted on, the back-fill of one it was not, and "the usual?"; declared durable, it is
    in none of them for whoever bought it, and still offered to a shopper who never did."""
    before, after = _twins(grocer, "monthly", "p1", 50, 40, 30)
    assert "p1" in _cached(grocer, "c00") and "p1" in _cached(grocer, "c01")
    assert "p1" in _for_you(grocer_api, grocer, "c00")  # controls: the model brings milk back
    assert "p1" in _for_you(grocer_api, grocer, before)
    assert ("p1", "you have ordered this 3 times") in _usual(grocer_api, grocer, before)
    _override(grocer, line)
    assert "p1" not in _for_you(grocer_api, grocer, "c01")
    assert "p1" not in _for_you(grocer_api, grocer, after)
    assert "p1" not in [item for item, _ in _usual(grocer_api, grocer, after)]
    assert "p1" in _for_you(grocer_api, grocer, "stranger")


def test_a_consumable_override_holds_back_until_its_cycle_then_is_the_usual(
        grocer_api, grocer):
    """Every 7 days, says the merchant: milk this shopper buys every three days is not
    offered three days after the last pack (their own rhythm would), and a seat bought
    eight days ago (a durable to the model) is due again, with the merchant's rhythm."""
    three = _twins(grocer, "three-days", "p1", 9, 6, 3)
    eight = _twins(grocer, "eight-days", "seat", 8)
    _twins(grocer, "eight-days", "p1", 8)
    assert "p1" in _for_you(grocer_api, grocer, three[0])  # controls: the model's say
    assert "p1" in [item for item, _ in _usual(grocer_api, grocer, three[0])]
    assert "seat" not in _for_you(grocer_api, grocer, eight[0])
    assert _usual(grocer_api, grocer, eight[0]) == []
    _override(grocer, _line("product", "p1", "consumable", 7),
              _line("category", "bathroom", "consumable", 7))
    assert "p1" not in _for_you(grocer_api, grocer, three[1])
    assert "p1" not in [item for item, _ in _usual(grocer_api, grocer, three[1])]
    usual = _usual(grocer_api, grocer, eight[1])
    assert sorted(usual) == [("p1", EVERY_WEEK), ("seat", EVERY_WEEK)]
    assert "seat" in _for_you(grocer_api, grocer, eight[1])


def test_a_product_line_wins_over_its_category_line(grocer_api, grocer):
    _bought(grocer, "eight-days", "p1", 8)
    _override(grocer, _line("category", "Dairy", "durable"),
              _line("product", "p1", "consumable", 7))
    assert _usual(grocer_api, grocer, "eight-days") == [("p1", EVERY_WEEK)]


def test_a_refused_stored_line_is_skipped_and_logged_not_a_500(grocer_api, grocer, caplog):
    """Lines the settings page would refuse (a consumable without a cycle, an unknown
    field, not a line at all) are skipped; the valid one still applies."""
    _bought(grocer, "monthly", "p1", 30)
    _override(grocer, _line("category", "Dairy", "consumable"),
              _line("shelf", "p1", "consumable", 7), "product p1 consumable 7",
              _line("product", "p1", "durable"))
    with caplog.at_level(logging.WARNING, logger="shopkeeper.api.overrides"):
        response = grocer_api.recs(n=11, headers=customer_headers(grocer, "monthly"))
        assert response.status_code == 200
        assert "p1" not in ids(response) and ids(response)
        usual = grocer_api.recs("reorder", headers=customer_headers(grocer, "monthly"))
        assert usual.status_code == 200
    skipped = [r for r in caplog.records if r.getMessage() == "api.repurchase_override_skipped"]
    assert [r.line for r in skipped] == [1, 2, 3]


def test_one_shops_overrides_do_not_touch_another_shop(grocer_api, grocer, client):
    """Shop B sells a "p1" too (untrained: its popular list is its recent sales)."""
    from tests.factories import make_shop

    other = make_shop()
    other.settings = {"allowed_origins": ["https://store.example"], "holdout_share": 0}
    db.session.commit()
    add_products(other.id, PRODUCTS)
    for c in range(5):
        add_order(other.id, f"b{c}", f"b{c}", ["p1", "p2"], utcnow() - timedelta(days=40))
    _bought(other, "monthly", "p1", 30)
    _bought(grocer, "monthly", "p1", 30)
    _override(grocer, _line("product", "p1", "durable"))
    assert "p1" not in _for_you(grocer_api, grocer, "monthly")
    assert "p1" in _for_you(Api(client, other), other, "monthly")


def test_an_overridden_consumable_is_due_from_its_cycle_until_it_lapses():
    """Every 7 days: held back for the first seven, then due ("the usual?") until three
    cycles have passed, the window of a learned consumable (``RepurchaseModel.due_in``);
    after that no longer due (the shopper stopped buying it), nor held back."""
    weekly, last = Override("consumable", 7), 1_000_000.0
    days = (0, 6.99, 7, 14, 21, 21.01, 90)
    assert [weekly.due(last, last + d * DAY) for d in days] == \
        [False, False, True, True, True, False, False]
    assert [weekly.holds(last, last + d * DAY) for d in days] == \
        [True, True, False, False, False, False, False]
    durable = Override("durable")
    assert not any(durable.due(last, last + d * DAY) for d in days)
    assert all(durable.holds(last, last + d * DAY) for d in days)


def test_an_overridden_consumable_stops_being_the_usual_once_it_lapses(grocer_api, grocer):
    """Every 7 days, says the merchant: a seat last bought 30 days ago is no longer "the
    usual?" (it stayed due for ever), as a learned consumable is not once three intervals
    passed; bought again 8 days ago, it is due again."""
    _bought(grocer, "lapsed", "seat", 30)
    _bought(grocer, "again", "seat", 30, 8)
    _override(grocer, _line("category", "bathroom", "consumable", 7))
    assert _usual(grocer_api, grocer, "lapsed") == []
    assert _usual(grocer_api, grocer, "again") == [("seat", EVERY_WEEK)]


def _listed(api, shop, customer: str, n: int) -> list[tuple[str, str, str]]:
    body = api.recs(n=n, headers=customer_headers(shop, customer)).get_json()
    return [(i["product_id"], i["source"], i["reason"]) for i in body["items"]]


SEAT_DUE = ("seat", "repurchase_due", EVERY_WEEK)


def test_a_consumable_override_brings_a_learned_durable_back_into_for_you_once_due(
        grocer_api, grocer):
    """The model calls the seat a durable: bought once, never offered again, so neither
    the lists the fit precomputed nor its online list can hold it. Every 7 days, says the
    merchant: a shopper who bought one 8 days ago finds it in their own For you list, a full
    one (the popular back-fill behind it, where it turned up by chance, is not reached),
    with the merchant's rhythm, as the model shows a learned consumable that is due. Bought
    3 days ago it is not offered yet; 30 days ago it has lapsed (not offered as due); 30 and
    8 days ago it is due (the last purchase counts). Milk, declared durable, never comes
    back (the reverse)."""
    for fitted in ("c00", "c01", "c04"):
        _bought(grocer, fitted, "seat", 8)
    _bought(grocer, "c02", "seat", 3)
    _bought(grocer, "c03", "seat", 30)
    _bought(grocer, "c05", "seat", 30, 8)
    _bought(grocer, "unfitted", "seat", 8)  # the model does not know them: its online list
    control = _listed(grocer_api, grocer, "c00", 3)
    assert len(control) == 3 and "seat" not in [item for item, *_ in control]
    _override(grocer, _line("category", "Bathroom", "consumable", 7),
              _line("product", "p1", "durable"))
    for due in ("c01", "c05", "unfitted"):
        listed = _listed(grocer_api, grocer, due, 3)
        assert listed[0] == SEAT_DUE and len(listed) == 3, due
    assert "p1" not in [item for item, *_ in _listed(grocer_api, grocer, "c04", 11)]
    assert "seat" not in [item for item, *_ in _listed(grocer_api, grocer, "c02", 11)]
    assert "repurchase_due" not in [src for item, src, _ in
                                    _listed(grocer_api, grocer, "c03", 11) if item == "seat"]
    assert "seat" not in _cached(grocer, "c01")  # served so, with no refit


def test_due_by_override_from_its_cycle_until_it_lapses_a_purchase_restarting_it(shop):
    """A hand-made history: the seat bought once at ``t0``, weekly by the merchant's line."""
    from plugin.api.due import due_by_override

    shop.settings = {"repurchase_overrides": [_line("product", "seat", "consumable", 7)]}
    db.session.commit()
    t0 = utcnow() - timedelta(days=400)
    add_order(shop.id, "hand", "o-1", ["seat", "p2"], t0)

    def due_after(days: float) -> list[tuple[str, str]]:
        return [(r.item, r.reason) for r in due_by_override(shop.id, "hand",
                                                            now=t0 + timedelta(days=days))]

    assert [due_after(d) for d in (6.99, 7, 21, 21.01)] == \
        [[], [("seat", EVERY_WEEK)], [("seat", EVERY_WEEK)], []]
    add_order(shop.id, "hand", "o-2", ["seat"], t0 + timedelta(days=40))
    assert [due_after(d) for d in (46.99, 47, 61, 61.01)] == \
        [[], [("seat", EVERY_WEEK)], [("seat", EVERY_WEEK)], []]
