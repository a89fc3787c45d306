"""EASERecommender: a closed-form linear item model on a known co-occurrence."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from plugin.engine.collaborative import EASERecommender, ease_weights
from tests.engine.contract import EstimatorContract
from tests.engine.synthetic import T0, build


class TestEASEContract(EstimatorContract):
    def make(self, random_state=0):
        return EASERecommender(l2=10.0, min_support=2)


def test_item_bought_by_the_same_shoppers_is_recommended():
    rows = []
    for k in range(6):
        rows += [(f"a{k}", "milk", T0, f"a{k}"), (f"a{k}", "bread", T0, f"a{k}")]
        rows += [(f"b{k}", "kettle", T0, f"b{k}"), (f"b{k}", "lamp", T0, f"b{k}")]
    rows += [("new", "milk", T0 + 1, "n")]
    model = EASERecommender(l2=1.0, min_support=2).fit(build(rows))
    assert model.recommend("new", 1)[0].item == "bread"


def test_only_the_best_supported_items_are_modelled():
    rows = [(f"u{k}", f"i{k % 5}", T0 + k, f"b{k}") for k in range(40)]
    model = EASERecommender(max_items=3, min_support=1).fit(build(rows))
    assert model.weights_.shape == (3, 3)


def test_ease_weights_match_the_closed_form_with_a_plain_inverse():
    rng = np.random.default_rng(0)
    bought = sp.csr_matrix((rng.random((40, 12)) < 0.3).astype(float))
    gram = (bought.T @ bought).toarray() + 5.0 * np.eye(12)
    p = np.linalg.inv(gram)
    expected = -p / np.diag(p)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(ease_weights(bought, 5.0), expected, atol=1e-12)
