"""Schema migrations (Alembic) driven from the app config; no alembic.ini needed."""

from __future__ import annotations

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
    """
    from plugin.extensions import db

    cfg = alembic_config()
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # several nodes may run this at once: the others wait, then find it done
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": UPGRADE_LOCK_KEY})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def revision(message: str) -> None:
    """Autogenerate a new migration from the models (maintainers only)."""
    command.revision(alembic_config(), message=message, autogenerate=True)
