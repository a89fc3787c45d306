"""Convert the shared research datasets into the `shopkeeper evaluate` CSV contract.

Each dataset gets ``bench/data/<name>/interactions.csv.gz`` (``customer_id,item_id,timestamp,
basket_id,quantity,price``) and ``catalog.csv.gz`` (``item_id,title,description,category,
price``). The cleaning follows each dataset's README; the catalogue lists only items that
survive cleaning, so every model ranks the same item set the shoppers actually bought from.

Run: ``python bench/prepare_datasets.py [--source /work/shared/data] [--out bench/data]``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import re
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = Path("/work/shared/data")
DEFAULT_OUT = HERE / "data"
INTERACTION_HEADER = ["customer_id", "item_id", "timestamp", "basket_id", "quantity", "price"]
CATALOG_HEADER = ["item_id", "title", "description", "category", "price"]
STOCK_CODE = re.compile(r"^\d{5}")  # real products; POST, M, DOT, gift_0001_* are not
# Instacart has no dates: a synthetic per-user timeline starts here (documented in README).
INSTACART_EPOCH = datetime(2017, 1, 1)


def _read(path: Path) -> Iterator[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="", encoding="utf-8") as fh:
        yield from csv.DictReader(fh)


def _write(path: Path, header: list[str], rows) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    # mtime=0 keeps the gzip bytes reproducible run to run
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        io.TextIOWrapper(gz, encoding="utf-8", newline="") as fh,
    ):
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            n += 1
    return n


def _fmt_price(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------- online retail
def online_retail(source: Path) -> tuple[list[list], list[list]]:
    """UCI Online Retail: drop C invoices, non-product codes, quantity <= 0, no customer."""
    rows, titles, prices = [], defaultdict(Counter), defaultdict(list)
    for r in _read(source / "online-retail" / "online_retail.csv.gz"):
        invoice, code, customer = r["InvoiceNo"], r["StockCode"], r["CustomerID"].strip()
        if invoice.startswith("C") or not customer or not STOCK_CODE.match(code):
            continue
        qty = float(r["Quantity"])
        if qty <= 0:
            continue
        customer = customer.removesuffix(".0")
        price = float(r["UnitPrice"]) if r["UnitPrice"] else None
        rows.append([customer, code, r["InvoiceDate"], invoice, int(qty), _fmt_price(price)])
        if r["Description"]:
            titles[code][r["Description"].strip()] += 1
        if price is not None and price > 0:
            prices[code].append(price)
    catalog = [
        [code, titles[code].most_common(1)[0][0] if titles[code] else "", "", "",
         _fmt_price(statistics.median(prices[code])) if prices[code] else ""]
        for code in sorted({r[1] for r in rows})
    ]
    return rows, catalog


# --------------------------------------------------------------------------- complete journey
def complete_journey(source: Path) -> tuple[list[list], list[list]]:
    """Complete Journey 2.0: one basket per ``basket_id``; lines with quantity <= 0 dropped."""
    base = source / "dunnhumby-complete-journey"
    rows = []
    for r in _read(base / "transactions.csv.gz"):
        qty = float(r["quantity"])
        if qty <= 0:
            continue
        value = float(r["sales_value"]) if r["sales_value"] else None
        unit = value / qty if value is not None and value > 0 else None
        rows.append([r["household_id"], r["product_id"], r["transaction_timestamp"],
                     r["basket_id"], int(qty), _fmt_price(unit)])
    used = {r[1] for r in rows}
    catalog = []
    for p in _read(base / "products.csv.gz"):
        if p["product_id"] not in used:
            continue
        title = " ".join(x for x in (p["product_type"], p["package_size"]) if x)
        desc = " ".join(x for x in (p["department"], p["product_category"], p["brand"]) if x)
        catalog.append([p["product_id"], title, desc, p["product_category"], ""])
    known = {c[0] for c in catalog}
    catalog += [[i, "", "", "", ""] for i in sorted(used - known)]  # 0.3% lack product rows
    return rows, catalog


# --------------------------------------------------------------------------- instacart
def instacart(source: Path) -> tuple[list[list], list[list]]:
    """Instacart sample with a synthetic timeline (the source has only relative time).

    A user's first order is day 0 at ``INSTACART_EPOCH``; each later order adds its
    ``days_since_prior_order``; the hour is ``order_hour_of_day``. Order of baskets and the
    gaps between them are real, calendar dates are not.
    """
    base = source / "instacart-sample"
    orders: dict[str, tuple[str, int, int, float]] = {}  # order -> user, number, hour, gap
    lines = []
    for r in _read(base / "order_products_sample.csv.gz"):
        oid = r["order_id"]
        if oid not in orders:
            gap = float(r["days_since_prior_order"]) if r["days_since_prior_order"] else 0.0
            orders[oid] = (r["user_id"], int(r["order_number"]), int(r["order_hour_of_day"]), gap)
        lines.append((oid, r["product_id"]))
    day: dict[str, float] = {}
    by_user: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for oid, (user, number, _, _) in orders.items():
        by_user[user].append((number, oid))
    for seq in by_user.values():
        elapsed = 0.0
        for k, (_, oid) in enumerate(sorted(seq)):
            elapsed += orders[oid][3] if k else 0.0
            day[oid] = elapsed
    rows = []
    for oid, product in lines:
        user, _, hour, _ = orders[oid]
        when = INSTACART_EPOCH + timedelta(days=day[oid], hours=hour)
        rows.append([user, product, when.isoformat(sep=" "), oid, 1, ""])
    aisles = {r["aisle_id"]: r["aisle"] for r in _read(base / "aisles.csv")}
    departments = {r["department_id"]: r["department"] for r in _read(base / "departments.csv")}
    used = {r[1] for r in rows}
    catalog = [
        [p["product_id"], p["product_name"], departments.get(p["department_id"], ""),
         aisles.get(p["aisle_id"], ""), ""]
        for p in _read(base / "products.csv.gz")
        if p["product_id"] in used
    ]
    return rows, catalog


DATASETS = {
    "online-retail": online_retail,
    "dunnhumby-complete-journey": complete_journey,
    "instacart-sample": instacart,
}


def prepare(name: str, source: Path, out: Path) -> Path:
    """Write one dataset's interactions and catalog CSVs; returns its folder."""
    rows, catalog = DATASETS[name](source)
    folder = out / name
    n_rows = _write(folder / "interactions.csv.gz", INTERACTION_HEADER, rows)
    n_items = _write(folder / "catalog.csv.gz", CATALOG_HEADER, catalog)
    customers = len({r[0] for r in rows})
    baskets = len({r[3] for r in rows})
    print(f"{name}: {n_rows} lines, {customers} customers, {baskets} baskets, "
          f"{n_items} catalogue items -> {folder}", file=sys.stderr)
    return folder


