"""Bulk import of a purchase history CSV (the demo shop, migrations from other tools).

Orders CSV: ``customer_id,item_id,timestamp`` plus optional ``basket_id,quantity,price``
(the same format as ``shopkeeper evaluate``). Catalog CSV: ``item_id`` plus optional
``title,description,category,price``. Re-running an import skips what is already there.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import sqlalchemy as sa
from tqdm import tqdm

from plugin.extensions import db
from plugin.models import Customer, Interaction, Order, OrderLine, Product

CHUNK = 2000


class ImportError_(ValueError):
    """The file cannot be imported; the message says which row and why."""


@dataclass
class ImportStats:
    products: int = 0
    customers: int = 0
    orders: int = 0
    lines: int = 0


def _open(path: str | Path) -> io.TextIOBase:
    p = Path(path)
    if p.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(p, "rb"), encoding="utf-8", newline="")
    return open(p, encoding="utf-8", newline="")


def _parse_time(value: str, row: int) -> datetime:
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ImportError_(f"row {row}: unparsable timestamp {value!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _decimal(value: str | None, row: int, field: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ImportError_(f"row {row}: {field} is not a number: {value!r}") from None


def read_catalog(path: str | Path) -> dict[str, dict]:
    with _open(path) as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "item_id" not in reader.fieldnames:
            raise ImportError_("catalog CSV needs an item_id column")
        out = {}
        for n, r in enumerate(reader, start=2):
            out[r["item_id"]] = {
                "title": r.get("title") or r["item_id"],
                "description": r.get("description") or "",
                "categories": [c.strip() for c in (r.get("category") or "").split("|")
                               if c.strip()],
                "price": _decimal(r.get("price"), n, "price"),
            }
    return out


def read_baskets(path: str | Path) -> dict[str, dict]:
    """Group order lines into baskets keyed by basket id (or customer + timestamp)."""
    baskets: dict[str, dict] = {}
    with _open(path) as fh:
        reader = csv.DictReader(fh)
        missing = {"customer_id", "item_id", "timestamp"} - set(reader.fieldnames or ())
        if missing:
            raise ImportError_(f"orders CSV is missing columns: {', '.join(sorted(missing))}")
        for n, r in enumerate(reader, start=2):
            ts = _parse_time(r["timestamp"], n)
            key = r.get("basket_id") or f"{r['customer_id']}@{ts.isoformat()}"
            qty = int(r.get("quantity") or 1)
            if qty <= 0:
                continue
            b = baskets.setdefault(key, {"customer_id": r["customer_id"], "created_at": ts,
                                         "lines": defaultdict(lambda: [0, None])})
            line = b["lines"][r["item_id"]]
            line[0] += qty
            line[1] = _decimal(r.get("price"), n, "price") or line[1]
    if not baskets:
        raise ImportError_("orders CSV has no rows")
    return baskets


def import_history(shop_id: str, orders_path: str | Path, catalog_path: str | Path | None = None,
                   *, currency: str = "GBP", progress: bool = False,
                   ends_at: datetime | None = None) -> ImportStats:
    """Insert products, customers, orders, lines and purchase interactions in bulk.

    ``ends_at`` moves the whole history, gaps kept, so its latest order falls then: a
    sample from 2011 read as last month's trade, so "due again" and the dashboard's
    last 30 days mean something in a demo.
    """
    stats = ImportStats()
    catalog = read_catalog(catalog_path) if catalog_path else {}
    baskets = read_baskets(orders_path)
    if ends_at is not None:
        shift = ends_at - max(b["created_at"] for b in baskets.values())
        for b in baskets.values():
            b["created_at"] += shift
    for b in baskets.values():
        for item in b["lines"]:
            catalog.setdefault(item, {"title": item, "description": "", "categories": [],
                                      "price": b["lines"][item][1]})
    stats.products = _insert_missing_products(shop_id, catalog, currency)
    customers = {b["customer_id"] for b in baskets.values()}
    stats.customers = _insert_missing_customers(shop_id, customers)
    known = set(db.session.scalars(sa.select(Order.external_id).where(Order.shop_id == shop_id)))
    todo = [(k, b) for k, b in baskets.items() if k not in known]
    bar = tqdm(total=len(todo), desc="import orders", unit="order", disable=not progress)
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start:start + CHUNK]
        o, ln = _insert_orders(shop_id, chunk, currency)
        stats.orders += o
        stats.lines += ln
        db.session.commit()
        bar.update(len(chunk))
    bar.close()
    return stats


def _insert_missing_products(shop_id: str, catalog: dict[str, dict], currency: str) -> int:
    have = set(db.session.scalars(sa.select(Product.external_id).where(Product.shop_id == shop_id)))
    now = datetime.now(UTC)
    rows = [dict(shop_id=shop_id, external_id=k, title=v["title"][:500],
                 description=v["description"], categories=v["categories"], tags=[],
                 price=v["price"], currency=currency, available=True, source_updated_at=now,
                 url=None, image_url=None, vendor=None)
            for k, v in catalog.items() if k not in have]
    for start in range(0, len(rows), CHUNK):
        db.session.execute(sa.insert(Product), rows[start:start + CHUNK])
    db.session.commit()
    return len(rows)


def _insert_missing_customers(shop_id: str, ids: set[str]) -> int:
    have = set(db.session.scalars(sa.select(Customer.external_id)
                                  .where(Customer.shop_id == shop_id)))
    now = datetime.now(UTC)
    rows = [dict(shop_id=shop_id, external_id=c, source_updated_at=now) for c in ids - have]
    for start in range(0, len(rows), CHUNK):
        db.session.execute(sa.insert(Customer), rows[start:start + CHUNK])
    db.session.commit()
    return len(rows)


def _insert_orders(shop_id: str, chunk: list[tuple[str, dict]], currency: str) -> tuple[int, int]:
    db.session.execute(sa.insert(Order), [
        dict(shop_id=shop_id, external_id=k, customer_external_id=b["customer_id"],
             currency=currency, discount_codes=[], cancelled=False,
             total=sum((q * (p or 0) for q, p in b["lines"].values()), Decimal(0)),
             created_at=b["created_at"], source_updated_at=b["created_at"])
        for k, b in chunk])
    ids = dict(db.session.execute(sa.select(Order.external_id, Order.id).where(
        Order.shop_id == shop_id, Order.external_id.in_([k for k, _ in chunk]))).all())
    lines, interactions = [], []
    for k, b in chunk:
        for item, (qty, price) in b["lines"].items():
            lines.append(dict(order_id=ids[k], product_external_id=item, quantity=qty,
                              price=price or Decimal(0), variant_external_id=None))
            interactions.append(dict(shop_id=shop_id, shopper_id=b["customer_id"],
                                     product_external_id=item, kind="purchase", quantity=qty,
                                     price=price, order_external_id=k,
                                     occurred_at=b["created_at"], context={},
                                     subprofile_id=None))
    db.session.execute(sa.insert(OrderLine), lines)
    db.session.execute(sa.insert(Interaction), interactions)
    return len(chunk), len(lines)
