"""Catalog look-ups for offers: categories of cart items and add-on candidates.

Bundles and cross-sells come from co-purchases (the trained item-neighbour model when the
shop has one, else a direct count over past orders); upsells are pricier products of the
same category (1.1x to 2x the price) that are in stock.
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Interaction, Product
from plugin.models.catalog import on_sale
from plugin.models.types import utcnow
from plugin.offers.candidates import Complement

MAX_ANCHORS = 3
PER_ANCHOR = 3


def categories_of(shop_id: str, product_ids: list[str]) -> dict[str, tuple[str, ...]]:
    rows = db.session.execute(sa.select(Product.external_id, Product.categories).where(
        Product.shop_id == shop_id, Product.external_id.in_(product_ids))).all()
    return {pid: tuple(cats or ()) for pid, cats in rows}


def _products(shop_id: str, ids: list[str]) -> dict[str, Product]:
    if not ids:
        return {}
    rows = db.session.scalars(sa.select(Product).where(
        Product.shop_id == shop_id, Product.external_id.in_(ids), on_sale(utcnow()),
        Product.deleted_at.is_(None), Product.price.is_not(None)))
    return {p.external_id: p for p in rows}


def co_purchased(shop_id: str, anchor: str, exclude: set[str], n: int) -> list[str]:
    """Products most often in the same orders as ``anchor``."""
    orders = sa.select(Interaction.order_external_id).where(
        Interaction.shop_id == shop_id, Interaction.product_external_id == anchor,
        Interaction.kind == "purchase", Interaction.order_external_id.is_not(None))
    count = sa.func.count(sa.distinct(Interaction.order_external_id))
    rows = db.session.execute(sa.select(Interaction.product_external_id, count).where(
        Interaction.shop_id == shop_id, Interaction.kind == "purchase",
        Interaction.order_external_id.in_(orders),
        Interaction.product_external_id.not_in(exclude | {anchor}))
        .group_by(Interaction.product_external_id)
        .order_by(count.desc(), Interaction.product_external_id).limit(n)).all()
    return [r[0] for r in rows]


def complements_for(shop_id: str, cart_ids: list[str]) -> tuple[Complement, ...]:
    """Bundle/cross-sell partners of the first cart items, and same-category upgrades."""
    in_cart = set(cart_ids)
    anchors = list(dict.fromkeys(cart_ids))[:MAX_ANCHORS]
    pairs = [(a, p) for a in anchors for p in co_purchased(shop_id, a, in_cart, PER_ANCHOR)]
    known = _products(shop_id, [p for _, p in pairs] + anchors)
    out: list[Complement] = []
    for anchor, pid in pairs:
        prod = known.get(pid)
        if prod is None:
            continue
        for kind in ("bundle", "cross_sell"):
            out.append(Complement(kind, pid, prod.title, prod.price or Decimal(0),
                                  tuple(prod.categories or ()), anchor_id=anchor))
    for anchor in anchors:
        base = known.get(anchor)
        if base is None or not base.categories or not base.price:
            continue
        upgrades = db.session.scalars(sa.select(Product).where(
            Product.shop_id == shop_id, Product.external_id.not_in(in_cart),
            on_sale(utcnow()), Product.deleted_at.is_(None),
            Product.price > base.price * Decimal("1.1"), Product.price <= base.price * 2)
            .order_by(Product.price, Product.external_id).limit(50))
        upgrade = next((u for u in upgrades
                        if set(u.categories or ()) & set(base.categories)), None)
        if upgrade is not None:
            out.append(Complement("upsell", upgrade.external_id, upgrade.title,
                                  upgrade.price or Decimal(0), tuple(upgrade.categories or ()),
                                  anchor_id=anchor))
    return tuple(out)
