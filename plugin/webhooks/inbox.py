"""The durable inbox: store each delivery once, claim work safely, retry with back-off.

A delivery's raw body and headers (emails, names, addresses; the signature) are kept only
while they may still be needed: an applied ("done") row keeps its delivery id, topic,
status and times but no payload, so a redelivery is still recognised as a duplicate
(until ``plugin.webhooks.purge`` deletes it, ``INBOX_DONE_RETENTION_DAYS`` later); failed
and dead rows keep theirs for the retries until the customer they concern is erased.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from connectors import records
from connectors.base import Connector
from connectors.errors import RateLimited
from plugin.extensions import db, insert_or_ignore
from plugin.heartbeat import renewing
from plugin.models import Shop, WebhookDelivery
from plugin.models.types import utcnow

log = logging.getLogger("shopkeeper.inbox")

#: why an erased customer's unapplied delivery is closed without being applied
ERASED_NOT_APPLIED = "not applied: the customer's data was erased"
EXPIRED_NOT_APPLIED = "not applied: dead past the shop's retention period"
#: longest a platform's Retry-After defers a failed row
MAX_RETRY_AFTER_SECONDS = 24 * 3600
#: why a row is dead without an exception recorded on its last attempt
WORKER_DIED = "its worker stopped while applying it, on its last attempt"


def store_delivery(
    *, shop_id: str, connector: str, topic: str, delivery_id: str,
    headers: dict[str, str], body: bytes,
) -> bool:
    """Insert unless ``(shop_id, delivery_id)`` exists; True when a new row was stored."""
    values = dict(shop_id=shop_id, connector=connector, topic=topic, delivery_id=delivery_id,
                  headers=headers, body=body, status="pending", attempts=0,
                  next_attempt_at=utcnow(), received_at=utcnow())
    stmt = insert_or_ignore(WebhookDelivery, ["shop_id", "delivery_id"], **values
                            ).returning(WebhookDelivery.id)
    return db.session.execute(stmt).scalar() is not None


def _no_payload() -> dict[str, object]:
    """What a row keeps of its payload once applied, or once its customer is erased."""
    return {"body": b"", "headers": {}}


def worker_name() -> str:
    """``<SHOPKEEPER_WORKER_NAME or host>:<pid>``: unique per process, readable in admin."""
    return f"{os.environ.get('SHOPKEEPER_WORKER_NAME') or socket.gethostname()}:{os.getpid()}"


def claim_batch(
    limit: int | None = None, *, now: datetime | None = None, worker: str | None = None
) -> list[int]:
    """Claim due rows for this worker and commit the claim.

    Due rows are pending, failed and past their back-off, or processing but claimed longer
    ago than ``INBOX_CLAIM_TIMEOUT_SECONDS`` (their worker died) and with attempts left
    (without, they go dead). On PostgreSQL
    ``FOR UPDATE SKIP LOCKED`` lets several workers claim disjoint batches.
    """
    now = now or utcnow()
    cfg = current_app.config
    limit = limit or cfg["INBOX_BATCH_SIZE"]
    stale = now - timedelta(seconds=cfg["INBOX_CLAIM_TIMEOUT_SECONDS"])
    W = WebhookDelivery
    abandoned = sa.and_(W.status == "processing", W.claimed_at < stale)
    # A claim is no attempt: starting the row is (``_start``), so rows a worker claimed
    # but never reached (it died, the database went mid-batch) lose none. A row whose
    # worker died with it on its last attempt is not claimed again: one that kills every
    # worker (memory, a hang) would go round forever.
    db.session.execute(
        sa.update(W).where(abandoned, W.attempts >= cfg["INBOX_MAX_ATTEMPTS"])
        .values(status="dead", last_error=WORKER_DIED)
    )
    due = sa.or_(
        sa.and_(W.status.in_(("pending", "failed")), W.next_attempt_at <= now),
        abandoned,
    )
    ids = list(db.session.scalars(
        sa.select(W.id).where(due).order_by(W.id).limit(limit)
        .with_for_update(skip_locked=True)
    ))
    if ids:
        # Still due: SQLite ignores FOR UPDATE, so another worker may have claimed some of
        # these since the select; only the rows this statement took are ours.
        ids = sorted(db.session.scalars(
            sa.update(W).where(W.id.in_(ids), due)
            .values(status="processing", claimed_at=now, claimed_by=worker or worker_name())
            .returning(W.id)
        ))
    db.session.commit()
    return ids


@dataclass
class BatchResult:
    done: int = 0
    failed: int = 0
    dead: int = 0

    @property
    def total(self) -> int:
        return self.done + self.failed + self.dead


def release_claims(ids: list[int], worker: str | None = None) -> None:
    """Hand claimed-but-unstarted rows back (graceful shutdown, an aborted batch); a claim
    counts no attempt, so there is none to give back. With ``worker``, only rows that
    worker still holds (not those another one took over)."""
    if not ids:
        return
    W = WebhookDelivery
    mine = [W.claimed_by == worker] if worker is not None else []
    db.session.execute(sa.update(W).where(W.id.in_(ids), W.status == "processing", *mine)
                       .values(status="pending", claimed_at=None, claimed_by=None))
    db.session.commit()


def _start(delivery_id: int, worker: str) -> int | None:
    """Count the attempt on a row this worker still holds, committed before its handler
    runs (a worker dying in it has used the attempt); its attempt number, or None when
    the row is gone or another worker took it over."""
    W = WebhookDelivery
    attempt = db.session.scalar(
        sa.update(W).where(W.id == delivery_id, W.status == "processing", W.claimed_by == worker)
        .values(attempts=W.attempts + 1).returning(W.attempts))
    db.session.commit()
    return attempt


def _release_rest(ids: list[int], worker: str) -> None:
    """Best effort, as a batch aborts (the database went): hand its unstarted rows back at
    once instead of after the claim timeout; when that fails too, the timeout does it."""
    try:
        db.session.rollback()
        release_claims(ids, worker)
    except Exception:
        db.session.rollback()
        log.warning("inbox.release_failed", extra={"rows": len(ids)})


def _renew_claims(ids: list[int], worker: str) -> None:
    """Keep this worker's claim on the rows of its batch not yet finished fresh, so another
    worker does not take them for abandoned while this one is still at them. Rows a
    transaction holds (the row in hand, its handler erasing a customer or shop) are
    skipped: waiting for them could deadlock with that transaction."""
    W = WebhookDelivery
    held = (sa.select(W.id).where(W.id.in_(ids), W.status == "processing",
                                  W.claimed_by == worker)
            .with_for_update(skip_locked=True))
    db.session.execute(sa.update(W).where(W.id.in_(held)).values(claimed_at=utcnow()))
    db.session.commit()


def _keeping_claims(ids: list[int], worker: str) -> AbstractContextManager[None]:
    """Renew the batch's claims every quarter of the claim timeout while its rows are
    handled: renewed only between rows, one slow row (a platform fetch with its retries
    takes minutes) outlasted the claim, and a second worker applied it beside the first."""
    app = current_app._get_current_object()
    return renewing(app, app.config["INBOX_CLAIM_TIMEOUT_SECONDS"] / 4,
                    lambda: _renew_claims(ids, worker), name="inbox-claims", log=log,
                    event="inbox.claim_renewal_failed", extra={"worker": worker})


def _held_by(worker: str, attempt: int) -> sa.ColumnElement[bool]:
    """The row is still this worker's, at the attempt it started: another worker that took
    it over (the claim lapsed) owns it, and a start of its own counts another attempt."""
    W = WebhookDelivery
    return sa.and_(W.claimed_by == worker, W.attempts == attempt)


def process_claimed(
    ids: list[int], handler: Callable[[WebhookDelivery], None], *, now: datetime | None = None,
    should_stop: Callable[[], bool] | None = None, worker: str | None = None,
) -> BatchResult:
    """Run ``handler`` on each claimed row in its own transaction and record the outcome.

    When ``should_stop`` turns true the row in hand is finished and the rest released.
    ``worker`` (default: this process, as in ``claim_batch``) holds the claims: they are
    renewed from a thread while the batch is handled, a row another worker has taken
    over meanwhile is left to it, not applied twice, and a row taken over while in hand
    keeps the new owner's outcome (this worker's is rolled back).
    """
    result = BatchResult()
    me = worker or worker_name()
    with _keeping_claims(ids, me):
        for position, delivery_id in enumerate(ids):
            if should_stop is not None and should_stop():
                release_claims(ids[position:], me)
                break
            try:
                _handle(delivery_id, handler, me, result, now)
            except BaseException:  # the database went (or the process is told to stop)
                _release_rest(ids[position + 1:], me)
                raise
    return result


def _handle(delivery_id: int, handler: Callable[[WebhookDelivery], None], me: str,
            result: BatchResult, now: datetime | None) -> None:
    """Start one claimed row, run ``handler`` on it in its own transaction and record the
    outcome in the row and ``result``."""
    attempt = _start(delivery_id, me)
    if attempt is None:
        return
    row = db.session.get(WebhookDelivery, delivery_id)
    if row is None:
        return
    W = WebhookDelivery
    try:
        handler(row)
        # A statement, not the ORM row: the handler may have deleted the row with its
        # shop (shop/redact runs erase_shop), and then there is nothing left to mark;
        # the erasure is the outcome and commits (updating the ORM row raised
        # StaleDataError, rolling the erasure back on every attempt). A row the handler
        # closed itself (its customer's erasure) has no owner left.
        marked = db.session.execute(
            sa.update(W).where(W.id == delivery_id,
                               sa.or_(W.claimed_by.is_(None), _held_by(me, attempt)))
            .values(status="done", processed_at=now or utcnow(), last_error=None,
                    **_no_payload())
        ).rowcount
        if not marked and db.session.scalar(sa.select(W.id).where(W.id == delivery_id)):
            db.session.rollback()  # taken over: the new owner's outcome stands
            log.warning("inbox.claim_lost", extra={"delivery_row": delivery_id,
                                                   "worker": me})
            return
        db.session.commit()
        if not marked:
            log.info("inbox.delivery_gone_with_its_shop",
                     extra={"delivery_row": delivery_id})
        result.done += 1
    except Exception as err:  # any failure is retried, never lost
        db.session.rollback()
        _record_failure(delivery_id, attempt, me, err, result, now)


def _record_failure(delivery_id: int, attempt: int, me: str, err: Exception,
                    result: BatchResult, now: datetime | None) -> None:
    """Mark the row failed (due again after its back-off) or, on its last attempt, dead;
    unless it is gone (its shop erased) or another worker owns it now."""
    cfg = current_app.config
    W = WebhookDelivery
    values: dict[str, object] = {"last_error": f"{type(err).__name__}: {err}"[:1000]}
    if attempt >= cfg["INBOX_MAX_ATTEMPTS"]:
        values["status"] = "dead"
    else:
        delay = _retry_delay(err, attempt, cfg["INBOX_RETRY_BASE_SECONDS"])
        values.update(status="failed",
                      next_attempt_at=(now or utcnow()) + timedelta(seconds=delay))
    shop_id = db.session.scalar(sa.update(W).where(W.id == delivery_id, _held_by(me, attempt))
                                .values(**values).returning(W.shop_id))
    db.session.commit()
    if shop_id is None:
        return
    if values["status"] == "dead":
        result.dead += 1
    else:
        result.failed += 1
    log.warning("inbox.delivery_failed",
                extra={"delivery_row": delivery_id, "shop_id": shop_id,
                       "attempts": attempt, "status": values["status"]})


def _retry_delay(err: Exception, attempts: int, base: float) -> float:
    """Seconds until a failed row is due: its back-off, or the platform's Retry-After when
    that is longer (asked again while throttled, a backlog burnt its attempts in minutes)."""
    delay = base * 2 ** max(attempts - 1, 0)
    if isinstance(err, RateLimited):  # a day at most: "inf" or 1e300 overflow a timedelta
        delay = max(delay, min(err.retry_after, MAX_RETRY_AFTER_SECONDS))
    return delay


def process_inbox(
    *, now: datetime | None = None, max_batches: int = 50,
    should_stop: Callable[[], bool] | None = None, worker: str | None = None,
) -> BatchResult:
    """Drain due deliveries (used by the worker, the demo thread and tests), claiming them
    as ``worker`` (default: this process): two workers of one process (the demo's thread
    and a CLI worker, tests) need names of their own, or each takes the other's claims
    for its own."""
    from plugin.ingestion.apply import apply_delivery

    total = BatchResult()
    for _ in range(max_batches):
        if should_stop is not None and should_stop():
            break
        ids = claim_batch(now=now, worker=worker)
        if not ids:
            break
        r = process_claimed(ids, apply_delivery, now=now, should_stop=should_stop,
                            worker=worker)
        total.done += r.done
        total.failed += r.failed
        total.dead += r.dead
    return total


def retry_dead(shop_id: str) -> int:
    """Put a shop's dead deliveries back in the queue (admin "retry" button)."""
    W = WebhookDelivery
    res = db.session.execute(
        sa.update(W).where(W.shop_id == shop_id, W.status == "dead")
        .values(status="pending", attempts=0, next_attempt_at=utcnow())
    )
    db.session.commit()
    return res.rowcount


