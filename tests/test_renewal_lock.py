"""Renewals from background threads on a row another transaction holds locked.

PostgreSQL set no ``lock_timeout``: a job run's heartbeat (an UPDATE of its ``job_runs``
row) waited for the row as long as the other transaction held it, the renewing thread left
stuck once its block ended. It now gives up after ``row_lock.LOCK_TIMEOUT_SECONDS`` and
skips the beat. The inbox's claim renewal needs no bound: it skips rows others hold
(``SKIP LOCKED``), which the last test keeps so. SQLite has no row locks: the same calls
run as before, unblocked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from datetime import timedelta

import pytest
import sqlalchemy as sa

from plugin import jobs, row_lock
from plugin.extensions import db
from plugin.models import JobRun, WebhookDelivery
from plugin.models.types import utcnow
from plugin.webhooks import inbox
from tests.factories import post_webhook, product_body, while_rows_held

#: Seconds past the lock timeout a call may take before the test takes it for blocked
#: (threads on a loaded 2-core machine)
SLACK = 3.0


@pytest.fixture(autouse=True)
def _short_lock_timeout(monkeypatch):
    """A 1 s bound, so each test waits little."""
    monkeypatch.setattr(row_lock, "LOCK_TIMEOUT_SECONDS", 1.0)


def _postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def _while_rows_held(app, rows: sa.Select, call: Callable[[], object]) -> tuple[object, float]:
    """``while_rows_held`` bounded by the renewal's timeout."""
    return while_rows_held(app, rows, call, bound=row_lock.LOCK_TIMEOUT_SECONDS + SLACK)


def _beat_of(app, monkeypatch, run_id: int) -> Callable[[], object]:
    """The renewal ``jobs._heartbeat`` hands its renewing thread, to call directly."""
    beats: list[Callable[[], object]] = []

    def capture(app, every, renew, **kwargs):
        beats.append(renew)
        return nullcontext()

    monkeypatch.setattr(jobs, "renewing", capture)
    with jobs._heartbeat(app, run_id):
        pass
    return beats[0]


def _heartbeat_at(run_id: int):
    db.session.expire_all()
    return db.session.get(JobRun, run_id).heartbeat_at


def test_a_heartbeat_on_a_locked_run_row_skips_the_beat_after_the_lock_timeout(
        app, monkeypatch, caplog):
    """The run's heartbeat waited for its row as long as another transaction held it; now
    the beat gives up, the heartbeat not renewed (logged, no error: the renewals go on),
    and the next beat on the free row renews it."""
    run = JobRun(job="probe", worker="w1", status="running",
                 heartbeat_at=utcnow() - timedelta(minutes=1))
    db.session.add(run)
    db.session.commit()
    run_id, before = run.id, _heartbeat_at(run.id)
    beat = _beat_of(app, monkeypatch, run_id)

    with caplog.at_level(logging.WARNING, logger="shopkeeper.jobs"):
        result, seconds = _while_rows_held(
            app, sa.select(JobRun.id).where(JobRun.id == run_id), beat)
    timeouts = [r.run_id for r in caplog.records if r.message == "jobs.heartbeat_lock_timeout"]
    assert result is None  # not False: the renewing thread goes on to the next beat
    if _postgres():
        assert seconds >= 0.9  # it waited for the lock, then gave up
        assert _heartbeat_at(run_id) == before
        assert timeouts == [run_id]
    else:  # no row lock: renewed at once, as before
        assert _heartbeat_at(run_id) > before
        assert timeouts == []

    with app.app_context():  # the next beat, the row free
        beat()
        db.session.remove()
    assert _heartbeat_at(run_id) > before


def test_a_claim_renewal_skips_a_locked_row_and_renews_the_others(
        app, client, shop, shop_secret):
    """The inbox's claim renewal does not wait on a row another transaction holds (the row
    in hand, a handler erasing its shop): it skips it (``SKIP LOCKED``), so it needs no
    lock timeout, and renews the batch's other claims."""
    for i in range(2):
        post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(f"p{i}"))
    ids = inbox.claim_batch(worker="w")
    W = WebhookDelivery
    old = utcnow() - timedelta(minutes=1)
    db.session.execute(sa.update(W).where(W.id.in_(ids)).values(claimed_at=old))
    db.session.commit()

    _, seconds = _while_rows_held(app, sa.select(W.id).where(W.id == ids[0]),
                                  lambda: inbox._renew_claims(ids, "w"))
    assert seconds < row_lock.LOCK_TIMEOUT_SECONDS
    db.session.expire_all()
    claimed = dict(db.session.execute(sa.select(W.id, W.claimed_at).where(W.id.in_(ids))).all())
    assert claimed[ids[1]] > old
    assert (claimed[ids[0]] == old) is _postgres()  # skipped while held (SQLite: no lock)
