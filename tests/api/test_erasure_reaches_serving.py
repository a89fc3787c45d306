"""An erased customer is never served a list built from the history they had erased."""

from __future__ import annotations

from plugin import cache
from plugin.api import sources
from plugin.extensions import db
from plugin.privacy import erase_customer
from tests.api.conftest import customer_headers
from tests.factories import FakeRedis


def test_erasure_drops_the_redis_copy_of_the_cached_list(app, api, trained):
    cache.reset()
    app.config["REDIS_URL"] = "redis://fake"
    fake = FakeRedis()
    cache._clients["redis://fake"] = fake
    try:
        before = api.recs(headers=customer_headers(trained, "c1"), n=3).get_json()
        assert before["personalized"] is True
        assert sources.cache_key(trained.id, "c1") in fake.data  # filled from the table
        erase_customer(trained.id, "c1")
        db.session.commit()
        assert sources.cache_key(trained.id, "c1") not in fake.data
        version = sources.served_version(trained.id)
        assert sources.cached(trained.id, "c1", version) is None
    finally:
        cache.reset()



def test_a_list_put_back_in_redis_before_the_erasure_commits_is_dropped(app, api, trained):
    """Until the erasure commits, a concurrent request still reads the customer's cached
    row and may put it back in Redis, where it would be served for an hour."""
    cache.reset()
    app.config["REDIS_URL"] = "redis://fake"
    fake = FakeRedis()
    cache._clients["redis://fake"] = fake
    key = sources.cache_key(trained.id, "c1")
    try:
        erase_customer(trained.id, "c1")
        fake.data[key] = '{"refilled": "by a request that read the old row"}'
        db.session.commit()
        assert key not in fake.data
    finally:
        cache.reset()


def test_erased_customer_is_not_recomputed_from_the_model_that_learned_them(api, trained):
    # The served model was fitted on c1's purchases; after erasure its cached row is gone,
    # and the online path must not ask that model about c1 until a refit forgets them.
    erase_customer(trained.id, "c1")
    db.session.commit()
    body = api.recs(headers=customer_headers(trained, "c1"), n=3).get_json()
    assert body["personalized"] is False
    assert {i["source"] for i in body["items"]} <= sources.NON_PERSONAL


def test_a_refit_deletes_the_older_artifacts_that_still_hold_erased_histories(api, trained):

    import sqlalchemy as sa

    from plugin.api.model_store import artifact_path
    from plugin.models import ModelVersion
    from plugin.training import train_shop

    old = artifact_path(db.session.scalar(sa.select(ModelVersion.artifact_dir).where(
        ModelVersion.shop_id == trained.id)))
    assert old.is_dir()
    erase_customer(trained.id, "c1")
    db.session.commit()
    new = artifact_path(train_shop(trained.id).artifact_dir)
    assert new.is_dir() and new != old
    assert not old.exists()  # fitted on c1's purchases: gone with the refit that forgot them
    body = api.recs(headers=customer_headers(trained, "c2"), n=3).get_json()
    assert body["personalized"] is True  # the new version serves


def test_a_training_that_finishes_late_does_not_delete_the_newer_served_version(api, trained):
    """Two fits overlap (the scheduled one and a CLI run): the older one finishing last must
    not delete the directory of the newer version that serves."""
    from pathlib import Path

    from flask import current_app

    from plugin.models import ModelVersion
    from plugin.training import _delete_older_artifacts, train_shop

    slow = ModelVersion(shop_id=trained.id, status="training", version="slow-fit")
    db.session.add(slow)
    db.session.commit()
    slow_dir = Path(current_app.config["MODEL_DIR"]) / trained.id / "slow-fit"
    slow_dir.mkdir(parents=True)
    newer = train_shop(trained.id)  # starts later, finishes first
    assert slow_dir.is_dir()  # still training: kept
    slow.status, slow.artifact_dir = "ready", f"{trained.id}/slow-fit"
    db.session.commit()
    _delete_older_artifacts(slow)
    db.session.refresh(newer)
    assert newer.artifact_dir == f"{trained.id}/{newer.version}"
    assert (slow_dir.parent / newer.version).is_dir()
    assert sources.active_version(trained.id).id == newer.id
    from plugin.api import model_store

    model_store.LOADED.clear()  # another worker process: it reads the artifacts from disk
    body = api.recs(headers=customer_headers(trained, "c2"), n=3).get_json()
    assert body["personalized"] is True


def test_a_customer_erased_during_a_fit_gets_no_cached_list_from_it(monkeypatch, api, store):
    """The fit read c1's purchases before the erasure committed: the lists it writes after
    must not bring back a personal list (served from the cache, no ``erased`` check there)
    built from the history that was erased."""
    import sqlalchemy as sa

    from plugin import training
    from plugin.models import RecommendationCache

    read = training.load_interactions

    def read_then_erase(shop_id: str):
        data = read(shop_id)
        erase_customer(shop_id, "c1")  # a customers/redact applied meanwhile
        db.session.commit()
        return data

    monkeypatch.setattr(training, "load_interactions", read_then_erase)
    training.train_shop(store.id)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RecommendationCache).where(
        RecommendationCache.shop_id == store.id, RecommendationCache.shopper_id == "c1")) == 0
    assert sources.cached(store.id, "c1", sources.served_version(store.id)) is None
    body = api.recs(headers=customer_headers(store, "c1"), n=3).get_json()
    assert body["personalized"] is False
    assert api.recs(headers=customer_headers(store, "c2"), n=3).get_json()["personalized"]
