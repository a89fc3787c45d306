"""Defects found reviewing the ingestion path (each test failed before its fix)."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Customer, WebhookDelivery
from plugin.models.types import utcnow
from plugin.webhooks import inbox
from tests.factories import post_webhook, product_body


class _Killed(BaseException):
    """The worker's process dies in the handler (no ``except Exception`` sees it)."""


def _dies(row):
    raise _Killed


def test_a_delivery_that_kills_its_worker_every_time_goes_dead_not_round_forever(
        app, client, shop, shop_secret):
    """Starting a row is an attempt; a row whose worker died with it at the last attempt
    is not claimed again (it would kill the next worker too)."""
    post_webhook(client, shop.id, shop_secret, "products/upsert", product_body())
    max_attempts = app.config["INBOX_MAX_ATTEMPTS"]
    timeout = timedelta(seconds=app.config["INBOX_CLAIM_TIMEOUT_SECONDS"] + 1)
    now = utcnow()
    for _ in range(max_attempts * 2):
        ids = inbox.claim_batch(now=now, worker="dies-with-it")
        with contextlib.suppress(_Killed):  # ...and the process dies
            inbox.process_claimed(ids, _dies, worker="dies-with-it")
        now += timeout
    inbox.claim_batch(now=now, worker="dies-with-it")
    db.session.expire_all()
    row = db.session.scalar(sa.select(WebhookDelivery))
    assert row.attempts <= max_attempts
    assert row.status == "dead" and row.last_error


def test_an_erased_customer_is_not_brought_back_by_a_later_update(client, shop, shop_secret):
    from plugin.privacy import erase_customer

    post_webhook(client, shop.id, shop_secret, "customers/upsert",
                 {"id": "c1", "email": "ada@example.com", "updated_at": "2026-01-01T00:00:00Z"})
    inbox.process_inbox()
    erase_customer(shop.id, "c1")
    db.session.commit()
    later = (utcnow() + timedelta(days=1)).isoformat()
    post_webhook(client, shop.id, shop_secret, "customers/upsert",
                 {"id": "c1", "email": "ada@example.com", "updated_at": later})
    assert inbox.process_inbox().done == 1
    db.session.expire_all()
    row = db.session.scalar(sa.select(Customer))
    assert row.deleted_at is not None and row.email_hash is None


def test_rows_another_worker_claimed_after_our_select_are_not_claimed_twice(
        client, shop, shop_secret, monkeypatch):
    """SQLite has no FOR UPDATE: two workers can select the same due rows. The claim
    itself must only take rows that are still due, and return only those."""
    for i in range(2):
        post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(f"p{i}"))
    real = db.session.scalars
    W = WebhookDelivery

    def select_then_lose_the_race(stmt, *args, **kwargs):
        ids = list(real(stmt, *args, **kwargs))
        monkeypatch.setattr(db.session, "scalars", real)
        # worker b selected the same rows and committed its claim first
        db.session.execute(sa.update(W).where(W.id.in_(ids)).values(
            status="processing", claimed_at=utcnow(), claimed_by="b", attempts=W.attempts + 1))
        db.session.commit()
        return iter(ids)

    monkeypatch.setattr(db.session, "scalars", select_then_lose_the_race)
    assert inbox.claim_batch(worker="a") == []
    db.session.expire_all()
    rows = db.session.scalars(sa.select(W)).all()
    assert [(r.claimed_by, r.attempts) for r in rows] == [("b", 1), ("b", 1)]


def _taken_over(app, client, shop, shop_secret, *, first: str) -> list[int]:
    """Two deliveries claimed by ``first``, then reclaimed by "other" once the claim
    timed out: the batch ``first`` still holds in hand."""
    for i in range(2):
        post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(f"p{i}"))
    now = utcnow()
    ids = inbox.claim_batch(now=now, worker=first)
    later = now + timedelta(seconds=app.config["INBOX_CLAIM_TIMEOUT_SECONDS"] + 1)
    assert inbox.claim_batch(now=later, worker="other") == ids
    return ids


def test_rows_another_worker_took_over_are_not_applied_twice(app, client, shop, shop_secret):
    """Rows still queued in a slow worker's batch were reclaimed by another after
    INBOX_CLAIM_TIMEOUT_SECONDS; the first worker then applied them as well."""
    ids = _taken_over(app, client, shop, shop_secret, first="slow")
    applied = []
    result = inbox.process_claimed(ids, lambda row: applied.append(row.id), worker="slow")
    assert applied == [] and result.total == 0
    db.session.expire_all()
    rows = db.session.scalars(sa.select(WebhookDelivery)).all()
    assert {(r.status, r.claimed_by) for r in rows} == {("processing", "other")}


def test_a_live_worker_keeps_the_claim_on_the_rest_of_its_batch(app, client, shop,
                                                                 shop_secret):
    """A batch that takes longer than the claim timeout, row after row, is not handed to
    another worker while its own worker is still making progress."""
    import time

    app.config["INBOX_CLAIM_TIMEOUT_SECONDS"] = 3  # 1.8 s of slack per row on a busy CI
    for i in range(3):
        post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(f"p{i}"))
    ids = inbox.claim_batch(worker="busy")
    stolen = []

    def slow_handler(row):
        time.sleep(1.2)
        if row.id == ids[-1]:  # 3.6 s after the claim: another worker polls
            stolen.extend(inbox.claim_batch(worker="other"))

    result = inbox.process_claimed(ids, slow_handler, worker="busy")
    assert stolen == []
    assert result.done == 3


