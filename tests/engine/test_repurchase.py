"""RepurchaseModel: the toilet-seat rule and due dates on a hand-made history."""

from __future__ import annotations

import numpy as np
import pytest

from plugin.engine.repurchase import RepurchaseModel
from tests.engine.contract import EstimatorContract
from tests.engine.synthetic import DAY, T0, build


class TestRepurchaseContract(EstimatorContract):
    def make(self, random_state=0):
        return RepurchaseModel()


def _seat_and_milk():
    """20 shoppers: a seat once each, milk every 7 days for 8 weeks."""
    rows = []
    for s in range(20):
        rows.append((f"u{s}", "seat", T0 + s * 3600, f"u{s}-seat"))
        for w in range(8):
            rows.append((f"u{s}", "milk", T0 + (7 * w + 1) * DAY + s * 60, f"u{s}-{w}"))
    return build(rows)


@pytest.fixture(scope="module")
def model():
    return RepurchaseModel().fit(_seat_and_milk())


def test_items_bought_once_by_everyone_are_durable(model):
    x = model.data_
    seat, milk = x.item_index("seat"), x.item_index("milk")
    assert model.kind_[seat] == "durable"
    assert model.kind_[milk] == "consumable"
    assert model.is_durable(np.array([seat, milk])).tolist() == [True, False]


def test_weekly_item_has_a_seven_day_interval(model):
    assert model.interval_days_[model.data_.item_index("milk")] == pytest.approx(7.0, abs=0.1)
    assert np.isnan(model.interval_days_[model.data_.item_index("seat")])


def test_weekly_consumable_is_due_after_about_seven_days(model):
    last = T0 + (7 * 7 + 1) * DAY
    due = model.due("u0", at=last + 7.2 * DAY)
    assert [r.item for r in due] == ["milk"]
    # the last milk was on 3 Jan 2024 (T0 is 14 Nov 2023, plus 50 days): due a week on,
    # 10 Jan; read on the 11th that date is past
    assert due[0].reason == "you usually reorder this every ~7 days, due now"
    early = model.due("u0", at=last + 6 * DAY)
    assert [r.reason for r in early] == ["you usually reorder this every ~7 days, "
                                         "due about 10 Jan"]


def test_consumable_is_not_due_two_days_after_buying(model):
    last = T0 + (7 * 7 + 1) * DAY
    assert model.due("u0", at=last + 2 * DAY) == []


def test_durable_never_comes_back(model):
    for days in (1, 7, 30, 365):
        recs = model.recommend("u0", 10, at=T0 + 50 * DAY + days * DAY)
        assert "seat" not in {r.item for r in recs}


def test_rare_item_borrows_its_category_rate():
    """An item with one buyer is judged by its category, not by its own single sale."""
    rows = []
    for s in range(15):
        for w in range(4):  # every shopper re-buys a different tea: tea is consumable
            rows.append((f"u{s}", f"tea-{s}", T0 + 7 * w * DAY, f"u{s}-{w}"))
        rows.append((f"u{s}", "lamp", T0 + 1, f"u{s}-x"))
    rows.append(("u0", "tea-rare", T0 + 2 * DAY, "u0-rare"))
    cat = {f"tea-{s}": {"categories": ["tea"]} for s in range(15)}
    cat |= {"tea-rare": {"categories": ["tea"]}, "lamp": {"categories": ["home"]}}
    model = RepurchaseModel().fit(build(rows, cat))
    x = model.data_
    assert model.kind_[x.item_index("tea-rare")] != "durable"
    assert model.kind_[x.item_index("lamp")] == "durable"


def test_a_single_purchase_is_not_called_the_shoppers_habit():
    """Bought once: due by the shop's usual interval, but not 'you usually reorder'."""
    rows = [*_seat_and_milk_rows(), ("once", "milk", T0 + 10 * DAY, "once-0"),
            ("once", "seat", T0 + 11 * DAY, "once-1")]
    model = RepurchaseModel().fit(build(rows))
    due = model.due("once", at=T0 + 17.5 * DAY)
    assert [r.item for r in due] == ["milk"]
    assert "you usually" not in due[0].reason and "~7 days" in due[0].reason


