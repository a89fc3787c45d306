"""How `shopkeeper evaluate` grows with the file: a prepared dataset copied N times.

The engine will be judged on a grocery file we do not have, of a size we do not know.
Each copy of a prepared file renames its customers (basket ids are scoped to the
customer), so N copies hold N times the lines and shoppers over the same items. Complete
Journey has long histories over a large catalogue; Instacart's sample copied 40 times has
about 24,000 shoppers, towards the hundreds of thousands of a full-size grocery file.
Each size runs the CLI's own path (load, split, all five models, report) in a child
process, so the peak memory reported is that run's alone. Quality is not the point here:
copied shoppers are each other's nearest neighbours.

Run: ``python bench/large.py [--dataset NAME] [--copies 1 4]`` (``make bench-large`` runs
Complete Journey 1x and 4x, then Instacart 1x and 40x: about 10 minutes); the table goes
between the markers in bench/README.md, the figures to
``bench/results/large.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from common import publish  # noqa: E402
from prepare_datasets import DEFAULT_OUT  # noqa: E402

DATASETS = ("dunnhumby-complete-journey", "instacart-sample")


def replicate(source: Path, copies: int, out: Path) -> int:
    """Write ``copies`` renamed copies of an interactions CSV(.gz); the lines written."""
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8", newline="") as f:
        header, lines = f.readline(), f.readlines()
    with open(out, "w", encoding="utf-8", newline="") as w:
        w.write(header)
        for copy in range(copies):
            for line in lines:
                customer, rest = line.split(",", 1)
                w.write(f"{customer}~{copy},{rest}")
    return len(lines) * copies


def child(path: Path) -> dict:
    """One evaluation, timed in its phases, with this process's peak memory."""
    from plugin.evaluation_cli import load_interactions, run_evaluation

    started = time.perf_counter()
    data = load_interactions(path)
    loaded = time.perf_counter()
    report = run_evaluation(data, "last-basket", 10, dataset=path.stem)
    done = time.perf_counter()
    model = report["models"]["shopkeeper"]
    return {"lines": len(data), "shoppers": data.n_users, "items": data.n_items,
            "test_users": report["users"], "load_s": loaded - started,
            "evaluate_s": done - loaded, "fit_s": model["fit_seconds"],
            "p99_ms": model["recommend_ms_p99"],
            # ru_maxrss is in kilobytes on Linux
            "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def measure(dataset: str, copies: int, data: Path, scratch: Path) -> dict:
    """Replicate, then evaluate in a fresh interpreter."""
    path = scratch / f"{dataset}-x{copies}.csv"
    replicate(data / dataset / "interactions.csv.gz", copies, path)
    out = subprocess.run([sys.executable, __file__, "--child", str(path)], check=True,
                         capture_output=True, text=True)
    path.unlink()
    return {"dataset": dataset, "copies": copies, **json.loads(out.stdout)}


def render(results: dict[str, dict]) -> str:
    """Markdown: one row per dataset and size, time and memory against its smallest size."""
    lines = ["| dataset | copies | lines | shoppers | load s | evaluate s | shopkeeper fit s "
             "| p99 ms | peak GB | time per line vs first row | peak GB vs first row |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    first: dict[str, dict] = {}
    for r in results.values():
        base = first.setdefault(r["dataset"], r)
        per_line = ((r["load_s"] + r["evaluate_s"]) / r["lines"]) / (
            (base["load_s"] + base["evaluate_s"]) / base["lines"])
        lines.append(f"| {r['dataset']} | {r['copies']} | {r['lines']:,} | {r['shoppers']:,} | "
                     f"{r['load_s']:.1f} | {r['evaluate_s']:.0f} | {r['fit_s']:.1f} | "
                     f"{r['p99_ms']:.2f} | {r['peak_gb']:.2f} | {per_line:.2f}x | "
                     f"{r['peak_gb'] / base['peak_gb']:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=DATASETS, default=DATASETS[0])
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--data", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    if not (args.data / args.dataset / "interactions.csv.gz").exists():
        parser.error(f"{args.data / args.dataset} is missing: run bench/prepare_datasets.py")
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for copies in sorted(set(args.copies)):
            r = results[f"{args.dataset} {copies}x"] = measure(args.dataset, copies, args.data,
                                                              Path(scratch))
            print(f"{args.dataset} {copies} copies: {r['lines']:,} lines, load "
                  f"{r['load_s']:.1f} s, evaluate {r['evaluate_s']:.0f} s, "
                  f"peak {r['peak_gb']:.2f} GB", file=sys.stderr)
    publish("large", results, [f"{d} {c}x" for d in DATASETS for c in range(1, 1025)], render)
    return 0


if __name__ == "__main__":
    sys.exit(main())
