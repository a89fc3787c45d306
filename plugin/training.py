"""Per-shop training: database -> ``Interactions`` -> fitted model, artifacts and top-N cache.

This is gorse's worker: fit offline, precompute every shopper's top-N into
``recommendation_cache`` so the API mostly reads one row, keep artifacts on disk for the
online path (cache miss or stale row) and a popular list for the fallback and holdout arm.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from flask import Flask, current_app
from tqdm import tqdm

from plugin import cache as redis_cache
from plugin import lease, shops
from plugin.api import model_store, sources
from plugin.api.sources import active_version, bought_since, cache_key
from plugin.engine.base import BaseRecommender, Recommendation
from plugin.engine.baselines import ItemKNNBaseline
from plugin.engine.data import Interactions
from plugin.errors import NotFound
from plugin.extensions import db
from plugin.ingestion.sync import HISTORY_RESET, orders_backfilled
from plugin.leadership import LeaseBusy, LeaseLost, checkpoint, stop_if_lease_lost, unfenced
from plugin.models import Customer, Interaction, ModelVersion, Product, RecommendationCache
from plugin.models.catalog import on_sale
from plugin.models.types import utcnow

log = logging.getLogger("shopkeeper.training")

#: Items kept per shopper in the cache (config ``RECS_CACHE_SIZE``).
DEFAULT_CACHE_SIZE = 50
#: Neighbours kept per item for product-page and cart placements.
NEIGHBOURS_PER_ITEM = 30
#: Items kept in the popular list and its half-life in days.
POPULAR_SIZE = 200
POPULAR_HALF_LIFE_DAYS = 30.0
CHUNK = 2000


def new_recommender() -> BaseRecommender:
    """The production model, or cosine ItemKNN while the engine's blend is not there."""
    try:
        from plugin.engine.blend import ShopkeeperRecommender
    except ImportError:
        return ItemKNNBaseline(n_neighbors=100)
    return ShopkeeperRecommender()


#: Purchase rows fetched per round trip by ``load_interactions``.
LOAD_BATCH = 50_000


def load_interactions(shop_id: str) -> Interactions:
    """Server-verified purchases of the main profiles plus the live catalog of one shop.

    Sub-profile purchases (gifts, someone else's basket) are left out so they do not shape
    the buyer's own recommendations; widget-reported events are not purchases.

    Rows are streamed ``LOAD_BATCH`` at a time into numpy columns, and each id's text is
    kept once however many rows repeat it: all rows as Python tuples plus a Python list
    per column took about twice the memory of the fit itself on a large shop.
    """
    result = db.session.execute(
        sa.select(Interaction.shopper_id, Interaction.product_external_id,
                  Interaction.occurred_at, Interaction.order_external_id,
                  Interaction.quantity, Interaction.price)
        .where(Interaction.shop_id == shop_id, Interaction.kind == "purchase",
               Interaction.subprofile_id.is_(None))
        .execution_options(yield_per=LOAD_BATCH))
    texts: dict[str, str] = {}
    one = texts.setdefault  # one str object per distinct id, not one per row
    columns: list[list[np.ndarray]] = [[], [], [], [], [], []]
    for part in result.partitions():
        n = len(part)
        users = [one(r[0], r[0]) for r in part]
        times = [r[2] for r in part]
        for column, values in zip(columns, (
                users, [one(r[1], r[1]) for r in part],
                np.fromiter((t.timestamp() for t in times), np.float64, count=n),
                [one(b, b) for b in (r[3] or f"{u}@{t.isoformat()}"
                                     for r, u, t in zip(part, users, times, strict=True))],
                np.fromiter((r[4] for r in part), np.float32, count=n),
                np.fromiter((np.nan if r[5] is None else float(r[5]) for r in part),
                            np.float64, count=n)), strict=True):
            column.append(values if isinstance(values, np.ndarray)
                          else np.asarray(values, dtype=object))
        del part, users, times
    users, items, timestamps, baskets, quantities, prices = (
        np.concatenate(c) if c else np.empty(0, dtype=object if k in (0, 1, 3) else np.float64)
        for k, c in enumerate(columns))
    del columns, texts
    # availability as of this fit: a product launched later is left out until the next
    # one (serving's live filter checks the launch time on every answer)
    products = db.session.execute(
        sa.select(Product.external_id, Product.title, Product.description, Product.categories,
                  Product.tags, Product.price, on_sale(utcnow()).label("available"))
        .where(Product.shop_id == shop_id, Product.deleted_at.is_(None))
    ).all()
    catalog = {p.external_id: {"title": p.title, "description": p.description,
                               "categories": p.categories or [], "tags": p.tags or [],
                               "price": None if p.price is None else float(p.price),
                               "available": bool(p.available)} for p in products}
    return Interactions.from_arrays(users, items, timestamps, baskets=baskets,
                                    quantities=quantities, prices=prices, catalog=catalog)


