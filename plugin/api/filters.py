"""Live filters applied to every answer, whatever source proposed the items.

A cached top-N may be hours old: products deleted or out of stock since (see
``catalog.py`` for how fresh "live" is), merchant exclusions and what is already in the
cart are removed here, at serving time.

Near-duplicates go here too: grocery catalogues hold many ids under one title (the same
milk from several suppliers), and two cards with the same title side by side read as a
glitch to the shopper. A list therefore shows at most one item per normalised title (see
``title_key``): the first, i.e. the higher-ranked one, with its own reason and source; the
next candidates fill the freed places. The rule holds for the shopper's own repeat items
too ("the usual?" when they bought both ids): the card identifies an item by its title,
so two identical cards look broken whatever the history behind them, and the kept one is
the id the source ranked first (for reorder: bought in more orders, then more recently).
The product on the page and the cart's items take their titles as well: another id of the
milk in the basket is no complement to it.
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


def title_key(title: str | None) -> str:
    """What makes two titles "the same" to a shopper: case and spacing do not count."""
    return " ".join((title or "").split()).casefold()


def apply_live_filters(shop: AnyShop, candidates: Iterable[Recommendation], n: int, *,
                       exclude: Iterable[str] = ()) -> list[Servable]:
    """First ``n`` candidates that exist, are live and available, are not excluded and
    repeat no title already in the list or among ``exclude`` (module docstring).

    ``candidates`` is consumed lazily, in chunks: the popular back-fill behind a personal
    list is long and usually not reached.
    """
    exclude = set(exclude)
    banned = merchant_exclusions(shop) | exclude
    # titles of the page's product and the cart (client-sent ids: only live ones count)
    titles = {title_key(p.title) for p in live_products(shop.id, exclude).values()} \
        if exclude else set()
    titles.discard("")
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
            key = title_key(p.title)
            if key:  # an untitled product is shown under its id: unique
                if key in titles:
                    continue
                titles.add(key)
            out.append(Servable(product_id=rec.item, title=p.title or rec.item, url=p.url,
                                image_url=p.image_url, price=p.price, currency=p.currency,
                                reason=rec.reason, source=rec.source))
            if len(out) == n:
                break
    return out