def _seat_and_milk_rows():
    for s in range(20):
        yield (f"u{s}", "seat", T0 + s * 3600, f"u{s}-seat")
        for w in range(8):
            yield (f"u{s}", "milk", T0 + (7 * w + 1) * DAY + s * 60, f"u{s}-{w}")


def test_a_second_order_on_the_same_day_does_not_shorten_the_interval():
    """Weekly milk bought in two orders an hour apart is still a 7-day item, and a shopper
    who bought it once is told so (not "every ~3 days", which made it due too soon)."""
    rows = []
    for s in range(10):
        for w in range(6):
            rows.append((f"u{s}", "milk", T0 + 7 * w * DAY + s * 60, f"u{s}-{w}"))
            rows.append((f"u{s}", "milk", T0 + 7 * w * DAY + s * 60 + 3600, f"u{s}-{w}b"))
    rows.append(("once", "milk", T0 + 10 * DAY, "once-0"))
    model = RepurchaseModel().fit(build(rows))
    assert model.interval_days_[model.data_.item_index("milk")] == pytest.approx(7.0, abs=0.1)
    assert model.due("once", at=T0 + 13 * DAY) == []
    assert "~7 days" in model.due("once", at=T0 + 17 * DAY)[0].reason


def test_a_daily_rhythm_reads_every_day():
    rows = [(f"u{s}", "milk", T0 + d * DAY + s * 60, f"u{s}-{d}")
            for s in range(10) for d in range(10)]
    model = RepurchaseModel().fit(build(rows))
    due = model.due("u0", at=T0 + 10 * DAY)
    assert [r.reason for r in due] == ["you usually reorder this every day, due about 24 Nov"]


def _charger_twice_on_day_one():
    """20 shoppers: a charger in two orders on their first day, then milk every week."""
    rows = []
    for s in range(20):
        rows.append((f"u{s}", "charger", T0 + s * 60, f"u{s}-a"))
        rows.append((f"u{s}", "charger", T0 + s * 60 + 1800, f"u{s}-b"))  # same day
        for w in range(1, 6):
            rows.append((f"u{s}", "milk", T0 + 7 * w * DAY + s * 60, f"u{s}-{w}"))
    cat = {"charger": {"categories": ["electronics"]}, "milk": {"categories": ["dairy"]}}
    return RepurchaseModel().fit(build(rows, cat))


def test_an_item_bought_twice_on_one_day_is_not_consumable():
    """Two orders on one day (a split basket, a forgotten second one) are no repurchase: a
    charger every shopper bought twice on their first day and never again is not called
    consumable, while their weekly milk is."""
    model = _charger_twice_on_day_one()
    x = model.data_
    assert model.repeat_rate_[x.item_index("charger")] < model.durable_below
    assert model.kind_[x.item_index("charger")] != "consumable"
    assert model.kind_[x.item_index("milk")] == "consumable"


def test_a_category_bought_in_two_orders_on_one_day_is_not_variety():
    """Nor is it a return to the category: the charger is durable (never shown again to
    its buyers), not "variety" whose siblings and itself stay recommendable."""
    model = _charger_twice_on_day_one()
    charger = model.data_.item_index("charger")
    assert model.category_rebuy_[charger] == 0.0
    assert model.kind_[charger] == "durable"


def test_buyers_who_never_shopped_on_another_day_say_nothing_about_repeats():
    """Shoppers whose only day held both their orders could not have bought again on a
    later one: a new snack only they bought takes its category's (consumable) rate instead
    of looking one-off."""
    rows = []
    for s in range(20):  # regulars re-buy crisps every week: snacks are consumable
        for w in range(5):
            rows.append((f"r{s}", "crisps", T0 + 7 * w * DAY + s * 60, f"r{s}-{w}"))
    for s in range(40):  # one day each, two orders, never back
        rows.append((f"d{s}", "nuts", T0 + 3 * DAY + s * 60, f"d{s}-a"))
        rows.append((f"d{s}", "nuts", T0 + 3 * DAY + s * 60 + 1800, f"d{s}-b"))
    cat = {"crisps": {"categories": ["snacks"]}, "nuts": {"categories": ["snacks"]}}
    model = RepurchaseModel().fit(build(rows, cat))
    assert model.kind_[model.data_.item_index("nuts")] == "consumable"
