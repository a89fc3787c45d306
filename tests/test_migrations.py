"""Alembic migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from plugin import migrate
from plugin.extensions import db


def test_migrations_match_models(app):
    with db.engine.begin() as conn:  # start from nothing, even on a shared PostgreSQL
        db.metadata.drop_all(conn)
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    try:
        migrate.upgrade()
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, db.metadata)
        assert diff == []
        version = db.session.scalar(sa.text("SELECT version_num FROM alembic_version"))
        assert version
    finally:
        db.session.remove()
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        db.metadata.create_all(db.engine)


def test_concurrent_upgrades_on_postgresql_all_succeed(tmp_path):
    """`shopkeeper db upgrade` run by every node or pod at once (an init container, a
    deploy script): the losers failed with duplicate-table errors mid-release."""
    import os
    import subprocess
    import sys
    import uuid
    from pathlib import Path

    import pytest

    pg = os.environ.get("SHOPKEEPER_TEST_POSTGRES_URL", "")
    if not pg:
        if os.environ.get("CI"):  # .ci/run starts PostgreSQL: a missing one is a CI failure
            pytest.fail("needs SHOPKEEPER_TEST_POSTGRES_URL")
        pytest.skip("needs SHOPKEEPER_TEST_POSTGRES_URL (set by .ci/postgres.sh)")
    server, name = pg.rsplit("/", 1)[0], f"shopkeeper_conc_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        env = {**os.environ, "SHOPKEEPER_SQLALCHEMY_DATABASE_URI": f"{server}/{name}",
               "SHOPKEEPER_INSTANCE_DIR": str(tmp_path), "SHOPKEEPER_LOG_FORMAT": "plain"}
        procs = [subprocess.Popen([sys.executable, "-m", "plugin.cli", "db", "upgrade"],
                                  env=env, cwd=Path(__file__).resolve().parents[1],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(3)]
        outcomes = [(p.wait(120), p.stderr.read()[-300:]) for p in procs]
        for p in procs:
            p.stdout.close()
            p.stderr.close()
        assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_saleor_products_stored_before_launch_times_are_read_again(app):
    """Their launch time (``available_from``) was never read: 0016 makes the live ones older
    than any record, so the next products pass overwrites them; other platforms' are kept."""
    from datetime import UTC, datetime

    from alembic import command

    from plugin.models import Product
    from tests.factories import make_shop

    with db.engine.begin() as conn:
        db.metadata.drop_all(conn)
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    try:
        migrate.upgrade()
        saleor, generic = make_shop("saleor"), make_shop("generic")
        at = datetime(2026, 5, 1, tzinfo=UTC)
        for shop, pid, deleted in ((saleor, "s1", None), (saleor, "s2", at),
                                   (generic, "g1", None)):
            db.session.add(Product(shop_id=shop.id, external_id=pid, source_updated_at=at,
                                   deleted_at=deleted))
        db.session.commit()
        db.session.remove()
        cfg = migrate.alembic_config()
        command.downgrade(cfg, "0014_sync_pass_generation")  # as stored before 0016
        migrate.upgrade()
        stamps = dict(db.session.execute(sa.select(Product.external_id,
                                                   Product.source_updated_at)).all())
        assert stamps == {"s1": datetime(1970, 1, 1, tzinfo=UTC), "s2": at, "g1": at}
    finally:
        db.session.remove()
        with db.engine.begin() as conn:
            db.metadata.drop_all(conn)
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        db.metadata.create_all(db.engine)


def test_vendure_products_stored_before_per_currency_prices_are_read_again(app):
    """Their prices in the channel's other currencies were never read: 0017 makes the live
    ones older than any record, so the next products pass writes them with those prices."""
    from datetime import UTC, datetime

    from alembic import command

    from plugin.models import Product
    from tests.factories import make_shop

    with db.engine.begin() as conn:
        db.metadata.drop_all(conn)
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    try:
        migrate.upgrade()
        vendure, saleor = make_shop("vendure"), make_shop("saleor")
        at = datetime(2026, 5, 1, tzinfo=UTC)
        for shop, pid, deleted in ((vendure, "v1", None), (vendure, "v2", at),
                                   (saleor, "s1", None)):
            db.session.add(Product(shop_id=shop.id, external_id=pid, source_updated_at=at,
                                   deleted_at=deleted))
        db.session.commit()
        db.session.remove()
        cfg = migrate.alembic_config()
        command.downgrade(cfg, "0016_product_available_from")  # as stored before 0017
        migrate.upgrade()
        stamps = dict(db.session.execute(sa.select(Product.external_id,
                                                   Product.source_updated_at)).all())
        assert stamps == {"v1": datetime(1970, 1, 1, tzinfo=UTC), "v2": at, "s1": at}
    finally:
        db.session.remove()
        with db.engine.begin() as conn:
            db.metadata.drop_all(conn)
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        db.metadata.create_all(db.engine)
