"""Resumable backfill: page through a platform's API, committing the cursor with each page.

A page's rows and the cursor after it are committed together, so a process killed
mid-backfill resumes after the last committed page on the next run: nothing is skipped
and, because upserts are monotonic, nothing is applied twice.

A products pass read from its start to its end, in one run or resumed over several, is
the platform's whole catalogue: a product we hold that it did not list, and that was not
written since the pass began, was deleted while no webhook reached us (an outage, a missed
delivery, Vendure's soft delete) and is tombstoned, so it stops being recommended. The
pass's start (``SyncState.pass_started_at``) and each listed product's ``listed_at`` are
stored, on the database's clock, so a pass always cut off by its time or page budget
still sweeps when it completes.

A sync made to start over while a run is under way (``restart_sync``: a new Saleor
channel) bumps the state's ``epoch``; a run checks it, locking the state, before writing
each page, and stops there: its cursor and watermark would carry on from the old source.

A record the connector cannot read (``Page.rejected``) is counted and named on the sync
state, and the backfill goes on: one malformed product must not hold back the other
9,999. A page on which nothing could be read still fails the sync (see
``connectors.pages``), since that means the platform changed, not one bad record.

A resource the credentials may not read (``PermissionDenied``, confirmed by the platform's
listing of their permissions: Saleor and Vendure refuse a dead token the same way) stops
that resource only: its state says ``refused`` and what to grant, until a page is read
again; the credentials are not marked failed, unless authorising again is what grants the
permission (Shopify's scopes: the merchant's next launch goes through OAuth).

A shop the platform holds back (``ShopUnavailable``: a frozen or locked Shopify store) is no
failure of the credentials either: the sync stops "paused" with its cursor as it was, the
shop is marked held back (``plugin.shop_unavailable``) and the scheduled syncs leave it for
an hour; the next page read clears the mark. Releases before that one called the store's
402 ``AuthFailed`` and marked the installation ``auth_failed``, which only a new OAuth
cleared; such a flag, told apart by the error its sync states kept, is lifted by the next
page read too (``_flagged_by_a_freeze``).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import requests
import sqlalchemy as sa
from tqdm import tqdm

from connectors.base import Connector
from connectors.errors import (
    AuthFailed,
    ConnectorError,
    NotSupported,
    PermissionDenied,
    RateLimited,
    ShopUnavailable,
)
from connectors.http import RetrySession
from connectors.records import Rejected
from plugin import lease, shop_unavailable, shops
from plugin.db_clock import db_utcnow
from plugin.extensions import db
from plugin.ingestion import mapping
from plugin.leadership import unfenced
from plugin.localtime import adopt_platform_zone
from plugin.models import Shop, SyncState
from plugin.models.types import utcnow
from plugin.offers import platform as offer_platform
from plugin.offers.availability import withdraw_off_sale
from plugin.offers.permissions import where_to_grant
from plugin.webhooks.inbox import worker_name

log = logging.getLogger("shopkeeper.sync")

#: resource -> (connector method, upsert function)
RESOURCES: dict[str, tuple[str, Callable]] = {
    "products": ("iter_products", mapping.upsert_product),
    "customers": ("iter_customers", mapping.upsert_customer),
    "orders": ("iter_orders", mapping.upsert_order),
}


#: ``Shop.settings`` key set when the shop's order history was replaced (a new Saleor
#: channel, ``plugin.admin.channel``) and its orders backfill started over: the first fit
#: after that backfill has finished clears it (``plugin.training.retrain_due``).
HISTORY_RESET = "orders_history_reset_at"


def orders_backfilled(shop_id: str) -> bool:
    """Whether the shop's orders sync has finished a full pass and is between passes."""
    state = db.session.scalar(sa.select(SyncState).filter_by(shop_id=shop_id,
                                                             resource="orders"))
    return state is not None and state.cursor is None and state.watermark is not None


