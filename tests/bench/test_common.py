"""bench/common.py: percentiles, customer sampling and the bounded load loop."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest
import requests


def test_percentile_is_nearest_rank(common):
    values = [float(v) for v in range(100, 0, -1)]  # unsorted on purpose
    assert common.percentile(values, 50) == 50.0
    assert common.percentile(values, 99) == 99.0
    assert common.percentile(values, 100) == 100.0
    assert common.percentile(values, 0) == 1.0
    assert common.percentile([7.0, 1.0, 3.0], 50) == 3.0


@pytest.mark.parametrize("values,q", [([], 50), ([1.0], 101), ([1.0], -1)])
def test_percentile_rejects_bad_input(common, values, q):
    with pytest.raises(ValueError):
        common.percentile(values, q)


def test_sample_customers_keeps_whole_customers_within_budget(common):
    lines = {f"c{i}": 1 + i % 7 for i in range(200)}
    chosen = common.sample_customers(lines, 100, seed=3)
    assert sum(lines[c] for c in chosen) <= 100
    assert sum(lines[c] for c in chosen) >= 100 - 6  # only stops when nothing else fits
    assert chosen == common.sample_customers(lines, 100, seed=3)
    assert chosen != common.sample_customers(lines, 100, seed=4)


def test_sample_customers_skips_a_customer_bigger_than_the_budget(common):
    assert common.sample_customers({"big": 50, "small": 5}, 10) == {"small"}
    with pytest.raises(ValueError):
        common.sample_customers({"a": 1}, 0)


def test_run_load_stops_at_the_count_and_counts_errors(common):
    def call(session, i):
        if i % 4 == 0:
            raise requests.ConnectionError("refused")
        return 200

    result = common.run_load(call, 40, 3)
    assert result.count == 40
    assert result.codes == {200: 30, 0: 10}
    assert result.rate > 0


def test_run_load_stops_at_the_duration(common):
    """On a clock each call moves one second on: a real 0.3 s passed before a loaded
    machine started the threads at all (no call made, the run still correct)."""
    now, lock = [0], threading.Lock()

    def call(session, i):
        with lock:
            now[0] += 1
        return 200

    result = common.run_load(call, 10**6, 2, duration=6, clock=lambda: now[0])
    # calls start while the clock reads 0..6: 7, or 8 when both threads start one at 6
    assert 7 <= result.count <= 8 and result.seconds == result.count


def test_load_result_summary_rounds_and_keeps_codes(common):
    result = common.LoadResult(seconds=2.0, latencies_ms=[1.0, 2.0, 3.0, 40.0])
    result.codes.update({200: 3, 503: 1})
    assert result.summary() == {"requests": 4, "seconds": 2.0, "req_per_s": 2.0,
                                "p50_ms": 2.0, "p99_ms": 40.0, "codes": {200: 3, 503: 1}}
    assert common.LoadResult().summary()["p99_ms"] is None


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_stop_processes_is_graceful_then_forceful(common, tmp_path):
    polite = common.spawn(_python("import time; print('up', flush=True); time.sleep(60)"),
                          os.environ, tmp_path / "polite.log")
    stubborn = common.spawn(_python(
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"), os.environ, tmp_path / "stubborn.log")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(
            (tmp_path / f"{n}.log").read_text() for n in ("polite", "stubborn")):
        time.sleep(0.05)
    started = time.monotonic()
    common.stop_processes([polite, stubborn], grace=1.0)
    assert polite.returncode == -signal.SIGTERM
    assert stubborn.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 15
