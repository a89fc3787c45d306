"""Rebuild the bundled demo sample from the full UCI Online Retail file.

Usage: python bench/demo_sample.py [../shared/data/online-retail/online_retail.csv.gz]
Keeps 600 customers (seeded) with at least two invoices, cleaned as in bench/README.md:
no cancellations, 5-digit stock codes only, positive quantity and price, known customer.
"""

from __future__ import annotations

import csv
import gzip
import random
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

SRC = Path(sys.argv[1] if len(sys.argv) > 1 else
           Path(__file__).resolve().parents[2] / "shared/data/online-retail/online_retail.csv.gz")
OUT = Path(__file__).resolve().parents[1] / "plugin" / "demo_data"
N_CUSTOMERS = 600
PRODUCT_CODE = re.compile(r"^\d{5}")


def main() -> None:
    rows = []
    with gzip.open(SRC, "rt", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["InvoiceNo"].startswith("C") or not PRODUCT_CODE.match(r["StockCode"]):
                continue
            if not r["CustomerID"] or int(r["Quantity"]) <= 0 or float(r["UnitPrice"]) <= 0:
                continue
            rows.append(r)
    invoices = defaultdict(set)
    for r in rows:
        invoices[r["CustomerID"]].add(r["InvoiceNo"])
    eligible = sorted(c for c, inv in invoices.items() if len(inv) >= 2)
    keep = set(random.Random(20121).sample(eligible, N_CUSTOMERS))
    titles: dict[str, Counter] = defaultdict(Counter)
    prices: dict[str, Counter] = defaultdict(Counter)
    OUT.mkdir(parents=True, exist_ok=True)
    with gzip.open(OUT / "online_retail_sample_orders.csv.gz", "wt", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["customer_id", "item_id", "timestamp", "basket_id", "quantity", "price"])
        for r in rows:
            if r["CustomerID"] not in keep:
                continue
            code = r["StockCode"].upper()
            titles[code][r["Description"].strip()] += 1
            prices[code][r["UnitPrice"]] += 1
            w.writerow([r["CustomerID"].removesuffix(".0"), code,
                        r["InvoiceDate"].replace(" ", "T"), r["InvoiceNo"], r["Quantity"],
                        r["UnitPrice"]])
    with gzip.open(OUT / "online_retail_sample_catalog.csv.gz", "wt", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "title", "description", "category", "price"])
        for code in sorted(titles):
            title = titles[code].most_common(1)[0][0].title() or code
            words = re.findall(r"[A-Za-z]+", title)
            category = words[-1].title() if words else "Other"
            w.writerow([code, title, title, category, prices[code].most_common(1)[0][0]])
    print(f"kept {len(keep)} customers, {len(titles)} products -> {OUT}")


if __name__ == "__main__":
    main()
