"""0019 builds its index on ``interactions`` without blocking writes on PostgreSQL.

A plain CREATE INDEX holds a SHARE lock on the table for the whole build: on a shop's
interaction history every event recorded meanwhile waited. The migration is run here
from the heads before it, over existing rows, as a release would run it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from plugin import migrate
from plugin.extensions import db
from plugin.models import Interaction
from tests.factories import empty_schema, make_shop

REVISION = "0019_interactions_subprofile"
INDEX = "ix_interactions_shop_subprofile"


@pytest.fixture
def before_0019(app):
    """The schema at every head but 0019's, with a shop's interactions in it."""
    heads = ScriptDirectory.from_config(migrate.alembic_config()).get_heads()
    assert REVISION in heads
    with empty_schema():
        for head in heads:
            if head != REVISION:
                migrate.upgrade(head)
        shop = make_shop()
        at = datetime(2026, 5, 1, tzinfo=UTC)
        db.session.add_all(Interaction(shop_id=shop.id, shopper_id=f"c{i % 7}",
                                       subprofile_id=i % 3 or None, product_external_id="p",
                                       kind="purchase", occurred_at=at) for i in range(50))
        db.session.commit()
        db.session.remove()  # no transaction of ours left open: the build would wait for it
        yield app


def _index_ddl(run) -> list[str]:
    """The statements naming the index that ``run()`` sends to the database."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if INDEX in statement:
            seen.append(" ".join(statement.split()))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)  # alembic's own too
    try:
        run()
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    return [s for s in seen if not s.startswith("SELECT")]


def _pg_index() -> tuple[bool, list[str]] | None:
    """(valid, columns) of the index on PostgreSQL, or None when there is none."""
    row = db.session.execute(sa.text(
        "SELECT i.indisvalid, array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY"
        " k(attnum, n) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " ORDER BY k.n) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE c.relname = :name"), {"name": INDEX}).first()
    db.session.remove()
    return None if row is None else (row[0], list(row[1]))


def test_0019_builds_its_index_concurrently_on_postgresql(before_0019):
    postgresql = db.engine.dialect.name == "postgresql"
    ddl = _index_ddl(migrate.upgrade)  # from the previous heads: only 0019 is left to run
    if postgresql:
        assert ddl == [f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} "
                       "ON interactions (shop_id, subprofile_id)"]
        assert _pg_index() == (True, ["shop_id", "subprofile_id"])
    else:  # SQLite has no concurrent build: unchanged
        assert ddl == [f"CREATE INDEX {INDEX} ON interactions (shop_id, subprofile_id)"]
    names = {ix["name"] for ix in sa.inspect(db.engine).get_indexes("interactions")}
    assert INDEX in names

    ddl = _index_ddl(lambda: command.downgrade(migrate.alembic_config(), f"{REVISION}@-1"))
    if postgresql:
        assert ddl == [f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}"]
        assert _pg_index() is None
    else:
        assert ddl == [f"DROP INDEX {INDEX}"]
    assert INDEX not in {ix["name"] for ix in sa.inspect(db.engine).get_indexes("interactions")}
    migrate.upgrade()  # and up again after the downgrade
    assert INDEX in {ix["name"] for ix in sa.inspect(db.engine).get_indexes("interactions")}


def test_0019_rebuilds_an_invalid_index_a_failed_concurrent_build_left(before_0019):
    """A CONCURRENTLY build that fails leaves its index behind, marked invalid (never used
    by the planner, yet kept up on every write); IF NOT EXISTS alone would keep it."""
    if db.engine.dialect.name != "postgresql":
        migrate.upgrade()  # SQLite: nothing of the kind, the plain build
        assert INDEX in {ix["name"] for ix in sa.inspect(db.engine).get_indexes("interactions")}
        return
    admin = db.engine.execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn, pytest.raises(sa.exc.IntegrityError):
        # unique over a shop's many rows: fails after the index was created, left invalid
        conn.execute(sa.text(f"CREATE UNIQUE INDEX CONCURRENTLY {INDEX} ON interactions "
                             "(shop_id)"))
    assert _pg_index() == (False, ["shop_id"])
    migrate.upgrade()
    assert _pg_index() == (True, ["shop_id", "subprofile_id"])
