"""`shopkeeper evaluate`: offline evaluation of the production model against baselines.

The CSV contract (issue 3, part 4) is implemented here at the boundary: bad input becomes a
``click.BadParameter`` (exit code 2, message on stderr) before any model runs. Runnable as
``python -m plugin.evaluation_cli``; the lead attaches ``evaluate`` to the console group.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import click

from plugin.engine.base import BaseRecommender
from plugin.engine.data import Interactions, to_timestamp
from plugin.engine.evaluate import METRICS, SPLITS, evaluate_model, split

INTERACTION_COLUMNS = ("customer_id", "item_id", "timestamp")
CATALOG_COLUMNS = ("item_id",)
# Column order of the JSON "models" object and of the table.
MODEL_NAMES = ("shopkeeper", "g-pop", "p-topfreq", "itemknn", "als")


def model_factories() -> dict[str, Callable[[], BaseRecommender]]:
    """Fresh, default-constructed models by JSON name (imported lazily: ALS needs implicit)."""
    from plugin.engine.baselines import (
        ALSBaseline,
        GlobalPopularity,
        ItemKNNBaseline,
        PersonalTopFrequency,
    )
    from plugin.engine.blend import ShopkeeperRecommender

    return {
        "shopkeeper": ShopkeeperRecommender,
        "g-pop": GlobalPopularity,
        "p-topfreq": PersonalTopFrequency,
        "itemknn": ItemKNNBaseline,
        "als": ALSBaseline,
    }


def make_judge():
    """The durable-vs-consumable judge shared by every model (production RepurchaseModel)."""
    from plugin.engine.repurchase import RepurchaseModel

    return RepurchaseModel()


# --------------------------------------------------------------------------- CSV input
def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", newline="", encoding="utf-8-sig")
    return open(path, newline="", encoding="utf-8-sig")  # closed by the caller


def _read_csv(path: Path, required: tuple[str, ...], hint: str) -> tuple[list[str], list[list]]:
    """Header and rows; missing file content or required columns is a usage error."""
    try:
        with _open_text(path) as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            rows = [row for row in reader if row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise click.BadParameter(f"cannot read {path.name}: {exc}", param_hint=hint) from None
    if not header:
        raise click.BadParameter(f"{path.name} is empty (no header)", param_hint=hint)
    missing = [c for c in required if c not in header]
    if missing:
        raise click.BadParameter(
            f"{path.name} lacks required column(s): {', '.join(missing)} "
            f"(header must include {','.join(required)})", param_hint=hint)
    if not rows:
        raise click.BadParameter(f"{path.name} has a header but no rows", param_hint=hint)
    return header, rows


def _parse_time(value: str, cache: dict[str, float]) -> float:
    """ISO-8601 date or datetime to unix seconds (naive values are UTC)."""
    if value not in cache:
        cache[value] = to_timestamp(datetime.fromisoformat(value.strip()))  # type: ignore[arg-type]
    return cache[value]


def _number(value: str, default: float) -> float:
    return default if value.strip() == "" else float(value)


def load_interactions(path: Path, catalog_path: Path | None = None) -> Interactions:
    """Read the contract's CSVs into ``Interactions``; raise ``click.BadParameter`` on bad input."""
    hint = "'--interactions'"
    header, rows = _read_csv(path, INTERACTION_COLUMNS, hint)
    col = {name: header.index(name) for name in header}
    users, items, times, cache = [], [], [], {}
    optional = {name: [] for name in ("basket_id", "quantity", "price") if name in col}
    for line, row in enumerate(rows, start=2):
        try:
            users.append(row[col["customer_id"]])
            items.append(row[col["item_id"]])
            raw_time = row[col["timestamp"]]
            try:
                times.append(_parse_time(raw_time, cache))
            except ValueError:
                raise click.BadParameter(
                    f"{path.name} line {line}: unparsable timestamp {raw_time!r} "
                    "(expected ISO-8601, e.g. 2024-05-01 or 2024-05-01T13:45:00)",
                    param_hint=hint) from None
            for name, values in optional.items():
                cell = row[col[name]]
                values.append(cell if name == "basket_id" else
                              _number(cell, 1.0 if name == "quantity" else math.nan))
        except IndexError:
            raise click.BadParameter(f"{path.name} line {line}: too few fields",
                                     param_hint=hint) from None
        except ValueError as exc:
            raise click.BadParameter(f"{path.name} line {line}: {exc}", param_hint=hint) from None
    if any(not u.strip() for u in users) or any(not i.strip() for i in items):
        raise click.BadParameter(f"{path.name}: empty customer_id or item_id", param_hint=hint)
    baskets = optional.get("basket_id")
    if baskets is not None:  # basket ids are per customer; rows without one group by time
        baskets = [f"{u}\x1f{b}" if b else f"{u}\x1f@{t!r}" for u, b, t in
                   zip(users, baskets, times, strict=True)]
    return Interactions.from_arrays(
        users, items, times, baskets=baskets, quantities=optional.get("quantity"),
        prices=optional.get("price"),
        catalog=load_catalog(catalog_path) if catalog_path else None,
    )


