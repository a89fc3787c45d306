"""``plugin.lease`` on a lease row another transaction holds locked.

PostgreSQL set no ``lock_timeout``: a lease statement waited for the row as long as the
other transaction held it (a job's fence holds it to that job's commit's end), forever if
that commit was stuck. Each statement now gives up after ``lease_lock.LOCK_TIMEOUT_SECONDS``
with its operation's outcome. SQLite has no row locks (``with_for_update`` renders nothing
there): the same calls run as before, unblocked, with their ordinary outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa

from plugin import jobs, lease, lease_lock
from plugin.extensions import db
from plugin.jobs import Worker
from plugin.leadership import LeaseLost, watching
from plugin.models import JobRun, SchedulerLease
from plugin.models.types import utcnow
from tests.factories import while_rows_held

#: Seconds past the lock timeout a call may take before the test takes it for blocked
#: (threads on a loaded 2-core machine)
SLACK = 3.0


@pytest.fixture
def lock_timeout(monkeypatch):
    """Sets ``LOCK_TIMEOUT_SECONDS`` (1 s unless changed), so each test waits little."""
    def set_to(seconds: float) -> float:
        monkeypatch.setattr(lease_lock, "LOCK_TIMEOUT_SECONDS", seconds)
        return seconds

    set_to(1.0)
    return set_to


def _postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def _while_row_held(app, name: str, call: Callable[[], object]) -> tuple[object, float]:
    """``while_rows_held`` on the lease row ``name``, bounded by the lease's timeout."""
    return while_rows_held(app, sa.select(SchedulerLease.name).where(SchedulerLease.name == name),
                           call, bound=lease_lock.LOCK_TIMEOUT_SECONDS + SLACK)


def _row(name: str) -> tuple[str, int, object]:
    db.session.expire_all()
    row = db.session.get(SchedulerLease, name)
    return row.holder, row.generation, row.expires_at


def _timeouts(caplog) -> list[tuple[str, str]]:
    return [(r.operation, r.holder) for r in caplog.records if r.message == "lease.lock_timeout"]


def test_a_takeover_of_a_locked_lease_row_gives_up_after_the_lock_timeout(
        app, lock_timeout, caplog):
    """A standby's acquire waited for the row as long as it was held; now it is not
    acquired this time (the lease as it was), its session usable, and it gets the lease
    once the row is free."""
    t0 = utcnow()
    later = t0 + timedelta(minutes=5)  # w1's lease lapsed, on the standby's clock
    assert lease.acquire("scheduler", "w1", 30, now=t0)
    before = _row("scheduler")

    def take_over():
        return lease.acquire("scheduler", "w2", 30, now=later), \
            lease.holder_of("scheduler", now=later)  # the session goes on

    with caplog.at_level(logging.WARNING, logger="shopkeeper.lease"):
        (took, holder), seconds = _while_row_held(app, "scheduler", take_over)
    assert holder == ("w2" if took else None)
    if _postgres():
        assert not took and seconds >= 0.9  # it waited for the lock, then gave up
        assert _row("scheduler") == before
        assert _timeouts(caplog) == [("acquire", "w2")]
    else:  # no row lock: taken at once, as before
        assert took and _row("scheduler")[:2] == ("w2", before[1] + 1)
        assert _timeouts(caplog) == []
    assert lease.acquire("scheduler", "w2", 30, now=later)
    assert _row("scheduler")[:2] == ("w2", before[1] + 1)


def test_a_leader_renewing_on_a_locked_lease_row_keeps_it_until_it_lapses(
        app, lock_timeout, monkeypatch, caplog):
    """The leader's renewal (its lease thread's ``renew``, its loop's ``acquire``) waited
    for the row with no end; now it gives up, not renewed, and the worker stays leader
    while its lease runs (its jobs go on). A lease that lapsed while the renewal waited
    is lost, as any lapse is."""
    monkeypatch.setattr(jobs, "SCHEDULED_JOBS", {})
    worker = Worker(app, name="w1")
    worker.scheduler.start(paused=True)
    try:
        worker._renew()
        assert worker.leader
        hold, before = worker.hold, _row("scheduler")
        with caplog.at_level(logging.WARNING, logger="shopkeeper.lease"):
            kept, _ = _while_row_held(app, "scheduler", worker._keep_lease)
            again, _ = _while_row_held(app, "scheduler", lambda: lease.acquire(
                "scheduler", "w1", 30))
        assert kept and again and worker.leader and not hold.is_set()
        if _postgres():
            assert _row("scheduler") == before  # not renewed
            assert _timeouts(caplog) == [("renew", "w1"), ("acquire", "w1")]
        else:
            assert _row("scheduler")[2] > before[2]
            assert _timeouts(caplog) == []
    finally:
        worker.scheduler.shutdown(wait=True)

    lock_timeout(3.0)
    assert lease.acquire("fit", "a", 1.5)  # lapses while the renewal waits on the row
    renewed, _ = _while_row_held(app, "fit", lambda: lease.renew("fit", "a", 30))
    assert renewed is not _postgres()
    assert (lease.holder_of("fit") == "a") is not _postgres()


