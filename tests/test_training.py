"""Per-shop training: what it learns from, what it writes, incremental refresh, failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from plugin import lease, training
from plugin.api import model_store
from plugin.extensions import db
from plugin.models import ModelVersion, Product, RecommendationCache
from plugin.models.types import utcnow
from tests.api.conftest import ORDERS, PRODUCTS, T0, add_order, add_products, load_history


@pytest.fixture
def store(shop):
    add_products(shop.id, PRODUCTS)
    load_history(shop.id)
    return shop


def test_load_interactions_uses_verified_main_profile_purchases(app, store):
    from plugin.models import Interaction

    add_order(store.id, "c1", "gift-1", ["p10"], T0, subprofile_id=7)  # bought for someone else
    db.session.add(Interaction(shop_id=store.id, shopper_id="c1", kind="widget_purchase",
                               product_external_id="p8", occurred_at=T0, context={}))
    db.session.add(Interaction(shop_id=store.id, shopper_id="c1", kind="view",
                               product_external_id="p8", occurred_at=T0, context={}))
    db.session.commit()
    data = training.load_interactions(store.id)
    expected = sum(len(b) for baskets in ORDERS.values() for b in baskets)
    assert len(data) == expected
    u = data.user_index("c1")
    bought = {str(data.item_ids[i]) for i in data.item[data.events_of(u)]}
    assert bought == {"p1", "p2", "p3", "p9"}
    assert len(np.unique(data.basket[data.events_of(u)])) == 2  # one basket per order


def test_load_interactions_catalog_is_live_products(app, store):
    p10 = db.session.query(Product).filter_by(shop_id=store.id, external_id="p10").one()
    p10.deleted_at = utcnow()
    db.session.commit()
    data = training.load_interactions(store.id)
    assert data.item_index("p8") is not None  # never bought, still in the catalog
    assert data.item_index("p10") is None  # deleted and never bought
    assert data.catalog.title[data.item_index("p8")] == "Product p8"


def test_train_shop_writes_version_artifacts_and_cache(app, store):
    version = training.train_shop(store.id)
    assert version.status == "ready"
    assert version.metrics["purchases"] == len(training.load_interactions(store.id))
    assert version.metrics["shoppers"] == len(ORDERS)
    assert version.metrics["cache_rows"] == len(ORDERS)
    assert version.popular[0][0] == "p9"
    assert version.artifact_dir == f"{store.id}/{version.version}"  # relative to MODEL_DIR
    directory = model_store.artifact_path(version.artifact_dir)
    assert directory == Path(app.config["MODEL_DIR"]) / store.id / version.version
    with np.load(directory / "neighbours.npz", allow_pickle=False) as z:
        assert set(z["item_ids"]) >= {"p1", "p9"}
    rows = db.session.query(RecommendationCache).filter_by(shop_id=store.id).all()
    assert {r.shopper_id for r in rows} == set(ORDERS)
    assert all(r.model_version_id == version.id and r.items for r in rows)
    assert all(len(item) == 4 and item[3] for r in rows for item in r.items)


def test_artifacts_load_back_without_the_training_process(app, store):
    version = training.train_shop(store.id)
    model_store.LOADED.clear()
    loaded = model_store.load_artifacts(model_store.artifact_path(version.artifact_dir),
                                        version.id)
    assert loaded.similar(["p4"], 2)[0].item == "p5"
    assert loaded.popular[0][0] == "p9"


def test_retraining_replaces_the_cache(app, store):
    first = training.train_shop(store.id)
    second = training.train_shop(store.id)
    versions = {r.model_version_id for r in db.session.query(RecommendationCache)}
    assert versions == {second.id}
    assert second.id != first.id


def test_refresh_shoppers_excludes_new_purchases(app, store):
    version = training.train_shop(store.id)
    row = db.session.query(RecommendationCache).filter_by(shopper_id="c3").one()
    top = row.items[0][0]
    add_order(store.id, "c3", "o-new", [top], version.trained_until.replace(year=2027))
    assert training.refresh_shoppers(store.id, ["c3"]) == 1
    db.session.expire_all()
    row = db.session.query(RecommendationCache).filter_by(shopper_id="c3").one()
    assert top not in [i[0] for i in row.items]
    other = db.session.query(RecommendationCache).filter_by(shopper_id="c4").one()
    assert other.computed_at <= row.computed_at


def test_refresh_without_a_model_is_a_no_op(app, store):
    assert training.refresh_shoppers(store.id, ["c1"]) == 0


def test_empty_shop_trains_to_an_empty_ready_version(app, shop):
    version = training.train_shop(shop.id)
    assert version.status == "ready"
    assert version.metrics["cache_rows"] == 0
    assert version.popular == []


def test_failed_training_is_recorded(app, store, monkeypatch):
    class Broken:
        def fit(self, *args, **kwargs):
            raise RuntimeError("boom")

    monkeypatch.setattr(training, "new_recommender", Broken)
    with pytest.raises(RuntimeError):
        training.train_shop(store.id)
    version = db.session.query(ModelVersion).one()
    assert version.status == "failed"
    assert version.metrics["error"] == "RuntimeError"
    assert training.active_version(store.id) is None


def test_train_command(runner, store):
    from plugin.cli import main
    from plugin.training_cli import train

    assert main.get_command(None, "train") is train
    result = runner.invoke(train, ["--shop", store.id, "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"{store.id}: version" in result.output
    assert "5 shoppers" in result.output
    assert runner.invoke(train, ["--shop", "shp_nope", "--quiet"]).exit_code == 1


def test_retrain_due_trains_untrained_shops_once(app, store):
    assert training.retrain_due() == 1
    assert training.active_version(store.id) is not None
    assert training.retrain_due() == 0  # fresh model, no new orders


def test_retrain_due_refits_old_models(app, store):
    from datetime import timedelta

    version = training.train_shop(store.id)
    version.finished_at = utcnow() - timedelta(hours=30)
    db.session.commit()
    assert training.retrain_due() == 1
    assert training.active_version(store.id).id != version.id


def test_retrain_due_refreshes_shoppers_with_new_orders(app, store):
    from datetime import timedelta

    version = training.train_shop(store.id)
    row = db.session.query(RecommendationCache).filter_by(shopper_id="c3").one()
    top, before = row.items[0][0], row.computed_at
    add_order(store.id, "c3", "o-late", [top], utcnow() + timedelta(minutes=1))
    untouched = db.session.query(RecommendationCache).filter_by(shopper_id="c4").one()
    c4_before = untouched.computed_at
    assert training.retrain_due() == 0
    db.session.expire_all()
    row = db.session.query(RecommendationCache).filter_by(shopper_id="c3").one()
    assert row.computed_at > before
    assert top not in [i[0] for i in row.items]
    assert db.session.query(RecommendationCache).filter_by(
        shopper_id="c4").one().computed_at == c4_before
    assert training.active_version(store.id).id == version.id


def test_recommender_round_trips_through_persist(app, store):
    version = training.train_shop(store.id)
    assert "recommender_artifact" not in version.metrics
    in_memory = model_store.LOADED.get((store.id, version.id)).recommender
    model_store.LOADED.clear()  # a fresh worker reads the artifacts
    loaded = model_store.get_model(store.id, version.id, version.artifact_dir)
    assert loaded.recommender is not None
    for shopper in ("c1", "c3", "nobody"):
        assert loaded.recommender.recommend(shopper, 5) == in_memory.recommend(shopper, 5)


def _second_shop_and_a_first_fit_that_fails(monkeypatch) -> tuple[str, list[str]]:
    """Another shop with history; the first shop whose data is read fails (its id goes in
    the returned list), every later read works."""
    from tests.factories import make_shop

    other = make_shop()
    add_products(other.id, PRODUCTS)
    load_history(other.id)
    real, failed = training.load_interactions, []

    def first_fails(shop_id: str):
        if not failed:
            failed.append(shop_id)
            raise RuntimeError("boom")
        return real(shop_id)

    monkeypatch.setattr(training, "load_interactions", first_fails)
    return other.id, failed


def test_one_shop_failing_to_train_does_not_stop_the_others(app, store, monkeypatch):
    other, failed = _second_shop_and_a_first_fit_that_fails(monkeypatch)
    with pytest.raises(RuntimeError):  # the job is still recorded as failed
        training.retrain_due()
    (healthy,) = {store.id, other} - set(failed)
    assert training.active_version(healthy) is not None


def test_an_older_fit_finishing_last_keeps_the_served_versions_cache(app, store, monkeypatch):
    """Two fits of one shop overlap (the hourly job and a CLI run): the one that started
    first and finishes last must not replace the cached lists of the newer version served."""
    real = training.new_recommender
    newer = []

    class OverlappedFit:  # while this fit runs, a second one starts and finishes
        def fit(self, data, **kwargs):
            monkeypatch.setattr(training, "new_recommender", real)
            name = training.fit_lease_name(store.id)  # its lease expired (a stalled renewal)
            lease.release(name, lease.holder_of(name))
            newer.append(training.train_shop(store.id))
            return real().fit(data, **kwargs)

    monkeypatch.setattr(training, "new_recommender", OverlappedFit)
    older = training.train_shop(store.id)
    assert older.status == "ready" and older.id < newer[0].id
    assert training.active_version(store.id).id == newer[0].id
    db.session.expire_all()
    rows = db.session.query(RecommendationCache).filter_by(shop_id=store.id).all()
    assert {r.shopper_id for r in rows} == set(ORDERS)
    assert {r.model_version_id for r in rows} == {newer[0].id}  # served from the cache


def test_an_order_that_arrives_during_the_fit_is_not_served_back(app, store, monkeypatch):
    """The webhook drops the shopper's cached list, but the fit, which cannot know the
    order, wrote it again afterwards: that list must not offer what was just bought."""
    from plugin.api import sources
    from plugin.ingestion.mapping import forget_cached_recommendations

    training.train_shop(store.id)
    top = db.session.query(RecommendationCache).filter_by(shopper_id="c3").one().items[0][0]
    real = training.new_recommender

    class OrderDuringFit:
        def fit(self, data, **kwargs):
            model = real().fit(data, **kwargs)
            add_order(store.id, "c3", "o-during-fit", [top], utcnow())
            forget_cached_recommendations(store.id, "c3")  # what the order webhook does
            db.session.commit()
            return model

    monkeypatch.setattr(training, "new_recommender", OrderDuringFit)
    training.train_shop(store.id)
    training.retrain_due()  # the hourly refresh of shoppers with new orders
    sources.forget_versions()
    served = sources.cached(store.id, "c3", sources.served_version(store.id))
    assert served is None or top not in [r.item for r in served]


def test_a_refresh_replaces_the_redis_copy_of_the_list(app, store):
    from plugin import cache
    from plugin.api import sources
    from tests.factories import FakeRedis

    cache.reset()
    app.config["REDIS_URL"] = "redis://fake"
    cache._clients["redis://fake"] = FakeRedis()
    try:
        version = training.train_shop(store.id)
        served = sources.served_version(store.id)
        top = next(sources.cached(store.id, "c3", served)).item  # table, then Redis
        add_order(store.id, "c3", "o-new", [top], version.trained_until.replace(year=2027))
        assert training.refresh_shoppers(store.id, ["c3"]) == 1
        assert top not in [r.item for r in sources.cached(store.id, "c3", served)]
    finally:
        cache.reset()


def test_a_killed_training_does_not_stay_training_forever(app, store):
    """A fit killed (OOM, kill -9, deploy) never recorded its end: the next fit gives it
    up, and its files, which hold shoppers' purchase histories, are deleted."""
    from datetime import timedelta

    killed = ModelVersion(shop_id=store.id, status="training", version="killed-fit",
                          created_at=utcnow() - timedelta(days=3))
    db.session.add(killed)
    db.session.commit()
    directory = Path(app.config["MODEL_DIR"]) / store.id / "killed-fit"
    directory.mkdir(parents=True)
    (directory / "meta.json").write_text("{}")
    training.train_shop(store.id)
    db.session.refresh(killed)
    assert killed.status == "failed"
    assert killed.metrics["error"] == "abandoned"
    assert not directory.exists()