#: How many rejected records a sync state names (the count covers them all).
KEEP_REJECTED = 20
#: How long a sync's lease outlives its last renewal: a second run of the same shop and
#: resource (the CLI beside the scheduled job) waits meanwhile, instead of reading the
#: same pages, doubling the progress counts and colliding on the same new rows. A run
#: renews it before writing each page and at each poll of a Shopify bulk export (an hour
#: of polls before its first page), so a crashed run frees its shop within minutes.
LEASE_SECONDS = 5 * 60
#: A sync state's status while the platform refuses the credentials reading the resource.
REFUSED = "refused"
#: A sync state's error after a frozen (402) or locked (423) Shopify store's answer, as
#: releases before ``ShopUnavailable`` wrote it (the Admin API's 402, the token endpoint's
#: 402 and 423, all ``AuthFailed``) when they marked the installation ``auth_failed``. No
#: release writes it now: those statuses are ``ShopUnavailable``.
LEGACY_FREEZE_ERROR = re.compile(r"AuthFailed: (shop is not accessible|token (exchange|refresh"
                                 r"|migration) refused) \(HTTP (402|423)\)")


class _LeaseLost(Exception):
    """Another run took the lease while this one stalled past it: stop, write nothing."""


@dataclass
class SyncResult:
    resource: str
    records: int = 0
    pages: int = 0
    finished: bool = False
    error: str | None = None
    retry_after: float | None = None
    skipped: int = 0
    ignored: int = 0  # read and left out: none of the shop's business (``Page.ignored``)
    tombstoned: int = 0  # products the platform no longer lists (deleted while unheard)


def sync_state(shop_id: str, resource: str) -> SyncState:
    state = db.session.scalar(sa.select(SyncState).filter_by(shop_id=shop_id, resource=resource))
    if state is None:
        state = SyncState(shop_id=shop_id, resource=resource, status="idle", done=0)
        db.session.add(state)
        db.session.flush()
    return state


def restart_sync(shop_id: str, resource: str) -> SyncState:
    """Make the resource's next sync start from its first page; a run under way stops at
    its next page without saving it (the caller commits). Call it before changing the
    rows that run writes: its row lock makes a run's page land wholly before or after."""
    state = db.session.scalar(sa.select(SyncState).filter_by(
        shop_id=shop_id, resource=resource).with_for_update()) or sync_state(shop_id, resource)
    state.cursor, state.status, state.epoch = None, "idle", state.epoch + 1
    return state


def run_sync(
    shop_id: str, resource: str, *, progress: bool = False, max_pages: int | None = None,
    session: requests.Session | None = None,
) -> SyncResult:
    """Backfill one resource from its stored cursor; incremental by watermark once complete.

    ``max_pages`` stops early (as a kill would) — used by tests and time-boxed jobs.
    """
    if resource not in RESOURCES:
        raise ValueError(f"unknown resource {resource!r}; one of {sorted(RESOURCES)}")
    shop = shops.get_shop(shop_id, active_only=True)
    connector = shops.connector_for(shop, session=session)
    if "backfill" not in connector.meta.capabilities:
        raise NotSupported(f"{shop.platform} has no backfill API")
    name, holder = lease_name(shop_id, resource), f"{worker_name()}:{uuid.uuid4().hex[:8]}"
    if not lease.acquire(name, holder, LEASE_SECONDS):
        log.info("sync.already_running", extra={"shop_id": shop_id, "resource": resource})
        return SyncResult(resource, error=f"another sync of {resource} is running "
                                          f"({lease.holder_of(name)})")

    def renew() -> None:
        if not lease.acquire(name, holder, LEASE_SECONDS):
            raise _LeaseLost(name)

    connector.keep_alive = renew
    http = connector.session
    retrying = isinstance(http, RetrySession)
    waited = http.on_wait if retrying else None
    if retrying:  # a page retried for minutes (429s, 5xx) renews the lease as it waits
        http.on_wait = renew
    try:
        _read_shop_zone(shop, connector)
        offer_platform.refresh(shop, connector)
        db.session.commit()  # a new reading, or a failed attempt to wait after
        return _run_pass(shop, connector, resource, progress=progress, max_pages=max_pages,
                         renew=renew)
    finally:
        if retrying:
            http.on_wait = waited
        try:  # every outcome is committed by now; a lost scheduler lease's is rolled back
            with unfenced():  # ours to give up, with or without the scheduler lease
                lease.release(name, holder)
        except Exception:  # the database is down: the lease expires on its own
            db.session.rollback()
            log.exception("sync.lease_release_failed", extra={"shop_id": shop_id})


