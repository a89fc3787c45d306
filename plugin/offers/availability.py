"""Offers scoped to products the shop no longer sells stop standing.

An offer is checked against the catalogue when it is quoted: its add-on or item products
are ones on sale then. A product unpublished from the storefront, sold out or deleted
afterwards cannot be bought, yet the quoted offer for it stood until it expired: shown
again for the same cart and accepted into a discount for it. The product changes that take
a product off sale (a products webhook, a sync page, a sync's sweep of the unlisted)
withdraw the live offers naming it, and accepting or re-showing one checks it again (a
change that arrives after the offer was shown, or one this path missed).

A product the catalogue never knew is left alone, as at quote time: only one known and
no longer on sale withdraws an offer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Offer, Product
from plugin.models.catalog import on_sale
from plugin.models.types import utcnow

__all__ = ["off_sale", "withdraw_off_sale"]

log = logging.getLogger("shopkeeper.offers")

#: Statuses of an offer that still stands (``service.LIVE``).
_LIVE = ("offered",)


def off_sale(shop_id: str, product_ids: Iterable[str], now: datetime) -> set[str]:
    """Of ``product_ids``, those the catalogue knows and does not sell at ``now`` (deleted,
    unavailable or not launched yet)."""
    ids = sorted({str(p) for p in product_ids})
    if not ids:
        return set()
    return set(db.session.scalars(sa.select(Product.external_id).where(
        Product.shop_id == shop_id, Product.external_id.in_(ids),
        sa.or_(Product.deleted_at.is_not(None), sa.not_(on_sale(now))))))


def withdraw_off_sale(shop_id: str, product_ids: Iterable[str] | None, *,
                      now: datetime | None = None) -> int:
    """Withdraw (as superseded) the live offers scoped to a product of ``product_ids`` (None:
    any product) that is no longer on sale; returns how many. The caller commits.

    Callers pass the products a change may have taken off sale, so the offers are read only
    when one did."""
    now = now or utcnow()
    wanted = None if product_ids is None else {str(p) for p in product_ids}
    if wanted is not None:
        wanted = off_sale(shop_id, wanted, now)
        if not wanted:
            return 0
    live = db.session.execute(sa.select(Offer.id, Offer.product_ids).where(
        Offer.shop_id == shop_id, Offer.status.in_(_LIVE), Offer.expires_at > now)).all()
    named = {oid: {str(p) for p in pids or ()} for oid, pids in live}
    named = {oid: pids for oid, pids in named.items()
             if pids and (wanted is None or pids & wanted)}
    if not named:
        return 0
    gone = wanted if wanted is not None else off_sale(shop_id, set().union(*named.values()), now)
    doomed = sorted(oid for oid, pids in named.items() if pids & gone)
    if doomed:
        db.session.execute(sa.update(Offer).where(Offer.id.in_(doomed), Offer.status.in_(_LIVE))
                           .values(status="superseded"))
        log.info("offers.withdrawn_off_sale", extra={"shop_id": shop_id, "offers": len(doomed)})
    return len(doomed)
