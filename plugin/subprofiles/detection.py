"""The shop's fitted ``OutOfProfileDetector`` and a shopper's own purchase history.

The detector is fitted from main-profile purchases only (the same rows training uses),
lazily per process and refitted when the shop's served model version changes or after
``REFIT_SECONDS``; the worker can warm it with ``detector_for`` after training.
"""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from plugin.api.sources import active_version
from plugin.engine.subprofiles import OutOfProfileDetector
from plugin.extensions import db
from plugin.models import Interaction
from plugin.models.events import SET_ASIDE

REFIT_SECONDS = 6 * 3600.0
HISTORY_LIMIT = 500
#: The shopper's own purchases on any channel (the detector's "their taste").
OWN_KINDS = ("purchase", SET_ASIDE)
#: Rows that say an item was for a sub-profile: bought (on any channel) or put in the cart.
EVIDENCE_KINDS = ("purchase", SET_ASIDE, "widget_purchase", "add_to_cart")

_lock = threading.Lock()
_fitted: dict[str, tuple[float, int | None, OutOfProfileDetector]] = {}


def detector_for(shop_id: str) -> OutOfProfileDetector:
    """The shop's detector (fitted now if missing, stale, or from an older version)."""
    version = active_version(shop_id)
    version_id = version.id if version is not None else None
    now = time.monotonic()
    with _lock:
        hit = _fitted.get(shop_id)
    if hit is not None and hit[1] == version_id and now - hit[0] < REFIT_SECONDS:
        return hit[2]
    from plugin.training import load_interactions

    detector = OutOfProfileDetector().fit(load_interactions(shop_id))
    with _lock:
        _fitted[shop_id] = (now, version_id, detector)
    return detector


def forget(shop_id: str | None = None) -> None:
    """Drop fitted detectors (tests; after a shop's erasure)."""
    with _lock:
        if shop_id is None:
            _fitted.clear()
        else:
            _fitted.pop(shop_id, None)


def own_history(shop_id: str, shopper_id: str, *, exclude_order: str | None = None
                ) -> list[str]:
    """The shopper's own verified purchases (no sub-profile rows), newest first.

    Those a Saleor channel switch set aside count: they teach the model nothing now, but
    they are still what the shopper buys for themselves, and without them a shopper whose
    history was the old channel's looked new (too short a history: never asked).
    """
    query = (sa.select(Interaction.product_external_id)
             .where(Interaction.shop_id == shop_id, Interaction.shopper_id == shopper_id,
                    Interaction.kind.in_(OWN_KINDS), Interaction.subprofile_id.is_(None))
             .order_by(Interaction.occurred_at.desc()).limit(HISTORY_LIMIT))
    if exclude_order:
        query = query.where(sa.or_(Interaction.order_external_id.is_(None),
                                   Interaction.order_external_id != exclude_order))
    return list(db.session.scalars(query))


def subprofile_histories(shop_id: str, subprofile_ids: list[int]) -> dict[int, list[str]]:
    """Items bought for each sub-profile (to suggest the right one).

    What was bought or put in the cart for the person counts (``EVIDENCE_KINDS``), purchases
    a Saleor channel switch set aside (``SET_ASIDE``) included: they left training and
    recommendations because the old channel's orders no longer teach the model, but they
    were still bought for that person, and "who is this for?" is about the person, not the
    channel. Other rows under the sub-profile (views, wishlist, clicks, removals from the
    cart, which reassigns moved along before they kept to ``service.REASSIGNED_KINDS``) do
    not: a removal says the item was not wanted, and a view says little.
    """
    if not subprofile_ids:
        return {}
    out: dict[int, list[str]] = {i: [] for i in subprofile_ids}
    rows = db.session.execute(sa.select(Interaction.subprofile_id,
                                        Interaction.product_external_id).where(
        Interaction.shop_id == shop_id, Interaction.subprofile_id.in_(subprofile_ids),
        Interaction.kind.in_(EVIDENCE_KINDS)))
    for sub, item in rows:
        out[sub].append(item)
    return out
