"""bench/inner_splits.py: nested splits of the training data, one cell per split and seed."""

from __future__ import annotations

from itertools import pairwise

from plugin.engine.baselines import GlobalPopularity
from tests.engine.synthetic import weekly_history


def test_each_split_holds_out_the_basket_before_the_last_ones_held_out(inner_splits):
    data = weekly_history()
    splits = list(inner_splits.nested_splits(data, 3))
    assert [k for k, _, _ in splits] == [1, 2, 3]
    for (_, _, held), (_, inner, deeper) in pairwise(splits):
        # the deeper split's training data ends before the basket the shallower one held out
        for user, when in deeper.at.items():
            assert when < held.at[user]
            mine = inner.timestamp[inner.user == inner.user_index(user)]
            assert mine.max() < when
    assert len(splits[2][1]) < len(splits[1][1]) < len(splits[0][1]) < len(data)


def test_run_scores_each_split_and_seed_against_p_topfreq(inner_splits):
    cells = inner_splits.run(weekly_history(), [0, 1], 2, only={2},
                             model=lambda seed: GlobalPopularity())
    assert [(c["split"], c["seed"]) for c in cells] == [(2, 0), (2, 1)]
    assert all(0.0 <= c["ndcg"] <= 1.0 and 0.0 < c["p_topfreq"] <= 1.0 for c in cells)
    assert cells[0]["ndcg"] == cells[1]["ndcg"]  # the same model on the same split
