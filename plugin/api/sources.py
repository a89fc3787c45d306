"""Candidate sources of the serving chain: cache, online model, neighbours, reorder, popular."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import sqlalchemy as sa
from flask import current_app, g, has_request_context

from plugin import cache as redis_cache
from plugin import hot_reads
from plugin.api import model_store, overrides
from plugin.engine.base import BaseRecommender, Recommendation
from plugin.engine.repurchase import RepurchaseModel, lapsed
from plugin.extensions import db
from plugin.models import Customer, Interaction, ModelVersion, RecommendationCache
from plugin.models.events import SET_ASIDE
from plugin.models.types import utcnow

#: Cached rows older than this are stale and recomputed online (config key below).
DEFAULT_CACHE_TTL_SECONDS = 36 * 3600
POPULAR_REASON = "popular in this shop right now"
#: Share of a customer's own reorder interval after which an item is due again ("the
#: usual?"), as ``RepurchaseModel.due_fraction``.
REORDER_DUE_FRACTION = 0.8
#: Sources that say nothing about the shopper (for the ``personalized`` flag); a
#: merchant's pin is the same for everyone.
NON_PERSONAL = frozenset({"popular", "trending", "g-pop", "itemknn-cart", "itemknn-product",
                          "merchandising"})

_popular_lock = threading.Lock()
_popular_db: dict[str, tuple[float, list[Recommendation]]] = {}
POPULAR_DB_TTL = 300.0
DEFAULT_VERSION_CACHE = 10.0
#: How soon a cached version whose model could not be loaded is looked up again.
UNLOADABLE_VERSION_RECHECK_SECONDS = 1.0
#: Untrained shops: popularity over their most recent purchase rows.
POPULAR_DB_ROWS = 20_000
#: What a shopper owns: their purchases, and those a Saleor channel switch set aside.
OWNED_KINDS = ("purchase", SET_ASIDE)
#: A purchase the storefront reported (``plugin.api.events``): a signal, not a sale, so
#: training and the repurchase rhythm take only orders. But the shopper has just bought it,
#: and its order comes later (a webhook, the reconcile sync): the owner's lists leave it
#: out meanwhile, a durable for good (``owned_durables``), anything else as just bought
#: for ``REPORTED_PENDING_HOURS`` (``reported_since``).
REPORTED = "widget_purchase"
#: What the toilet-seat rule leaves out: durables owned, or reported bought.
DURABLE_KINDS = (*OWNED_KINDS, REPORTED)
#: Hours a reported purchase counts as just bought (not due): its order, which then
#: counts, arrives within minutes or the next reconcile; one that never does (a refused
#: payment) holds a weekly item back for hours, not for a week.
REPORTED_PENDING_HOURS = 12.0


def active_version(shop_id: str) -> ModelVersion | None:
    """The newest ready version (the one served)."""
    return db.session.scalar(
        sa.select(ModelVersion).where(ModelVersion.shop_id == shop_id,
                                      ModelVersion.status == "ready")
        .order_by(ModelVersion.id.desc()).limit(1))


def bought_since(shop_id: str, shopper_ids: Iterable[str],
                 since: datetime | None) -> dict[str, set[str]]:
    """Items each shopper bought after the model's data ends (it cannot know them yet).

    Lines a Saleor channel switch set aside since count too: the served model was fitted
    before the switch, and milk bought yesterday on the old channel was bought all the
    same (the toilet-seat rule counts them as well). Those given to a sub-profile are the
    sub-profile's (whose list never offers them again), not the shopper's.
    """
    ids = [str(s) for s in shopper_ids]
    query = sa.select(Interaction.shopper_id, Interaction.product_external_id).where(
        Interaction.shop_id == shop_id, Interaction.kind.in_(OWNED_KINDS),
        Interaction.subprofile_id.is_(None),  # bought for someone else: not theirs
        Interaction.shopper_id.in_(ids))
    if since is not None:
        query = query.where(Interaction.occurred_at > since)
    out: dict[str, set[str]] = {}
    for shopper, item in db.session.execute(query):
        out.setdefault(shopper, set()).add(item)
    return out


def reported_since(shop_id: str, shopper_ids: Iterable[str],
                   now: datetime | None = None) -> dict[str, set[str]]:
    """Items each shopper reported bought (``REPORTED``) in the last
    ``REPORTED_PENDING_HOURS``: just bought, their order may not be in yet. Not those
    reported for a sub-profile (its own list has them)."""
    since = (now or utcnow()) - timedelta(hours=REPORTED_PENDING_HOURS)
    out: dict[str, set[str]] = {}
    for shopper, item in db.session.execute(
            sa.select(Interaction.shopper_id, Interaction.product_external_id).distinct()
            .where(Interaction.shop_id == shop_id, Interaction.kind == REPORTED,
                   Interaction.subprofile_id.is_(None),
                   Interaction.shopper_id.in_([str(s) for s in shopper_ids]),
                   Interaction.occurred_at > since)):
        out.setdefault(shopper, set()).add(item)
    return out


def bought_for_others(shop_id: str, shopper_ids: Iterable[str],
                      until: datetime | None) -> dict[str, list[tuple[str, float]]]:
    """Purchases the model was fitted on as each shopper's own that have since been moved to
    one of their sub-profiles ("that was for Maya"): ``(item, unix time)`` to forget.

    Set aside by a Saleor channel switch since, they are still in the served model until
    the refit, and still Maya's."""
    ids = [str(s) for s in shopper_ids]
    query = sa.select(Interaction.shopper_id, Interaction.product_external_id,
                      Interaction.occurred_at).where(
        Interaction.shop_id == shop_id, Interaction.kind.in_(OWNED_KINDS),
        Interaction.subprofile_id.is_not(None), Interaction.shopper_id.in_(ids))
    if until is not None:
        query = query.where(Interaction.occurred_at <= until)
    out: dict[str, list[tuple[str, float]]] = {}
    for shopper, item, at in db.session.execute(query):
        out.setdefault(shopper, []).append((item, at.timestamp()))
    return out


