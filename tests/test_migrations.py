"""Alembic migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from plugin import migrate
from plugin.extensions import db
from tests.factories import empty_schema


def test_migrations_match_models(app):
    with empty_schema():  # start from nothing, even on a shared PostgreSQL
        migrate.upgrade()
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, db.metadata)
        assert diff == []
        version = db.session.scalar(sa.text("SELECT version_num FROM alembic_version"))
        assert version


def test_concurrent_upgrades_on_postgresql_all_succeed(tmp_path):
    """`shopkeeper db upgrade` run by every node or pod at once (an init container, a
    deploy script): the losers failed with duplicate-table errors mid-release."""
    import os
    import subprocess
    import sys
    import uuid
    from pathlib import Path

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


@pytest.mark.parametrize(("platform", "before"), [
    # 0016: the launch time (``available_from``) of Saleor's products was never read
    ("saleor", "0014_sync_pass_generation"),
    # 0017: Vendure's prices in the channel's other currencies were never read
    ("vendure", "0016_product_available_from"),
])
def test_products_stored_before_a_new_field_are_read_again(app, platform, before):
    """The migration makes the platform's live products older than any record, so the
    next products pass writes them with the new field; deleted ones and other platforms'
    are kept."""
    from datetime import UTC, datetime

    from alembic import command

    from plugin.models import Product
    from tests.factories import make_shop

    other_platform = "generic" if platform == "saleor" else "saleor"
    with empty_schema():
        migrate.upgrade()
        shop, other = make_shop(platform), make_shop(other_platform)
        at = datetime(2026, 5, 1, tzinfo=UTC)
        for owner, pid, deleted in ((shop, "live", None), (shop, "gone", at),
                                    (other, "other", None)):
            db.session.add(Product(shop_id=owner.id, external_id=pid, source_updated_at=at,
                                   deleted_at=deleted))
        db.session.commit()
        db.session.remove()
        command.downgrade(migrate.alembic_config(), before)  # as stored before the field
        migrate.upgrade()
        stamps = dict(db.session.execute(sa.select(Product.external_id,
                                                   Product.source_updated_at)).all())
        assert stamps == {"live": datetime(1970, 1, 1, tzinfo=UTC), "gone": at, "other": at}
