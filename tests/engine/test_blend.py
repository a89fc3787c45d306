"""Blender and MMR: named sources, exclusions, diversity that actually diversifies."""

from __future__ import annotations

import numpy as np
import pytest

from plugin.engine.blend import Blender
from plugin.engine.diversity import mmr
from tests.engine.contract import EstimatorContract
from tests.engine.synthetic import weekly_history


class TestBlenderContract(EstimatorContract):
    def make(self, random_state=0):
        return Blender()


def test_unknown_source_name_raises():
    with pytest.raises(ValueError, match="unknown source"):
        Blender(sources=("trending", "nope")).fit(weekly_history())


def test_sources_are_tried_in_order():
    model = Blender(sources=("repurchase_due", "trending"), learn_weights=False).fit(
        weekly_history())
    recs = model.recommend("s00", 10)
    sources = [r.source for r in recs]
    assert sources[0] == "repurchase_due"
    assert sources == sorted(sources, key=["repurchase_due", "trending"].index)


def test_owned_durables_and_cart_items_are_excluded():
    x = weekly_history()
    model = Blender(sources=("trending",)).fit(x)
    owned = {x.item_ids[i] for i in x.item[x.events_of(x.user_index("s00"))]}
    shown = {r.item for r in model.recommend("s00", 20, exclude=["bread"])}
    assert "bread" not in shown
    assert not shown & owned & {"seat", "kettle", "lamp"}


def test_mmr_without_diversity_keeps_relevance_order():
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert mmr(np.array([1.0, 0.99, 0.5]), vectors, 2, 0.0).tolist() == [0, 1]


def test_mmr_with_diversity_replaces_a_look_alike():
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert mmr(np.array([1.0, 0.99, 0.5]), vectors, 2, 0.7).tolist() == [0, 2]


def test_diversity_knob_diversifies_blended_lists():
    x = weekly_history()
    plain = Blender(sources=("itemknn", "trending"), diversity=0.0).fit(x)
    diverse = Blender(sources=("itemknn", "trending"), diversity=0.9).fit(x)

    def categories(m):
        return len({x.catalog.primary_category(x.item_index(r.item))
                    for r in m.recommend("s02", 4)})

    assert categories(diverse) > categories(plain)


def test_weights_are_learned_and_favour_the_informative_source():
    """On weekly groceries "what is due" predicts the next basket; content look-alikes do not."""
    model = Blender(sources=("repurchase_due", "content"), validation_users=24).fit(
        weekly_history())
    assert model.weights_ is not None
    assert model.weights_[0] > model.weights_[1]


def test_without_learned_weights_the_chain_order_decides():
    model = Blender(sources=("trending", "repurchase_due"), learn_weights=False).fit(
        weekly_history())
    assert model.weights_ is None
    assert model.recommend("s00", 3)[0].source == "trending"
