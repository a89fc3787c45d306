"""Generalisation checks: `shopkeeper evaluate` on shapes a grocery dataset we lack may take.

The engine is judged on a grocery dataset we do not have, through the CLI contract only.
The nearest published one, Ta-Feng, has customer-day baskets, date-only timestamps, no
basket ids and about four baskets per customer over four months; Instacart and Complete
Journey have dozens. So the prepared Complete Journey data is reshaped into:

- ``cj-customer-day``: no ``basket_id``, ``quantity``, ``price`` or catalog, dates only
  (baskets become one per customer and day, as the contract says);
- ``cj-short-histories``: as above, and every household-month is a separate shopper with
  half of its shopping days kept (seeded): ~20k shoppers with ~3 baskets each;

and the two grocery datasets also run with ``--split temporal``. Each variant runs in a
fresh interpreter; JSON goes to ``bench/results/variants/`` and the table between the
variant markers in ``bench/README.md`` is regenerated.

Run: ``python bench/variants.py [variant ...]`` (``make evaluate-variants``).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from common import replace_marked  # noqa: E402
from evaluate_all import headline  # noqa: E402

DATA = HERE / "data"
OUT = HERE / "results" / "variants"
README = HERE / "README.md"
BEGIN, END = "<!-- variants:begin -->", "<!-- variants:end -->"
HEADER = ["customer_id", "item_id", "timestamp"]


def customer_days(rows: Iterable[dict[str, str]]) -> Iterator[list[str]]:
    """Rows with only customer, item and the date: baskets become customer-days."""
    for row in rows:
        yield [row["customer_id"], row["item_id"], row["timestamp"][:10]]


def short_histories(rows: Iterable[dict[str, str]], keep: float = 0.5,
                    seed: int = 0) -> Iterator[list[str]]:
    """Customer-day rows where each customer-month is a shopper and a seeded ``keep`` share
    of each shopper's days survives (decided once per shopper-day, so baskets stay whole)."""
    rng = random.Random(seed)
    kept: dict[tuple[str, str], bool] = {}
    for customer, item, day in customer_days(rows):
        shopper = f"{customer}-{day[:7]}"
        key = (shopper, day)
        if key not in kept:
            kept[key] = rng.random() < keep
        if kept[key]:
            yield [shopper, item, day]


def _read(path: Path) -> Iterator[dict[str, str]]:
    with gzip.open(path, "rt", newline="", encoding="utf-8") as fh:
        yield from csv.DictReader(fh)


def _write(path: Path, rows: Iterable[list[str]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with gzip.open(path, "wt", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for row in rows:
            out.writerow(row)
            n += 1
    return n


def _source(name: str) -> Path:
    return DATA / name / "interactions.csv.gz"


# variant -> (how its interactions file is made, catalog or None, split)
VARIANTS = {
    "cj-customer-day": ("customer_days", None, "last-basket"),
    "cj-short-histories": ("short_histories", None, "last-basket"),
    "cj-temporal": (None, "dunnhumby-complete-journey", "temporal"),
    "instacart-temporal": (None, "instacart-sample", "temporal"),
}


def files_for(variant: str, work: Path) -> tuple[Path, Path | None, str]:
    """The interactions file (built if needed), catalog and split of one variant."""
    make, dataset, split = VARIANTS[variant]
    if make is None:
        return _source(dataset), DATA / dataset / "catalog.csv.gz", split
    path = work / f"{variant}.csv.gz"
    if not path.exists():
        reshape = {"customer_days": customer_days, "short_histories": short_histories}[make]
        _write(path, reshape(_read(_source("dunnhumby-complete-journey"))))
    return path, None, split


def run(variant: str, work: Path) -> dict:
    interactions, catalog, split = files_for(variant, work)
    cmd = [sys.executable, "-m", "plugin.evaluation_cli", "--interactions", str(interactions),
           "--split", split, "--k", "10", "--json", "--dataset", variant]
    if catalog is not None:
        cmd[5:5] = ["--catalog", str(catalog)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{variant}: evaluate exited with {proc.returncode}")
    report = json.loads(proc.stdout)
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    return report


def render(reports: dict[str, dict]) -> str:
    """One row per variant: shopkeeper against the best baseline and item-kNN's discovery."""
    lines = ["| variant | split | test shoppers | shopkeeper NDCG@10 | best baseline | "
             "ratio (95 % interval) | "
             "new-item recall (ItemKNN) | fit s | p99 ms |", "|---" * 9 + "|"]
    for name, r in reports.items():
        models = r["models"]
        sk = models["shopkeeper"]
        best, ratio, ci = headline(r)
        base = models[best]["ndcg@k"]
        interval = f" ({ci[0]:.2f}-{ci[1]:.2f})" if ci else ""
        lines.append(
            f"| {name} | {r['split']} | {r['users']:,} | {sk['ndcg@k']:.4f} | {best} "
            f"{base:.4f} | {ratio:.2f}x{interval} | {sk['recall_explore@k']:.4f} "
            f"({models['itemknn']['recall_explore@k']:.4f}) | {sk['fit_seconds']:.1f} | "
            f"{sk['recommend_ms_p99']:.2f} |")
    return "\n".join(lines)


def write_readme(table: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    replace_marked(README, BEGIN, END,
                   f"Generated {stamp} by `python bench/variants.py`.\n\n{table}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", help=f"subset of {', '.join(VARIANTS)}")
    parser.add_argument("--work", type=Path, default=DATA / "variants",
                        help="where the reshaped interaction files are kept")
    args = parser.parse_args(argv)
    names = args.variants or list(VARIANTS)
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s): {', '.join(unknown)}")
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names:
        report = run(name, args.work)
        (OUT / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"{name}: {report['wall_seconds']:.0f} s", file=sys.stderr)
    reports = {n: json.loads((OUT / f"{n}.json").read_text(encoding="utf-8"))
               for n in VARIANTS if (OUT / f"{n}.json").exists()}
    write_readme(render(reports))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