def popular_items(data: Interactions, size: int = POPULAR_SIZE,
                  half_life_days: float = POPULAR_HALF_LIFE_DAYS) -> list[tuple[str, float]]:
    """Time-decayed purchase counts (recent buying weighs more), best first."""
    if not len(data):
        return []
    age_days = (data.timestamp.max() - data.timestamp) / 86400.0
    weights = np.power(0.5, age_days / half_life_days)
    scores = np.bincount(data.item, weights=weights, minlength=data.n_items)
    top = np.argsort(-scores, kind="stable")[:size]
    return [(str(data.item_ids[i]), round(float(scores[i]), 6)) for i in top if scores[i] > 0]


#: Seconds a fit's per-shop lease lasts unless renewed (config ``TRAINING_LEASE_SECONDS``):
#: a fit renews it every third of that; one killed mid-way frees its shop after it.
TRAINING_LEASE_SECONDS = 300
#: Seconds between tries of ``train_shop(wait=True)`` while another fit holds the shop.
WAIT_POLL_SECONDS = 10.0
_sleep = time.sleep  # how --wait waits (tests replace this, not every thread's sleep)


class FitInProgress(RuntimeError):
    """Another fit of the shop (the hourly job, a ``shopkeeper train`` run) holds its lease."""

    def __init__(self, shop_id: str, holder: str | None) -> None:
        super().__init__(f"another fit of shop {shop_id} is running"
                         + (f" ({holder})" if holder else ""))
        self.shop_id, self.holder = shop_id, holder


class CleanupFailed(RuntimeError):
    """The new version serves, but a step after that (deleting older artifacts, refreshing
    the lists of shoppers who ordered during the fit) failed: ``__cause__`` says why."""

    def __init__(self, version: ModelVersion, error: Exception) -> None:
        super().__init__(f"version {version.version} serves; cleanup failed: "
                         f"{type(error).__name__}: {error}")
        self.version, self.error = version, error


def fit_lease_name(shop_id: str) -> str:
    """The lease a fit of ``shop_id`` holds (``scheduler_leases``, the database's clock)."""
    return f"train:{shop_id}"


def train_shop(shop_id: str, *, show_progress: bool = False, wait: bool = False,
               on_wait: Callable[[FitInProgress], None] | None = None) -> ModelVersion:
    """Fit the shop's model, save artifacts, refresh every shopper's cached top-N.

    One fit per shop at a time: the shop's lease is taken first. When another process
    holds it, raises ``FitInProgress``, or with ``wait`` tries again until it is free
    (calling ``on_wait`` once, before the first wait).
    """
    from plugin.webhooks.inbox import worker_name

    name = fit_lease_name(shop_id)
    holder = f"{worker_name()}:{secrets.token_hex(4)}"[-128:]
    ttl = float(current_app.config.get("TRAINING_LEASE_SECONDS", TRAINING_LEASE_SECONDS))
    waited = False
    while not lease.acquire(name, holder, ttl):
        busy = FitInProgress(shop_id, lease.holder_of(name))
        if not wait:
            raise busy
        if not waited and on_wait is not None:
            on_wait(busy)
        waited = True
        _sleep(WAIT_POLL_SECONDS)
    keeper = _LeaseKeeper(current_app._get_current_object(), name, holder, ttl)
    keeper.start()
    try:
        return _fit(shop_id, show_progress)
    finally:
        keeper.stop()
        try:  # nothing is pending after a fit; after a failure, its rest is rolled back
            with unfenced():  # ours to give up, with or without the scheduler lease
                lease.release(name, holder)
        except Exception:  # it expires by itself
            db.session.rollback()
            log.exception("training.lease_not_released", extra={"shop_id": shop_id})