def _read_shop_zone(shop: Shop, connector: Connector) -> None:
    """Read the platform's time zone for a shop that has none: a Shopify shop installed
    before install read it would otherwise get it only from a reinstall. Kept with the
    credentials, as install keeps it, so it is read once; the merchant's choice stays."""
    if (shop.settings or {}).get("timezone") or "timezone" in connector.credentials.extra:
        return
    try:
        zone = connector.shop_timezone()
    except ConnectorError:  # the pages will say what is wrong; the zone waits a run
        db.session.rollback()
        return
    if zone:
        stored = shops.credentials_for(shop)
        shops.save_credentials(shop, replace(stored, extra={**stored.extra, "timezone": zone}))
        adopt_platform_zone(shop, zone)
        db.session.commit()
        log.info("sync.shop_zone_read", extra={"shop_id": shop.id})


def lease_name(shop_id: str, resource: str) -> str:
    """The lease one shop's sync of one resource holds while it runs."""
    return f"sync:{shop_id}:{resource}"


def _run_pass(shop: Shop, connector: Connector, resource: str, *, progress: bool,
              max_pages: int | None, renew: Callable[[], None]) -> SyncResult:
    """Page from the stored cursor, committing rows and cursor together (lease held:
    ``renew`` raises ``_LeaseLost`` once another run has it)."""
    shop_id = shop.id
    method, upsert = RESOURCES[resource]
    state = sync_state(shop_id, resource)
    epoch = state.epoch
    sweeps = resource == "products"
    if state.cursor is None:  # a fresh pass (first backfill or an incremental run)
        state.done, state.skipped, state.rejected, state.total = 0, 0, [], None
        state.pass_started_at = db_utcnow() if sweeps else None
    freeze_flag = _flagged_by_a_freeze(shop)  # asked before this state's error is cleared
    if state.status != REFUSED:  # a refusal stays shown until a page is read again
        state.status, state.last_error = "running", None
    db.session.commit()
    result = SyncResult(resource)
    started = utcnow()
    newest: datetime | None = state.watermark
    kwargs = {"since": state.watermark} if resource == "orders" else {}
    bar = tqdm(desc=f"sync {resource}", unit="rec", disable=not progress, initial=state.done)
    try:
        for page in getattr(connector, method)(cursor=state.cursor, **kwargs):
            renew()  # before writing: a run that stalled past its lease writes nothing
            # then the epoch, which locks the state row until the page commits (renewing
            # after it could commit and let a channel switch in between)
            if not _still_current(state, epoch):  # restarted: the page is the old source's
                return _restarted(result, shop_id, resource)
            for record in page.items:
                upsert(shop_id, record)
                updated = getattr(record, "updated_at", None)
                if updated is not None and (newest is None or updated > newest):
                    newest = updated
            if sweeps:
                mapping.mark_listed(shop_id, [record.external_id for record in page.items])
                # offers standing for a product this page takes off sale stop standing
                withdraw_off_sale(shop_id, [record.external_id for record in page.items
                                            if not mapping.sells(record)])
                if page.rejected or page.ignored:  # present but unread: cannot tell gone
                    state.pass_started_at = None
            if page.rejected:
                _note_rejected(state, page.rejected)
                result.skipped += len(page.rejected)
                log.warning("sync.rejected", extra={
                    "shop_id": shop_id, "resource": resource,
                    "record_ids": [r.record_id for r in page.rejected][:KEEP_REJECTED]})
            result.ignored += page.ignored
            _store_learned(shop, connector)
            state.cursor = page.next_cursor
            state.done += len(page.items)
            if state.status == REFUSED:  # read again: the permission was granted
                state.status, state.last_error = "running", None
            shop_unavailable.clear(shop)  # the platform answers again
            if freeze_flag:
                _lift_freeze_flag(shop)
                freeze_flag = False
            db.session.commit()  # rows + cursor together
            result.records += len(page.items)
            result.pages += 1
            bar.update(len(page.items))
            if page.next_cursor is None:
                result.finished = True
                break
            if max_pages is not None and result.pages >= max_pages:
                break
        else:
            result.finished = True
    except _LeaseLost:  # the run that took over owns the state now: leave it be
        db.session.rollback()
        result.error = "lost the sync lease to another run"
        log.warning("sync.lease_lost", extra={"shop_id": shop_id, "resource": resource})
        return result
    except ConnectorError as err:
        db.session.rollback()
        try:
            # asked before renewing: a retried question waits, renewing, and may lose it
            missing = _refused_permissions(connector, resource, err)
            renew()  # the state is the run's that holds the lease now, if another does
        except _LeaseLost:
            result.error = "lost the sync lease to another run"
            log.warning("sync.lease_lost", extra={"shop_id": shop_id, "resource": resource})
            return result
        if isinstance(err, ShopUnavailable):
            result.error = _held_back(shop, resource, err).last_error
            result.retry_after = shop_unavailable.RETRY_AFTER.total_seconds()
        elif missing is not None:
            result.error = _refused(shop, connector, resource, missing).last_error
        else:
            result.error = _failed(shop_id, resource, err).last_error
        if isinstance(err, RateLimited):
            result.retry_after = err.retry_after
        if isinstance(err, AuthFailed) and shop.installation is not None and (
                missing is None or connector.reauthorising_grants_permissions):
            shop.installation.auth_failed = True
        db.session.commit()
        log.warning("sync.failed", extra={"shop_id": shop_id, "resource": resource,
                                          "error_type": type(err).__name__,
                                          "missing": list(missing or ())})
        return result
    except Exception as err:  # a bug or the database: say so on the state, then raise
        _failed(shop_id, resource, err)
        db.session.commit()
        raise
    finally:
        bar.close()
    if not _still_current(state, epoch):
        return _restarted(result, shop_id, resource)
    if result.finished:
        # an empty listing is more likely a fault than an emptied shop
        if state.pass_started_at is not None and state.done:
            result.tombstoned = mapping.tombstone_unlisted_products(
                shop_id, state.pass_started_at)
            if result.tombstoned:
                withdraw_off_sale(shop_id, None)
        state.cursor = None
        # platforms give no count up front, so the bar is indeterminate while a pass runs;
        # finished, its count is the whole and the bar is full (it never was, before)
        state.total = state.done
        state.watermark = newest or started
        state.status, state.last_error = "idle", None
    else:
        state.status, state.last_error = "paused", None
    db.session.commit()
    log.info("sync.page_run", extra={"shop_id": shop_id, "resource": resource,
                                     "records": result.records, "ignored": result.ignored,
                                     "tombstoned": result.tombstoned,
                                     "finished": result.finished})
    return result


