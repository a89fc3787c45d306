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
