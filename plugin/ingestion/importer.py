"""Bulk import of a purchase history CSV (the demo shop, migrations from other tools).

Orders CSV: ``customer_id,item_id,timestamp`` plus optional ``basket_id,quantity,price``
(the same format as ``shopkeeper evaluate``). Catalog CSV: ``item_id`` plus optional
``title,description,category,price``. Re-running an import skips what is already there.
Redacted orders and erased customers' orders follow ``upsert_order``'s rules.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import sqlalchemy as sa
from tqdm import tqdm

from connectors.parsing import MAX_AMOUNT
from connectors.records import MAX_QUANTITY
from plugin.extensions import db
from plugin.ingestion.mapping import erased_customers, erasure_lock, redacted_orders
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
        amount = Decimal(value)
    except InvalidOperation:
        raise ImportError_(f"row {row}: {field} is not a number: {value!r}") from None
    if not amount.is_finite() or abs(amount) > MAX_AMOUNT:
        raise ImportError_(f"row {row}: {field} must be a number up to {MAX_AMOUNT}: "
                           f"{value!r}")
    return amount


def _id(value: str | None, row: int, field: str) -> str:
    """The same rule as every connector's records: 1-255 characters, no NUL."""
    text = (value or "").strip()
    if not text or len(text) > 255 or "\x00" in text:
        raise ImportError_(f"row {row}: {field} must be 1 to 255 characters without NUL: "
                           f"{(value or '')[:40]!r}")
    return text


def _quantity(value: str | None, row: int) -> int:
    try:
        qty = int(value or 1)
    except ValueError:
        raise ImportError_(f"row {row}: quantity is not a whole number: {value!r}") from None
    if qty > MAX_QUANTITY:
        raise ImportError_(f"row {row}: quantity is over {MAX_QUANTITY}: {value!r}")
    return qty


def _rows(path: str | Path, what: str) -> Iterator[tuple[int, dict[str, str], list[str]]]:
    """Numbered CSV rows; unreadable files (not UTF-8, a broken gzip) and ragged rows are
    ``ImportError_`` naming the file or row, so the command exits 2 with a message."""
    try:
        with _open(path) as fh:
            reader = csv.DictReader(fh)
            fieldnames = list(reader.fieldnames or ())
            for n, r in enumerate(reader, start=2):
                if None in r or any(v is None for v in r.values()):
                    raise ImportError_(f"{what} row {n}: expected {len(fieldnames)} fields")
                yield n, r, fieldnames
            if not fieldnames:
                yield 0, {}, []
    except (UnicodeDecodeError, OSError, EOFError, csv.Error) as exc:
        raise ImportError_(f"{what} file {Path(path).name} cannot be read: "
                           f"{type(exc).__name__}: {exc}") from None


def read_catalog(path: str | Path) -> dict[str, dict]:
    out = {}
    for n, r, fieldnames in _rows(path, "catalog"):
        if "item_id" not in fieldnames:
            raise ImportError_("catalog CSV needs an item_id column")
        if not n:
            continue
        item = _id(r["item_id"], n, "item_id")
        out[item] = {
            "title": (r.get("title") or item)[:500],
            "description": r.get("description") or "",
            "categories": [c.strip() for c in (r.get("category") or "").split("|")
                           if c.strip()],
            "price": _decimal(r.get("price"), n, "price"),
        }
    return out


def read_baskets(path: str | Path) -> dict[str, dict]:
    """Group order lines into baskets keyed by basket id (or customer + timestamp)."""
    baskets: dict[str, dict] = {}
    for n, r, fieldnames in _rows(path, "orders"):
        missing = {"customer_id", "item_id", "timestamp"} - set(fieldnames)
        if missing:
            raise ImportError_(f"orders CSV is missing columns: {', '.join(sorted(missing))}")
        if not n:
            continue
        ts = _parse_time(r["timestamp"], n)
        customer = _id(r["customer_id"], n, "customer_id")
        item = _id(r["item_id"], n, "item_id")
        key = _id(r["basket_id"], n, "basket_id") if r.get("basket_id") \
            else f"{customer}@{ts.isoformat()}"
        qty = _quantity(r.get("quantity"), n)
        if qty <= 0:
            continue
        b = baskets.setdefault(key, {"customer_id": customer, "created_at": ts,
                                     "lines": defaultdict(lambda: [0, None])})
        line = b["lines"][item]
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
    if not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
        raise ImportError_(f"currency must be a three-letter code, not {currency!r}")
    currency = currency.upper()
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
    """Insert a chunk's orders by ``upsert_order``'s rules: a redacted order is skipped,
    an erased customer's is kept unlinked and files no purchases (else an import filed
    them again under the customer's id)."""
    erasure_lock(shop_id)  # as upsert_order: check once no erasure is under way
    redacted = redacted_orders(shop_id, [k for k, _ in chunk])
    chunk = [(k, b) for k, b in chunk if k not in redacted]
    if not chunk:
        return 0, 0
    erased = erased_customers(shop_id, {b["customer_id"] for _, b in chunk})
    db.session.execute(sa.insert(Order), [
        dict(shop_id=shop_id, external_id=k,
             customer_external_id=None if b["customer_id"] in erased else b["customer_id"],
             currency=currency, discount_codes=[], cancelled=False, imported=True,
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
            if b["customer_id"] not in erased:
                interactions.append(dict(shop_id=shop_id, shopper_id=b["customer_id"],
                                         product_external_id=item, kind="purchase",
                                         quantity=qty, price=price, order_external_id=k,
                                         occurred_at=b["created_at"], context={},
                                         subprofile_id=None))
    db.session.execute(sa.insert(OrderLine), lines)
    if interactions:
        db.session.execute(sa.insert(Interaction), interactions)
    return len(chunk), len(lines)
