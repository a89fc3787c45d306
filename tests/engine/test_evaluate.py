"""Known-answer tests for the offline evaluation: splits and every metric, computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plugin.engine.base import BaseRecommender, Recommendation
from plugin.engine.baselines import PersonalTopFrequency
from plugin.engine.baskets import hold_out_last_basket
from plugin.engine.data import Interactions
from plugin.engine.evaluate import (
    METRICS,
    HeldOut,
    evaluate_model,
    last_basket_split,
    paired_ratio_interval,
    score_recommendations,
    split,
    temporal_split,
)

DAY = 86_400.0


def _data(rows: list[tuple[str, str, float, str]]) -> Interactions:
    users, items, times, baskets = zip(*rows, strict=True)
    return Interactions.from_arrays(users, items, times, baskets=baskets)


def _pairs(data: Interactions) -> set[tuple[str, str, float]]:
    return {(str(data.user_ids[u]), str(data.item_ids[i]), float(t))
            for u, i, t in zip(data.user, data.item, data.timestamp, strict=True)}


# --------------------------------------------------------------------------- splits
@pytest.fixture
def history() -> Interactions:
    return _data([
        ("u1", "a", 1 * DAY, "b1"), ("u1", "b", 1 * DAY, "b1"),
        ("u1", "a", 5 * DAY, "b2"),
        ("u1", "c", 9 * DAY, "b3"), ("u1", "d", 9 * DAY, "b3"), ("u1", "c", 9 * DAY, "b3"),
        ("u2", "a", 2 * DAY, "b4"),  # a single basket: history only, never a test user
        ("u3", "b", 3 * DAY, "b5"),
        ("u3", "e", 4 * DAY, "b6"),
    ])


def test_last_basket_holds_out_exactly_the_last_basket_of_multi_basket_users(history):
    train, test = last_basket_split(history)
    assert dict(test) == {"u1": {"c", "d"}, "u3": {"e"}}
    assert test.at == {"u1": 9 * DAY, "u3": 4 * DAY}
    assert _pairs(train) == {("u1", "a", DAY), ("u1", "b", DAY), ("u1", "a", 5 * DAY),
                             ("u2", "a", 2 * DAY), ("u3", "b", 3 * DAY)}
    assert list(train.item_ids) == list(history.item_ids)  # id maps survive the split


def test_a_held_out_basket_sharing_its_date_is_asked_after_the_one_before():
    """Dates as timestamps: two baskets of one day. The earlier one is in training, so the
    models are asked just after it, not "as of" the day (which would hide it)."""
    data = _data([("u", "a", 1 * DAY, "b1"), ("u", "milk", 3 * DAY, "b2"),
                  ("u", "bread", 3 * DAY, "b3")])
    train, test = last_basket_split(data)
    assert dict(test) == {"u": {"bread"}}
    assert 3 * DAY < test.at["u"] < 3 * DAY + 1e-3
    model = PersonalTopFrequency().fit(train)
    assert "milk" in [r.item for r in model.recommend("u", 2, at=test.at["u"])]


def test_baskets_of_one_date_keep_the_file_order_not_the_text_order_of_their_ids():
    """Basket "10" comes after "9" in the file: it is the last basket, whatever its text."""
    rows = [("c", "a", 1 * DAY, "1"), ("c", "bread", 5 * DAY, "9"), ("c", "cheese", 5 * DAY, "10"),
            ("d", "a", 1 * DAY, "2"), ("d", "z", 3 * DAY, "3")]
    assert dict(last_basket_split(_data(rows))[1])["c"] == {"cheese"}
    swapped = [*rows[:1], rows[2], rows[1], *rows[3:]]  # the file says "10" first
    assert dict(last_basket_split(_data(swapped))[1])["c"] == {"bread"}


def test_temporal_split_cuts_at_the_90th_percentile_and_keeps_the_next_basket():
    # 12 events; np.quantile(..., 0.9) of the times is 10 days, so day 10 is the first test day
    rows = [("A", "a", 1, "A1"), ("A", "b", 5, "A2"), ("A", "c", 10, "A3"), ("A", "d", 12, "A4")]
    rows += [("B", f"x{t}", t, f"B{t}") for t in (2, 3, 4, 6, 7, 8, 9)]
    rows += [("C", "z", 10, "C1")]  # no history before the cut: not a test user
    data = _data([(u, i, t * DAY, b) for u, i, t, b in rows])
    assert np.quantile(data.timestamp, 0.9) == 10 * DAY
    train, test = temporal_split(data)
    assert dict(test) == {"A": {"c"}}  # only the next basket, not day 12
    assert test.at == {"A": 10 * DAY}
    assert train.timestamp.max() == 9 * DAY and len(train) == 9


def test_temporal_split_keeps_a_basket_with_scan_times_across_the_cut_whole():
    """Basket A2 has lines at days 10 and 14; the p90 of line times (12.6) falls between
    them. The basket goes by its first line: wholly in training, not half in each."""
    rows = [("A", "a", 1, "A1"), ("A", "b", 10, "A2"), ("A", "c", 14, "A2"), ("A", "d", 13, "A3")]
    rows += [("B", f"x{t}", t, f"B{t}") for t in (2, 3, 4, 5, 6, 7, 8, 9, 11)]
    data = _data([(u, i, t * DAY, b) for u, i, t, b in rows])
    assert 10 * DAY < np.quantile(data.timestamp, 0.9) < 14 * DAY
    train, test = temporal_split(data)
    assert dict(test) == {"A": {"d"}, "B": {"x11"}}
    assert {("A", "b", 10 * DAY), ("A", "c", 14 * DAY)} <= _pairs(train)
    assert ("A", "d", 13 * DAY) not in _pairs(train)
    assert test.at["A"] > 14 * DAY  # asked after all of its training history, A2's end too


def test_last_basket_is_the_one_begun_last_as_the_models_order_baskets():
    """Baskets by their first line: A2 begins (day 3) after A1 (day 1), although A1 has a
    line scanned later (day 6). The temporal split and ``basket_pairs`` order them so too."""
    data = _data([("A", "a", 1 * DAY, "A1"), ("A", "b", 6 * DAY, "A1"),
                  ("A", "c", 3 * DAY, "A2"), ("B", "x", 1 * DAY, "B1"),
                  ("B", "y", 2 * DAY, "B2")])
    train, test = last_basket_split(data)
    assert dict(test) == {"A": {"c"}, "B": {"y"}}
    assert {("A", "a", DAY), ("A", "b", 6 * DAY)} <= _pairs(train)
    assert test.at["A"] > 6 * DAY  # asked after all of its training history
    _, keys, _ = hold_out_last_basket(data)  # the blend's own validation split
    assert {(str(data.user_ids[k // data.n_items]), str(data.item_ids[k % data.n_items]))
            for k in keys} == {(u, i) for u, items in test.items() for i in items}


@pytest.mark.parametrize("name", ["last-basket", "temporal"])
def test_splits_do_not_depend_on_how_ids_sort(name):
    """Renaming every customer, item and basket (a bijection that reverses their text order)
    holds out the same baskets: dates for times, so same-day baskets tie and go by file
    order, never by id."""
    rng = np.random.default_rng(5)
    rows = [(f"c{c}", f"i{rng.integers(30)}", (day + line) * DAY, f"o{c}-{b}")
            for c in range(25) for b, day in enumerate(rng.integers(0, 6, rng.integers(1, 5)))
            for line in range(int(rng.integers(1, 3)))]  # a second line a day later
    ids = sorted({x for r in rows for x in (r[0], r[1], r[3])})
    rename = {old: f"z{len(ids) - k:03d}" for k, old in enumerate(ids)}  # reversed order
    renamed = [(rename[u], rename[i], t, rename[b]) for u, i, t, b in rows]
    train, test = split(_data(rows), name)
    train2, test2 = split(_data(renamed), name)
    assert test
    assert dict(test2) == {rename[u]: {rename[i] for i in v} for u, v in test.items()}
    assert test2.at == {rename[u]: t for u, t in test.at.items()}
    assert _pairs(train2) == {(rename[u], rename[i], t) for u, i, t in _pairs(train)}


def test_split_by_name_rejects_unknown_names(history):
    assert dict(split(history, "last-basket")[1]) == dict(last_basket_split(history)[1])
    with pytest.raises(ValueError, match="unknown split"):
        split(history, "random")


# --------------------------------------------------------------------------- metrics
def test_metrics_match_hand_computed_values():
    test = {"a": {"x", "y"}, "b": {"z"}}
    recommended = {"a": ["x", "q", "y"], "b": ["w", "w"]}  # k=2 cuts y; b repeats w
    history = {"a": {"x", "q"}, "b": {"w"}}
    durable = {"q", "w"}
    per_user: dict[str, float] = {}
    m = score_recommendations(recommended, test, history, n_items=6, k=2,
                              is_durable=lambda items: np.array([i in durable for i in items]),
                              ndcg_per_user=per_user)
    ndcg_a = 1.0 / (1.0 + 1.0 / math.log2(3))  # hit at rank 1 of an ideal 2-hit list
    assert per_user == pytest.approx({"a": ndcg_a, "b": 0.0})
    assert m["recall@k"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["ndcg@k"] == pytest.approx(ndcg_a / 2)
    assert m["hr@k"] == pytest.approx(0.5)
    assert m["recall_repeat@k"] == pytest.approx(1.0)  # only a has a repeat item (x), hit
    assert m["recall_explore@k"] == pytest.approx(0.0)  # y (a) and z (b) both missed
    assert m["coverage"] == pytest.approx(3 / 6)  # x, q, w
    assert m["durable_rerec_rate"] == pytest.approx(2 / 3)  # q and w of 3 shown slots


def test_explore_recall_averages_over_users_with_new_items_only():
    test = {"a": {"n1", "n2", "old"}, "b": {"old"}}
    recommended = {"a": ["n1"], "b": ["old"]}
    history = {"a": {"old"}, "b": {"old"}}
    m = score_recommendations(recommended, test, history, n_items=10, k=10)
    assert m["recall_explore@k"] == pytest.approx(0.5)  # a only: 1 of 2 new items
    assert m["recall_repeat@k"] == pytest.approx((0 + 1) / 2)
    assert m["durable_rerec_rate"] == 0.0  # no judge, nothing counted


class _Fixed(BaseRecommender):
    """Stand-in model: a fixed list per shopper; records what it was asked."""

    def __init__(self, lists: dict | None = None) -> None:
        self.lists = lists

    def fit(self, interactions, *, show_progress=False):
        self.seen_events_ = len(interactions)
        self.calls_ = []
        return self

    def recommend(self, shopper, n=10, *, exclude=None, at=None):
        self.calls_.append((shopper, n, at))
        return [Recommendation(i, 1.0, "fixed", "test") for i in self.lists.get(shopper, [])]


class _Judge:
    """Stand-in RepurchaseModel: durable = the given item indices."""

    def __init__(self, durable: set[int]) -> None:
        self.durable = durable

    def is_durable(self, idx: np.ndarray) -> np.ndarray:
        return np.isin(idx, list(self.durable))


def test_evaluate_model_fits_on_train_asks_at_basket_time_and_reports_all_metrics(history):
    train, test = last_basket_split(history)
    model = _Fixed({"u1": ["c", "a", "e"], "u3": ["b", "e"]})
    judge = _Judge({int(train.item_index("a"))})
    m = evaluate_model(model, train, test, k=3, judge=judge)
    assert set(m) == set(METRICS)
    assert model.seen_events_ == len(train)
    assert sorted(model.calls_) == [("u1", 3, 9 * DAY), ("u3", 3, 4 * DAY)]
    assert m["recall@k"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["hr@k"] == 1.0
    # u1 already bought a (durable) and b is u3's own non-durable item: 1 of 5 slots
    assert m["durable_rerec_rate"] == pytest.approx(1 / 5)
    assert m["coverage"] == pytest.approx(4 / 5)  # a, b, c, e of a..e
    assert m["fit_seconds"] >= 0 and 0 <= m["recommend_ms_p50"] <= m["recommend_ms_p99"]


def test_held_out_is_a_plain_dict_with_times():
    held = HeldOut({"u": {"i"}}, at={"u": 3.0})
    assert held == {"u": {"i"}} and held.at["u"] == 3.0


def test_paired_ratio_interval_known_answers():
    base = np.array([0.1, 0.5, 0.3, 0.0, 0.8])
    # twice as good for every shopper: the ratio is 2 in every resample
    assert paired_ratio_interval(2 * base, base) == pytest.approx((2.0, 2.0, 2.0))
    rng = np.random.default_rng(0)
    few = rng.random(50)
    many = rng.random(5000)
    r_few = paired_ratio_interval(few * 1.1 + rng.normal(0, 0.1, 50), few)
    r_many = paired_ratio_interval(many * 1.1 + rng.normal(0, 0.1, 5000), many)
    for ratio, low, high in (r_few, r_many):
        assert low < ratio < high
    assert r_many[2] - r_many[1] < (r_few[2] - r_few[1]) / 3  # more shoppers, surer ratio
    assert r_many[1] < 1.1 < r_many[2]
    with pytest.raises(ValueError):
        paired_ratio_interval(base, base[:3])
