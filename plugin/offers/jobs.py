"""Scheduled offer work, one thin idempotent function for ``plugin.jobs`` to call.

Per active shop with offers enabled: ask the platform again whether offers held back for a
missing permission may resume (``permissions``), attribute recent orders (codes, clicks),
settle quote outcomes, expire stale offers (releasing unused budget), send due nudges,
settle discount creations whose answer was lost and delete the platform discounts of offers
that expired unused. A failing shop is logged and skipped so one bad installation cannot
stop the others.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from plugin.extensions import db
from plugin.leadership import checkpoint, stop_if_lease_lost
from plugin.models import Shop
from plugin.offers import attribution, cleanup, nudges, permissions, reconcile, service

log = logging.getLogger("shopkeeper.offers.jobs")


def run_offer_jobs() -> dict[str, dict[str, int]]:
    """Run attribution and nudges for every shop that has offers on; returns counts."""
    results: dict[str, dict[str, int]] = {}
    shops = list(db.session.scalars(sa.select(Shop).where(Shop.status == "active")))
    for shop in shops:
        checkpoint()  # the scheduler lease was lost: the new leader sends the nudges
        if not (shop.settings or {}).get("offers_enabled"):
            continue
        try:
            unblocked = permissions.recheck(shop)
            db.session.commit()
            counts = attribution.attribute(shop.id, service.guardrails_for(shop))
            counts["offers_unblocked"] = int(unblocked)
            counts.update({f"nudges_{k}": v for k, v in nudges.run_nudges(shop).items()})
            counts["discounts_settled"] = reconcile.settle_creations(shop)
            counts["discounts_deleted"] = cleanup.delete_spent_discounts(shop)
            results[shop.id] = counts
        except Exception as err:  # one shop's failure must not stop the rest
            stop_if_lease_lost(err)
            db.session.rollback()
            log.exception("offers.job_failed", extra={"shop_id": shop.id})
    return results
