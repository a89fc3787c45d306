"""Offers' part of data-subject requests and shop erasure (wired into ``plugin.privacy``).

Erasing a shopper deletes their nudges and unlinks their quotes (shopper id replaced,
features dropped): the rows stay only as anonymous counts for budgets and the uplift
report, as orders stay unlinked for the shop's totals.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import (
    ClickAttribution,
    Nudge,
    Offer,
    OfferKey,
    OfferLedgerEntry,
    Order,
    Redemption,
)

ERASED = "erased"


def export_shopper(shop_id: str, shopper_id: str) -> dict[str, Any]:
    """The shopper's quotes and nudges as plain JSON."""
    offers = db.session.scalars(sa.select(Offer).where(
        Offer.shop_id == shop_id, Offer.shopper_id == shopper_id).order_by(Offer.id))
    nudges = db.session.scalars(sa.select(Nudge).where(
        Nudge.shop_id == shop_id, Nudge.shopper_id == shopper_id).order_by(Nudge.id))
    return {
        "offers": [{"id": o.public_id, "created_at": o.created_at.isoformat(),
                    "stage": o.stage, "status": o.status, "kind": o.kind,
                    "amount": None if o.amount is None else str(o.amount),
                    "currency": o.currency, "holdout": o.holdout,
                    # stored at the first attempt; the shopper's only once handed out
                    "code": o.code if o.accepted_at else None}
                   for o in offers],
        "nudges": [{"stage": n.stage, "status": n.status, "created_at": n.created_at.isoformat()}
                   for n in nudges],
    }


def erase_shopper(shop_id: str, shopper_id: str) -> None:
    """Delete nudges, unlink quotes (the caller commits)."""
    db.session.execute(sa.delete(Nudge).where(Nudge.shop_id == shop_id,
                                              Nudge.shopper_id == shopper_id))
    db.session.execute(sa.update(Offer).where(Offer.shop_id == shop_id,
                                              Offer.shopper_id == shopper_id)
                       .values(shopper_id=ERASED, features={}))


def unlink_orders(shop_id: str, order_ids: Sequence[str]) -> None:
    """A redaction's orders: their redemptions and click credits lose the order id (it tied
    the order to a quote's shopper and to a click) and keep what the report read through
    it, the order's currency and whether it was cancelled; amounts and counts stay.

    The orders lose their discount codes too (a code names its offer, so the quote's
    shopper): a code not credited yet is credited first, and the credit unlinked."""
    from plugin.offers.attribution import credit_codes  # it imports this module

    credit_codes(shop_id, order_ids)
    db.session.flush()
    for model in (Redemption, ClickAttribution):
        order = sa.select(Order).where(Order.shop_id == shop_id,
                                       Order.external_id == model.order_external_id)
        db.session.execute(
            sa.update(model).where(model.shop_id == shop_id,
                                   model.order_external_id.in_(order_ids))
            .values(order_currency=order.with_only_columns(Order.currency).scalar_subquery(),
                    order_cancelled=sa.func.coalesce(order.with_only_columns(
                        Order.cancelled).scalar_subquery(), False),
                    order_external_id=None),  # the SET reads the row as it was
            execution_options={"synchronize_session": False})
    db.session.execute(sa.update(Order).where(Order.shop_id == shop_id,
                                              Order.external_id.in_(order_ids))
                       .values(discount_codes=[]))


def purge_before(shop_id: str, cutoff: datetime) -> int:
    """Retention: nudges older than ``cutoff`` go, older quotes lose their shopper id.

    Unlike an erasure the quote keeps its features (cart value, stage, item count): with
    no id they describe no one, and the uplift model keeps learning from them. Returns the
    rows touched."""
    n = db.session.execute(sa.delete(Nudge).where(
        Nudge.shop_id == shop_id, Nudge.created_at < cutoff)).rowcount or 0
    n += db.session.execute(sa.update(Offer).where(
        Offer.shop_id == shop_id, Offer.created_at < cutoff, Offer.shopper_id != ERASED)
        .values(shopper_id=ERASED)).rowcount or 0
    return n


def erase_shop(shop_id: str) -> None:
    """Every offers row of a shop (explicit, for SQLite without foreign-key enforcement)."""
    for model in (Redemption, OfferLedgerEntry, ClickAttribution, Nudge, OfferKey):
        db.session.execute(sa.delete(model).where(model.shop_id == shop_id))
    db.session.execute(sa.delete(Offer).where(Offer.shop_id == shop_id))
