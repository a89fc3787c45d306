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



def test_erased_customer_is_not_recomputed_from_the_model_that_learned_them(api, trained):
    # The served model was fitted on c1's purchases; after erasure its cached row is gone,
    # and the online path must not ask that model about c1 until a refit forgets them.
    erase_customer(trained.id, "c1")
    db.session.commit()
    body = api.recs(headers=customer_headers(trained, "c1"), n=3).get_json()
    assert body["personalized"] is False
    assert {i["source"] for i in body["items"]} <= sources.NON_PERSONAL


def test_a_refit_deletes_the_older_artifacts_that_still_hold_erased_histories(api, trained):
    from pathlib import Path

    import sqlalchemy as sa

    from plugin.models import ModelVersion
    from plugin.training import train_shop

    old = Path(db.session.scalar(sa.select(ModelVersion.artifact_dir).where(
        ModelVersion.shop_id == trained.id)))
    assert old.is_dir()
    erase_customer(trained.id, "c1")
    db.session.commit()
    new = Path(train_shop(trained.id).artifact_dir)
    assert new.is_dir() and new != old
    assert not old.exists()  # fitted on c1's purchases: gone with the refit that forgot them
    body = api.recs(headers=customer_headers(trained, "c2"), n=3).get_json()
    assert body["personalized"] is True  # the new version serves