def test_models_kept_by_training_obey_the_cache_budget(app, store, monkeypatch):
    """A worker refits shop after shop: the models it keeps are bounded by
    ``MODEL_CACHE_MB`` like those it loads, not only by their count."""
    from tests.factories import make_shop

    lru = model_store.ModelLRU()  # a fresh worker: no model loaded from disk yet
    monkeypatch.setattr(model_store, "LOADED", lru)
    app.config.update(MODEL_CACHE_MODELS=8, MODEL_CACHE_MB=0.001)
    other = make_shop()
    add_products(other.id, PRODUCTS)
    load_history(other.id)
    first, second = training.train_shop(store.id), training.train_shop(other.id)
    assert lru.get((store.id, first.id)) is None  # over budget: dropped
    assert lru.get((other.id, second.id)) is not None  # the latest always stays


def test_train_all_goes_on_past_a_failing_shop(runner, store, monkeypatch):
    from plugin.training_cli import train

    other, failed = _second_shop_and_a_first_fit_that_fails(monkeypatch)
    result = runner.invoke(train, ["--all", "--quiet"])
    assert result.exit_code == 1
    assert f"training failed for {failed[0]}" in result.output
    (healthy,) = {store.id, other} - set(failed)
    assert f"{healthy}: version" in result.output
    assert training.active_version(healthy) is not None


