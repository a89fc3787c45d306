"""TrendingRecommender: recent sales outrank old ones; category-level trending."""

from __future__ import annotations

import pytest

from plugin.engine.trending import TrendingRecommender
from tests.engine.contract import EstimatorContract
from tests.engine.synthetic import CATALOG, DAY, T0, build


class TestTrendingContract(EstimatorContract):
    def make(self, random_state=0):
        return TrendingRecommender()


def _rows():
    rows = [(f"old{k}", "kettle", T0 + k * 60, f"o{k}") for k in range(10)]  # 10 sales, day 0
    rows += [(f"new{k}", "lamp", T0 + 60 * DAY + k * 60, f"n{k}") for k in range(4)]  # 4, day 60
    rows += [("fan", "milk", T0 + 59 * DAY, "f1"), ("fan", "milk", T0 + 60 * DAY, "f2")]
    return rows


def test_recent_sales_outrank_old_ones():
    model = TrendingRecommender(half_life_days=14, per_category=False).fit(build(_rows()))
    assert [r.item for r in model.recommend("nobody", 3)][:2] == ["lamp", "milk"]


def test_scores_at_an_earlier_moment_ignore_later_sales():
    model = TrendingRecommender(half_life_days=14, per_category=False).fit(build(_rows()))
    early = model.recommend("nobody", 3, at=T0 + DAY)
    assert [r.item for r in early] == ["kettle"]


def test_shopper_sees_trending_in_their_favourite_category():
    model = TrendingRecommender().fit(build(_rows(), CATALOG))
    recs = model.recommend("fan", 2)
    assert recs[0].item == "milk" and recs[0].reason == "trending in dairy"


def test_early_moment_of_a_long_history_still_finds_its_trend():
    """Asked in month one of two years of sales, the first month's sales still count
    (their weights, ~2 ** -50 of today's, were lost next to the whole shop's running sum)."""
    rows = [("a", "tea-a", T0 + DAY, "a1"), ("b", "tea-a", T0 + 2 * DAY, "b1"),
            ("c", "tea-b", T0 + 1.5 * DAY, "c1")]
    rows += [(f"z{d}-{j}", f"snack-{j}", T0 + d * DAY, f"z{d}-{j}")
             for d in range(40, 730) for j in range(8)]
    model = TrendingRecommender(half_life_days=14, per_category=False).fit(build(rows))
    early = model.recommend("nobody", 3, at=T0 + 10 * DAY)
    assert [r.item for r in early] == ["tea-a", "tea-b"]
    assert early[0].score == pytest.approx(0.5 ** (9 / 14) + 0.5 ** (8 / 14))
