"""Run `shopkeeper evaluate` on the three research datasets and refresh the results table.

For each dataset: ``python -m plugin.evaluation_cli --interactions ... --catalog ...
--split last-basket --k 10 --json`` in a subprocess (a fresh process per dataset, so fit
and latency figures are not skewed by the previous one), the JSON goes to
``bench/results/<dataset>.json`` and the table between the markers in ``bench/README.md``
is regenerated. Missing prepared data is built first with ``prepare_datasets.py``.

Run: ``python bench/evaluate_all.py [dataset ...]`` (``make evaluate``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from common import replace_marked  # noqa: E402
from prepare_datasets import (  # noqa: E402
    DATASETS,
    DEFAULT_SOURCE,
    dataset_arguments,
    prepare,
)

RESULTS = HERE / "results"
README = HERE / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
MODELS = ("shopkeeper", "g-pop", "p-topfreq", "itemknn", "als")
COLUMNS = (  # (JSON key, header)
    ("recall@k", "R@10"), ("ndcg@k", "NDCG@10"), ("hr@k", "HR@10"),
    ("recall_repeat@k", "R_rep@10"), ("recall_explore@k", "R_exp@10"),
    ("coverage", "coverage"), ("durable_rerec_rate", "durable re-rec"),
    ("fit_seconds", "fit s"), ("recommend_ms_p50", "p50 ms"), ("recommend_ms_p99", "p99 ms"),
)


def command_for(name: str, data_dir: Path, split: str = "last-basket", k: int = 10) -> list[str]:
    """The exact CLI invocation for one dataset (also printed in the README)."""
    folder = data_dir / name
    return [
        "-m", "plugin.evaluation_cli",
        "--interactions", str(folder / "interactions.csv.gz"),
        "--catalog", str(folder / "catalog.csv.gz"),
        "--split", split, "--k", str(k), "--json", "--dataset", name,
    ]


def run_one(name: str, data_dir: Path) -> tuple[dict, float]:
    """Evaluate one dataset in a fresh interpreter; returns the report and wall seconds."""
    if not (data_dir / name / "interactions.csv.gz").exists():
        prepare(name, DEFAULT_SOURCE, data_dir)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, *command_for(name, data_dir)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{name}: evaluate exited with {proc.returncode}")
    return json.loads(proc.stdout), seconds


def _fmt(key: str, value: float) -> str:
    if key == "fit_seconds":
        return f"{value:.1f}"
    if key.startswith("recommend_ms"):
        return f"{value:.2f}"
    if key == "durable_rerec_rate":
        return f"{100 * value:.2f} %"
    return f"{value:.4f}"


def headline(report: dict) -> tuple[str, float, list[float] | None]:
    """Best baseline by NDCG@k, shopkeeper's ratio over it and its interval (if reported)."""
    models = report["models"]
    best = max((m for m in models if m != "shopkeeper"), key=lambda m: models[m]["ndcg@k"])
    base = models[best]["ndcg@k"]
    ratio = models["shopkeeper"]["ndcg@k"] / base if base else 0.0
    return best, ratio, report.get("comparison", {}).get("ratio_ci95")


def render(reports: dict[str, dict]) -> str:
    """Markdown: one table per dataset plus the target checks, from the JSON reports."""
    out = []
    for name, report in reports.items():
        models = report["models"]
        out.append(f"### {name} ({report['split']}, k={report['k']}, "
                   f"{report['users']:,} test customers, {report.get('wall_seconds', 0):.0f} s)\n")
        out.append("| model | " + " | ".join(h for _, h in COLUMNS) + " |")
        out.append("|---" * (len(COLUMNS) + 1) + "|")
        for model in MODELS:
            if model in models:
                cells = [_fmt(key, models[model][key]) for key, _ in COLUMNS]
                out.append(f"| {model} | " + " | ".join(cells) + " |")
        if "shopkeeper" in models:
            sk = models["shopkeeper"]
            best, ratio, ci = headline(report)
            out.append("")
            interval = f" (95 % interval {ci[0]:.2f} to {ci[1]:.2f})" if ci else ""
            out.append(
                f"Targets: NDCG@10 shopkeeper / best baseline ({best}) = **{ratio:.2f}x**"
                f"{interval} (target >= 1.10); R_exp@10 shopkeeper {sk['recall_explore@k']:.4f} vs "
                f"itemknn {models['itemknn']['recall_explore@k']:.4f}; durable re-rec "
                f"{100 * sk['durable_rerec_rate']:.2f} % (target <= 1 %); fit "
                f"{sk['fit_seconds']:.1f} s; p99 {sk['recommend_ms_p99']:.2f} ms.")
        out.append("")
    return "\n".join(out)


def provenance() -> str:
    """Commit of the evaluated code, flagging uncommitted engine changes (results must match)."""
    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = git("status", "--porcelain", "--", "plugin/engine", "plugin/evaluation_cli.py")
    return f"`{commit}`" + (" with uncommitted engine changes" if dirty else "")


def write_readme(table: str, commands: list[str], total: float, code: str = "") -> None:
    """Replace the block between the result markers in bench/README.md."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    replace_marked(README, BEGIN, END, "\n".join([
        f"Generated {stamp} by `python bench/evaluate_all.py` on {os.cpu_count()} CPU cores "
        f"in {total:.0f} s, code at {code or provenance()}. Each dataset ran as:\n",
        "```",
        *commands,
        "```\n",
        table.rstrip(),
    ]))


def main(argv: list[str] | None = None) -> int:
    names, data_dir = dataset_arguments(__doc__.splitlines()[0], argv)
    RESULTS.mkdir(exist_ok=True)
    code = provenance()  # before the run: what was evaluated
    seconds: dict[str, float] = {}
    for name in names:
        report, seconds[name] = run_one(name, data_dir)
        report["wall_seconds"] = round(seconds[name], 1)  # bench bookkeeping, not CLI output
        (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n",
                                              encoding="utf-8")
        print(f"{name}: {seconds[name]:.0f} s", file=sys.stderr)
    # the table always shows every dataset with a stored result, fresh or from earlier runs
    reports = {n: json.loads((RESULTS / f"{n}.json").read_text(encoding="utf-8"))
               for n in DATASETS if (RESULTS / f"{n}.json").exists()}
    data = os.path.relpath(data_dir, ROOT)
    commands = ["python " + " ".join(command_for(n, Path(data))) for n in reports]
    total = sum(r.get("wall_seconds", 0) for r in reports.values())
    write_readme(render(reports), commands, total, code)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
