"""Settling discount creations whose answer never arrived.

``accept`` marks an offer ``creating_since`` before it asks the platform for the discount
and clears the mark with the answer. A mark left behind means the platform may hold a
discount we never recorded: the call failed (timeout, reset, a 5xx after the platform had
committed) and the shopper did not retry, or the process died mid-call and left the offer
``accepting`` with its budget reserved. Once no call can still be running (``SETTLE``),
the offer's code is looked up on the platform and what is found is deleted, unless the
offer can still be accepted: then a retry adopts that discount (same code) instead.

The offer's budget reservation is held until then, since the discount may exist and be
used: it stands if a retry adopted the discount (or an order redeemed it), and is released
once the discount is deleted or was never made. A creation the platform cannot settle
within ``GIVE_UP_AFTER`` (lookups failing throughout) is released all the same: its
discount expired on the platform long before, and its code was never handed out.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import requests
import sqlalchemy as sa

from connectors.base import Connector
from connectors.errors import ConnectorError, RateLimited
from connectors.records import DiscountRef
from plugin.extensions import db
from plugin.models import Offer, Shop
from plugin.models.types import utcnow
from plugin.offers import budget, keys
from plugin.shops import connector_for

log = logging.getLogger("shopkeeper.offers.reconcile")

#: Longer than any create call can take with its retries (then its answer is lost for good).
SETTLE = timedelta(minutes=15)
#: How long after its expiry an offer is left to its retries: an accept checks the expiry on
#: its own clock when it begins, so a retry that began just in time may claim a moment
#: later, and the job must not delete the discount that retry is adopting.
CLAIM_MARGIN = timedelta(minutes=5)
#: Offers settled per shop per run (the job runs every few minutes).
BATCH = 50
#: An unanswered creation still unsettled after this long releases its reservation.
GIVE_UP_AFTER = timedelta(days=7)


def settle_creations(shop: Shop, *, now: datetime | None = None,
                     session: requests.Session | None = None) -> int:
    """Settle the shop's unanswered discount creations; returns how many were settled.

    One the platform cannot look up or delete now stays for the next run, up to
    ``GIVE_UP_AFTER``; a rate limit ends this run.
    """
    now = now or utcnow()
    offers = db.session.scalars(sa.select(Offer).where(
        Offer.shop_id == shop.id, Offer.creating_since <= now - SETTLE,
        sa.not_(sa.and_(Offer.status == "offered", Offer.expires_at > now - CLAIM_MARGIN)))
        .order_by(Offer.creating_since, Offer.id).limit(BATCH)).all()
    if not offers:
        return 0
    connector = connector_for(shop, session=session)
    settled = 0
    for offer in offers:
        if offer.status == "accepting":  # its accept died mid-call: undo the claim
            offer.status = "offered"
            if offer.expires_at is not None and offer.expires_at > now - CLAIM_MARGIN:
                continue  # the shopper may still accept it; a retry adopts the discount
        if offer.status not in ("accepted", "redeemed"):  # else the reservation stands
            try:
                _delete(connector, offer, now)
            except RateLimited:
                break
            except Exception as err:  # an unexpected answer too: retried, then given up
                if not isinstance(err, ConnectorError):
                    log.exception("offers.discount_settle_crashed", extra={
                        "shop_id": shop.id, "offer": offer.public_id})
                log.warning("offers.discount_settle_failed", extra={
                    "shop_id": shop.id, "offer": offer.public_id, "error": type(err).__name__})
                if offer.creating_since is not None \
                        and offer.creating_since > now - GIVE_UP_AFTER:
                    continue
            budget.cancel(offer)
        offer.creating_since = None
        settled += 1
    db.session.commit()
    return settled


def _delete(connector: Connector, offer: Offer, now: datetime) -> None:
    """Delete the discount an unanswered create may have made for ``offer``."""
    code = offer.code or keys.discount_code(offer)  # derived: claimed before codes were stored
    found = connector.find_discount(code)
    if found is not None:
        connector.delete_discount(DiscountRef(found, code, offer.expires_at or now))
        log.info("offers.orphan_discount_deleted", extra={"shop_id": offer.shop_id,
                                                          "offer": offer.public_id})
