"""Extension objects created once and bound to an app in ``create_app`` (init_app pattern)."""

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """SQLite: WAL so readers don't block the writer, a busy timeout for several worker
    processes, FULL sync so a 200 still means the delivery is on disk, and foreign keys."""
    if type(dbapi_connection).__module__.split(".")[0] != "sqlite3":
        return
    cur = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=10000",
                   "foreign_keys=ON"):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()
