"""Which products may be shown now, with what the widget displays of them.

Serving asks this for every answer. Per process, a shop's live products are kept as a
snapshot re-read every ``API_CATALOG_CACHE_SECONDS`` (default 5 s; 0 queries every time),
so a deleted or sold-out product disappears from every worker within seconds while the
hot path costs no query. Shops with more than ``MAX_SNAPSHOT`` live products are queried
per request instead, to bound memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app

from plugin.extensions import db
from plugin.models import Product
from plugin.models.catalog import on_sale
from plugin.models.types import utcnow

DEFAULT_CACHE_SECONDS = 5.0
MAX_SNAPSHOT = 50_000


@dataclass(frozen=True, slots=True)
class LiveProduct:
    title: str
    url: str | None
    image_url: str | None
    price: Decimal | None
    currency: str | None


_COLUMNS = (Product.external_id, Product.title, Product.url, Product.image_url, Product.price,
            Product.currency)
_LIVE = (Product.shop_id == sa.bindparam("shop"), Product.deleted_at.is_(None),
         on_sale(sa.bindparam("now")))
#: Built once: per-request statement construction costs more than the query itself.
_SOME = sa.select(*_COLUMNS).where(*_LIVE, Product.external_id.in_(
    sa.bindparam("ids", expanding=True)))
_ALL = sa.select(*_COLUMNS).where(*_LIVE).limit(sa.bindparam("limit"))

_lock = threading.Lock()
_snapshots: dict[str, tuple[float, dict[str, LiveProduct] | None]] = {}


def _rows(statement: sa.TextClause | sa.Select,
          params: dict[str, object]) -> dict[str, LiveProduct]:
    return {r.external_id: LiveProduct(r.title, r.url, r.image_url, r.price, r.currency)
            for r in db.session.execute(statement, {**params, "now": utcnow()})}


def _snapshot(shop_id: str, ttl: float) -> dict[str, LiveProduct] | None:
    now = time.monotonic()
    with _lock:
        hit = _snapshots.get(shop_id)
    if hit is not None and now - hit[0] < ttl:
        return hit[1]
    products: dict[str, LiveProduct] | None = _rows(_ALL, {"shop": shop_id,
                                                           "limit": MAX_SNAPSHOT + 1})
    if len(products) > MAX_SNAPSHOT:
        products = None  # too big to hold: query per request
    with _lock:
        _snapshots[shop_id] = (now, products)
    return products


def live_products(shop_id: str, ids: Iterable[str]) -> dict[str, LiveProduct]:
    """The subset of ``ids`` that exists, is not deleted and is available (launched)."""
    ids = list(ids)
    ttl = float(current_app.config.get("API_CATALOG_CACHE_SECONDS", DEFAULT_CACHE_SECONDS))
    snapshot = _snapshot(shop_id, ttl) if ttl > 0 else None
    if snapshot is not None:
        return {i: snapshot[i] for i in ids if i in snapshot}
    return _rows(_SOME, {"shop": shop_id, "ids": ids}) if ids else {}


def forget_catalogs(shop_id: str | None = None) -> None:
    """Drop snapshots (tests; after a bulk catalog change in this process)."""
    with _lock:
        if shop_id is None:
            _snapshots.clear()
        else:
            _snapshots.pop(shop_id, None)
