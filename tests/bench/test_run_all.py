"""bench/run_all.py: each benchmark's printed or JSON output becomes summary rows."""

from __future__ import annotations

import math

INGEST_OUT = """\
database: 127.0.0.1:5432/shopkeeper_bench_1   gunicorn workers: 4   client threads: 8
endpoint                         req/s            status codes
bare (reads body only)             812             {200: 3000}
webhook (verify+store)             406             {200: 3000}
ratio webhook/bare: 0.50
processed/s (2 inbox workers): 150   inbox: {'done': 3000}
accepted: 3000   processed: 3000   lost: 0
"""

SERVE_OUT = """\
database: 127.0.0.1:5432/x   gunicorn workers: 2   client threads: 4   requests per endpoint: 4000
endpoint              req/s   p50 ms   p99 ms  server cpu ms/req  db cpu  client cpu   status codes
bare                    900     3.10    12.50               0.57    0.01        0.98   {200: 4000}
recommendations         450     6.20    30.00               1.26    0.11        1.05   {200: 4000}
throughput ratio recommendations/bare: 0.50 (target >= 0.70); recommendations p99 30.0 ms
"""


def test_parse_ingest_reads_rates_and_losses(run_all):
    rows = run_all.parse_ingest(INGEST_OUT)
    assert [(r.value, r.baseline_value) for r in rows] == [(406, 812), (150, 406), (0, None)]
    assert rows[0].ratio == 0.5


def test_parse_serve_reads_both_endpoints(run_all):
    rows = run_all.parse_serve(SERVE_OUT)
    assert (rows[0].value, rows[0].baseline_value, rows[0].ratio) == (450, 900, 0.5)
    assert (rows[1].value, rows[1].baseline_value) == (30.0, 12.5)


def test_unparsable_output_gives_a_row_without_value(run_all):
    for parse in (run_all.parse_serve, run_all.parse_subprofiles):
        rows = parse("Traceback (most recent call last): ...")
        assert rows and all(r.value is None for r in rows)
    assert [r.value for r in run_all.parse_ingest("")] == [None, None, None]


def test_parse_subprofiles_reads_the_table_the_script_prints(run_all):
    from tests.bench.conftest import load_script

    result = {"dataset": "instacart-sample", "hosts": 150, "grafted_lines": 900,
              "threshold": 0.6, "precision": 0.81, "recall": 0.62, "recall_new": 0.7,
              "ndcg_clean": 0.40, "ndcg_mixed": 0.30, "ndcg_with": 0.36,
              "ndcg_detector": 0.36, "ndcg_prompted": 0.35, "recovery": 0.9,
              "recovery_detector": 0.9, "recovery_prompted": 0.875, "gap_closed": 0.6,
              "gap_detector": 0.6, "gap_prompted": 0.5, "questions_per_host": 1.5,
              "model": "ShopkeeperRecommender"}  # keys of the script's current and older tables
    text = load_script("subprofiles").table([result]) + "\n\n| sweep | 0.50 | 1 | 2 | 3 |"
    rows = run_all.parse_subprofiles(text)
    versus_mixed = [r for r in rows if r.baseline == "mixed, no sub-profiles"]
    assert versus_mixed and all(r.baseline_value == 0.30 for r in versus_mixed)
    assert {r.value for r in versus_mixed} <= {0.36, 0.35}
    ceiling = [r for r in rows if r.baseline.startswith("clean")]
    assert len(ceiling) == 1 and ceiling[0].baseline_value == 0.40
    assert [r.value for r in rows if not r.baseline] == [0.81, 0.62]


def test_parse_offers_compares_the_policy_with_the_others(run_all):
    def row(policy, n, margin):
        return {"policy": policy, "coupons_given": n, "net_margin": margin}

    report = {"rows": [row("everyone eligible", 1000, -200.0), row("random (same count)", 300,
                                                                    -60.0),
                       row("most likely to redeem", 300, -90.0),
                       row("shopkeeper uplift policy", 300, 150.0)]}
    rows = run_all.parse_offers(report)
    assert [r.value for r in rows] == [150.0, 150.0, 300]
    assert rows[0].ratio is None  # a loss-making baseline has no meaningful ratio
    assert rows[2].ratio == 0.3


def test_parse_scale_reads_the_json_summary(run_all):
    report = {"bare": {"req_per_s": 400.0, "p99_ms": 20.0},
              "webhooks": {"req_per_s": 100.0, "p99_ms": 80.0},
              "recommendations": {"req_per_s": 100.0, "p99_ms": 60.0},
              "mixed_req_per_s": 200.0,
              "inbox": {"processed_per_s": 90.0, "lag_p99_s": 2.5, "lost": 0},
              "scheduler": {"heartbeat_runners": 1}}
    rows = run_all.parse_scale(report)
    assert rows[0].ratio == 0.5
    assert rows[3].ratio == 0.9
    assert [r.value for r in rows[4:]] == [2.5, 0, 1]


def test_parse_evaluation_compares_with_the_best_baseline(run_all):
    models = {"shopkeeper": {"ndcg@k": 0.30, "recall@k": 0.20},
              "g-pop": {"ndcg@k": 0.07, "recall@k": 0.04},
              "p-topfreq": {"ndcg@k": 0.25, "recall@k": 0.18}}
    rows = run_all.parse_evaluation({"dataset": "d", "models": models})
    assert rows[0].baseline == "p-topfreq NDCG@10"
    assert math.isclose(rows[0].ratio, 1.2)
    assert math.isclose(rows[1].ratio, 0.20 / 0.18)


def test_ratio_is_blank_when_the_baseline_is_not_positive(run_all):
    assert run_all.Row("offers", "m", 10.0, "everyone", -5.0).ratio is None
    assert run_all.Row("offers", "m", 10.0, "everyone", 0.0).ratio is None
    assert run_all.Row("x", "m", None, "b", 2.0).ratio is None
    table = run_all.render([run_all.Row("offers", "m", 10.0, "everyone", -5.0)])
    assert table.splitlines()[-1] == "| offers | m | 10 | everyone | -5 |  |"


def test_fmt_keeps_small_metrics_readable(run_all):
    assert run_all.fmt(0.18071) == "0.1807"
    assert run_all.fmt(12.345) == "12.35"
    assert run_all.fmt(1234.5) == "1,234"
    assert run_all.fmt(None) == "n/a"


def test_a_run_without_figures_is_retried_once(run_all, monkeypatch, tmp_path):
    attempts = []

    def flaky(ctx):
        attempts.append(1)
        ctx.statuses.setdefault("flaky", []).append(f"flaky exit {len(attempts) % 2}, 1 s")
        return [run_all.Row("flaky", "x", None if len(attempts) == 1 else 5.0)]

    def broken(ctx):
        raise KeyError("rows")

    monkeypatch.setitem(run_all.BENCHMARKS, "flaky", flaky)
    monkeypatch.setitem(run_all.BENCHMARKS, "broken", broken)
    ctx = run_all.Context(False, "postgresql://unused", tmp_path, {})
    assert [r.value for r in run_all.run_benchmark(ctx, "flaky")] == [5.0]
    assert ctx.statuses["flaky"] == ["flaky exit 1, 1 s", "flaky exit 0, 1 s"]
    assert [r.value for r in run_all.run_benchmark(ctx, "broken")] == [None]
    assert len(ctx.statuses["broken"]) == 2  # tried twice, both failures listed