class _LeaseKeeper:
    """Renews a fit's lease from a thread (with its own app context and session) every
    third of its time, however long the fit's steps take."""

    def __init__(self, app: Flask, name: str, holder: str, ttl: float) -> None:
        self.app, self.name, self.holder, self.ttl = app, name, holder, ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing; a renewal in progress (waiting on a lock, a database gone quiet)
        is waited for at most ``heartbeat.STOP_WAIT_SECONDS``, then logged and left to end
        on its own: the join was unbounded, and the fit's end hung with it."""
        from plugin import heartbeat

        self._stop.set()
        self._thread.join(heartbeat.STOP_WAIT_SECONDS)
        if self._thread.is_alive():
            log.warning("training.lease_renewal_stuck", extra={
                "lease": self.name, "waited_seconds": heartbeat.STOP_WAIT_SECONDS})

    def _run(self) -> None:
        with self.app.app_context():
            try:
                while not self._stop.wait(self.ttl / 3):
                    try:
                        if not lease.acquire(self.name, self.holder, self.ttl):
                            log.warning("training.lease_lost", extra={"lease": self.name,
                                                                      "holder": self.holder})
                    except Exception:
                        db.session.rollback()
                        log.exception("training.lease_renewal_failed",
                                      extra={"lease": self.name})
            finally:
                db.session.remove()


def _fit(shop_id: str, show_progress: bool) -> ModelVersion:
    _give_up_abandoned(shop_id)
    version = ModelVersion(shop_id=shop_id, status="training",
                           version=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-")
                           + secrets.token_hex(3))
    db.session.add(version)
    db.session.commit()
    try:
        _train(version, show_progress)
    except LeaseLost as err:  # its worker lost the scheduler lease: the new leader refits
        db.session.rollback()
        if version.status != "ready":
            with unfenced():
                _record_failure(version, type(err).__name__)  # LeaseLost or LeaseBusy
        raise
    except Exception as err:
        db.session.rollback()
        if version.status == "ready":  # a step after it serves (cleanup) does not unserve it
            log.exception("training.cleanup_failed", extra={"shop_id": shop_id,
                                                            "version": version.version})
            raise CleanupFailed(version, err) from err
        _record_failure(version, err)
        log.exception("training.failed", extra={"shop_id": shop_id, "version": version.version})
        raise
    log.info("training.done", extra={"shop_id": shop_id, "version": version.version,
                                     **version.metrics})
    return version


#: The errors of a fit stopped because its worker lost the scheduler lease, or could not
#: confirm it on a busy lease row: no failure of the shop's (``fit_failures`` skips them),
#: since the leader refits it at once.
STOPPED = (LeaseLost.__name__, LeaseBusy.__name__)


def _record_failure(version: ModelVersion, err: Exception | str) -> None:
    version.status = "failed"
    version.metrics = {**(version.metrics or {}),
                       "error": err if isinstance(err, str) else type(err).__name__}
    version.finished_at = utcnow()
    # rows it had already written replaced the served version's: never served
    db.session.execute(sa.delete(RecommendationCache).where(
        RecommendationCache.model_version_id == version.id))
    db.session.commit()


#: A version still ``training`` this many hours after it started was killed mid-fit
#: (config key of the same name).
TRAINING_TIMEOUT_HOURS = 24


