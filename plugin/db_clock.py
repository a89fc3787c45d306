"""The database's own UTC clock as a SQL expression.

Workers' clocks drift apart (a VM resumed, NTP not yet synced); state that several
workers compare times on, such as the scheduler lease, must use the one clock they share.
The expression yields naive UTC in the form ``UTCDateTime`` stores, on SQLite (text
``YYYY-MM-DD HH:MM:SS.ffffff``) and PostgreSQL (``timestamp without time zone``).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from plugin.extensions import db
from plugin.models.types import UTCDateTime


def db_utcnow(offset_seconds: float = 0.0) -> ColumnElement:
    """The database's current UTC time plus ``offset_seconds``, evaluated at execution
    (PostgreSQL's ``clock_timestamp()``, not ``now()``: that one stops at the start of
    the transaction)."""
    if db.session.get_bind().dialect.name == "postgresql":
        now = sa.func.timezone("UTC", sa.func.clock_timestamp())
        return now + sa.func.make_interval(0, 0, 0, 0, 0, 0, float(offset_seconds))
    # SQLite: milliseconds ('%f' is SS.SSS), padded to the microseconds SQLAlchemy writes,
    # so text comparisons with stored values order correctly
    return sa.func.strftime("%Y-%m-%d %H:%M:%f", "now",
                            f"{float(offset_seconds):+.6f} seconds").concat("000")


def db_now() -> datetime:
    """The database's current UTC time, read now (aware): for "how long ago" questions
    about times written with ``db_utcnow``."""
    return db.session.scalar(sa.select(sa.type_coerce(db_utcnow(), UTCDateTime())))
