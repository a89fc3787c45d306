"""Recording a job run's end (its ``job_runs`` row's status) without waiting on its row
with no end.

On PostgreSQL the end's UPDATE waited for the run's row as long as another transaction
held it (an operator's statement left open, another worker's sweep of abandoned runs): the
scheduler's thread for that job stayed stuck, and with ``max_instances=1`` the job never
ran again on that worker. It now waits at most ``row_lock.LOCK_TIMEOUT_SECONDS``. Past
that, the outcome is not dropped and the run is not called failed: it is logged in full
(``jobs.end_lock_timeout``, with its status and error) and kept in memory, and the job's
next check (``plugin.jobs.run_if_due``) records it, with the time the run really ended,
before it decides anything else. Until then the row reads "running": its heartbeat has
stopped, but the next check comes ``CHECK_EVERY`` (60 s) later, well inside
``RUN_ABANDONED_SECONDS`` (300 s), and a sweep that marked it abandoned meanwhile is
overwritten by the real outcome. Only a worker that stops before that check loses the
outcome's row (not the log line); the run is then recorded as abandoned, as any run whose
worker stopped.

SQLite has no row locks: there the end is recorded at once, as before.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from plugin import row_lock
from plugin.extensions import db
from plugin.models import JobRun
from plugin.models.types import UTCDateTime

log = logging.getLogger("shopkeeper.jobs")

#: job -> {run id: (status, error, finished_at)}: ends whose row was locked past the bound
_DEFERRED: dict[str, dict[int, tuple[str, str | None, datetime]]] = {}
_DEFERRED_LOCK = threading.Lock()  # each job's check runs in the scheduler's thread pool


def record(name: str, run_id: int, status: str, error: str | None,
           ended_at: ColumnElement) -> bool:
    """Write the run's end and commit (with whatever the job left uncommitted, as before).
    False when its row stayed locked past the bound: the end is logged and deferred to the
    job's next check (``record_deferred``), the rest of the transaction still committed.
    ``ended_at`` (``db_utcnow()``, the database's clock) is read first, so a deferred end
    keeps the time the run ended, not the time it was written."""
    db.session.flush()  # the job's own leftovers: its rows, not the bounded statement's
    finished_at = db.session.scalar(sa.select(sa.type_coerce(ended_at, UTCDateTime())))
    try:
        _write(name, run_id, status, error, finished_at)
    except row_lock.RowLocked:
        with _DEFERRED_LOCK:
            _DEFERRED.setdefault(name, {})[run_id] = (status, error, finished_at)
        db.session.commit()
        return False
    db.session.commit()
    return True


def record_deferred(name: str) -> int:
    """Write the ends of the job's runs that found their row locked (oldest first),
    committing each; returns how many. Raises ``RowLocked`` (logged) when a row is still
    locked: it and the ones after it stay deferred, to the check after."""
    with _DEFERRED_LOCK:
        pending = sorted(_DEFERRED.get(name, {}).items())
    for run_id, (status, error, finished_at) in pending:
        _write(name, run_id, status, error, finished_at)
        db.session.commit()
        with _DEFERRED_LOCK:
            _DEFERRED.get(name, {}).pop(run_id, None)
        log.info("jobs.end_recorded_late", extra={"job": name, "run_id": run_id,
                                                  "status": status})
    return len(pending)


def deferred(name: str) -> dict[int, str]:
    """The job's deferred ends, run id -> status (for tests and operators' debugging)."""
    with _DEFERRED_LOCK:
        return {run_id: end[0] for run_id, end in _DEFERRED.get(name, {}).items()}


def _write(name: str, run_id: int, status: str, error: str | None,
           finished_at: datetime) -> None:
    """The end's UPDATE, by id whatever the row's status: a sweep that took the run for
    abandoned while its end waited is corrected by it."""
    row_lock.bounded(
        lambda: db.session.execute(sa.update(JobRun).where(JobRun.id == run_id).values(
            status=status, error=error, finished_at=finished_at)),
        what=f"job run {run_id}", log=log, event="jobs.end_lock_timeout",
        extra={"job": name, "run_id": run_id, "status": status, "error": error})