def test_a_failure_after_the_version_serves_does_not_unserve_it(app, store, monkeypatch):
    """The cleanup after a fit (older artifacts, late orders) failing leaves the new
    version ready and its cached lists in place, rather than 'failed' while it served."""
    def broken(version):
        raise OSError("disk")

    monkeypatch.setattr(training, "_delete_older_artifacts", broken)
    with pytest.raises(training.CleanupFailed) as raised:
        training.train_shop(store.id)
    assert isinstance(raised.value.__cause__, OSError)
    version = db.session.query(ModelVersion).one()
    assert version.status == "ready"
    assert training.active_version(store.id).id == version.id
    assert db.session.query(RecommendationCache).filter_by(model_version_id=version.id).count()


@pytest.mark.parametrize("legacy", [False, True])
def test_versions_stay_loadable_when_model_dir_moves(app, store, tmp_path, legacy):
    """MODEL_DIR on a new volume or at another container path: the served version still
    loads, both as stored now (relative) and as older rows stored it (absolute path)."""
    version = training.train_shop(store.id)
    old_root = Path(app.config["MODEL_DIR"])
    if legacy:  # a row written before paths were relative
        version.artifact_dir = str(old_root / store.id / version.version)
        db.session.commit()
    new_root = tmp_path / "volume" / "models"
    new_root.parent.mkdir()
    old_root.rename(new_root)
    app.config["MODEL_DIR"] = str(new_root)
    model_store.LOADED.clear()  # a worker started after the move
    model = model_store.get_model(store.id, version.id, version.artifact_dir)
    assert model is not None and model.similar(["p4"], 2)[0].item == "p5"


