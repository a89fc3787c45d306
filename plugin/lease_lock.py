"""A bounded wait for a lease row (``plugin.lease``) on PostgreSQL.

A statement on a lease row waits for the row's lock, and PostgreSQL sets no
``lock_timeout``: a job's fence holds the scheduler lease row from its ``before_commit`` to
its commit's end, and one commit stuck there (its flush waiting on another lock) held the
holder's renewals, a standby's takeover and every other job's fence behind it, each waiting
with no end. The Python-side bounds (``heartbeat.STOP_WAIT_SECONDS``) only stopped waiting
for them. Each lease statement now runs under a short ``SET LOCAL lock_timeout`` in a
savepoint: past it, the savepoint is rolled back (the caller's transaction goes on, as it
was before the lease statement) and the lease operation decides what a busy row means.

SQLite has no row locks (its ``busy_timeout`` covers the file lock): there the statements
run as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from plugin.extensions import db

log = logging.getLogger("shopkeeper.lease")

#: How long one lease statement waits for the lease row on PostgreSQL. A normal hold is a
#: job's commit (fence to commit's end) or another worker's acquire: milliseconds, so 5 s
#: is far above it. And it is well under what waits on it: a third of
#: ``heartbeat.STOP_WAIT_SECONDS`` (15 s), so a renewing thread stuck on the row ends on
#: its own before its block's end gives up on it; a 30 s lease (``SCHEDULER_LEASE_SECONDS``)
#: renewed every 2 s (``WORKER_POLL_SECONDS``) still gets four tries before it lapses.
LOCK_TIMEOUT_SECONDS = 5.0

#: SQLSTATE lock_not_available: ``lock_timeout`` ran out (psycopg's ``LockNotAvailable``)
LOCK_NOT_AVAILABLE = "55P03"

T = TypeVar("T")


class RowLocked(Exception):
    """The lease row stayed locked past ``LOCK_TIMEOUT_SECONDS``; the statements were
    rolled back to their savepoint, the transaction is usable."""


def bounded(operation: str, name: str, holder: str, statements: Callable[[], T]) -> T:
    """Run ``statements`` (on ``db.session``) waiting at most ``LOCK_TIMEOUT_SECONDS`` for
    a row lock on PostgreSQL, and raise ``RowLocked`` (logged as ``lease.lock_timeout``)
    when that ran out. The transaction's own ``lock_timeout`` is back once they ran: a
    fence runs in a job's commit, whose flush follows it and must not get this bound."""
    if db.session.get_bind().dialect.name != "postgresql":
        return statements()
    conn = db.session.connection()
    before = conn.scalar(sa.select(sa.func.current_setting("lock_timeout")))
    savepoint = conn.begin_nested()
    try:
        _set_lock_timeout(conn, f"{round(LOCK_TIMEOUT_SECONDS * 1000)}ms")
        result = statements()
    except sa.exc.OperationalError as err:
        if getattr(err.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        savepoint.rollback()  # undoes the SET LOCAL too
        log.warning("lease.lock_timeout", extra={
            "operation": operation, "lease": name, "holder": holder,
            "waited_seconds": LOCK_TIMEOUT_SECONDS})
        raise RowLocked(f"lease {name!r}: its row stayed locked past "
                        f"{LOCK_TIMEOUT_SECONDS} s ({operation})") from err
    savepoint.commit()
    _set_lock_timeout(conn, before)
    return result


def _set_lock_timeout(conn: sa.Connection, value: str) -> None:
    """``SET LOCAL lock_timeout``, as a function taking a bound value."""
    conn.execute(sa.select(sa.func.set_config("lock_timeout", value, True)))
