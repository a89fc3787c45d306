"""The serving hot path's reads: same rows as the ORM, no transaction, survives a dead link."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from plugin import hot_reads
from plugin.api.sources import _CACHE_ROW
from plugin.extensions import db
from plugin.models import ModelVersion, RecommendationCache


def _cached_row(shop_id: str) -> int:
    version = ModelVersion(shop_id=shop_id, version="v1", status="ready")
    db.session.add(version)
    db.session.flush()
    db.session.add(RecommendationCache(
        shop_id=shop_id, shopper_id="c1", model_version_id=version.id,
        computed_at=datetime(2026, 11, 1, 12, 30, tzinfo=UTC),
        items=[["p1", 1.5, "repeat", "you bought this before"], ["p2", 0.5, "x", "y"]]))
    db.session.commit()
    return version.id


def test_reads_the_same_row_as_the_orm(app, shop):
    version_id = _cached_row(shop.id)
    with app.test_request_context():
        row = hot_reads.first(_CACHE_ROW, {"shop": shop.id, "shopper": "c1"})
        orm = db.session.execute(_CACHE_ROW, {"shop": shop.id, "shopper": "c1"}).first()
    assert row.items == orm.items == [["p1", 1.5, "repeat", "you bought this before"],
                                      ["p2", 0.5, "x", "y"]]
    assert row.model_version_id == orm.model_version_id == version_id
    assert row.computed_at == orm.computed_at == datetime(2026, 11, 1, 12, 30, tzinfo=UTC)
    assert row.computed_at.tzinfo is not None  # the column's own result processing applied


def test_a_missing_row_is_none(app, shop):
    with app.test_request_context():
        assert hot_reads.first(_CACHE_ROW, {"shop": shop.id, "shopper": "nobody"}) is None


def test_other_shops_rows_are_not_read(app, shop):
    from tests.factories import make_shop

    _cached_row(shop.id)
    other = make_shop(domain="other.example")
    with app.test_request_context():
        assert hot_reads.first(_CACHE_ROW, {"shop": other.id, "shopper": "c1"}) is None


def test_reads_see_commits_made_after_the_previous_read(app, shop):
    """No transaction is held between reads (autocommit): nothing is read from a snapshot."""
    _cached_row(shop.id)
    with app.test_request_context():
        assert hot_reads.first(_CACHE_ROW, {"shop": shop.id, "shopper": "c1"}) is not None
    db.session.execute(sa.delete(RecommendationCache))
    db.session.commit()
    with app.test_request_context():
        assert hot_reads.first(_CACHE_ROW, {"shop": shop.id, "shopper": "c1"}) is None


def test_a_dropped_connection_is_replaced_and_the_read_retried(app, shop):
    """PostgreSQL: the server ends the pooled connection (restart, failover, idle kill)."""
    _cached_row(shop.id)
    with app.test_request_context():
        engine = hot_reads.engine_for(app)
        assert hot_reads.first(_CACHE_ROW, {"shop": shop.id, "shopper": "c1"}) is not None
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:  # the pool's only idle connection: the one to kill
                pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with db.engine.connect() as admin:
                assert admin.execute(sa.text("SELECT pg_terminate_backend(:p)"),
                                     {"p": pid}).scalar()
        row = hot_reads.first(_CACHE_ROW, {"shop": shop.id, "shopper": "c1"})
    assert row is not None and row.items[0][0] == "p1"


def test_each_process_builds_its_own_pool(app, monkeypatch):
    with app.app_context():
        first = hot_reads.engine_for(app)
        assert hot_reads.engine_for(app) is first
        monkeypatch.setattr(hot_reads.os, "getpid", lambda: -1)  # as after a fork
        if first is db.engines[None]:  # SQLite: reads share the app's engine
            assert hot_reads.engine_for(app) is first
        else:
            assert hot_reads.engine_for(app) is not first