def test_a_second_fit_of_a_shop_does_not_run_beside_the_first(app, store):
    """The hourly job and a CLI run: the shop's lease lets one fit at a time."""
    name = training.fit_lease_name(store.id)
    assert lease.acquire(name, "other-worker:42:abcd", 300)  # a fit elsewhere holds it
    with pytest.raises(training.FitInProgress, match="other-worker:42"):
        training.train_shop(store.id)
    assert db.session.query(ModelVersion).count() == 0
    assert training.retrain_due() == 0  # the job skips the shop this hour, without failing
    assert db.session.query(ModelVersion).count() == 0
    lease.release(name, "other-worker:42:abcd")
    assert training.train_shop(store.id).status == "ready"
    assert lease.holder_of(name) is None  # released when done


def test_train_command_skips_a_shop_another_fit_holds_unless_waiting(runner, store, monkeypatch):
    from plugin.training_cli import train

    name = training.fit_lease_name(store.id)
    assert lease.acquire(name, "worker-1:7:beef", 300)
    result = runner.invoke(train, ["--shop", store.id, "--quiet"])
    assert result.exit_code == 1
    assert f"{store.id}: not trained: another fit of shop {store.id} is running" in result.output
    assert "another fit was running for" in result.output
    assert db.session.query(ModelVersion).count() == 0
    waited = []

    def other_fit_ends(seconds):
        waited.append(seconds)
        lease.release(name, "worker-1:7:beef")

    monkeypatch.setattr(training, "_sleep", other_fit_ends)
    result = runner.invoke(train, ["--shop", store.id, "--quiet", "--wait"])
    assert result.exit_code == 0, result.output
    assert waited and f"{store.id}: version" in result.output
    assert f"{store.id}: another fit of shop {store.id} is running (worker-1:7:beef); " \
        "waiting for it to end" in result.output


