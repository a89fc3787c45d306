"""Schema migrations (Alembic) driven from the app config; no alembic.ini needed."""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import current_app

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: PostgreSQL advisory lock held (for its transaction) by the one upgrade that runs
UPGRADE_LOCK_KEY = 0x5348_4F50  # "SHOP"


def alembic_config(url: str | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url",
                        (url or current_app.config["SQLALCHEMY_DATABASE_URI"]).replace("%", "%%"))
    return cfg


def upgrade(revision: str = "heads") -> None:
    """Bring the database to ``revision`` (creates it from scratch when empty).

    Features add their tables on their own branch off ``0001`` (``heads`` applies all).

    On PostgreSQL several nodes may run this at once: one holds a session advisory lock
    while the others wait for it, then find the work done. The lock is a session's, not a
    transaction's, and the run is not wrapped in a transaction of ours, because a
    migration may build an index CONCURRENTLY, which alembic runs outside any transaction
    (``autocommit_block``). The others poll for the lock between transactions instead of
    queueing for it in one: a waiting statement holds a snapshot, and a concurrent index
    build waits for every older snapshot, so a node queued for the lock would deadlock
    with the node holding it.
    """
    from plugin.extensions import db

    cfg = alembic_config()
    with db.engine.connect() as connection:
        cfg.attributes["connection"] = connection
        if connection.dialect.name != "postgresql":
            with connection.begin():
                command.upgrade(cfg, revision)
            return
        _take_upgrade_lock(connection)
        try:
            command.upgrade(cfg, revision)
        finally:
            connection.rollback()  # whatever a failed step left open
            connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"),
                               {"key": UPGRADE_LOCK_KEY})
            connection.commit()


def _take_upgrade_lock(connection: sa.Connection, poll: float = 0.2) -> None:
    """Wait for the upgrade's advisory lock, holding no transaction between tries."""
    while True:
        taken = connection.scalar(sa.text("SELECT pg_try_advisory_lock(:key)"),
                                  {"key": UPGRADE_LOCK_KEY})
        connection.commit()
        if taken:
            return
        time.sleep(poll)


def revision(message: str) -> None:
    """Autogenerate a new migration from the models (maintainers only)."""
    command.revision(alembic_config(), message=message, autogenerate=True)
