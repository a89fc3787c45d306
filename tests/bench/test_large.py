"""bench/large.py: renamed copies of a file, and the CLI's own path timed in a child."""

from __future__ import annotations

import csv
import gzip
import random

import pytest


def _shop(path, customers: int = 30) -> None:
    rng = random.Random(3)
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        f.write("customer_id,item_id,timestamp,basket_id,quantity,price\n")
        for c in range(customers):
            for b in range(rng.randint(2, 4)):
                for item in rng.sample(range(12), 3):
                    f.write(f"c{c},i{item},2024-03-{1 + 7 * b:02d},o{b},1,2.5\n")


def test_copies_rename_customers_and_keep_baskets(large, tmp_path):
    source = tmp_path / "in.csv.gz"
    _shop(source, customers=5)
    with gzip.open(source, "rt") as f:
        original = list(csv.reader(f))[1:]
    n = large.replicate(source, 3, tmp_path / "x3.csv")
    with open(tmp_path / "x3.csv") as f:
        rows = list(csv.DictReader(f))
    assert n == len(rows) == 3 * len(original)
    assert {r["customer_id"] for r in rows} == {f"c{c}~{k}" for c in range(5) for k in range(3)}
    first = [r for r in rows if r["customer_id"] == "c0~2"]
    assert [[r["item_id"], r["basket_id"]] for r in first] == [
        [row[1], row[3]] for row in original if row[0] == "c0"]


def test_child_runs_the_whole_evaluation_and_reports_its_phases(large, tmp_path):
    source = tmp_path / "in.csv.gz"
    _shop(source)
    r = large.child(source)
    assert r["lines"] > 0 and r["shoppers"] == 30 and r["test_users"] == 30
    assert r["load_s"] > 0 and r["evaluate_s"] > r["fit_s"] > 0
    assert r["peak_gb"] > 0.05  # a Python process with numpy and sklearn loaded


def test_table_compares_every_size_with_the_first_of_its_dataset(large):
    base = {"dataset": "a", "copies": 1, "lines": 1000, "shoppers": 10, "load_s": 1.0,
            "evaluate_s": 9.0, "fit_s": 5.0, "p99_ms": 2.0, "peak_gb": 1.0}
    big = {**base, "copies": 4, "lines": 4000, "load_s": 4.0, "evaluate_s": 46.0,
           "peak_gb": 3.0}
    other = {**base, "dataset": "b", "lines": 500, "load_s": 0.5, "evaluate_s": 1.5,
             "peak_gb": 0.5}
    other_big = {**other, "copies": 10, "lines": 5000, "load_s": 2.0, "evaluate_s": 38.0,
                 "peak_gb": 2.0}
    lines = large.render({"a 1x": base, "a 4x": big, "b 1x": other,
                          "b 10x": other_big}).splitlines()
    assert lines[2].endswith("| 1.00x | 1.00x |")
    assert lines[3].startswith("| a | 4 | 4,000 | 10 | 4.0 | 46 | 5.0 |")
    assert lines[3].endswith("| 1.25x | 3.00x |")
    assert lines[4].startswith("| b | 1 |") and lines[4].endswith("| 1.00x | 1.00x |")
    assert lines[5].endswith("| 2.00x | 4.00x |")  # against b's first row, not a's


@pytest.mark.parametrize("args", [[], ["--dataset", "instacart-sample"]])
def test_missing_dataset_is_a_usage_error(large, tmp_path, args):
    with pytest.raises(SystemExit):
        large.main(["--data", str(tmp_path), *args])


def test_unknown_dataset_is_a_usage_error(large, tmp_path):
    with pytest.raises(SystemExit):
        large.main(["--data", str(tmp_path), "--dataset", "ta-feng"])
