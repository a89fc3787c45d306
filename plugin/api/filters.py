"""Live filters applied to every answer, whatever source proposed the items.

A cached top-N may be hours old: products deleted or out of stock since (see
``catalog.py`` for how fresh "live" is), merchant exclusions and what is already in the
cart are removed here, at serving time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from plugin.api.access import AnyShop, settings_of
from plugin.api.catalog import live_products
from plugin.engine.base import Recommendation


@dataclass(frozen=True)
class Servable:
    """A recommendation that passed the filters, with what the widget displays."""

    product_id: str
    title: str
    url: str | None
    image_url: str | None
    price: Decimal | None
    currency: str | None
    reason: str
    source: str


def merchant_exclusions(shop: AnyShop) -> set[str]:
    return {str(p) for p in settings_of(shop).get("exclude_products", [])}


def apply_live_filters(shop: AnyShop, candidates: Iterable[Recommendation], n: int, *,
                       exclude: Iterable[str] = ()) -> list[Servable]:
    """First ``n`` candidates that exist, are live and available, and are not excluded.

    ``candidates`` is consumed lazily, in chunks: the popular back-fill behind a personal
    list is long and usually not reached.
    """
    banned = merchant_exclusions(shop) | set(exclude)
    seen: set[str] = set()
    out: list[Servable] = []
    step = max(2 * n, 16)  # usually one small lookup; more only when many are filtered out
    stream = iter(candidates)
    while len(out) < n:
        chunk: list[Recommendation] = []
        for rec in stream:
            if rec.item not in banned and rec.item not in seen:
                chunk.append(rec)
                seen.add(rec.item)
                if len(chunk) == step:
                    break
        if not chunk:
            return out
        products = live_products(shop.id, [r.item for r in chunk])
        for rec in chunk:
            p = products.get(rec.item)
            if p is None:
                continue
            out.append(Servable(product_id=rec.item, title=p.title or rec.item, url=p.url,
                                image_url=p.image_url, price=p.price, currency=p.currency,
                                reason=rec.reason, source=rec.source))
            if len(out) == n:
                break
    return out