def load_catalog(path: Path) -> dict[str, dict]:
    """Catalog CSV (``item_id`` + optional ``title,description,category,price``) as a dict."""
    hint = "'--catalog'"
    header, rows = _read_csv(path, CATALOG_COLUMNS, hint)
    col = {name: header.index(name) for name in header}
    out: dict[str, dict] = {}
    for line, row in enumerate(rows, start=2):
        try:
            meta = {name: row[col[name]] for name in ("title", "description", "category")
                    if name in col}
            if "price" in col:
                meta["price"] = _number(row[col["price"]], math.nan)
            out[row[col["item_id"]]] = meta
        except IndexError:
            raise click.BadParameter(f"{path.name} line {line}: too few fields",
                                     param_hint=hint) from None
        except ValueError as exc:
            raise click.BadParameter(f"{path.name} line {line}: {exc}", param_hint=hint) from None
    return out


# --------------------------------------------------------------------------- run and report
def run_evaluation(data: Interactions, split_name: str, k: int, *, dataset: str,
                   progress: bool = False) -> dict:
    """Split once, fit the judge once, evaluate every model on the same split."""
    from tqdm import tqdm

    train, test = split(data, split_name)
    if not test:
        raise click.UsageError(f"the {split_name} split leaves no test customers "
                               "(need customers with purchases on both sides of the split)")
    judge = make_judge().fit(train)
    report = {"dataset": dataset, "split": split_name, "k": k, "users": len(test), "models": {}}
    for name, factory in model_factories().items():
        def bar(users, name=name):
            return tqdm(users, desc=name, file=sys.stderr, disable=not progress, leave=False)

        metrics = evaluate_model(factory(), train, test, k, judge=judge, progress=bar)
        report["models"][name] = _named(metrics, k)
    return report


def _named(metrics: dict[str, float], k: int) -> dict[str, float]:
    """Contract names (``recall@k``) plus the concrete ones (``recall@10``), rounded."""
    out = {name: round(float(metrics[name]), 6) for name in METRICS}
    out.update({name.replace("@k", f"@{k}"): out[name] for name in METRICS if "@k" in name})
    return out


def format_table(report: dict) -> str:
    """A readable fixed-width table of every model's metrics."""
    k = report["k"]
    columns = [name.replace("@k", f"@{k}") for name in METRICS]
    width = max(len(c) for c in columns)
    lines = [f"dataset={report['dataset']} split={report['split']} k={k} "
             f"users={report['users']}",
             "model".ljust(12) + "".join(c.rjust(width + 2) for c in columns)]
    for name, metrics in report["models"].items():
        lines.append(name.ljust(12) + "".join(
            f"{metrics[c]:.4f}".rjust(width + 2) for c in columns))
    return "\n".join(lines)


@click.command("evaluate")
@click.option("--interactions", "interactions_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV (or .csv.gz): customer_id,item_id,timestamp[,basket_id,quantity,price]")
@click.option("--catalog", "catalog_path", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV (or .csv.gz): item_id[,title,description,category,price]")
@click.option("--split", "split_name", type=click.Choice(sorted(SPLITS)), default="last-basket",
              show_default=True, help="last basket per customer, or a global time cut at p90")
@click.option("--k", type=click.IntRange(min=1), default=10, show_default=True,
              help="length of each recommendation list")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object on stdout")
@click.option("--dataset", default=None, help="name for the report (default: file stem)")
def evaluate(interactions_path: Path, catalog_path: Path | None, split_name: str, k: int,
             as_json: bool, dataset: str | None) -> None:
    """Evaluate shopkeeper and the baselines (G-Pop, P-TopFreq, ItemKNN, ALS) on one split."""
    data = load_interactions(interactions_path, catalog_path)
    name = dataset or interactions_path.name.split(".")[0]
    report = run_evaluation(data, split_name, k, dataset=name, progress=sys.stderr.isatty())
    click.echo(json.dumps(report) if as_json else format_table(report))


if __name__ == "__main__":
    evaluate(prog_name="shopkeeper evaluate")