def blank_done(shop_id: str) -> int:
    """Drop the payload of the shop's applied rows that still hold one (rows applied before
    payloads were dropped on success); the rows stay, so redeliveries stay duplicates."""
    W = WebhookDelivery
    return db.session.execute(
        sa.update(W).where(W.shop_id == shop_id, W.status == "done", sa.func.length(W.body) > 0)
        .values(**_no_payload())
    ).rowcount


def expire_dead(shop_id: str, before: datetime, *, now: datetime | None = None) -> int:
    """Close dead rows received before ``before`` (the shop's retention cutoff) without their
    payload: nobody retried them in time, and personal data must not outlive the period."""
    W = WebhookDelivery
    return db.session.execute(
        sa.update(W).where(W.shop_id == shop_id, W.status == "dead", W.received_at < before)
        .values(status="done", processed_at=now or utcnow(), last_error=EXPIRED_NOT_APPLIED,
                claimed_at=None, claimed_by=None, **_no_payload())
    ).rowcount


def forget_customer(shop_id: str, customer_id: str | None, *, order_ids: Iterable[str] = (),
                    now: datetime | None = None) -> int:
    """Drop every kept payload that concerns one customer (their erasure), or with
    ``customer_id`` None only ``order_ids`` (a guest's redaction); return how many.

    Applied rows keep no payload (those from before are blanked here too). A pending,
    processing, failed or dead row is parsed again as the worker would (no fetch) and, when
    its record names the customer (the customer, their order or cart, a deletion or
    redaction) or one of ``order_ids`` (a redaction's orders), its payload is dropped and it
    is closed as done without being applied: the row stays so a redelivery is a duplicate.
    A body that no longer parses (it could never be applied) goes when it names the id
    anywhere.
    """
    if db.session.get(Shop, shop_id) is None:
        return 0
    n = blank_done(shop_id)
    W = WebhookDelivery
    ids = kept_about(shop_id, customer_id, order_ids=order_ids)
    for start in range(0, len(ids), 500):
        n += db.session.execute(
            sa.update(W).where(W.id.in_(ids[start:start + 500]))
            .values(status="done", processed_at=now or utcnow(), last_error=ERASED_NOT_APPLIED,
                    claimed_at=None, claimed_by=None, **_no_payload())
        ).rowcount
    return n