def _still_current(state: SyncState, epoch: int) -> bool:
    """Lock the sync's state for the writes about to be made and check that it was not
    restarted since this run read ``epoch``. The lock (the row's on PostgreSQL, the
    database's write lock on SQLite) holds until they commit, so a restart lands wholly
    before them (they are not made) or after them (it undoes them)."""
    return db.session.execute(sa.update(SyncState).where(
        SyncState.id == state.id, SyncState.epoch == epoch).values(epoch=epoch),
        execution_options={"synchronize_session": False}).rowcount == 1


def _restarted(result: SyncResult, shop_id: str, resource: str) -> SyncResult:
    """End a run whose sync was restarted under it, saving nothing more."""
    db.session.rollback()
    log.info("sync.restarted_while_running", extra={"shop_id": shop_id, "resource": resource})
    result.finished = False
    result.error = f"the {resource} sync was reset while it ran; the next run starts over"
    return result


def _store_learned(shop: Shop, connector: Connector) -> None:
    """Keep what the connector looked up for itself (``Connector.learned``, e.g. a Saleor
    channel id) with the shop's credentials, committed with the page."""
    if not connector.learned:
        return
    stored = shops.credentials_for(shop)
    shops.save_credentials(shop, replace(stored, extra={**stored.extra, **connector.learned}))
    log.info("sync.credentials_learned", extra={"shop_id": shop.id,
                                                "keys": sorted(connector.learned)})
    connector.learned.clear()


def _shown_status(state: SyncState) -> str:
    """``interrupted`` for a "running" state whose run no longer holds the sync's lease: its
    process died (killed, or the database went away before the failure could be written)
    and the state said "running" until the next run, half an hour or more later. The next
    run resumes from the cursor."""
    if state.status == "running" and lease.holder_of(
            lease_name(state.shop_id, state.resource)) is None:
        return "interrupted"
    return state.status


