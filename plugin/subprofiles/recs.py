""""For Maya": recommendations seeded only by one sub-profile's own purchases.

The shop's item neighbours (trained on main-profile purchases) say what goes with what;
which items to start from comes from the sub-profile alone, so neither the buyer's own
history nor another sub-profile leaks in. Purchases a Saleor channel switch set aside
(``SET_ASIDE``) seed nothing, as they teach the model nothing, but they were bought for
that person all the same. What was bought for the sub-profile, over its whole history (not
only the seeds), follows the shop's repurchase rules on its own purchase dates: a durable
never comes back, a consumable only once it is due ("the usual?" for Maya too), a variety
item leaves room for its siblings; the merchant's repurchase overrides (``api.overrides``)
decide for the items they name, as for the owner's lists. Lists are cached per process for
at most ``TTL_SECONDS`` and dropped at once on delete or reassign, so a deleted sub-profile is
gone from every process's cache within a minute. A cached list is used only while the
sub-profile's purchases and seeds are still those it was computed from (``_stamp``): an
order for it, or one reassigned to or from it, usually lands in another process (the
worker), and the item just bought was offered again for up to the TTL; nor once the
merchant has changed the overrides (a save takes effect at once).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import sqlalchemy as sa

from plugin.api import model_store, overrides, sources
from plugin.api.model_store import ShopModel
from plugin.api.sources import OWNED_KINDS
from plugin.engine.base import Recommendation
from plugin.extensions import db
from plugin.models import Interaction
from plugin.models.types import utcnow

TTL_SECONDS = 60.0
SEED_KINDS = ("purchase", "add_to_cart", "widget_purchase")
MAX_SEEDS = 50
#: What was bought for the sub-profile, as for its owner (``sources.OWNED_KINDS``): the
#: platform's orders, those a Saleor channel switch set aside included. A purchase the
#: widget reported is no sale until its order arrives (training and the owner's rhythm
#: ignore it): counted here, one never confirmed (a payment refused) moved her nappies'
#: due date, and one reported the day before its order counted the purchase twice. It
#: still seeds her list (``SEED_KINDS``), which leaves the item out.
BOUGHT_KINDS = OWNED_KINDS

_lock = threading.Lock()
#: (shop, sub-profile) -> (when, owner, its rows' ``_stamp`` then, the list)
_cache: dict[tuple[str, int],
             tuple[float, str, tuple[int, int, str], list[Recommendation]]] = {}
#: The rows a list is computed from (its seeds and what was bought for the sub-profile)
STAMPED_KINDS = tuple(sorted(set(SEED_KINDS) | set(BOUGHT_KINDS)))


def seeds(shop_id: str, subprofile_id: int) -> list[str]:
    """The sub-profile's items, most recent first (its only personal input)."""
    rows = db.session.execute(
        sa.select(Interaction.product_external_id, sa.func.max(Interaction.occurred_at))
        .where(Interaction.shop_id == shop_id, Interaction.subprofile_id == subprofile_id,
               Interaction.kind.in_(SEED_KINDS))
        .group_by(Interaction.product_external_id)
        .order_by(sa.func.max(Interaction.occurred_at).desc()).limit(MAX_SEEDS)).all()
    return [r[0] for r in rows]


def bought_before(shop_id: str, subprofile_id: int) -> dict[str, list[float]]:
    """Every item ever bought for the sub-profile, with when (unix times): theirs already.

    The whole history, not the ``MAX_SEEDS`` most recent seeds (a cot bought for Maya
    sixty purchases ago is still hers), and lines a channel switch set aside too (a
    durable bought on the old channel must not come back; milk bought there was bought).
    """
    out: dict[str, list[float]] = {}
    for item, at in db.session.execute(
            sa.select(Interaction.product_external_id, Interaction.occurred_at).distinct()
            .where(Interaction.shop_id == shop_id, Interaction.subprofile_id == subprofile_id,
                   Interaction.kind.in_(BOUGHT_KINDS))):
        out.setdefault(item, []).append(at.timestamp())
    return out