def personal_list(recommender: BaseRecommender, shopper: str, n: int, exclude: set[str],
                  forget: list[tuple[str, float]]) -> list[Recommendation]:
    """``recommender.recommend`` without the purchases in ``forget``; a model that cannot
    forget them at least leaves those items out."""
    if not forget:
        return recommender.recommend(shopper, n, exclude=exclude)
    if "forget" in inspect.signature(recommender.recommend).parameters:
        return recommender.recommend(shopper, n, exclude=exclude, forget=forget)
    return recommender.recommend(shopper, n, exclude=exclude | {i for i, _ in forget})


@dataclass(frozen=True)
class ServedVersion:
    """The served model version of a shop, detached from the session (cached per process)."""

    id: int
    artifact_dir: str
    trained_until: datetime | None
    popular: tuple[Recommendation, ...]


_versions: dict[str, tuple[float, ServedVersion | None]] = {}


def served_version(shop_id: str) -> ServedVersion | None:
    """``active_version`` read at most once per ``API_VERSION_CACHE_SECONDS`` (default 10).

    A cached version whose artifacts failed to load is read again after a second: a newer
    fit deletes the older version's folder as soon as it serves, and a worker that had not
    loaded the old one yet would otherwise serve popular items for the rest of the TTL.
    """
    ttl = float(current_app.config.get("API_VERSION_CACHE_SECONDS", DEFAULT_VERSION_CACHE))
    now = time.monotonic()
    with _popular_lock:
        hit = _versions.get(shop_id)
    if hit is not None and hit[1] is not None and model_store.unloadable(shop_id, hit[1].id):
        ttl = min(ttl, UNLOADABLE_VERSION_RECHECK_SECONDS)
    if hit is not None and now - hit[0] < ttl:
        return hit[1]
    row = active_version(shop_id)
    served = None if row is None else ServedVersion(
        id=row.id, artifact_dir=row.artifact_dir, trained_until=row.trained_until,
        popular=tuple(Recommendation(str(i), float(s), "popular", POPULAR_REASON)
                      for i, s in row.popular))
    with _popular_lock:
        _versions[shop_id] = (now, served)
    return served


def _decode(rows: list[list]) -> Iterator[Recommendation]:
    """Lazily: the live filters usually stop after the first few of a 50-item list."""
    return (Recommendation(str(i), float(s), str(src), str(reason)) for i, s, src, reason in rows)


