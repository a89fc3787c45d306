"""bench/seeds.py: every seed's draw against the best baseline, and their spread."""

from __future__ import annotations

import pytest

from plugin.engine.evaluate import split
from tests.engine.synthetic import weekly_history


def test_each_seed_is_a_refit_scored_against_the_best_baseline(seeds, tmp_path, monkeypatch):
    monkeypatch.setattr(seeds, "last_basket_split",
                        lambda *_: split(weekly_history(), "last-basket"))
    r = seeds.run("instacart-sample", tmp_path, [0, 1])
    assert [d["seed"] for d in r["draws"]] == [0, 1]
    assert r["best_baseline"] in {"g-pop", "p-topfreq", "itemknn", "als"}
    for d in r["draws"]:
        assert d["ratio"] == pytest.approx(d["ndcg"] / r["baseline_ndcg"])
        assert 0.0 <= d["ndcg"] <= 1.0


def test_table_ends_each_dataset_with_the_spread(seeds):
    draws = [{"seed": s, "ndcg": n, "explore": 0.01, "boost": 1.0, "ratio": n / 0.4}
             for s, n in [(0, 0.44), (1, 0.42), (2, 0.46)]]
    table = seeds.render({"instacart-sample": {"users": 5, "best_baseline": "p-topfreq",
                                               "baseline_ndcg": 0.4, "draws": draws}})
    lines = table.splitlines()
    assert lines[2] == "| instacart-sample | 0 | 0.4400 | 1.100x | 0.0100 | 1.0 |"
    assert "mean 1.100x (min 1.050x, max 1.150x)" in lines[5]
    assert lines[6].startswith("| instacart-sample | p-topfreq | 0.4000 |")


def test_seed_list_and_datasets_come_from_the_shared_parser(seeds):
    parser = seeds.dataset_parser("x")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = seeds.parse_datasets(parser, ["instacart-sample", "--seeds", "3", "4"])
    assert args.names == ["instacart-sample"] and args.seeds == [3, 4]
    assert seeds.parse_datasets(parser, []).names == list(seeds.DATASETS)
    with pytest.raises(SystemExit):
        seeds.parse_datasets(parser, ["no-such-dataset"])