def due(model: ShopModel, bought: dict[str, list[float]], now: float) -> list[Recommendation]:
    """What was bought for the sub-profile that is due again, by the shop's fitted
    repurchase rules on the sub-profile's own purchase dates: consumables once their
    interval (nearly) elapsed ("you usually reorder this every ~7 days"). Durables never
    come back, nor variety items (their siblings do, as neighbours), nor what the model
    does not know."""
    repurchase = getattr(model.recommender, "repurchase_", None)
    if repurchase is None or not hasattr(repurchase, "interval_days_") or not bought:
        return []
    index = repurchase.data_.item_index
    known = [(i, t) for item, times in bought.items()
             if (i := index(item)) is not None for t in times]
    if not known:
        return []
    items, times = zip(*known, strict=True)
    return repurchase.due_in(np.array(items, np.int64), np.array(times, np.float64), now)


def with_overrides(shop_id: str, found: list[Recommendation], bought: dict[str, list[float]],
                   now: float) -> list[Recommendation]:
    """``found`` (what the model says is due) with the merchant's word for the items an
    override names: a durable or a consumable within its cycle is dropped, a consumable
    whose cycle has elapsed since its last purchase for the sub-profile is due, until it
    lapses (``Override.due``: the learned consumables' window, as in ``found``)."""
    ruled = overrides.resolve(shop_id, bought)
    if not ruled:
        return found
    last = {item: max(times) for item, times in bought.items()}
    kept = [r for r in found if r.item not in ruled]
    extra = [Recommendation(item, 1.0, "repurchase_due", rule.reason)
             for item, rule in sorted(ruled.items(), key=lambda kv: last[kv[0]])
             if rule.due(last[item], now)]
    return extra + kept


def recommend_for(shop_id: str, owner: str, subprofile_id: int, name: str,
                  n: int) -> list[Recommendation]:
    """Top ``n`` for one sub-profile: its consumables that are due, then neighbours of its
    items; nothing else it already has."""
    key = (shop_id, subprofile_id)
    now = time.monotonic()
    stamp = _stamp(shop_id, owner, subprofile_id)
    with _lock:
        hit = _cache.get(key)
    if hit is not None and now - hit[0] < TTL_SECONDS and hit[1:3] == (owner, stamp) \
            and len(hit[3]) >= n:
        return _named(hit[3][:n], name)
    items = seeds(shop_id, subprofile_id)
    bought = bought_before(shop_id, subprofile_id)
    version = sources.active_version(shop_id)
    model = (model_store.get_model(shop_id, version.id, version.artifact_dir)
             if version is not None and (items or bought) else None)
    at = utcnow().timestamp()
    found = with_overrides(shop_id, [] if model is None else due(model, bought, at), bought, at)
    if model is not None:
        found += model.similar(items, max(n, 20), exclude=set(items) | set(bought))
    with _lock:
        _cache[key] = (now, owner, stamp, found)
    return _named(found[:n], name)


def _stamp(shop_id: str, owner: str, subprofile_id: int) -> tuple[int, int, str]:
    """How many of the sub-profile's rows a list is computed from there are, and the newest
    one's id: an order line given to it, or a purchase reassigned to or from it (in any
    process), changes one or the other. Read through the owner's index: a sub-profile's
    rows are its owner's. The shop's override lines count too (a save changes them)."""
    count, newest = db.session.execute(
        sa.select(sa.func.count(), sa.func.max(Interaction.id)).where(
            Interaction.shop_id == shop_id, Interaction.shopper_id == owner,
            Interaction.subprofile_id == subprofile_id,
            Interaction.kind.in_(STAMPED_KINDS))).one()
    return int(count), int(newest or 0), overrides.rules_of(shop_id).key


def _named(found: list[Recommendation], name: str) -> list[Recommendation]:
    """Say whom each item is for. Done on every read, not cached: a renamed sub-profile's
    list says its new name at once, in every process."""
    return [Recommendation(r.item, r.score, "subprofile", f"for {name}: {r.reason}")
            for r in found]


def forget(shop_id: str, subprofile_id: int) -> None:
    """Drop one sub-profile's cached list (delete, merge)."""
    with _lock:
        _cache.pop((shop_id, subprofile_id), None)


def forget_owner(shop_id: str, owner: str) -> None:
    """Drop every cached list of an owner's sub-profiles (purchases were reassigned)."""
    with _lock:
        for key in [k for k, v in _cache.items() if k[0] == shop_id and v[1] == owner]:
            del _cache[key]


def cached_keys() -> set[tuple[str, int]]:
    """What is cached right now (tests check that deletion reaches the cache)."""
    with _lock:
        return set(_cache)
