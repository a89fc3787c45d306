"""bench/evaluate_all.py: the results table is rendered from the CLI's JSON reports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from plugin.engine.evaluate import METRICS

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def evaluate_all():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("evaluate_all", BENCH / "evaluate_all.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))


def _report(ndcg: dict[str, float]) -> dict:
    models = {}
    for name, value in ndcg.items():
        metrics = dict.fromkeys(METRICS, 0.5) | {"ndcg@k": value, "durable_rerec_rate": 0.004}
        models[name] = metrics
    return {"dataset": "d", "split": "last-basket", "k": 10, "users": 1234, "models": models,
            "wall_seconds": 42.0}


def test_render_states_the_ndcg_ratio_against_the_best_baseline(evaluate_all):
    report = _report({"shopkeeper": 0.33, "g-pop": 0.1, "p-topfreq": 0.3, "itemknn": 0.2,
                      "als": 0.25})
    text = evaluate_all.render({"d": report})
    assert "### d (last-basket, k=10, 1,234 test customers, 42 s)" in text
    assert "| shopkeeper | 0.5000 | 0.3300 |" in text
    assert "best baseline (p-topfreq) = **1.10x**" in text
    assert "durable re-rec 0.40 %" in text
    report["comparison"] = {"ratio": 1.1, "ratio_ci95": [1.04, 1.17]}
    assert "= **1.10x** (95 % interval 1.04 to 1.17) (target" in evaluate_all.render({"d": report})


def test_write_readme_replaces_only_the_marked_block(evaluate_all, tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{evaluate_all.BEGIN}\nold\n{evaluate_all.END}\noutro\n")
    monkeypatch.setattr(evaluate_all, "README", readme)
    evaluate_all.write_readme("| new table |", ["python -m plugin.evaluation_cli --json"], 61.0)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert "old" not in text and "| new table |" in text
    assert "python -m plugin.evaluation_cli --json" in text and "in 61 s" in text


def test_command_is_the_cli_contract(evaluate_all):
    cmd = evaluate_all.command_for("online-retail", Path("bench/data"))
    assert cmd[:2] == ["-m", "plugin.evaluation_cli"]
    assert cmd[cmd.index("--split") + 1] == "last-basket" and cmd[cmd.index("--k") + 1] == "10"
    assert "--json" in cmd
