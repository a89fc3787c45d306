"""A bounded wait for a lease row (``plugin.lease``) on PostgreSQL.

A statement on a lease row waits for the row's lock, and PostgreSQL sets no
``lock_timeout``: a job's fence holds the scheduler lease row from its ``before_commit`` to
its commit's end, and one commit stuck there (its flush waiting on another lock) held the
holder's renewals, a standby's takeover and every other job's fence behind it, each waiting
with no end. The Python-side bounds (``heartbeat.STOP_WAIT_SECONDS``) only stopped waiting
for them. Each lease statement now runs under a short ``SET LOCAL lock_timeout`` in a
savepoint: past it, the savepoint is rolled back (the caller's transaction goes on, as it
was before the lease statement) and the lease operation decides what a busy row means.
The mechanism is ``plugin.row_lock``'s (shared with the job run's heartbeat); this module
keeps the lease's bound and its log line.

SQLite has no row locks (its ``busy_timeout`` covers the file lock): there the statements
run as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from plugin import row_lock
from plugin.row_lock import LOCK_NOT_AVAILABLE, RowLocked

__all__ = ["LOCK_NOT_AVAILABLE", "LOCK_TIMEOUT_SECONDS", "RowLocked", "bounded"]

log = logging.getLogger("shopkeeper.lease")

#: How long one lease statement waits for the lease row on PostgreSQL. A normal hold is a
#: job's commit (fence to commit's end) or another worker's acquire: milliseconds, so 5 s
#: is far above it. And it is well under what waits on it: a third of
#: ``heartbeat.STOP_WAIT_SECONDS`` (15 s), so a renewing thread stuck on the row ends on
#: its own before its block's end gives up on it; a 30 s lease (``SCHEDULER_LEASE_SECONDS``)
#: renewed every 2 s (``WORKER_POLL_SECONDS``) still gets four tries before it lapses.
LOCK_TIMEOUT_SECONDS = 5.0

T = TypeVar("T")


def bounded(operation: str, name: str, holder: str, statements: Callable[[], T]) -> T:
    """Run ``statements`` (on ``db.session``) waiting at most ``LOCK_TIMEOUT_SECONDS`` for
    a row lock on PostgreSQL, and raise ``RowLocked`` (logged as ``lease.lock_timeout``)
    when that ran out (``row_lock.bounded``, with the lease's bound and log line)."""
    return row_lock.bounded(statements, what=f"lease {name!r} ({operation})", log=log,
                            event="lease.lock_timeout",
                            extra={"operation": operation, "lease": name, "holder": holder},
                            seconds=LOCK_TIMEOUT_SECONDS)