def test_a_fenced_commit_on_a_locked_lease_row_commits_nothing(app, lock_timeout, caplog):
    """A job's commit waited in its fence as long as another transaction held the lease
    row; now the fence gives up, the commit raises ``LeaseBusy`` (a ``LeaseLost``, so the
    job stops as before) with nothing committed, and the job's session is left usable. A
    fence that passes leaves the transaction's own lock_timeout as it was (the job's flush
    after it is not bounded by the lease's)."""
    assert lease.acquire("scheduler", "w1", 30)
    _, generation, _ = _row("scheduler")

    def unit():
        with watching("w1", None, generation):
            db.session.add(SchedulerLease(name="unit", holder="u", expires_at=utcnow()))
            try:
                db.session.commit()
            except LeaseLost as err:
                usable = db.session.scalar(sa.select(sa.func.count(SchedulerLease.name)))
                db.session.rollback()
                return f"{type(err).__name__} ({usable} leases)"
            return "committed"

    with caplog.at_level(logging.WARNING, logger="shopkeeper.lease"):
        outcome, _ = _while_row_held(app, "scheduler", unit)
    db.session.expire_all()
    if _postgres():
        assert outcome == "LeaseBusy (1 leases)"
        assert db.session.get(SchedulerLease, "unit") is None
        assert _timeouts(caplog) == [("fence", "w1")]
        db.session.execute(sa.select(sa.func.set_config("lock_timeout", "42s", True)))
        assert lease.fence("scheduler", "w1", generation)
        assert not lease.fence("scheduler", "w1", generation + 1)  # lost: False, as before
        assert db.session.scalar(sa.text("SHOW lock_timeout")) == "42s"
        db.session.rollback()
    else:
        assert outcome == "committed"
        assert db.session.get(SchedulerLease, "unit") is not None
        assert _timeouts(caplog) == []


def test_a_release_on_a_locked_lease_row_leaves_the_lease_to_lapse(app, lock_timeout, caplog):
    """A worker's graceful stop released its lease waiting for the row with no end (its
    shutdown hung); now it gives up and the lease lapses on its own."""
    assert lease.acquire("scheduler", "w1", 30)

    def release():
        lease.release("scheduler", "w1")
        return lease.holder_of("scheduler")  # the session goes on

    with caplog.at_level(logging.WARNING, logger="shopkeeper.lease"):
        holder, _ = _while_row_held(app, "scheduler", release)
    if _postgres():
        assert holder == "w1"
        assert _timeouts(caplog) == [("release", "w1")]
    else:
        assert holder is None
        assert _timeouts(caplog) == []
    lease.release("scheduler", "w1")
    assert lease.holder_of("scheduler") is None


def test_a_job_stopped_by_a_busy_lease_row_is_recorded_lease_busy_not_lease_lost(
        app, lock_timeout, caplog):
    """A run whose commit's fence timed out on the busy lease row was recorded
    ``lease_lost``, "w1 lost the scheduler lease", while w1 still held it. It is now
    ``lease_busy`` with a message saying so; it still commits nothing, counts as no job
    failure, the worker keeps the lease and the job is due again at its next check, as
    before."""
    from plugin.metrics import REGISTRY

    def failures() -> float:
        return REGISTRY.get_sample_value("shopkeeper_job_failures_total", {"job": "probe"}) or 0

    assert lease.acquire("scheduler", "w1", 30)
    failed_before = failures()

    def job():
        db.session.add(SchedulerLease(name="unit", holder="u", expires_at=utcnow()))
        db.session.commit()

    with caplog.at_level(logging.WARNING, logger="shopkeeper.jobs"):
        _while_row_held(app, "scheduler", lambda: jobs.run_recorded(app, "probe", job, "w1"))
    db.session.expire_all()
    run = db.session.scalar(sa.select(JobRun).where(JobRun.job == "probe"))
    stopped = [r.message for r in caplog.records if r.message.startswith("jobs.stopped_")]
    if _postgres():
        assert (run.worker, run.status) == ("w1", "lease_busy")
        assert run.error.startswith("the scheduler lease row stayed locked past 1.0 s at a "
                                    "commit") and "lost" not in run.error
        assert stopped == ["jobs.stopped_lease_busy"]
        assert db.session.get(SchedulerLease, "unit") is None
        assert lease.holder_of("scheduler") == "w1"
        assert jobs.job_is_due("probe", 3600)
        assert failures() == failed_before
    else:  # no row lock: the fence passes, as before
        assert run.status == "ok" and stopped == []
        assert db.session.get(SchedulerLease, "unit") is not None