def _give_up_abandoned(shop_id: str) -> None:
    """Mark the shop's fits that never recorded their end (OOM, kill -9, a deploy) failed.

    Left ``training``, a version would show so forever and keep its directory from every
    later cleanup, and with it purchase histories that an erasure must reach.
    """
    hours = float(current_app.config.get("TRAINING_TIMEOUT_HOURS", TRAINING_TIMEOUT_HOURS))
    for stale in db.session.scalars(sa.select(ModelVersion).where(
            ModelVersion.shop_id == shop_id, ModelVersion.status == "training",
            ModelVersion.created_at < utcnow() - timedelta(hours=hours))):
        stale.status, stale.finished_at = "failed", utcnow()
        stale.metrics = {**(stale.metrics or {}), "error": "abandoned"}
    db.session.commit()


def _train(version: ModelVersion, show_progress: bool) -> None:
    shop_id = version.shop_id
    data = load_interactions(shop_id)
    metrics: dict[str, float | int | str] = {
        "purchases": len(data), "shoppers": data.n_users, "items": data.n_items}
    recommender: BaseRecommender | None = None
    neighbours = ItemKNNBaseline(n_neighbors=NEIGHBOURS_PER_ITEM)
    if len(data):
        started = time.perf_counter()
        recommender = new_recommender().fit(data, show_progress=show_progress)
        metrics["fit_seconds"] = round(time.perf_counter() - started, 3)
        neighbours.fit(data)
    similarity = neighbours.similarity_ if len(data) else _empty(data.n_items)
    titles = {str(i): str(t) for i, t in zip(data.item_ids, data.catalog.title, strict=True) if t}
    popular = popular_items(data)
    directory = Path(current_app.config["MODEL_DIR"]) / shop_id / version.version
    algorithm = type(recommender).__name__ if recommender is not None else "none"
    problem = model_store.save_artifacts(
        directory, neighbours=similarity, item_ids=list(data.item_ids), popular=popular,
        titles=titles, meta={"algorithm": algorithm, "version": version.version},
        recommender=recommender)
    if problem:
        metrics["recommender_artifact"] = problem
    started = time.perf_counter()
    rows = _write_cache(version, recommender, data.user_ids, show_progress)
    metrics["cache_rows"] = rows
    metrics["cache_seconds"] = round(time.perf_counter() - started, 3)
    if db.session.scalar(sa.select(ModelVersion.status).where(
            ModelVersion.id == version.id)) != "training":
        raise RuntimeError("given up as abandoned while fitting")  # its files may be gone
    version.algorithm = algorithm
    version.artifact_dir = model_store.relative_artifact_dir(shop_id, version.version)
    version.popular = [[i, s] for i, s in popular]
    version.trained_until = (datetime.fromtimestamp(float(data.timestamp.max()), UTC)
                             if len(data) else None)
    version.metrics = metrics
    version.status = "ready"
    version.finished_at = utcnow()
    db.session.commit()
    sources.forget_versions(shop_id)
    # This process already holds the fitted model: serve it without a disk round trip.
    model_store.remember(shop_id, version.id, model_store.ShopModel(
        version_id=version.id, item_ids=np.asarray(list(data.item_ids), dtype=object),
        neighbours=similarity, popular=popular, titles=titles, recommender=recommender))
    if version.trained_until is not None:
        refresh_shoppers(shop_id, _ordered_since(shop_id, version.trained_until))
    _delete_older_artifacts(version)


def _ordered_since(shop_id: str, since: datetime) -> list[str]:
    """Shoppers with purchases after ``since``: during a fit, orders the fit cannot know.

    Their webhook dropped the cached list, but the fit wrote it again afterwards, dated
    later than the order, so the hourly refresh would never recompute it.
    """
    return list(db.session.scalars(sa.select(Interaction.shopper_id).distinct().where(
        Interaction.shop_id == shop_id, Interaction.kind == "purchase",
        Interaction.subprofile_id.is_(None), Interaction.occurred_at > since)))