def test_a_long_fit_keeps_renewing_its_shop_lease(app, store, monkeypatch):
    """A fit longer than the lease time keeps its shop: a thread renews the lease."""
    from datetime import timedelta

    import sqlalchemy as sa

    from plugin.models import SchedulerLease
    from tests.factories import fake_lease_clock, wait_until

    app.config["TRAINING_LEASE_SECONDS"] = 0.6  # renewed every 0.2 s
    name, real, seen = training.fit_lease_name(store.id), training.new_recommender, []
    clock = fake_lease_clock(monkeypatch)  # a loaded machine cannot let it lapse

    def renewed_at(at) -> bool:  # the renewing thread's next beat, in a session of our own
        with app.app_context():
            try:
                return db.session.scalar(sa.select(SchedulerLease.expires_at).where(
                    SchedulerLease.name == name)) >= at + timedelta(seconds=0.6)
            finally:
                db.session.remove()

    class SlowFit:
        def fit(self, data, **kwargs):
            db.session.commit()  # nothing held open while "fitting"
            for _ in range(5):  # 1.5 s on the lease's clock: well past the lease time
                at = clock.advance(0.3)
                seen.append(wait_until(lambda at=at: renewed_at(at), 10))
            seen.append(lease.holder_of(name))
            return real().fit(data, **kwargs)

    monkeypatch.setattr(training, "new_recommender", SlowFit)
    training.train_shop(store.id)
    assert seen[:5] == [True] * 5
    assert seen[5] is not None  # still held: a second fit would have been refused


def test_a_fit_lease_renewal_stuck_on_a_lock_does_not_hang_the_fit(app, store, monkeypatch,
                                                                    caplog):
    """The fit's end joined its lease-renewing thread without a bound: a renewal waiting
    on a lock (a row lock on PostgreSQL has no timeout) hung the finished fit, and the
    job running it, forever. It now waits ``STOP_WAIT_SECONDS``, logs the stuck renewal
    and goes on."""
    import logging
    import threading
    import time

    from plugin import heartbeat

    app.config["TRAINING_LEASE_SECONDS"] = 0.3  # renewed every 0.1 s
    monkeypatch.setattr(heartbeat, "STOP_WAIT_SECONDS", 0.5, raising=False)
    entered, release, real_acquire, real_fit = (threading.Event(), threading.Event(),
                                                lease.acquire, training.new_recommender)

    def acquire(name, holder, ttl, **kwargs):  # the renewing thread's renewal waits on a lock
        if threading.current_thread().name.startswith("lease-"):
            entered.set()
            release.wait(120)
        return real_acquire(name, holder, ttl, **kwargs)

    class Fit:
        def fit(self, data, **kwargs):
            assert entered.wait(10)
            return real_fit().fit(data, **kwargs)

    monkeypatch.setattr(lease, "acquire", acquire)
    monkeypatch.setattr(training, "new_recommender", Fit)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="shopkeeper"):
        version = training.train_shop(store.id)
    assert time.monotonic() - started < 60 and version.status == "ready"  # not the 120 s
    assert "training.lease_renewal_stuck" in [r.message for r in caplog.records]
    release.set()
    keeper = [t for t in threading.enumerate() if t.name.startswith("lease-train:")]
    for t in keeper:
        t.join(10)
    assert not any(t.is_alive() for t in keeper)


def _failed_fits(shop_id: str, n: int, *, hours_ago: float, error: str = "MemoryError"):
    from datetime import timedelta

    for k in range(n):
        at = utcnow() - timedelta(hours=hours_ago + n - k)
        db.session.add(ModelVersion(shop_id=shop_id, status="failed",
                                    version=f"bad-{k}-{utcnow().timestamp()}",
                                    created_at=at, finished_at=at, metrics={"error": error}))
    db.session.commit()


