"""A job's check and a job run's end on ``job_runs`` rows another transaction holds locked.

PostgreSQL set no ``lock_timeout``: the check's sweep of abandoned runs and the run's end
(its status row) waited for the row as long as the other transaction held it, the job's
scheduler thread stuck (one instance at a time: the job never ran again on that worker).
Both now give up after ``row_lock.LOCK_TIMEOUT_SECONDS``: the check is skipped until its
next turn, the end is deferred to the job's next check. SQLite has no row locks: the same
calls run as before, unblocked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from plugin import jobs, row_lock
from plugin.db_clock import db_utcnow
from plugin.extensions import db
from plugin.models import JobRun
from tests.factories import while_rows_held

#: Seconds past the lock timeout a call may take before the test takes it for blocked
#: (threads on a loaded 2-core machine)
SLACK = 3.0


@pytest.fixture(autouse=True)
def _short_lock_timeout(monkeypatch):
    """A 1 s bound, so each test waits little."""
    monkeypatch.setattr(row_lock, "LOCK_TIMEOUT_SECONDS", 1.0)


def _postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def _while_run_held(app, run_id: int, call: Callable[[], object]) -> tuple[object, float]:
    """``while_rows_held`` on the run's row, bounded by the lock timeout."""
    return while_rows_held(app, sa.select(JobRun.id).where(JobRun.id == run_id), call,
                           bound=row_lock.LOCK_TIMEOUT_SECONDS + SLACK)


def _status(run_id: int) -> str:
    db.session.expire_all()
    return db.session.get(JobRun, run_id).status


def _logged(caplog, message: str) -> list[object]:
    return [r.job for r in caplog.records if r.message == message]


def test_a_check_whose_abandoned_run_is_locked_is_skipped_until_the_next(app, caplog):
    """The check's sweep waited for a dead run's row with no end; now it gives up, marks
    nothing and skips the check (not due-checked, not run: the dead run would be unseen,
    and it is what holds a job that kills its worker back), logged, no check failure. The
    next check, the row free, marks it and the job backs off as after any abandoned run."""
    stale = db_utcnow(-jobs.RUN_ABANDONED_SECONDS - 60)
    run = JobRun(job="daily", worker="w-oom", started_at=stale, status="running",
                 heartbeat_at=stale)
    db.session.add(run)
    db.session.commit()
    run_id, ran = run.id, []

    with caplog.at_level(logging.INFO, logger="shopkeeper.jobs"):
        _, seconds = _while_run_held(
            app, run_id, lambda: jobs.run_if_due(app, "daily", lambda: ran.append(1), 86400))
    assert ran == []
    assert _logged(caplog, "jobs.check_failed") == []
    if _postgres():
        assert seconds >= 0.9  # it waited for the lock, then gave up
        assert _status(run_id) == "running"
        assert _logged(caplog, "jobs.abandoned_lock_timeout") == ["daily"]
    else:  # no row lock: marked at once, as before
        assert _status(run_id) == "abandoned"
        assert _logged(caplog, "jobs.abandoned_lock_timeout") == []

    jobs.run_if_due(app, "daily", lambda: ran.append(1), 86400)  # the next check
    assert ran == [] and _status(run_id) == "abandoned"
    assert not jobs.job_is_due("daily", 86400)
    assert jobs.mark_abandoned_runs("daily") == 0
