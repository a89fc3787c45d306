"""Fit a shop's uplift model from its stored quotes (outcome known) and cache it briefly."""

from __future__ import annotations

import time

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Offer
from plugin.offers.uplift import UpliftModel

MAX_ROWS = 20_000
CACHE_SECONDS = 3600
_cache: dict[str, tuple[float, UpliftModel]] = {}


def fit_shop_model(shop_id: str) -> UpliftModel:
    """Control rows: holdout and "no offer" quotes; treated rows: offers shown (discount %)."""
    rows = db.session.execute(sa.select(Offer.features, Offer.amount, Offer.cart_value,
                                        Offer.status, Offer.converted).where(
        Offer.shop_id == shop_id, Offer.converted.is_not(None)).order_by(
        Offer.id.desc()).limit(MAX_ROWS)).all()
    feats, pcts, ys = [], [], []
    for features, amount, cart_value, status, converted in rows:
        treated = status not in ("none", "holdout") and amount and cart_value
        feats.append(features or {})
        pcts.append(float(amount / cart_value * 100) if treated else 0.0)
        ys.append(bool(converted))
    return UpliftModel().fit(feats, pcts, ys)


def model_for(shop_id: str) -> UpliftModel:
    """The cached model, refitted after ``CACHE_SECONDS``."""
    hit = _cache.get(shop_id)
    if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    model = fit_shop_model(shop_id)
    _cache[shop_id] = (time.monotonic(), model)
    return model