def test_a_stopping_worker_releases_only_the_rows_it_still_holds(app, client, shop,
                                                                  shop_secret):
    """On SIGTERM the rest of a batch is handed back. Rows another worker took over
    meanwhile are that worker's: resetting them to pending (one attempt less, no owner)
    let a third worker claim them beside the one already applying them."""
    ids = _taken_over(app, client, shop, shop_secret, first="stopping")
    result = inbox.process_claimed(ids, lambda row: None, worker="stopping",
                                   should_stop=lambda: True)
    assert result.total == 0
    db.session.expire_all()
    rows = db.session.scalars(sa.select(WebhookDelivery)).all()
    assert {(r.status, r.claimed_by, r.attempts) for r in rows} == {("processing", "other", 0)}


def test_a_claimed_row_never_started_loses_no_attempt(app, client, shop, shop_secret):
    """A worker claims a batch and dies (or loses the database) before reaching a row on
    its last attempt: counted at the claim, that row went dead as "worker died" without
    ever having been tried."""
    post_webhook(client, shop.id, shop_secret, "products/upsert", product_body())
    last = app.config["INBOX_MAX_ATTEMPTS"] - 1
    db.session.execute(sa.update(WebhookDelivery).values(status="failed", attempts=last))
    db.session.commit()
    now = utcnow()
    ids = inbox.claim_batch(now=now, worker="gone")  # ...and it never starts the row
    later = now + timedelta(seconds=app.config["INBOX_CLAIM_TIMEOUT_SECONDS"] + 1)
    assert inbox.claim_batch(now=later, worker="next") == ids
    assert inbox.process_claimed(ids, lambda row: None, worker="next").done == 1
    db.session.expire_all()
    row = db.session.scalar(sa.select(WebhookDelivery))
    assert (row.status, row.attempts) == ("done", last + 1)


def test_a_batch_the_database_aborts_hands_its_unstarted_rows_back(
        app, client, shop, shop_secret, monkeypatch):
    """The database goes while the first row of a batch is being marked done: the rows
    not yet started are released at once (no attempt used), not left claimed."""
    for i in range(3):
        post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(f"p{i}"))
    ids = inbox.claim_batch(worker="w")
    real_commit = db.session.commit
    down = []

    def outage():  # the row's outcome and then its failure fail to commit
        down.append(1)
        if len(down) == 2:
            monkeypatch.setattr(db.session, "commit", real_commit)  # back for the release
        raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))

    def handler(row):
        monkeypatch.setattr(db.session, "commit", outage)

    with pytest.raises(sa.exc.OperationalError):
        inbox.process_claimed(ids, handler, worker="w")
    db.session.expire_all()
    rows = db.session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [(r.status, r.attempts, r.claimed_by) for r in rows] == [
        ("processing", 1, "w"), ("pending", 0, None), ("pending", 0, None)]


def test_a_slow_row_keeps_its_claim_while_it_is_handled(app, client, shop, shop_secret):
    """One delivery slower than the claim timeout (a platform fetch and its retries take
    minutes): renewed only between rows, its claim lapsed and a second worker took the
    row and applied it beside the first."""
    import time

    app.config["INBOX_CLAIM_TIMEOUT_SECONDS"] = 2
    post_webhook(client, shop.id, shop_secret, "products/upsert", product_body())
    ids = inbox.claim_batch(worker="slow")
    stolen = []

    def slow_handler(row):
        time.sleep(3)
        stolen.extend(inbox.claim_batch(worker="other"))

    assert inbox.process_claimed(ids, slow_handler, worker="slow").done == 1
    assert stolen == []


@pytest.mark.parametrize("outcome", ["done", "failed"])
def test_a_worker_that_lost_its_claim_leaves_the_new_owners_outcome(
        app, client, shop, shop_secret, outcome):
    """The claim lapsed while the row was in hand and another worker took it over and
    recorded its own outcome: the first worker's late done (or failed) overwrote it."""
    post_webhook(client, shop.id, shop_secret, "products/upsert", product_body())
    ids = inbox.claim_batch(worker="late")
    W = WebhookDelivery

    def taken_over_meanwhile(row):
        with db.engine.begin() as conn:  # the other worker, in its own transaction
            conn.execute(sa.update(W).values(claimed_by="other", attempts=W.attempts + 1,
                                             status="failed", last_error="theirs"))
        if outcome == "failed":
            raise RuntimeError("ours")

    result = inbox.process_claimed(ids, taken_over_meanwhile, worker="late")
    assert result.total == 0
    db.session.expire_all()
    row = db.session.scalar(sa.select(W))
    assert (row.status, row.claimed_by, row.attempts, row.last_error) == (
        "failed", "other", 2, "theirs")
