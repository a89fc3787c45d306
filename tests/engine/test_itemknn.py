"""ItemKNNRecommender: neighbours on a tiny co-purchase matrix."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.engine.itemknn import ItemKNNRecommender, top_k_per_row
from tests.engine.contract import EstimatorContract
from tests.engine.synthetic import CATALOG, T0, build


class TestItemKNNContract(EstimatorContract):
    def make(self, random_state=0):
        return ItemKNNRecommender()


def _tiny():
    # milk+bread bought together 4 times, kettle+lamp 3 times, milk+lamp once
    rows = []
    for k in range(4):
        rows += [(f"a{k}", "milk", T0 + k, f"a{k}"), (f"a{k}", "bread", T0 + k, f"a{k}")]
    for k in range(3):
        rows += [(f"b{k}", "kettle", T0 + k, f"b{k}"), (f"b{k}", "lamp", T0 + k, f"b{k}")]
    rows += [("c", "milk", T0, "c"), ("c", "lamp", T0, "c"), ("d", "milk", T0 + 9, "d")]
    return build(rows, CATALOG)


def test_frequently_bought_together_ranks_the_strongest_pair_first():
    model = ItemKNNRecommender(shrink=0.0).fit(_tiny())
    together = model.similar_items("milk", 2)
    assert [r.item for r in together] == ["bread", "lamp"]
    assert together[0].reason == "frequently bought together with Whole milk"
    assert together[0].score > together[1].score


def test_because_you_bought_names_the_item_that_led_there():
    model = ItemKNNRecommender(shrink=0.0).fit(_tiny())
    recs = model.recommend("d", 1)
    assert recs[0].item == "bread"
    assert recs[0].reason == "because you bought Whole milk"


def test_items_below_min_support_get_no_neighbours():
    model = ItemKNNRecommender(min_support=5).fit(_tiny())
    assert model.similarity_.nnz == 0


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 8))
def test_top_k_per_row_keeps_the_k_largest_ties_by_lower_column(seed, k):
    """Against a direct per-row sort, on matrices full of ties."""
    rng = np.random.default_rng(seed)
    m = sp.random(30, 20, density=rng.uniform(0, 0.9), random_state=seed, format="csr")
    m.data = np.round(m.data * 3) / 3
    got = top_k_per_row(m, k)
    for r in range(m.shape[0]):
        row = m.getrow(r)
        entries = sorted(zip(-row.data, row.indices, strict=True))[:k]
        want = {(int(c), -v) for v, c in entries}
        s, e = got.indptr[r], got.indptr[r + 1]
        assert set(zip(got.indices[s:e].tolist(), got.data[s:e].tolist(), strict=True)) == want