def test_a_shop_whose_fits_keep_failing_backs_off_and_comes_last(app, store, monkeypatch):
    """A shop too big for the worker dies mid-fit (OOM) on every run: it must not be
    refitted first, every hour, while the shops after it are never reached."""
    from datetime import timedelta

    from tests.factories import make_shop

    other = make_shop()
    add_products(other.id, PRODUCTS)
    load_history(other.id)
    _failed_fits(store.id, 2, hours_ago=0.5)
    killed = ModelVersion(shop_id=store.id, status="training", version="oom-killed",
                          created_at=utcnow() - timedelta(minutes=20))  # no lease: dead
    db.session.add(killed)
    db.session.commit()
    failing = training.fit_failures(store.id)
    assert failing.count == 3 and failing.last_error == "abandoned"
    assert failing.retry_at == killed.created_at + timedelta(hours=4)  # 1 h, doubled twice
    fitted, real = [], training.train_shop
    monkeypatch.setattr(training, "train_shop", lambda s, **k: fitted.append(s) or real(s, **k))
    assert training.retrain_due() == 1
    assert fitted == [other.id]  # backing off: not fitted this hour
    assert training.retrain_due(utcnow() + timedelta(hours=5)) == 1  # the backoff is over
    assert fitted == [other.id, store.id]
    assert training.fit_failures(store.id) is None  # it succeeded
    # a shop that failed before but is past its backoff is fitted after the healthy ones
    first, second = sorted([store.id, other.id])  # the job's order otherwise
    _failed_fits(first, 1, hours_ago=3)
    fitted.clear()
    assert training.retrain_due(utcnow() + timedelta(days=2)) == 2
    assert fitted == [second, first]


@pytest.mark.parametrize("stop", ["LeaseLost", "LeaseBusy"])
def test_a_fit_stopped_on_the_lease_says_why_and_is_no_failure_of_the_shops(
        app, store, monkeypatch, stop):
    """A fit whose fence found the lease lost, or its row too busy to confirm it, records
    which, and neither counts towards the shop's failing fits (the leader refits it)."""
    from plugin import leadership

    def stopped(version, show_progress):
        raise getattr(leadership, stop)("w:other")

    monkeypatch.setattr(training, "_train", stopped)
    with pytest.raises(leadership.LeaseLost):
        training.train_shop(store.id)
    fit = db.session.scalars(sa.select(ModelVersion).where(ModelVersion.shop_id == store.id)
                             .order_by(ModelVersion.id.desc())).first()
    assert (fit.status, fit.metrics["error"]) == ("failed", stop)
    assert training.fit_failures(store.id) is None


def test_a_fit_running_elsewhere_is_not_counted_as_abandoned(app, store):
    db.session.add(ModelVersion(shop_id=store.id, status="training", version="running"))
    db.session.commit()
    assert training.fit_failures(store.id).last_error == "abandoned"
    assert lease.acquire(training.fit_lease_name(store.id), "w:1:aa", 300)
    assert training.fit_failures(store.id) is None


def test_the_dashboard_says_the_shops_fits_keep_failing(app, client, store):
    from tests.admin.conftest import sign_in

    _failed_fits(store.id, 2, hours_ago=0.5, error="MemoryError")
    sign_in(app, client, store)
    html = client.get("/admin/").get_data(as_text=True)
    assert "The last 2 fits of this shop failed" in html
    assert "MemoryError" in html and "the next automatic fit waits until" in html


def test_train_command_says_the_new_version_serves_when_only_cleanup_failed(runner, store,
                                                                           monkeypatch):
    from plugin.training_cli import train

    def broken(version):
        raise OSError("disk full")

    monkeypatch.setattr(training, "_delete_older_artifacts", broken)
    result = runner.invoke(train, ["--shop", store.id, "--quiet"])
    version = training.active_version(store.id)
    assert result.exit_code == 1
    assert (f"{store.id}: version {version.version} ({version.algorithm}) serves; "
            "cleanup failed: OSError: disk full") in result.output
    assert "training failed" not in result.output
    assert f"cleanup failed after the new version went live for {store.id}" in result.output


