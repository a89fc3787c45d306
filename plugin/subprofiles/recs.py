""""For Maya": recommendations seeded only by one sub-profile's own purchases.

The shop's item neighbours (trained on main-profile purchases) say what goes with what;
which items to start from comes from the sub-profile alone, so neither the buyer's own
history nor another sub-profile leaks in. Purchases a Saleor channel switch set aside
(``SET_ASIDE``) seed nothing, as they teach the model nothing, but they were bought for
that person all the same: like the rest of their whole history (not only the seeds), they
are never recommended to them again either. Lists are
cached per process for at most ``TTL_SECONDS`` and dropped at once on delete or reassign,
so a deleted sub-profile is gone from every process's cache within a minute.
"""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from plugin.api import model_store, sources
from plugin.engine.base import Recommendation
from plugin.extensions import db
from plugin.models import Interaction
from plugin.models.events import SET_ASIDE

TTL_SECONDS = 60.0
SEED_KINDS = ("purchase", "add_to_cart", "widget_purchase")
MAX_SEEDS = 50
#: What was bought for the sub-profile: its purchases (the widget's reports included) and
#: those a Saleor channel switch set aside
BOUGHT_KINDS = ("purchase", "widget_purchase", SET_ASIDE)

_lock = threading.Lock()
_cache: dict[tuple[str, int], tuple[float, str, list[Recommendation]]] = {}


def seeds(shop_id: str, subprofile_id: int) -> list[str]:
    """The sub-profile's items, most recent first (its only personal input)."""
    rows = db.session.execute(
        sa.select(Interaction.product_external_id, sa.func.max(Interaction.occurred_at))
        .where(Interaction.shop_id == shop_id, Interaction.subprofile_id == subprofile_id,
               Interaction.kind.in_(SEED_KINDS))
        .group_by(Interaction.product_external_id)
        .order_by(sa.func.max(Interaction.occurred_at).desc()).limit(MAX_SEEDS)).all()
    return [r[0] for r in rows]


def bought_before(shop_id: str, subprofile_id: int) -> set[str]:
    """Every item ever bought for the sub-profile: theirs already, never offered again.

    The whole history, not the ``MAX_SEEDS`` most recent seeds (a cot bought for Maya
    sixty purchases ago is still hers), and lines a channel switch set aside too (a
    durable bought on the old channel must not come back): one set of ids, cheap to read.
    """
    return set(db.session.scalars(sa.select(Interaction.product_external_id).distinct().where(
        Interaction.shop_id == shop_id, Interaction.subprofile_id == subprofile_id,
        Interaction.kind.in_(BOUGHT_KINDS))))


def recommend_for(shop_id: str, owner: str, subprofile_id: int, name: str,
                  n: int) -> list[Recommendation]:
    """Top ``n`` for one sub-profile: neighbours of its items, never its own items again."""
    key = (shop_id, subprofile_id)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
    if hit is not None and now - hit[0] < TTL_SECONDS and len(hit[2]) >= n:
        return _named(hit[2][:n], name)
    items = seeds(shop_id, subprofile_id)
    version = sources.active_version(shop_id)
    model = (model_store.get_model(shop_id, version.id, version.artifact_dir)
             if version is not None and items else None)
    found = [] if model is None else model.similar(
        items, max(n, 20), exclude=set(items) | bought_before(shop_id, subprofile_id))
    with _lock:
        _cache[key] = (now, owner, found)
    return _named(found[:n], name)


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
