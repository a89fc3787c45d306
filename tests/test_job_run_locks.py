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
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa

from plugin import jobs, row_lock, run_end
from plugin.db_clock import db_now, db_utcnow
from plugin.extensions import db
from plugin.models import JobRun, SchedulerLease
from plugin.models.types import UTCDateTime, utcnow
from tests.factories import while_rows_held

#: Seconds past the lock timeout a call may take before the test takes it for blocked
#: (threads on a loaded 2-core machine)
SLACK = 3.0


@pytest.fixture(autouse=True)
def _short_lock_timeout(monkeypatch):
    """A 1 s bound, so each test waits little; no ends deferred by another test."""
    monkeypatch.setattr(row_lock, "LOCK_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(run_end, "_DEFERRED", {})


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


def _failures(job: str) -> float:
    from plugin.metrics import REGISTRY

    return REGISTRY.get_sample_value("shopkeeper_job_failures_total", {"job": job}) or 0


def test_a_run_whose_row_is_locked_at_its_end_is_recorded_at_the_next_check(app, caplog):
    """The run's end (its status row's UPDATE) waited for the row as long as another
    transaction held it, the job's thread stuck. Now it gives up: the run is not recorded
    failed (nor counted a failure), its outcome is logged with its status and kept, what
    the job left uncommitted is committed, and the job's next check records it, at the
    time it really ended, before deciding it is not due (it just ran)."""
    held: dict[str, sa.Connection] = {}
    failed_before = _failures("probe")

    def job():  # locks its own run's row from another connection, as an open statement would
        held["other"] = other = db.engine.connect()
        assert other.execute(sa.select(JobRun.id).where(JobRun.job == "probe")
                             .with_for_update()).all()
        db.session.add(SchedulerLease(name="left", holder="u", expires_at=utcnow()))

    out: dict[str, float] = {}

    def run() -> None:
        started = time.monotonic()
        jobs.run_recorded(app, "probe", job)
        out["seconds"] = time.monotonic() - started

    with caplog.at_level(logging.INFO, logger="shopkeeper.jobs"):
        thread = threading.Thread(target=run, name="run-under-row-lock", daemon=True)
        thread.start()
        thread.join(row_lock.LOCK_TIMEOUT_SECONDS + SLACK)
        blocked = thread.is_alive()
        held["other"].rollback()
        held["other"].close()
        thread.join(30)
        assert not blocked, "the run's end still waiting on its locked row"
        ended = db_now()
        db.session.expire_all()
        run_ = db.session.scalar(sa.select(JobRun).where(JobRun.job == "probe"))
        assert db.session.get(SchedulerLease, "left") is not None
        assert _failures("probe") == failed_before
        assert _logged(caplog, "jobs.failed") == _logged(caplog, "jobs.record_failed") == []
        if _postgres():
            assert out["seconds"] >= 0.9  # it waited for the lock, then gave up
            assert (run_.status, run_.finished_at) == ("running", None)
            assert run_end.deferred("probe") == {run_.id: "ok"}
            assert [(r.run_id, r.status) for r in caplog.records
                    if r.message == "jobs.end_lock_timeout"] == [(run_.id, "ok")]
        else:  # no row lock: recorded at once, as before
            assert run_.status == "ok" and run_end.deferred("probe") == {}

        ran = []
        jobs.run_if_due(app, "probe", lambda: ran.append(1), 3600)  # the next check
    db.session.expire_all()
    run_ = db.session.get(JobRun, run_.id)
    assert ran == [] and run_.status == "ok" and run_.finished_at <= ended
    assert run_end.deferred("probe") == {}
    assert len(_logged(caplog, "jobs.end_recorded_late")) == _postgres()


def test_a_deferred_end_still_locked_skips_the_check_and_beats_a_sweep(app, caplog):
    """A check whose deferred end finds the row still locked gives up after the bound and
    skips (the job is not run again on a run it cannot see end), logged; a sweep that
    took the run for abandoned meanwhile is corrected by the end once the row is free."""
    stale = db_utcnow(-jobs.RUN_ABANDONED_SECONDS - 60)
    run = JobRun(job="probe", worker="w1", started_at=stale, status="running",
                 heartbeat_at=stale)
    db.session.add(run)
    db.session.commit()
    run_id, ran = run.id, []
    ended = db_now() - timedelta(seconds=5)

    with caplog.at_level(logging.INFO, logger="shopkeeper.jobs"):
        recorded, seconds = _while_run_held(app, run_id, lambda: run_end.record(
            "probe", run_id, "ok", None, sa.literal(ended, UTCDateTime())))
        assert recorded is not _postgres()
        assert (seconds >= 0.9) is _postgres()
        _, seconds = _while_run_held(
            app, run_id, lambda: jobs.run_if_due(app, "probe", lambda: ran.append(1), 3600))
        assert ran == [] and _logged(caplog, "jobs.check_failed") == []
        if _postgres():
            assert seconds >= 0.9
            assert _status(run_id) == "running" and run_end.deferred("probe") == {run_id: "ok"}
            assert _logged(caplog, "jobs.end_lock_timeout") == ["probe", "probe"]
            assert _logged(caplog, "jobs.abandoned_lock_timeout") == []  # not got that far
            # another worker's sweep, the row free
            db.session.execute(sa.update(JobRun).where(JobRun.id == run_id)
                               .values(status="abandoned"))
            db.session.commit()
        jobs.run_if_due(app, "probe", lambda: ran.append(1), 3600)
    db.session.expire_all()
    run_ = db.session.get(JobRun, run_id)
    assert (run_.status, run_.finished_at, run_.error) == ("ok", ended, None)
    assert ran == [] and run_end.deferred("probe") == {}