def _delete_older_artifacts(version: ModelVersion) -> None:
    """Delete the shop's other artifact directories once a new version serves.

    They are never served again (older versions, and failed ones that wrote some files),
    and they hold every shopper's purchase history as it was when fitted: kept, a
    customer's erasure could never reach them. A version still training (another
    process) keeps its directory, and so does a newer one (a fit that started later and
    finished first: it is the one served).
    """
    root = Path(current_app.config["MODEL_DIR"]) / version.shop_id
    busy = set(db.session.scalars(sa.select(ModelVersion.version).where(
        ModelVersion.shop_id == version.shop_id, sa.or_(ModelVersion.status == "training",
                                                        ModelVersion.id > version.id))))
    for directory in root.iterdir() if root.is_dir() else ():
        if directory.name != version.version and directory.name not in busy \
                and directory.is_dir() and not directory.is_symlink():
            shutil.rmtree(directory, ignore_errors=True)
    db.session.execute(sa.update(ModelVersion).where(
        ModelVersion.shop_id == version.shop_id, ModelVersion.id < version.id,
        ModelVersion.status != "training").values(artifact_dir=""))
    db.session.commit()


def _empty(n: int):
    import scipy.sparse as sp

    return sp.csr_matrix((n, n), dtype=np.float32)


def _cache_rows(version: ModelVersion, recommender: BaseRecommender,
                shoppers: Iterable[str], size: int,
                exclude: dict[str, set[str]] | None = None,
                forget: dict[str, list[tuple[str, float]]] | None = None) -> list[dict]:
    now = utcnow()
    return [dict(shop_id=version.shop_id, shopper_id=str(s), model_version_id=version.id,
                 computed_at=now,
                 items=_encode(sources.personal_list(recommender, str(s), size,
                                                     (exclude or {}).get(str(s), set()),
                                                     (forget or {}).get(str(s), []))))
            for s in shoppers]


def _encode(recs: list[Recommendation]) -> list[list]:
    return [[r.item, round(float(r.score), 6), r.source, r.reason] for r in recs]


def _write_cache(version: ModelVersion, recommender: BaseRecommender | None,
                 shoppers: np.ndarray, show_progress: bool) -> int:
    """Replace the shop's cache chunk by chunk, committing each one.

    Lists are computed outside any write transaction, so the database (one writer at a
    time on SQLite) stays free for webhooks and impressions during a long refresh. Until
    the version is marked ready the API keeps serving the old rows and treats new ones as
    not yet current (online path); rows of shoppers gone from the data are removed last.
    """
    size = cache_size()
    written = 0
    if recommender is not None:
        bar = tqdm(total=len(shoppers), desc="top-N cache", unit="shopper",
                   disable=not show_progress)
        for start in range(0, len(shoppers), CHUNK):
            chunk = [str(s) for s in shoppers[start:start + CHUNK]]
            chunk = _without_erased(version.shop_id, _without_newer_rows(version, chunk))
            rows = _cache_rows(version, recommender, chunk, size,
                               exclude=_reported(version.shop_id, recommender, chunk))
            db.session.execute(sa.delete(RecommendationCache).where(
                RecommendationCache.shop_id == version.shop_id,
                RecommendationCache.shopper_id.in_(chunk)))
            if rows:
                db.session.execute(sa.insert(RecommendationCache), rows)
            db.session.commit()
            written += len(rows)
            bar.update(min(CHUNK, len(shoppers) - start))
        bar.close()
    db.session.execute(sa.delete(RecommendationCache).where(
        RecommendationCache.shop_id == version.shop_id,
        RecommendationCache.model_version_id != version.id,
        RecommendationCache.model_version_id.not_in(_newer_versions(version))))
    # an erasure that committed while a chunk was computed deleted no row of it yet
    db.session.execute(sa.delete(RecommendationCache).where(
        RecommendationCache.model_version_id == version.id,
        RecommendationCache.shopper_id.in_(_erased_customers(version.shop_id))))
    return written


