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


class _Boosted(GlobalPopularity):
    """A model that learned a new-item boost, as the shopkeeper model does."""

    def fit(self, data):
        self.explore_boost_ = 2.5
        return super().fit(data)


def test_each_cell_and_the_mean_show_the_new_item_recall_and_learned_boost(inner_splits,
                                                                           capsys):
    cells = inner_splits.run(weekly_history(), [0], 1, model=lambda seed: _Boosted())
    printed = capsys.readouterr().out
    assert cells[0]["boost"] == 2.5
    assert printed.endswith(f"new-item recall {cells[0]['explore']:.4f}, "
                            "new-item boost 2.500\n")
    cells.append({**cells[0], "seed": 1, "explore": 0.5, "boost": 0.5})
    cells.append({**cells[0], "seed": 2, "explore": 0.5, "boost": None})  # a baseline
    mean = inner_splits.mean_line("weekly", cells)
    assert mean.startswith("weekly: mean of 3 cells: NDCG@10 ")
    assert mean.endswith(f"new-item recall {(cells[0]['explore'] + 1) / 3:.4f}, "
                         "new-item boost 1.500")
    assert inner_splits.cell_line(cells[2]).endswith("new-item boost n/a")