_CACHE_ROW = (
    sa.select(RecommendationCache.items, RecommendationCache.model_version_id,
              RecommendationCache.computed_at)
    .where(RecommendationCache.shop_id == sa.bindparam("shop"),
           RecommendationCache.shopper_id == sa.bindparam("shopper")))


def cache_key(shop_id: str, shopper_id: str) -> str:
    """Redis key of a shopper's precomputed list (deleted when they order)."""
    return f"sk:recs:{shop_id}:{shopper_id}"


def cached(shop_id: str, shopper_id: str,
           version: ServedVersion) -> Iterator[Recommendation] | None:
    """The precomputed top-N when it belongs to the served version and is fresh.

    Redis (when configured) answers first; the table is the source of truth.
    """
    key = cache_key(shop_id, shopper_id)
    hit = redis_cache.get_json(key)
    if hit is not None and hit.get("v") == version.id:
        return _decode(hit["items"])
    row = hot_reads.first(_CACHE_ROW, {"shop": shop_id, "shopper": shopper_id})
    if row is None or row.model_version_id != version.id:
        return None
    ttl = float(current_app.config.get("RECS_CACHE_TTL_SECONDS", DEFAULT_CACHE_TTL_SECONDS))
    age = (utcnow() - row.computed_at).total_seconds()
    if age > ttl:
        return None
    redis_cache.set_json(key, {"v": version.id, "items": row.items},
                         max(1, int(min(ttl - age, 3600))))
    return _decode(row.items)


def online(shop_id: str, customer_id: str, version: ServedVersion, n: int,
           exclude: set[str]) -> tuple[list[Recommendation], bool]:
    """Ask the loaded model directly (cache miss or stale), minus purchases it cannot know;
    and whether the list used the shopper's own data.

    It did when the model was fitted with their purchases or when purchases of theirs
    were left out (as the refreshed cache rows of ``training.refresh_shoppers`` do). A
    customer id the model never saw and who bought nothing gets the model's cold-start
    fallback (the largest segment's favourites): popular items, not personalized.
    Not for an erased customer: the served model may have been fitted before the erasure
    and still hold their purchases until the next refit.
    """
    model = model_store.get_model(shop_id, version.id, version.artifact_dir)
    if model is None or model.recommender is None or erased(shop_id, customer_id):
        return [], False
    recent = bought_since(shop_id, [customer_id], version.trained_until).get(customer_id, set())
    recent |= reported_since(shop_id, [customer_id]).get(customer_id, set())  # order to come
    # an order dated inside the fitted period may have arrived after the fit (a retried
    # webhook, the reconcile sync): the model cannot know its durables
    recent |= owned_durables(shop_id, version, customer_id)
    others = bought_for_others(shop_id, [customer_id], version.trained_until)
    forget = others.get(customer_id, [])
    recs = personal_list(model.recommender, customer_id, n, exclude | recent, forget)
    used = bool(recent or forget) or knows(model.recommender, customer_id)
    return [r for r in recs if r.source not in NON_PERSONAL], used


def knows(recommender: BaseRecommender, shopper: str) -> bool:
    """Whether ``recommender`` was fitted with the shopper's purchases."""
    data = getattr(recommender, "data_", None)
    return data is not None and data.user_index(shopper) is not None


def erased(shop_id: str, customer_id: str) -> bool:
    """Whether the customer's data was erased (their ``Customer`` row is a tombstone)."""
    return db.session.scalar(sa.select(Customer.id).where(
        Customer.shop_id == shop_id, Customer.external_id == customer_id,
        Customer.deleted_at.is_not(None)).limit(1)) is not None


def neighbours(shop_id: str, version: ServedVersion | None, items: list[str], n: int,
               exclude: set[str], placement: str) -> list[Recommendation]:
    """Items bought with the product on the page or with the cart's contents."""
    if version is None or not items:
        return []
    model = model_store.get_model(shop_id, version.id, version.artifact_dir)
    if model is None:
        return []
    recs = model.similar(items, n, exclude=exclude)
    return [Recommendation(r.item, r.score, f"itemknn-{placement}", r.reason) for r in recs]