def _reported(shop_id: str, recommender: BaseRecommender,
              shoppers: list[str]) -> dict[str, set[str]]:
    """What the shoppers reported bought (``sources.REPORTED``) that the fit cannot know
    (it learns from orders): durables, and anything just reported, its order not in yet."""
    out = sources.reported_since(shop_id, shoppers)
    for shopper, durables in sources.durables_of(shop_id, recommender, shoppers,
                                                 (sources.REPORTED,)).items():
        out.setdefault(shopper, set()).update(durables)
    return out


def _newer_versions(version: ModelVersion) -> sa.Select:
    """Ids of the shop's fits started after ``version`` and not failed.

    Fits overlap (the hourly job and a CLI run): one that started earlier and finishes
    later must leave the lists of the newer one, which is served, alone.
    """
    return sa.select(ModelVersion.id).where(ModelVersion.shop_id == version.shop_id,
                                            ModelVersion.id > version.id,
                                            ModelVersion.status != "failed")


def _without_newer_rows(version: ModelVersion, shoppers: list[str]) -> list[str]:
    """``shoppers`` minus those whose cached list a newer fit already wrote."""
    newer = set(db.session.scalars(sa.select(RecommendationCache.shopper_id).where(
        RecommendationCache.shop_id == version.shop_id,
        RecommendationCache.shopper_id.in_(shoppers),
        RecommendationCache.model_version_id.in_(_newer_versions(version)))))
    return [s for s in shoppers if s not in newer]


def _erased_customers(shop_id: str) -> sa.Select:
    """Ids of the shop's erased customers (their ``Customer`` row is a tombstone)."""
    return sa.select(Customer.external_id).where(Customer.shop_id == shop_id,
                                                 Customer.deleted_at.is_not(None))


def _without_erased(shop_id: str, shoppers: list[str]) -> list[str]:
    """``shoppers`` minus erased customers: the model may have been fitted (or its data
    read) before their erasure, so a list from it would rebuild the erased history, and a
    cached list is served without the online path's ``erased`` check."""
    if not shoppers:
        return shoppers
    gone = set(db.session.scalars(_erased_customers(shop_id).where(
        Customer.external_id.in_(shoppers))))
    return [s for s in shoppers if s not in gone]


def cache_size() -> int:
    return int(current_app.config.get("RECS_CACHE_SIZE", DEFAULT_CACHE_SIZE))


def refresh_shoppers(shop_id: str, shopper_ids: Iterable[str]) -> int:
    """Recompute the cached top-N of shoppers with new orders, without a refit.

    The fitted model does not know the new purchases, so they are excluded explicitly:
    nobody is offered what they bought a minute ago; purchases moved to a sub-profile since
    the fit are left out of the shopper's past. Returns the rows written.
    """
    ids = _without_erased(shop_id, sorted({str(s) for s in shopper_ids}))
    version = active_version(shop_id)
    if version is None or not ids:
        return 0
    model = model_store.get_model(shop_id, version.id, version.artifact_dir)
    db.session.execute(sa.delete(RecommendationCache).where(
        RecommendationCache.shop_id == shop_id, RecommendationCache.shopper_id.in_(ids)))
    redis_cache.delete(*(cache_key(shop_id, s) for s in ids))  # else it serves the old list
    if model is None or model.recommender is None:
        db.session.commit()  # the API falls back to popular items for them
        return 0
    exclude = bought_since(shop_id, ids, version.trained_until)
    # orders dated before the fit's end that arrived after it: one query, not one per shopper
    for shopper, durables in sources.owned_durables_of(shop_id, version, ids).items():
        exclude.setdefault(shopper, set()).update(durables)
    rows = _cache_rows(version, model.recommender, ids, cache_size(), exclude=exclude,
                       forget=sources.bought_for_others(shop_id, ids, version.trained_until))
    db.session.execute(sa.insert(RecommendationCache), rows)
    db.session.commit()
    return len(rows)