def test_load_interactions_streams_the_same_columns_batch_by_batch(app, store, monkeypatch):
    from plugin.models import Interaction

    db.session.add(Interaction(shop_id=store.id, shopper_id="c2", kind="purchase",
                               product_external_id="p7", occurred_at=T0, context={},
                               price=None))  # no order id: one basket per shopper and time
    db.session.commit()
    whole = training.load_interactions(store.id)
    monkeypatch.setattr(training, "LOAD_BATCH", 3)
    batched = training.load_interactions(store.id)
    for name in ("user_ids", "item_ids", "user", "item", "timestamp", "basket", "quantity",
                 "price"):
        a, b = getattr(whole, name), getattr(batched, name)
        assert a.dtype == b.dtype
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name
    assert len(whole) == len(batched)


def test_load_interactions_does_not_hold_every_row_as_python_objects(app, shop, monkeypatch):
    """A large shop's rows were all kept as Python tuples plus a list per column, about
    twice the memory of the fit itself; they are streamed into numpy columns instead."""
    import tracemalloc
    from datetime import timedelta
    from decimal import Decimal

    import sqlalchemy as sa

    from plugin.models import Interaction

    rows, n = [], 40_000
    for k in range(n):
        rows.append(dict(shop_id=shop.id, shopper_id=f"customer-{k % 4000:06d}",
                         product_external_id=f"sku-{(k * 7919) % 3000:06d}", kind="purchase",
                         quantity=1, price=Decimal("12.50"), context={},
                         order_external_id=f"order-{k // 4:08d}",
                         occurred_at=T0 + timedelta(minutes=k // 4)))
    db.session.execute(sa.insert(Interaction), rows)
    db.session.commit()
    del rows
    monkeypatch.setattr(training, "LOAD_BATCH", 2000)  # 5% of the rows, as 50,000 of 1M
    training.load_interactions(shop.id)  # imports and caches warmed up
    tracemalloc.start()
    try:
        data = training.load_interactions(shop.id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(data) == n
    assert peak / n < 400  # bytes per row: about 700 when every row was kept in Python


def test_a_fit_stopped_by_a_lost_scheduler_lease_lets_the_new_leader_refit_at_once(
        app, store, monkeypatch, caplog, lease_takeover):
    """A fit whose worker lost the scheduler lease stops (its commits are fenced), but its
    release of the shop's fit lease was fenced too: the lease stayed held until it lapsed
    (TRAINING_LEASE_SECONDS), and the new leader skipped the shop as being fitted, then
    took the fit left "training" for one killed mid-way and backed off an hour. The fit
    lease is given up outside the fence, with the fit recorded as stopped, not failed:
    the new leader refits the shop in the same hour."""
    import logging

    import sqlalchemy as sa

    from plugin.models import JobRun

    # every lease on the pair's clock (the fence, checkpoints, the fit's own lease too),
    # hours off the real one: see tests/test_worker.py's fencing tests
    two, real = lease_takeover(), training.new_recommender

    class StalledFit:  # w1 stalls in the fit; w2 takes the scheduler lease over
        def fit(self, data, **kwargs):
            if two.running[-1] == "w1":
                two.take_over()
            return real().fit(data, **kwargs)

    monkeypatch.setattr(training, "new_recommender", StalledFit)
    two.first.tick()
    with caplog.at_level(logging.INFO):
        two.run(two.first, "retrain_due_shops")
        assert lease.holder_of(training.fit_lease_name(store.id)) is None  # given up
        two.run(two.second, "retrain_due_shops")
    runs = [(r.worker, r.status) for r in db.session.scalars(
        sa.select(JobRun).where(JobRun.job == "retrain_due_shops").order_by(JobRun.id))]
    assert runs == [("w1", "lease_lost"), ("w2", "ok")]
    fits = [(v.status, (v.metrics or {}).get("error")) for v in db.session.scalars(
        sa.select(ModelVersion).order_by(ModelVersion.id))]
    assert fits == [("failed", "LeaseLost"), ("ready", None)]  # w2 refitted it at once
    assert training.fit_failures(store.id) is None
    assert not [r.message for r in caplog.records if r.levelno >= logging.WARNING
                and r.message.startswith("training.")]  # no failed fit, lease released
