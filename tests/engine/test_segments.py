"""SegmentRecommender: shoppers like you, from KMeans on purchase profiles."""

from __future__ import annotations

from plugin.engine.segments import SegmentRecommender
from tests.engine.contract import EstimatorContract
from tests.engine.synthetic import T0, build


class TestSegmentContract(EstimatorContract):
    def make(self, random_state=0):
        return SegmentRecommender(n_segments=2, n_components=4, random_state=random_state)


def test_shopper_gets_what_their_segment_buys():
    rows = []
    for k in range(8):
        rows += [(f"tea{k}", i, T0 + k, f"t{k}") for i in ("tea-a", "tea-b", "tea-c")]
        rows += [(f"diy{k}", i, T0 + k, f"d{k}") for i in ("seat", "kettle", "lamp")]
    rows += [("newbie", "tea-a", T0 + 99, "x")]
    model = SegmentRecommender(n_segments=2, n_components=2, random_state=0).fit(build(rows))
    recs = model.recommend("newbie", 2)
    assert {r.item for r in recs} == {"tea-b", "tea-c"}
    assert recs[0].reason == "popular with shoppers like you"


def test_items_with_a_single_buyer_are_not_called_popular():
    rows = [(f"u{k}", "milk", T0 + k, f"b{k}") for k in range(5)]
    rows += [("u0", "one-off", T0 + 9, "x")]
    model = SegmentRecommender(n_segments=1, n_components=1).fit(build(rows))
    assert "one-off" not in {r.item for r in model.recommend("u3", 5)}


def test_a_shopper_without_history_is_not_told_shoppers_like_them():
    """Nothing is known of them (a new customer, or one asked about before their first
    purchase): the largest segment's favourites are just popular, not 'like you'."""
    rows = []
    for k in range(8):
        rows += [(f"tea{k}", i, T0 + k, f"t{k}") for i in ("tea-a", "tea-b", "tea-c")]
    model = SegmentRecommender(n_segments=2, n_components=2, random_state=0).fit(build(rows))
    for shopper, at in (("stranger", None), ("tea0", T0 - 1)):
        recs = model.recommend(shopper, 2, at=at)
        assert recs and all("like you" not in r.reason for r in recs)
