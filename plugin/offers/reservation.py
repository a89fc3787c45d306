"""Accepting an offer: claim it, re-check the caps and reserve its cost in one transaction.

Quotes read the guardrails, but many offers may stand at once (several shoppers, or one
shopper's concurrent quotes for different carts); only an accept spends money. So the
accept checks the budget and the shopper's caps again while it holds the shop's lock (its
row ``FOR NO KEY UPDATE`` on PostgreSQL; on SQLite the claim's write takes the database's
single write lock), and writes the reservation before letting go: concurrent accepts can
neither pass a cap together nor refuse each other over a reservation that is then undone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Offer, Shop
from plugin.offers import budget, keys
from plugin.offers.settings import Guardrails

#: Offer statuses that carry (or are getting) a discount.
HOLDING = ("accepting", "accepted", "redeemed")


def claim(offer: Offer, rails: Guardrails, now: datetime, *, grace: timedelta) -> str | None:
    """Claim ``offer`` (offered -> accepting) and reserve its amount; commits on success.

    Returns None when claimed and reserved, else why not (nothing changed): ``used`` (not
    ``offered`` any more), ``no_stacking`` / ``frequency_cap`` (the shopper got another
    discount meanwhile) or ``budget``. ``grace``: how long an accepted code stays usable
    after its offer's expiry. ``creating_since`` marks that a discount is being asked for.
    The discount code is stored at the first claim and kept: derived again after a
    ``SECRET_KEY`` rotation it would differ, and a retry (or the reconcile job) would then
    miss the discount an earlier attempt may have made, leaving a second live code.
    """
    db.session.execute(sa.select(Shop.id).where(Shop.id == offer.shop_id)
                       .with_for_update(key_share=True))  # no-op on SQLite
    # unexpired at ``now`` (the request's time) in the same statement that claims it: the
    # reconcile job deletes an expired offer's lost discount only ``CLAIM_MARGIN`` after
    # the expiry, which covers a request that took that long to reach this point
    claimed = db.session.execute(sa.update(Offer).where(
        Offer.id == offer.id, Offer.status == "offered", Offer.expires_at > now).values(
        status="accepting", creating_since=now,
        code=sa.func.coalesce(Offer.code, keys.discount_code(offer))))
    # a retry after a create whose outcome is unknown already holds its reservation
    held = claimed.rowcount == 1 and budget.reserved(offer)
    why = None
    if claimed.rowcount != 1:
        why = "used"
    elif _holds_discount(offer, now - grace):
        why = "no_stacking"
    elif _capped(offer, rails, now):
        why = "frequency_cap"
    elif not held and not _fits(offer, rails, now):
        why = "budget"
    if why is not None:
        db.session.rollback()
        return why
    if not held:
        budget.reserve(offer, now)
    db.session.commit()
    db.session.refresh(offer)
    return None


def _others(offer: Offer) -> sa.ColumnElement[bool]:
    return sa.and_(Offer.shop_id == offer.shop_id, Offer.shopper_id == offer.shopper_id,
                   Offer.id != offer.id, Offer.status.in_(HOLDING))


def _holds_discount(offer: Offer, expired_before: datetime) -> bool:
    """Another discount of the shopper's is being created or is still usable: no stacking."""
    return db.session.scalar(sa.select(sa.func.count(Offer.id)).where(
        _others(offer), Offer.status.in_(("accepting", "accepted")),
        Offer.expires_at > expired_before)) > 0


def _capped(offer: Offer, rails: Guardrails, now: datetime) -> bool:
    since = now - timedelta(days=rails.frequency_cap_days)
    return db.session.scalar(sa.select(sa.func.count(Offer.id)).where(
        _others(offer), Offer.accepted_at > since)) > 0


def _fits(offer: Offer, rails: Guardrails, now: datetime) -> bool:
    left_day, left_month = budget.remaining(offer.shop_id, rails, now)
    return (offer.amount or Decimal(0)) <= min(left_day, left_month)