def kept_about(shop_id: str, customer_id: str | None, *,
               order_ids: Iterable[str] = ()) -> list[int]:
    """Ids of the shop's rows still holding a payload (not applied, failed, dead) that
    concerns the customer or one of ``order_ids`` (``forget_customer`` says how), oldest
    first: what their export shows and their erasure drops."""
    from plugin.ingestion.apply import delivery_connector

    shop = db.session.get(Shop, shop_id)
    if shop is None:
        return []
    connector = delivery_connector(shop)
    orders = {str(o) for o in order_ids}
    W = WebhookDelivery
    kept = sa.select(W.id, W.headers, W.body).where(
        W.shop_id == shop_id, W.status != "done", sa.func.length(W.body) > 0).order_by(W.id)
    return [row_id for row_id, headers, body
            in db.session.execute(kept.execution_options(yield_per=500))
            if _concerns(connector, headers, bytes(body), customer_id, orders)]


def _concerns(connector: Connector, headers: dict[str, str], body: bytes,
              customer_id: str | None, order_ids: set[str]) -> bool:
    try:
        record = connector.parse_webhook(headers, body).record
    except Exception:  # unparseable now, so never applied: any mention of the id decides
        return _mentions(body, {i for i in (customer_id, *order_ids) if i})

    def theirs(value: str | None) -> bool:  # without a customer id, no guest's None matches
        return customer_id is not None and value == customer_id

    if isinstance(record, records.Customer):
        return theirs(record.external_id)
    if isinstance(record, records.Deletion):
        return ((record.kind == "customer" and theirs(record.external_id))
                or (record.kind == "order" and record.external_id in order_ids))
    if isinstance(record, records.Order):
        return theirs(record.customer_id) or record.external_id in order_ids
    if isinstance(record, records.Cart):
        return theirs(record.customer_id) or theirs(record.shopper_id)
    if isinstance(record, records.Redaction):
        return theirs(record.customer_id)
    return False


def _mentions(body: bytes, ids: set[str]) -> bool:
    """Whether any JSON value in ``body`` (or, if it is not JSON, its bytes) is one of ids."""
    try:
        stack = [json.loads(body)]
    except (ValueError, RecursionError):
        return any(i.encode() in body for i in ids)
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif not isinstance(value, bool) and isinstance(value, str | int) and str(value) in ids:
            return True
    return False


def inbox_counts(shop_id: str | None = None) -> dict[str, int]:
    """Rows per status (for the admin page and metrics)."""
    W = WebhookDelivery
    q = sa.select(W.status, sa.func.count()).group_by(W.status)
    if shop_id:
        q = q.where(W.shop_id == shop_id)
    return {status: n for status, n in db.session.execute(q)}
