"""ContentRecommender: TF-IDF neighbours, including items nobody bought yet."""

from __future__ import annotations

from plugin.engine.content import ContentRecommender
from tests.engine.contract import EstimatorContract
from tests.engine.synthetic import CATALOG, T0, build


class TestContentContract(EstimatorContract):
    def make(self, random_state=0):
        return ContentRecommender()


def test_cold_start_item_is_found_by_its_text():
    catalog = {**CATALOG, "new-tea": {"title": "Organic green tea", "categories": ["tea"]}}
    model = ContentRecommender().fit(build([("u", "tea-a", T0, "b")], catalog))
    similar = model.similar_items("tea-a", 1)
    assert similar[0].item == "new-tea"
    assert similar[0].reason == "similar to Green tea"


def test_shopper_profile_pulls_in_unbought_look_alikes():
    catalog = {**CATALOG, "new-tea": {"title": "Organic green tea", "categories": ["tea"]}}
    model = ContentRecommender().fit(build([("u", "tea-a", T0, "b")], catalog))
    recs = model.recommend("u", 3)
    assert recs[0].item == "new-tea"
    assert "tea-a" not in {r.item for r in recs}
