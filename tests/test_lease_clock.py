"""The scheduler lease runs on the database's clock, not on each worker's own.

A worker whose clock runs an hour ahead saw the live lease as expired and took it; one
whose clock lags wrote an expiry already past, so a standby took it at once. Either way
two workers ran the scheduled jobs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from plugin import lease
from plugin.models.types import utcnow


def _skew(monkeypatch, delta: timedelta) -> None:
    """This process's clock, as the lease module sees it, is ``delta`` off."""
    skewed = utcnow() + delta

    class Skewed(datetime):
        @classmethod
        def now(cls, tz=None):
            return skewed if tz is not None else skewed.replace(tzinfo=None)

        @classmethod
        def utcnow(cls):
            return skewed.replace(tzinfo=None)

    monkeypatch.setattr(lease, "datetime", Skewed, raising=False)
    monkeypatch.setattr(lease, "utcnow", lambda: skewed, raising=False)


@pytest.mark.parametrize("hours", [1, 24 * 365])
def test_a_worker_whose_clock_runs_ahead_cannot_take_a_live_lease(app, monkeypatch, hours):
    assert lease.acquire("s", "a", 30)
    _skew(monkeypatch, timedelta(hours=hours))
    assert not lease.acquire("s", "b", 30)
    assert lease.holder_of("s") == "a"
    monkeypatch.undo()
    assert lease.acquire("s", "a", 30)  # the holder still renews
    assert not lease.acquire("s", "b", 30)


def test_a_lagging_holder_still_holds_the_lease_for_its_ttl(app, monkeypatch):
    _skew(monkeypatch, timedelta(hours=-1))
    assert lease.acquire("s", "a", 30)
    monkeypatch.undo()
    assert not lease.acquire("s", "b", 30)
    assert lease.holder_of("s") == "a"


def test_expiry_is_ttl_on_the_database_clock(app):
    from plugin.extensions import db
    from plugin.models import SchedulerLease

    before = datetime.now(UTC)
    assert lease.acquire("s", "a", 30)
    row = db.session.get(SchedulerLease, "s")
    assert before + timedelta(seconds=29) <= row.expires_at <= utcnow() + timedelta(seconds=31)
    assert before - timedelta(seconds=1) <= row.acquired_at <= utcnow() + timedelta(seconds=1)
    lease.release("s", "a")
    db.session.expire_all()
    assert db.session.get(SchedulerLease, "s").expires_at < utcnow()
    assert lease.holder_of("s") is None
    assert lease.acquire("s", "b", 30)
