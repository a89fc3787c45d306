"""bench/offers.py on a tiny synthetic journey whose answer is known by construction."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "offers.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_offers", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: Path, header: list[str], rows: list[list]) -> None:
    with gzip.open(path, "wt", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def _journey(root: Path) -> None:
    """60 households; the first 30 get campaign 1 and spend 10 more on its product (id 100)
    during it; every other treated household redeems one coupon worth 1.00."""
    tx, members, redemptions = [], [], []
    for h in range(60):
        treated = h < 30
        redeems = treated and h % 2 == 0
        tx.append([h, 1, 1000 + h, 100, 1, 5.0, 0, 0, 0, 6, "2017-02-10 10:00:00"])
        tx.append([h, 1, 2000 + h, 100, 1, 15.0 if treated else 5.0, 0,
                   1.0 if redeems else 0, 0, 11, "2017-03-10 10:00:00"])
        if treated:
            members.append([1, h])
        if redeems:
            redemptions.append([h, 555, 1, "2017-03-10"])
    _write(root / "transactions.csv.gz", ["household_id", "store_id", "basket_id",
                                          "product_id", "quantity", "sales_value",
                                          "retail_disc", "coupon_disc", "coupon_match_disc",
                                          "week", "transaction_timestamp"], tx)
    _write(root / "campaign_descriptions.csv.gz",
           ["campaign_id", "campaign_type", "start_date", "end_date"],
           [[1, "Type A", "2017-03-01", "2017-03-30"]])
    _write(root / "campaigns.csv.gz", ["campaign_id", "household_id"], members)
    _write(root / "coupons.csv.gz", ["coupon_upc", "product_id", "campaign_id"], [[555, 100, 1]])
    _write(root / "coupon_redemptions.csv.gz",
           ["household_id", "coupon_upc", "campaign_id", "redemption_date"], redemptions)


def test_known_effect_is_recovered_and_observed_counts_are_exact(bench, tmp_path, capsys):
    _journey(tmp_path)
    out = tmp_path / "out.json"
    assert bench.main(["--data", str(tmp_path), "--json", str(out), "--margin", "0.5"]) == 0
    rows = {r["policy"]: r for r in json.loads(out.read_text())["rows"]}
    everyone = rows["everyone eligible"]
    assert everyone["coupons_given"] == 30
    assert everyone["redemptions"] == 15 and everyone["discount_cost"] == pytest.approx(15)
    assert everyone["incremental_sales"] == pytest.approx(300)  # 30 households x 10
    assert everyone["net_margin"] == pytest.approx(0.5 * 300 - 15)
    shown = capsys.readouterr().out
    assert "Estimator:" in shown and "Assumptions:" in shown and "| shopkeeper" in shown


def test_metrics_of_an_empty_selection(bench):
    import numpy as np

    rng = np.random.default_rng(0)
    row = bench._metrics("none", np.zeros(3, bool), np.ones(3), np.ones(3), np.ones(3), 0.25,
                         rng)
    assert row["coupons_given"] == 0 and row["redemptions_per_coupon"] == 0.0
