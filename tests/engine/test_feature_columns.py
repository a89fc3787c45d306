"""The ranker's feature matrix is written and read by column name, every column once."""

from __future__ import annotations

import numpy as np
import pytest

from plugin.engine.nextbasket import SCORE_FEATURES, TIME_FEATURES, NextBasketState
from plugin.engine.pairs import COL, FEATURES, feature_matrix
from plugin.engine.ranker import EXPLORE_FEATURES
from tests.engine.synthetic import CATALOG, build, weekly_history, weekly_rows


def test_every_feature_name_is_one_column():
    assert len(set(FEATURES)) == len(FEATURES)
    assert [COL[f] for f in FEATURES] == list(range(len(FEATURES)))
    for group in (TIME_FEATURES, SCORE_FEATURES, EXPLORE_FEATURES):
        assert set(group) <= set(FEATURES)


def test_feature_matrix_refuses_a_column_written_twice_or_never():
    everything = {f: float(k) for k, f in enumerate(FEATURES)}
    X = feature_matrix(2, everything)
    np.testing.assert_array_equal(X, np.tile(np.arange(len(FEATURES), dtype=float), (2, 1)))
    with pytest.raises(ValueError, match="'ease' written twice"):
        feature_matrix(2, everything, {"ease": 0.0})
    with pytest.raises(ValueError, match="never written: trending"):
        feature_matrix(2, {f: 0.0 for f in FEATURES if f != "trending"})
    with pytest.raises(ValueError, match="unknown feature 'nope'"):
        feature_matrix(2, everything | {"nope": 0.0})


@pytest.mark.parametrize("categories", [True, False])
def test_a_featurised_pool_sets_every_column(categories):
    """No NaN left of the matrix ``feature_matrix`` starts from, with and without the
    category columns, for the served pool and for a point-in-time one."""
    x = weekly_history() if categories else build(
        weekly_rows(), catalog={k: {**v, "categories": ["all"]} for k, v in CATALOG.items()})
    state = NextBasketState(x, n_popular=5, n_content=5, n_ease=5)
    assert (state.category_of is not None) == categories
    users = np.arange(x.n_users)
    for now in (None, np.full(x.n_users, float(np.median(x.timestamp)))):
        c = state.candidates(users, now)
        assert len(c.item) > x.n_users and c.X.shape == (len(c.item), len(FEATURES))
        assert not np.isnan(c.X).any()
        # the named columns hold what their names say
        assert set(np.unique(c.X[:, COL["is_repeat"]])) == {0.0, 1.0}
        np.testing.assert_array_equal(c.X[:, COL["is_repeat"]] == 1, ~np.isnan(c.last_time))
        assert (c.X[c.X[:, COL["is_repeat"]] == 0, COL["log_count"]] == 0).all()