#: ``retrain_due`` refits a shop whose model is older than this (config key of the same name).
RETRAIN_MAX_AGE_HOURS = 24
#: ... or that received at least this many orders since its data ends.
RETRAIN_NEW_ORDERS = 200


#: A shop whose last fits failed or were abandoned (killed: OOM, kill -9) is refitted by the
#: job only this many hours after the latest, doubling per failure up to the maximum
#: (config keys of the same names), and after the healthy shops.
RETRAIN_BACKOFF_HOURS = 1.0
RETRAIN_BACKOFF_MAX_HOURS = 24.0
#: Versions looked at to count a shop's consecutive failures.
FAILURES_LOOKED_AT = 10


@dataclass(frozen=True)
class FitFailures:
    """A shop's fits that failed or were abandoned since its last successful one."""

    count: int
    last_at: datetime
    last_error: str
    retry_at: datetime  # the job does not fit the shop before this


def fit_failures(shop_id: str) -> FitFailures | None:
    """The shop's consecutive failed or abandoned fits (the newest first), or ``None``.

    A version still ``training`` while nobody holds the shop's fit lease was killed before
    it recorded its end (the process ran out of memory): it counts as abandoned at once,
    not only after ``TRAINING_TIMEOUT_HOURS``.
    """
    rows = db.session.execute(
        sa.select(ModelVersion.status, ModelVersion.created_at, ModelVersion.finished_at,
                  ModelVersion.metrics)
        .where(ModelVersion.shop_id == shop_id)
        .order_by(ModelVersion.id.desc()).limit(FAILURES_LOOKED_AT)).all()
    count, last_at, last_error, fitting = 0, None, "", None
    for row in rows:
        if row.status == "ready":
            break
        if row.status == "failed" and (row.metrics or {}).get("error") in STOPPED:
            continue  # its worker lost the scheduler lease: not the shop's failure
        if row.status == "training":
            if fitting is None:
                fitting = lease.holder_of(fit_lease_name(shop_id)) is not None
            if fitting:
                continue  # running now
            at, error = row.created_at, "abandoned"
        else:
            at, error = row.finished_at or row.created_at, str((row.metrics or {}).get(
                "error", "failed"))
        count += 1
        if last_at is None:
            last_at, last_error = at, error
    if not count or last_at is None:
        return None
    config = current_app.config
    hours = min(float(config.get("RETRAIN_BACKOFF_HOURS", RETRAIN_BACKOFF_HOURS))
                * 2 ** (count - 1),
                float(config.get("RETRAIN_BACKOFF_MAX_HOURS", RETRAIN_BACKOFF_MAX_HOURS)))
    return FitFailures(count, last_at, last_error, last_at + timedelta(hours=hours))


def retrain_due(now: datetime | None = None) -> int:
    """Hourly job: refit shops that are due; in the others refresh shoppers with new orders.

    Returns the number of shops refitted; one shop's failure does not starve the others
    (the job is still recorded as failed, with the first error). Shops whose last fits
    failed or were abandoned come last and are not refitted before their backoff ends
    (``fit_failures``): a shop too big for the worker's memory kills it mid-fit, and was
    otherwise refitted first on every run, so the shops after it were never reached.
    """
    from plugin.models import Shop

    now = now or utcnow()
    refitted = 0
    failed: list[Exception] = []
    shops = list(db.session.scalars(sa.select(Shop.id).where(Shop.status == "active")
                                    .order_by(Shop.id)))
    failures = {shop_id: fit_failures(shop_id) for shop_id in shops}
    shops.sort(key=lambda s: failures[s].count if failures[s] else 0)  # stable: healthy first
    for shop_id in shops:
        checkpoint()  # the scheduler lease was lost: the new leader refits
        failing = failures[shop_id]
        may_fit = failing is None or now >= failing.retry_at
        try:
            refitted += _retrain_or_refresh(shop_id, now, may_fit=may_fit, failing=failing)
        except Exception as err:
            stop_if_lease_lost(err)
            db.session.rollback()
            log.warning("training.shop_failed", extra={"shop_id": shop_id,
                                                       "error_type": type(err).__name__})
            failed.append(err)
    if failed:
        raise failed[0]
    return refitted