def _failed(shop_id: str, resource: str, err: Exception) -> SyncState:
    """Roll the page back and mark the state failed with the error (caller commits)."""
    db.session.rollback()
    state = sync_state(shop_id, resource)
    state.status, state.last_error = "failed", f"{type(err).__name__}: {err}"[:1000]
    return state


def _refused_permissions(connector: Connector, resource: str,
                         err: ConnectorError) -> tuple[str, ...] | None:
    """The permissions reading ``resource`` needs that the platform confirms the credentials
    lack, when ``err`` is a ``PermissionDenied``; None when it is not, or is not confirmed
    (the credentials refused, or the question failed): the error is then handled as any."""
    if not isinstance(err, PermissionDenied):
        return None
    try:
        missing = connector.missing_read_permissions(resource)
    except ConnectorError as probe_err:
        log.warning("sync.permission_unconfirmed", extra={
            "resource": resource, "error_type": type(probe_err).__name__})
        return None
    if missing is None:  # the platform cannot list them: what its refusal named
        missing = (err.permission,) if err.permission else ()
    return tuple(missing) or None


def _refused(shop: Shop, connector: Connector, resource: str,
             missing: tuple[str, ...]) -> SyncState:
    """Roll the page back and mark the state refused, naming what to grant (caller commits)."""
    db.session.rollback()
    state = sync_state(shop.id, resource)
    them = ", ".join(missing)
    state.status = REFUSED
    state.last_error = (f"{connector.meta.name} refused reading {resource}: missing "
                        f"{'permission' if len(missing) == 1 else 'permissions'} {them}. "
                        f"To sync {resource}, {where_to_grant(shop.platform, them)}; the "
                        "next sync resumes by itself.")[:1000]
    return state


def _held_back(shop: Shop, resource: str, err: ShopUnavailable) -> SyncState:
    """Roll the page back, keep the cursor and mark the state paused while the platform
    holds the shop back, and the shop as held back (caller commits)."""
    db.session.rollback()
    shop_unavailable.record(shop, err)
    state = sync_state(shop.id, resource)
    state.status, state.last_error = "paused", shop_unavailable.note(shop)
    return state


def _flagged_by_a_freeze(shop: Shop) -> bool:
    """Whether the installation's ``auth_failed`` flag came from a frozen or locked store,
    as an earlier release flagged it: a sync state of the shop still says so, and none is
    refused a permission (on Shopify a missing scope flags the installation too, and only
    authorising again grants it). A page read then proves the credentials good."""
    installation = shop.installation
    if installation is None or not installation.auth_failed:
        return False
    states = db.session.execute(sa.select(SyncState.status, SyncState.last_error)
                                .where(SyncState.shop_id == shop.id)).all()
    return not any(status == REFUSED for status, _ in states) and any(
        LEGACY_FREEZE_ERROR.fullmatch(error or "") for _, error in states)


def _lift_freeze_flag(shop: Shop) -> None:
    """The platform answered the credentials a frozen store's 402 had flagged: the shop
    works again without the merchant's OAuth (the caller commits)."""
    assert shop.installation is not None
    shop.installation.auth_failed = False
    shops.audit(shop.id, "credentials.freeze_flag_lifted")
    log.info("sync.freeze_flag_lifted", extra={"shop_id": shop.id})


def _note_rejected(state: SyncState, rejected: Sequence[Rejected]) -> None:
    """Count a page's unreadable records and keep the latest ``KEEP_REJECTED`` named."""
    state.skipped = (state.skipped or 0) + len(rejected)
    named = [{"id": r.record_id, "reason": r.reason} for r in rejected]
    state.rejected = ([*(state.rejected or []), *named])[-KEEP_REJECTED:]


def sync_progress(shop_id: str) -> list[dict]:
    """Per-resource state for the admin page's progress bars."""
    rows = db.session.scalars(sa.select(SyncState).filter_by(shop_id=shop_id)).all()
    return [{"resource": s.resource, "status": _shown_status(s), "done": s.done,
             "total": s.total,
             "last_error": s.last_error, "updated_at": s.updated_at,
             "watermark": s.watermark, "skipped": s.skipped or 0,
             "rejected": list(s.rejected or [])} for s in rows]
