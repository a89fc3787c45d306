"""Which money is the shop's: one currency for every figure, other currencies told apart.

There are no exchange rates here, so an amount in another currency cannot be added to the
shop's. A Saleor shop with channels in several currencies, or a generic store, sends orders
in each; every money figure (dashboard revenue, attributed revenue, the offers' revenue
per visitor) counts the shop's currency and reports the others beside it, per code.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Order, Product, Shop

CENT = Decimal("0.01")


def shop_currency(shop_id: str) -> str | None:
    """The currency money figures are in: the shop's setting, else its orders' most common
    one, else None (unknown: show no code). Orders in other currencies are totalled apart,
    never added to it."""
    shop = db.session.get(Shop, shop_id)
    configured = (shop.settings or {}).get("currency") if shop else None
    if configured:
        return str(configured).upper()
    n = sa.func.count(Order.id)
    return db.session.scalar(
        sa.select(Order.currency).where(Order.shop_id == shop_id, Order.cancelled.is_(False),
                                        Order.currency.is_not(None), Order.currency != "")
        .group_by(Order.currency).order_by(n.desc(), Order.currency).limit(1))


def catalogue_currency(shop_id: str) -> str | None:
    """The currency the offers' money guardrails are in (``plugin.offers.settings``): the
    shop's setting, else its catalogue's most common one (the platform's default, in which
    prices are mirrored), else its orders'. A Vendure channel's orders may be mostly in
    another currency it sells: its catalogue still says which is its own."""
    shop = db.session.get(Shop, shop_id)
    configured = (shop.settings or {}).get("currency") if shop else None
    if configured:
        return str(configured).upper()
    code = sa.func.upper(Product.currency)
    listed = db.session.scalar(
        sa.select(code).where(Product.shop_id == shop_id, Product.deleted_at.is_(None),
                              Product.currency.is_not(None), Product.currency != "")
        .group_by(code).order_by(sa.func.count(Product.id).desc(), code).limit(1))
    return listed or shop_currency(shop_id)


def same_currency(column: sa.ColumnElement, currency: str | None) -> sa.ColumnElement[bool]:
    """SQL: the amount is in ``currency`` (no code counts as the shop's; a code may be
    stored in lower case). Everything is, when the shop's currency is unknown."""
    if currency is None:
        return sa.true()
    return sa.or_(column.is_(None), column == "", sa.func.upper(column) == currency.upper())


def is_shop_currency(code: str | None, currency: str | None) -> bool:
    """Python twin of ``same_currency`` for rows already read."""
    return currency is None or not code or code.upper() == currency.upper()


def split(rows: Iterable[tuple[str | None, Decimal | float | None]], currency: str | None
          ) -> tuple[Decimal, dict[str, Decimal]]:
    """``(code, amount)`` rows -> the shop's total and ``{other code: total}`` (sorted)."""
    main, other = Decimal(0), {}
    for code, amount in rows:
        value = Decimal(str(amount or 0))
        if is_shop_currency(code, currency):
            main += value
        else:
            key = str(code).upper()
            other[key] = other.get(key, Decimal(0)) + value
    return main, {k: other[k].quantize(CENT) for k in sorted(other)}