def last_basket_split(name: str, data: Path = DEFAULT_OUT) -> tuple:
    """``(train, test)`` of a dataset's last-basket split, preparing its files if missing."""
    from plugin.engine.evaluate import split  # the app's loader and split: late, heavy
    from plugin.evaluation_cli import load_interactions

    folder = data / name
    if not (folder / "interactions.csv.gz").exists():
        prepare(name, DEFAULT_SOURCE, data)
    x = load_interactions(folder / "interactions.csv.gz", folder / "catalog.csv.gz")
    return split(x, "last-basket")


def dataset_parser(description: str) -> argparse.ArgumentParser:
    """``[dataset ...] [--data DIR]``: the bench scripts' common options (add your own)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("names", nargs="*", help=f"subset of {', '.join(DATASETS)}")
    parser.add_argument("--data", type=Path, default=DEFAULT_OUT)
    return parser


def parse_datasets(parser: argparse.ArgumentParser,
                   argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; unknown dataset names are a usage error, none means all."""
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(DATASETS))
    if unknown:
        parser.error(f"unknown dataset(s): {', '.join(unknown)}")
    args.names = args.names or list(DATASETS)
    return args


def dataset_arguments(description: str, argv: list[str] | None) -> tuple[list[str], Path]:
    """``[dataset ...] [--data DIR]`` of the bench scripts: the names (all by default)."""
    args = parse_datasets(dataset_parser(description), argv)
    return args.names, args.data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("names", nargs="*", help=f"subset of {', '.join(DATASETS)}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(DATASETS))
    if unknown:
        parser.error(f"unknown dataset(s): {', '.join(unknown)}")
    for name in args.names or list(DATASETS):
        prepare(name, args.source, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