def owned_durables(shop_id: str, version: ServedVersion | ModelVersion | None,
                   customer_id: str) -> set[str]:
    """Durables (as the served model classifies them) the customer already bought, or
    reported bought (``REPORTED``: its order may not be in yet).

    Every placement drops them, not only the model's own list: the product page's and the
    cart's neighbours, the popular back-fill and a merchant's pin know nothing of the shopper.
    Read once per request (the online list and the back-fill filter both ask).
    """
    if version is None:
        return set()
    memo = g.setdefault("owned_durables", {}) if has_request_context() else {}
    key = (shop_id, version.id, customer_id)
    if key not in memo:
        memo[key] = _owned_durables(shop_id, version, customer_id)
    return set(memo[key])


def _owned_durables(shop_id: str, version: ServedVersion | ModelVersion,
                    customer_id: str) -> set[str]:
    return owned_durables_of(shop_id, version, [customer_id]).get(customer_id, set())


#: Shoppers per query of ``owned_durables_of`` (bound parameters stay well under limits).
DURABLES_CHUNK = 1000


def owned_durables_of(shop_id: str, version: ServedVersion | ModelVersion,
                      customer_ids: Iterable[str]) -> dict[str, set[str]]:
    """``owned_durables`` of many customers in one query per ``DURABLES_CHUNK`` of them
    (the refresh of shoppers with new orders ran one query per shopper).

    The merchant's overrides (``overrides``) have the last word: a line's durable is one
    whatever the model learned, a line's consumable is none (it comes back when due)."""
    model = model_store.get_model(shop_id, version.id, version.artifact_dir)
    return durables_of(shop_id, model.recommender if model is not None else None,
                       customer_ids)


def durables_of(shop_id: str, recommender: BaseRecommender | None,
                customer_ids: Iterable[str],
                kinds: Sequence[str] = DURABLE_KINDS) -> dict[str, set[str]]:
    """The customers' items of ``kinds`` that ``recommender`` classifies as durables (a
    fit's own, before its version serves)."""
    repurchase = getattr(recommender, "repurchase_", None)
    ids = sorted({str(c) for c in customer_ids})
    if (repurchase is None and not overrides.rules_of(shop_id)) or not ids:
        return {}
    out: dict[str, set[str]] = {}
    for start in range(0, len(ids), DURABLES_CHUNK):
        rows = db.session.execute(
            sa.select(Interaction.shopper_id, Interaction.product_external_id).distinct()
            .where(Interaction.shop_id == shop_id,
                   Interaction.shopper_id.in_(ids[start:start + DURABLES_CHUNK]),
                   Interaction.kind.in_(kinds),  # the old channel's durable too
                   Interaction.subprofile_id.is_(None))).all()  # bought for someone else
        ruled = overrides.resolve(shop_id, {item for _, item in rows})
        for shopper, item in rows:
            if item in ruled and ruled[item].kind == "durable":
                out.setdefault(shopper, set()).add(item)
        rows = [(shopper, item) for shopper, item in rows if item not in ruled]
        for shopper, item in _learned_durables(repurchase, rows):
            out.setdefault(shopper, set()).add(item)
    return out