def _retrain_or_refresh(shop_id: str, now: datetime, *, may_fit: bool = True,
                        failing: FitFailures | None = None) -> int:
    """Refit the shop when due (returns 1), else refresh its shoppers with new orders."""
    version = active_version(shop_id)
    replaced = _history_replaced(shop_id)
    if replaced is not None or _due(shop_id, version, now):
        if not may_fit and failing is not None:
            log.warning("training.backing_off", extra={
                "shop_id": shop_id, "failures": failing.count,
                "last_error": failing.last_error, "retry_at": failing.retry_at.isoformat()})
        else:
            try:
                train_shop(shop_id)
            except FitInProgress as busy:  # a CLI run (or a lost scheduler lease): not twice
                log.info("training.skipped_fit_in_progress", extra={"shop_id": shop_id,
                                                                    "holder": busy.holder})
                return 0
            if replaced is not None:
                _forget_history_reset(shop_id, replaced)
            return 1
    if version is not None:
        refresh_shoppers(shop_id, _shoppers_with_new_orders(shop_id, version))
    return 0


def _history_replaced(shop_id: str) -> str | None:
    """The mark of an order history replaced (a new Saleor channel) once its backfill has
    landed: the served model still knows the old history, and the backfilled orders are
    dated in the past, so ``_due`` alone would not count them as new."""
    from plugin.models import Shop

    settings = db.session.scalar(sa.select(Shop.settings).where(Shop.id == shop_id)) or {}
    marked = settings.get(HISTORY_RESET)
    return str(marked) if marked and orders_backfilled(shop_id) else None


def _forget_history_reset(shop_id: str, marked: str) -> None:
    """Clear the mark the fit answered (a newer one, set meanwhile, stays)."""
    def unmarked(settings: dict) -> dict:
        if settings.get(HISTORY_RESET) != marked:
            return settings
        return {k: v for k, v in settings.items() if k != HISTORY_RESET}

    try:
        cleared = shops.update_settings(shop_id, unmarked).changed
    except NotFound:  # erased meanwhile
        return
    if cleared:
        db.session.commit()


def _due(shop_id: str, version: ModelVersion | None, now: datetime) -> bool:
    config = current_app.config
    new = sa.select(sa.func.count(sa.distinct(Interaction.order_external_id))).where(
        Interaction.shop_id == shop_id, Interaction.kind == "purchase")
    if version is None:
        return bool(db.session.scalar(new))
    max_age = float(config.get("RETRAIN_MAX_AGE_HOURS", RETRAIN_MAX_AGE_HOURS))
    if version.finished_at is None or (now - version.finished_at).total_seconds() > max_age * 3600:
        return True
    if version.trained_until is not None:
        new = new.where(Interaction.occurred_at > version.trained_until)
    return db.session.scalar(new) >= int(config.get("RETRAIN_NEW_ORDERS", RETRAIN_NEW_ORDERS))


def _shoppers_with_new_orders(shop_id: str, version: ModelVersion) -> list[str]:
    """Shoppers whose latest purchase is newer than their cached list."""
    latest = (sa.select(Interaction.shopper_id, sa.func.max(Interaction.occurred_at).label("at"))
              .where(Interaction.shop_id == shop_id, Interaction.kind == "purchase",
                     Interaction.subprofile_id.is_(None))
              .group_by(Interaction.shopper_id))
    if version.trained_until is not None:
        latest = latest.where(Interaction.occurred_at > version.trained_until)
    latest = latest.subquery()
    cache = RecommendationCache
    rows = db.session.execute(
        sa.select(latest.c.shopper_id, latest.c.at, cache.computed_at)
        .outerjoin(cache, sa.and_(cache.shop_id == shop_id,
                                  cache.shopper_id == latest.c.shopper_id))).all()
    return [r.shopper_id for r in rows if r.computed_at is None or r.computed_at < r.at]
