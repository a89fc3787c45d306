"""TrendingRecommender: recent sales outrank old ones; category-level trending."""

from __future__ import annotations

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
