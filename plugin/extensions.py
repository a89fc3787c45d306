"""Extension objects created once and bound to an app in ``create_app`` (init_app pattern)."""

from typing import Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.dml import Insert


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


def insert_or_ignore(model: type[Base], keys: list[str], **values: Any) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING`` for the session's database (PostgreSQL
    or SQLite): the unique key, not an earlier read, decides between concurrent writers.
    Add ``.returning(...)`` to learn whether this statement inserted the row."""
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model).values(**values).on_conflict_do_nothing(index_elements=keys)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """SQLite: WAL so readers don't block the writer, a busy timeout for several worker
    processes, FULL sync so a 200 still means the delivery is on disk, and foreign keys."""
    if type(dbapi_connection).__module__.split(".")[0] != "sqlite3":
        return
    cur = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=10000",
                   "foreign_keys=ON"):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()
