"""Fit a shop's uplift model from its stored quotes (outcome known) and cache it briefly."""

from __future__ import annotations

import time
from datetime import timedelta

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Offer, Shop
from plugin.offers.settings import guardrails_from
from plugin.offers.uplift import UpliftModel

MAX_ROWS = 20_000
CACHE_SECONDS = 3600
_cache: dict[str, tuple[float, UpliftModel]] = {}


def fit_shop_model(shop_id: str) -> UpliftModel:
    """Control rows: holdout and "no offer" quotes; treated rows: offers shown (discount %)."""
    return UpliftModel().fit(*training_rows(shop_id))


def training_rows(shop_id: str) -> tuple[list[dict], list[float], list[bool]]:
    """Features, discount % and outcome of the shop's settled quotes, newest first.

    A conversion whose every order was cancelled since counts as none, as in the uplift
    report: the stored flag was settled when the order came, and learning that a discount
    "sold" an order the shopper then cancelled would teach the model to give it again.
    """
    from plugin.offers.attribution import cancelled_conversions  # attribution imports us

    rows = db.session.execute(sa.select(
        Offer.id, Offer.shopper_id, Offer.created_at, Offer.features, Offer.amount,
        Offer.cart_value, Offer.status, Offer.converted).where(
        Offer.shop_id == shop_id, Offer.converted.is_not(None)).order_by(
        Offer.id.desc()).limit(MAX_ROWS)).all()
    shop = db.session.get(Shop, shop_id)
    rails = guardrails_from((shop.settings or {}).get("offers") if shop else None,
                            drop_refused=True)
    undone = cancelled_conversions(shop_id, [(q, sid, at) for q, sid, at, *_, converted
                                             in rows if converted],
                                   timedelta(days=rails.attribution_window_days))
    feats, pcts, ys = [], [], []
    for q, _, _, features, amount, cart_value, status, converted in rows:
        treated = status not in ("none", "holdout") and amount and cart_value
        feats.append(features or {})
        pcts.append(float(amount / cart_value * 100) if treated else 0.0)
        ys.append(bool(converted) and q not in undone)
    return feats, pcts, ys


def model_for(shop_id: str) -> UpliftModel:
    """The cached model, refitted after ``CACHE_SECONDS``."""
    hit = _cache.get(shop_id)
    if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    model = fit_shop_model(shop_id)
    _cache[shop_id] = (time.monotonic(), model)
    return model