def _learned_durables(repurchase: RepurchaseModel | None,
                      rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (shopper, item) rows whose item the fitted repurchase model calls durable."""
    if repurchase is None:
        return []
    known = [(shopper, item, repurchase.data_.item_index(item)) for shopper, item in rows]
    known = [(shopper, item, i) for shopper, item, i in known if i is not None]
    if not known:
        return []
    durable = repurchase.is_durable(np.array([i for _, _, i in known], np.int64))
    return [(shopper, item) for (shopper, item, _), d in zip(known, durable, strict=True) if d]


def reorder(shop_id: str, customer_id: str, n: int) -> list[Recommendation]:
    """Items the customer bought in at least two orders and is due for: "the usual?".

    An item is not due until ``REORDER_DUE_FRACTION`` of the customer's own interval
    between its orders has passed since they last bought it (milk restocked yesterday is
    not "time to stock up again"); orders less than a day apart tell no interval. Orders
    a Saleor channel switch set aside were ordered all the same: they count (as for
    ``bought_since``); lines bought for a sub-profile are its own, not the customer's.
    A merchant's override decides for the items it names (``overrides``): a durable never
    comes back, a consumable does once its cycle has elapsed, bought once or more often,
    until it lapses (``Override.due``: as a learned consumable's due window ends).
    One just reported bought (``reported_since``) is not due either, its order not in yet.
    Items whose own rhythm lapsed (``repurchase.lapsed``: weekly tea, last bought a year
    ago) still count as bought again, but come after every item still in its rhythm.
    """
    rules = overrides.rules_of(shop_id)
    orders = sa.func.count(sa.distinct(Interaction.order_external_id))
    query = (
        sa.select(Interaction.product_external_id, orders.label("orders"),
                  sa.func.min(Interaction.occurred_at).label("first"),
                  sa.func.max(Interaction.occurred_at).label("last"))
        .where(Interaction.shop_id == shop_id, Interaction.shopper_id == customer_id,
               Interaction.kind.in_(OWNED_KINDS), Interaction.subprofile_id.is_(None))
        .group_by(Interaction.product_external_id)
        .order_by(orders.desc(), sa.func.max(Interaction.occurred_at).desc()))
    if not rules.any_consumable:  # else an item ordered once may be a merchant's consumable
        query = query.having(orders >= 2)
    rows = db.session.execute(query).all()
    ruled = overrides.resolve(shop_id, [r.product_external_id for r in rows]) if rules else {}
    now = utcnow()
    just = reported_since(shop_id, [customer_id], now).get(customer_id, set())
    out: list[Recommendation] = []
    lapsed_ones: list[Recommendation] = []  # "ordered 5 times", but two years ago: after
    for r in rows:
        if r.product_external_id in just:  # reported bought: its order is to come
            continue
        rule = ruled.get(r.product_external_id)
        if rule is not None:
            if not rule.due(r.last.timestamp(), now.timestamp()):
                continue
            reason = rule.reason
        elif r.orders < 2:
            continue
        else:
            interval = (r.last - r.first).total_seconds() / (r.orders - 1)
            if interval >= 86400 and \
                    (now - r.last).total_seconds() < REORDER_DUE_FRACTION * interval:
                continue
            reason = f"you have ordered this {r.orders} times"
            if interval >= 86400 and lapsed(r.last.timestamp(), now.timestamp(),
                                            interval / 86400):
                lapsed_ones.append(Recommendation(r.product_external_id, float(r.orders),
                                                  "reorder", reason))
                continue
        out.append(Recommendation(r.product_external_id, float(r.orders), "reorder", reason))
        if len(out) == n:
            break
    return (out + lapsed_ones)[:n]


def popular(shop_id: str, version: ServedVersion | None) -> Sequence[Recommendation]:
    """The shop's popular list: from training, else a recent-sales count (cached briefly).

    Shared and read-only: callers copy it before changing anything.
    """
    if version is not None and version.popular:
        return version.popular
    now = time.monotonic()
    with _popular_lock:
        hit = _popular_db.get(shop_id)
    if hit is not None and now - hit[0] < POPULAR_DB_TTL:
        return hit[1]
    recent = (sa.select(Interaction.product_external_id)
              .where(Interaction.shop_id == shop_id, Interaction.kind == "purchase")
              .order_by(Interaction.occurred_at.desc()).limit(POPULAR_DB_ROWS).subquery())
    count = sa.func.count()
    rows = db.session.execute(
        sa.select(recent.c.product_external_id, count.label("n"))
        .group_by(recent.c.product_external_id)
        .order_by(count.desc(), recent.c.product_external_id).limit(200)).all()
    recs = [Recommendation(r.product_external_id, float(r.n), "popular", POPULAR_REASON)
            for r in rows]
    with _popular_lock:
        _popular_db[shop_id] = (now, recs)
    return recs


def forget_popular() -> None:
    """Drop every cached version and popular list (kept for callers of the old name)."""
    forget_versions()


def forget_versions(shop_id: str | None = None) -> None:
    """Drop cached versions and popular lists (after training in this process; tests)."""
    with _popular_lock:
        for cache in (_versions, _popular_db):
            if shop_id is None:
                cache.clear()
            else:
                cache.pop(shop_id, None)
