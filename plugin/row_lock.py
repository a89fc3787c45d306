"""A bounded wait for a row lock on PostgreSQL, for statements a background renewal (or a
job's commit) must not wait on without end.

PostgreSQL sets no ``lock_timeout``: an UPDATE on a row another transaction holds waits as
long as that transaction lasts, forever if it is stuck. The renewals run from threads
(``plugin.heartbeat.renewing``) whose block's end gives up on them after
``heartbeat.STOP_WAIT_SECONDS``, leaving the thread, its connection and its wait behind.
``bounded`` runs the statements under a short ``SET LOCAL lock_timeout`` in a savepoint:
past it, the savepoint is rolled back (the caller's transaction goes on, as it was before
the statements), the wait is logged and ``RowLocked`` raised for the caller to say what a
busy row means (a renewal: skip this beat, try at the next).

SQLite has no row locks (its ``busy_timeout`` covers the file lock): there the statements
run as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from plugin.extensions import db

#: How long a bounded statement waits for a row by default (``plugin.lease_lock`` has its
#: own, with its reasons). A normal hold is one commit: milliseconds. 5 s is a third of
#: ``heartbeat.STOP_WAIT_SECONDS`` (15 s), so a renewing thread stuck on a row ends on its
#: own before its block's end gives up on it.
LOCK_TIMEOUT_SECONDS = 5.0

#: SQLSTATE lock_not_available: ``lock_timeout`` ran out (psycopg's ``LockNotAvailable``)
LOCK_NOT_AVAILABLE = "55P03"

T = TypeVar("T")


class RowLocked(Exception):
    """The row stayed locked past the bound; the statements were rolled back to their
    savepoint, the transaction is usable."""


def bounded(statements: Callable[[], T], *, what: str, log: logging.Logger, event: str,
            extra: dict[str, object] | None = None, seconds: float | None = None) -> T:
    """Run ``statements`` (on ``db.session``) waiting at most ``seconds``
    (``LOCK_TIMEOUT_SECONDS``) for a row lock on PostgreSQL, and raise ``RowLocked``
    (logged as ``event`` with ``extra``; ``what`` names the row in its message) when that
    ran out. The transaction's own ``lock_timeout`` is back once they ran: a lease fence
    runs in a job's commit, whose flush follows it and must not get this bound."""
    if db.session.get_bind().dialect.name != "postgresql":
        return statements()
    waited = LOCK_TIMEOUT_SECONDS if seconds is None else seconds
    conn = db.session.connection()
    before = conn.scalar(sa.select(sa.func.current_setting("lock_timeout")))
    savepoint = conn.begin_nested()
    try:
        _set_lock_timeout(conn, f"{round(waited * 1000)}ms")
        result = statements()
    except sa.exc.OperationalError as err:
        if getattr(err.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        savepoint.rollback()  # undoes the SET LOCAL too
        log.warning(event, extra={**(extra or {}), "waited_seconds": waited})
        raise RowLocked(f"{what}: its row stayed locked past {waited} s") from err
    savepoint.commit()
    _set_lock_timeout(conn, before)
    return result


def _set_lock_timeout(conn: sa.Connection, value: str) -> None:
    """``SET LOCAL lock_timeout``, as a function taking a bound value."""
    conn.execute(sa.select(sa.func.set_config("lock_timeout", value, True)))
