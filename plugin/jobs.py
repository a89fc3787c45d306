"""Background work. Every ``shopkeeper worker`` drains the inbox (SKIP LOCKED shares it);
only the holder of the scheduler lease runs scheduled jobs, so exactly one scheduler is
active and a standby takes over within ``SCHEDULER_LEASE_SECONDS`` if the holder dies."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from datetime import datetime, timedelta

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from plugin import lease, row_lock, run_end
from plugin.db_clock import db_now, db_utcnow
from plugin.extensions import db
from plugin.heartbeat import renewing
from plugin.leadership import (
    LEASE_NAME,
    LeaseBusy,
    LeaseLost,
    checkpoint,
    stop_if_lease_lost,
    watching,
)
from plugin.models import JobRun
from plugin.models.types import utcnow
from plugin.row_lock import RowLocked
from plugin.webhooks.inbox import BatchResult, process_inbox, worker_name

log = logging.getLogger("shopkeeper.jobs")

#: Matches the admin form's default (plugin/admin/schemas.py PrivacySchema).
DEFAULT_RETENTION_DAYS = 730


# ---------------------------------------------------------------- the jobs (thin, idempotent)
def drain_inbox(should_stop: Callable[[], bool] | None = None, max_batches: int = 50,
                worker: str | None = None) -> BatchResult:
    """Process due inbox rows (safe to run in several workers at once), claimed as
    ``worker`` (default: this process)."""
    result = process_inbox(should_stop=should_stop, max_batches=max_batches, worker=worker)
    if result.total:
        log.info("jobs.inbox_drained", extra={"done": result.done, "failed": result.failed,
                                              "dead": result.dead})
    return result


def purge_uninstalled_shops() -> list[str]:
    """Erase shops whose post-uninstall retention period has passed."""
    from plugin.shops import purge_uninstalled

    return purge_uninstalled()


def sync_all_shops() -> int:
    """Incremental reconciliation for every installed shop whose platform has an API."""
    import sqlalchemy as sa

    import connectors
    from plugin import shop_unavailable
    from plugin.ingestion.sync import RESOURCES, run_sync
    from plugin.models import Shop

    runs = 0
    failed: list[Exception] = []
    for shop_id, platform in db.session.execute(
            sa.select(Shop.id, Shop.platform).where(Shop.status == "active")).all():
        if "backfill" not in connectors.get(platform).meta.capabilities:
            continue
        shop = db.session.get(Shop, shop_id)
        if shop is not None and shop_unavailable.wait_left(shop) is not None:
            # frozen or locked on its platform: asked again once the hour is over
            log.info("jobs.sync_held_back", extra={"shop_id": shop_id})
            continue
        for resource in RESOURCES:
            checkpoint()
            try:
                result = run_sync(shop_id, resource)
            except Exception as err:  # one shop's failure must not starve the others
                stop_if_lease_lost(err)
                db.session.rollback()
                log.exception("jobs.sync_failed", extra={"shop_id": shop_id,
                                                         "resource": resource})
                failed.append(err)
                continue
            runs += 1
            if result.retry_after is not None:  # rate-limited or held back: its other
                break  # resources would only be refused too; the next run resumes from the cursors
    if failed:  # the job is recorded as failed, with the first error
        raise failed[0]
    return runs


def refresh_saleor_webhooks() -> int:
    """Each Saleor shop's webhooks brought up to this version's queries (see
    ``plugin.install.saleor.refresh_webhooks``); returns the shops changed."""
    import sqlalchemy as sa

    from plugin.install.saleor import refresh_webhooks
    from plugin.models import Shop

    changed = 0
    failed: list[Exception] = []
    for shop in db.session.scalars(sa.select(Shop).where(Shop.status == "active",
                                                          Shop.platform == "saleor")).all():
        checkpoint()
        try:
            done = refresh_webhooks(shop)
        except Exception as err:  # one unreachable shop must not stop the others
            stop_if_lease_lost(err)
            db.session.rollback()
            log.warning("jobs.webhook_refresh_failed", extra={
                "shop_id": shop.id, "error": type(err).__name__})
            failed.append(err)
            continue
        changed += bool(done["created"] or done["updated"])
    if failed:
        raise failed[0]
    return changed


def reconcile_shopify_webhooks() -> int:
    """Installed Shopify shops subscribed to the topics a release added (they were
    subscribed at install only); see ``plugin.install.shopify_webhooks``. Returns the
    subscriptions created."""
    from plugin.install.shopify_webhooks import reconcile_due

    return reconcile_due()


def migrate_shopify_tokens() -> int:
    """Shopify shops' non-expiring offline tokens traded for expiring ones (Shopify rejects
    the former from 2027-01-01); see ``plugin.shopify_tokens``. Returns the shops migrated."""
    from plugin.shopify_tokens import migrate_legacy_tokens

    return migrate_legacy_tokens()


def retrain_due_shops() -> int:
    """Retrain shops whose model is older than a day or has many new orders since."""
    try:
        from plugin.training import retrain_due
    except ImportError:
        return 0
    return retrain_due()


def run_offer_jobs() -> object:
    """Attribution, outcome settlement, offer expiry, budget release and nudges."""
    from plugin.offers.jobs import run_offer_jobs as run

    return run()


def apply_subprofile_answers() -> int:
    """Order lines that arrived after a shopper said who they were buying for follow it."""
    import sqlalchemy as sa

    from plugin.models import Shop
    from plugin.subprofiles.prompt import apply_pending

    moved = 0
    for shop_id in db.session.scalars(sa.select(Shop.id).where(Shop.status == "active")).all():
        checkpoint()
        moved += apply_pending(shop_id)
        db.session.commit()
    return moved


def purge_expired_events() -> int:
    """Each shop's retention setting (admin > Privacy), applied daily."""
    import sqlalchemy as sa

    from plugin.models import Shop
    from plugin.privacy import purge_expired

    purged = 0
    for shop in db.session.scalars(sa.select(Shop).where(Shop.status == "active")).all():
        checkpoint()
        days = int((shop.settings or {}).get("retention_days", DEFAULT_RETENTION_DAYS))
        purged += purge_expired(shop.id, days)
        db.session.commit()
    return purged


#: Days of job history kept (metrics read the last 24 h; each job's last success is kept).
JOB_RUNS_KEEP_DAYS = 2


def purge_job_runs(*, now: datetime | None = None) -> int:
    """Delete job runs older than ``JOB_RUNS_KEEP_DAYS``, except each job's last success
    (its schedule and ``shopkeeper_job_last_success_age_seconds`` read it): the heartbeat
    alone adds 17,280 rows a day, which every due check and scrape would read."""
    cutoff = (now or utcnow()) - timedelta(days=JOB_RUNS_KEEP_DAYS)
    last_ok = sa.select(sa.func.max(JobRun.id)).where(JobRun.status == "ok") \
        .group_by(JobRun.job)
    n = db.session.execute(sa.delete(JobRun).where(JobRun.started_at < cutoff,
                                                   JobRun.id.not_in(last_ok))).rowcount
    db.session.commit()
    return n


def purge_inbox(*, now: datetime | None = None) -> int:
    """Delete applied inbox rows older than ``INBOX_DONE_RETENTION_DAYS`` (a big shop sends
    tens of thousands of deliveries a day; each left a row forever)."""
    from flask import current_app

    from plugin.webhooks.purge import purge_done

    days = current_app.config["INBOX_DONE_RETENTION_DAYS"]
    n = purge_done((now or utcnow()) - timedelta(days=days))
    if n:
        log.info("jobs.inbox_purged", extra={"deleted": n})
    return n


def heartbeat() -> None:
    """Proves the active scheduler is alive (failover tests and the admin page read it)."""


#: name -> (function, interval in seconds). Leader-only jobs.
SCHEDULED_JOBS: dict[str, tuple[Callable[[], object], int]] = {
    "heartbeat": (heartbeat, 5),
    "purge_uninstalled": (purge_uninstalled_shops, 3600),
    "sync_all_shops": (sync_all_shops, 1800),
    "retrain_due_shops": (retrain_due_shops, 3600),
    "offers": (run_offer_jobs, 600),
    "subprofile_answers": (apply_subprofile_answers, 60),
    "retention_purge": (purge_expired_events, 86400),
    "saleor_webhooks": (refresh_saleor_webhooks, 86400),
    "shopify_token_migration": (migrate_shopify_tokens, 3600),
    "shopify_webhooks": (reconcile_shopify_webhooks, 3600),
    "job_runs_purge": (purge_job_runs, 3600),
    "inbox_purge": (purge_inbox, 3600),
}
#: How often the active scheduler checks which jobs are due (seconds).
CHECK_EVERY = 60
#: A running job's record renews its heartbeat this often (seconds)...
RUN_HEARTBEAT_SECONDS = 30
#: ...and one whose heartbeat is older than this lost its worker (kill -9, OOM, a lost
#: host): the job's next check records it as abandoned instead of "running" forever.
RUN_ABANDONED_SECONDS = 300


class FailureStreak:
    """Logs failures in a row (a database outage, at every poll or check) as the first
    one's traceback, then one line each with their count and how long, then once that
    they stopped: each logged a whole traceback, a screenful a minute per job."""

    def __init__(self, failed: str, still_failing: str, recovered: str,
                 **extra: object) -> None:
        self.events = (failed, still_failing, recovered)
        self.extra = extra
        self.failures = 0
        self.since = 0.0
        self._lock = threading.Lock()  # a scheduler's checks run in its thread pool

    def failed(self, err: Exception) -> None:
        """Log ``err`` (from an ``except`` block) as the streak's first or its next."""
        with self._lock:
            self.failures += 1
            if self.failures == 1:
                self.since = time.monotonic()
                log.exception(self.events[0], extra=self.extra)
            else:
                log.warning(self.events[1], extra={
                    **self.extra, "failures": self.failures, "error": type(err).__name__,
                    "seconds": round(time.monotonic() - self.since)})

    def ok(self) -> None:
        """Say once that the failures stopped, and after how long."""
        with self._lock:
            if self.failures:
                log.info(self.events[2], extra={
                    **self.extra, "failures": self.failures,
                    "seconds": round(time.monotonic() - self.since)})
                self.failures = 0


def run_recorded(app: Flask, name: str, fn: Callable[[], object],
                 holder: str | None = None, *, hold: threading.Event | None = None) -> None:
    """Run one job inside an app context, recording a ``JobRun`` (never raising).

    With ``holder``, the job runs only while that worker still holds the scheduler lease:
    a worker that lost the lease between two loop turns never runs a job beside the new
    leader, and one that loses it while the job runs (``hold``, its worker's signal, is
    set, or the lease row names another) stops the job at its next ``checkpoint``
    (recorded as ``lease_lost``, committing nothing more); the unit running then commits
    nothing either, its commit being fenced by the lease's generation the job started
    under (``plugin.leadership``). A fence that found the lease row too busy to check
    stops the run the same way, recorded as ``lease_busy``. The run's ``worker`` is
    ``holder``, the id ``scheduler_leases`` stores (the process name had no match there
    when a worker was given another name), so an operator can tell which holder ran what.
    When the run cannot be recorded (the database went), that is logged once: a run whose
    start was not recorded did not run, and one whose end was not is recorded as abandoned
    by the job's next check, once its heartbeat has stopped. An end whose row another
    transaction holds past ``row_lock.LOCK_TIMEOUT_SECONDS`` (PostgreSQL) is logged and
    recorded by the job's next check instead (``plugin.run_end``): a job that finished is
    not recorded failed or abandoned for a busy row, nor does its thread wait on it.
    """
    with app.app_context():
        try:
            _run_recorded(app, name, fn, holder, hold)
        except Exception:
            with suppress(Exception):  # the connection may be gone with the database
                db.session.rollback()
            log.exception("jobs.record_failed", extra={"job": name})


def _run_recorded(app: Flask, name: str, fn: Callable[[], object],
                  holder: str | None, hold: threading.Event | None) -> None:
    held = lease.hold_of(LEASE_NAME) if holder is not None else None
    if holder is not None and (held is None or held[0] != holder):
        log.warning("jobs.skipped_not_leader", extra={"job": name, "worker": holder})
        return
    # on the database's clock, like the heartbeat: workers' clocks drift, and one
    # running fast would take a job that ran a minute ago for overdue
    run = JobRun(job=name, worker=holder or worker_name(), started_at=db_utcnow(),
                 status="running", heartbeat_at=db_utcnow())
    began = time.perf_counter()
    db.session.add(run)
    db.session.commit()
    run_id, error = run.id, None
    try:
        with _heartbeat(app, run_id), watching(holder, hold, held and held[1]):
            fn()
        status = "ok"
    except LeaseLost as err:  # stopped between units: the new leader runs it
        # (or, its lease row too busy for a commit's fence, this leader at its next check)
        db.session.rollback()
        status = "lease_busy" if isinstance(err, LeaseBusy) else "lease_lost"
        error = str(err)
        log.warning(f"jobs.stopped_{status}", extra={"job": name, "worker": holder})
    except Exception as err:  # a failing job must not kill the scheduler
        db.session.rollback()
        status, error = "failed", f"{type(err).__name__}: {err}"[:2000]
        log.exception("jobs.failed", extra={"job": name})
    # its row locked past the bound: deferred to the job's next check (plugin.run_end)
    run_end.record(name, run_id, status, error, db_utcnow())
    _observe_job(name, status, time.perf_counter() - began)


def _heartbeat(app: Flask, run_id: int) -> AbstractContextManager[None]:
    """Renew the run's heartbeat while the job runs, so a long job is told apart from one
    whose worker died.

    On PostgreSQL a beat waits at most ``row_lock.LOCK_TIMEOUT_SECONDS`` for the run's row
    (another transaction on it: a check marking runs abandoned, an operator's statement):
    it waited with no end, the renewing thread left behind stuck by the block's end. A row
    still locked then skips this beat (logged ``jobs.heartbeat_lock_timeout``); the next
    comes ``RUN_HEARTBEAT_SECONDS`` later, ten of them before the run counts as abandoned.
    """
    def beat() -> None:
        with suppress(RowLocked):
            row_lock.bounded(lambda: db.session.execute(sa.update(JobRun).where(
                JobRun.id == run_id, JobRun.status == "running").values(
                heartbeat_at=db_utcnow())), what=f"job run {run_id}", log=log,
                event="jobs.heartbeat_lock_timeout", extra={"run_id": run_id})
        db.session.commit()

    return renewing(app, RUN_HEARTBEAT_SECONDS, beat, name=f"job-heartbeat-{run_id}",
                    log=log, event="jobs.heartbeat_failed", extra={"run_id": run_id})


def mark_abandoned_runs(name: str) -> int:
    """Record the job's "running" runs whose heartbeat stopped as abandoned (finished at
    their last heartbeat): their worker is gone and they would show as running forever.

    On PostgreSQL the UPDATE waits at most ``row_lock.LOCK_TIMEOUT_SECONDS`` for such a
    run's row (another transaction on it: an operator's statement, another worker's sweep
    or a late end): it waited with no end, the job's check stuck and, one instance at a
    time, the job with it. Past the bound ``RowLocked`` is raised (logged
    ``jobs.abandoned_lock_timeout``), nothing marked, for the caller to skip this check.
    """
    last_alive = sa.func.coalesce(JobRun.heartbeat_at, JobRun.started_at)
    n = row_lock.bounded(lambda: db.session.execute(
        sa.update(JobRun)
        .where(JobRun.job == name, JobRun.status == "running",
               last_alive < db_utcnow(-RUN_ABANDONED_SECONDS))
        .values(status="abandoned", finished_at=last_alive,
                error=f"no heartbeat for {RUN_ABANDONED_SECONDS} s: its worker stopped")
    ).rowcount, what=f"{name!r}'s abandoned runs", log=log, event="jobs.abandoned_lock_timeout",
        extra={"job": name})
    db.session.commit()
    if n:
        log.warning("jobs.runs_abandoned", extra={"job": name, "runs": n})
    return n


def _observe_job(name: str, status: str, seconds: float) -> None:
    try:
        from plugin.metrics import observe_job
    except ImportError:
        return
    observe_job(name, seconds, status)


def job_is_due(name: str, interval: float, *, now: datetime | None = None) -> bool:
    """Due when its last successful run (in ``job_runs``, shared by every worker) is older
    than ``interval``: the schedule survives failovers and restarts, so a daily job neither
    runs twice after a takeover nor never when workers restart more often than daily.

    A failure since then is retried after a quarter of the interval, not at the next
    check: one shop whose platform keeps failing must not make a fleet-wide daily job run
    every minute (its failures still show in metrics and ``job_runs``).

    An abandoned run (its worker died: out of memory, killed) backs off like a failure:
    rerun at once after a failover, a job that kills its worker would crash-loop the fleet.
    """
    now = now or db_now()  # run times are on the database's clock
    last = dict(db.session.execute(
        sa.select(JobRun.status, sa.func.max(JobRun.finished_at))
        .where(JobRun.job == name, JobRun.status.in_(("ok", "failed", "abandoned")))
        .group_by(JobRun.status)).all())
    ok = last.get("ok")
    failed = max((t for t in (last.get("failed"), last.get("abandoned")) if t is not None),
                 default=None)
    if ok is not None and now - ok < timedelta(seconds=interval * 0.98):
        return False
    if failed is not None and (ok is None or failed > ok):
        return now - failed >= timedelta(seconds=interval / 4 * 0.98)
    return True


#: (scheduler holder, job) -> its due checks' failures in a row
_CHECK_FAILURES: dict[tuple[str | None, str], FailureStreak] = {}


def _check_failures(holder: str | None, name: str) -> FailureStreak:
    key = (holder, name)
    if key not in _CHECK_FAILURES:
        _CHECK_FAILURES.setdefault(key, FailureStreak(
            "jobs.check_failed", "jobs.check_still_failing", "jobs.check_recovered",
            job=name, worker=holder))
    return _CHECK_FAILURES[key]


def run_if_due(app: Flask, name: str, fn: Callable[[], object], interval: float,
               holder: str | None = None, *,
               hold: Callable[[], threading.Event] | None = None) -> None:
    """The scheduler's entry point (never raising): record the job's dead runs as
    abandoned, then skip when not due, else ``run_recorded``. A check the database fails
    is logged like the worker's polls: raised into APScheduler, every job's check logged
    a traceback every minute through an outage. ``hold`` returns the worker's signal for
    its current hold on the lease, which the run watches (``run_recorded``).

    First it records the ends of the job's runs that found their row locked
    (``plugin.run_end``). A run's row locked past the bound then, or while the check marks
    it abandoned, skips this check (logged; neither a run nor a check failure): the next,
    ``CHECK_EVERY`` later, tries again. Going on would decide with a run's end unseen (a
    daily job that just ran would run again) or a dead run unseen (an abandoned run is
    what holds back a job that kills its worker, ``job_is_due``)."""
    failures = _check_failures(holder, name)
    with app.app_context():
        try:
            run_end.record_deferred(name)
            mark_abandoned_runs(name)
            due = job_is_due(name, interval)
        except RowLocked:
            db.session.rollback()
            return
        except Exception as err:
            with suppress(Exception):  # the connection may be gone with the database
                db.session.rollback()
            failures.failed(err)
            return
        finally:
            db.session.remove()
    failures.ok()
    if due:
        run_recorded(app, name, fn, holder, hold=hold() if hold else None)


def build_scheduler(app: Flask, holder: str | None = None,
                    hold: Callable[[], threading.Event] | None = None) -> BackgroundScheduler:
    """In-memory APScheduler whose state that matters (when each job last ran) lives in the
    database, instead of APScheduler's SQLAlchemy job store, which pickles callables."""
    scheduler = BackgroundScheduler(timezone="UTC")
    for name, (fn, interval) in SCHEDULED_JOBS.items():
        scheduler.add_job(run_if_due, "interval", args=(app, name, fn, interval, holder),
                          kwargs={"hold": hold}, id=name, max_instances=1, coalesce=True,
                          seconds=min(interval, CHECK_EVERY))
    return scheduler


# ---------------------------------------------------------------- the worker process
class Worker:
    """Inbox consumer + standby/active scheduler in one process."""

    def __init__(self, app: Flask, *, name: str | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.app = app
        self.name = name or worker_name()
        self.clock = clock  # the lease's time; None: the database's (tests replay a timeline)
        self.stopping = threading.Event()
        # set once this hold on the lease ends; a new one each time the lease is taken, so
        # a job started in an earlier hold stays stopped (the other leader may run it now)
        self.hold = threading.Event()
        self.scheduler = build_scheduler(app, holder=self.name, hold=lambda: self.hold)
        self.leader = False
        self._lease_lock = threading.Lock()  # the loop and the lease thread change leader
        self._tick_failures = FailureStreak("worker.tick_failed", "worker.tick_still_failing",
                                            "worker.recovered", worker=self.name)

    def _now(self) -> datetime | None:
        return self.clock() if self.clock else None

    def stop(self, *_: object) -> None:
        """Graceful shutdown: finish the row in hand, release claims and the lease."""
        self.stopping.set()

    def _renew(self) -> None:
        """Take or renew the lease and pause or resume the scheduler to match (in an app
        context, with nothing uncommitted in the session)."""
        with self._lease_lock:
            leader = lease.acquire(LEASE_NAME, self.name,
                                   self.app.config["SCHEDULER_LEASE_SECONDS"], now=self._now())
            self._set_leader(leader)

    def _set_leader(self, leader: bool) -> None:
        if leader and not self.leader:
            self.hold = threading.Event()
            self.scheduler.resume()
            log.info("worker.became_leader", extra={"worker": self.name})
        elif not leader and self.leader:
            self.hold.set()  # its running jobs stop at their next checkpoint
            self.scheduler.pause()
            log.warning("worker.lost_leadership", extra={"worker": self.name})
        self.leader = leader

    def _keep_lease(self) -> bool:
        """Renew the lease this worker holds; False (the scheduler paused) once it is lost:
        it lapsed or a standby took it, and renewing on would hold it over the new leader."""
        with self._lease_lock:
            if not self.leader:
                return False
            held = lease.renew(LEASE_NAME, self.name, self.app.config["SCHEDULER_LEASE_SECONDS"],
                               now=self._now())
            self._set_leader(held)
            return held

    def _keeping_lease(self) -> AbstractContextManager[None]:
        """Renew the lease every poll interval while a batch runs, and with it the jobs
        this worker's scheduler runs meanwhile: renewed only between rows, one row slower
        than the lease (a platform fetch with its retries) let it lapse, and a standby took
        leadership over. Once lost, the next loop turn tries for it again."""
        return renewing(self.app, self.app.config["WORKER_POLL_SECONDS"], self._keep_lease,
                        name="scheduler-lease", log=log, event="worker.lease_renewal_failed",
                        extra={"worker": self.name})

    def _between_rows(self) -> bool:
        """Called by the inbox before each row: True once SIGTERM asked us to stop."""
        return self.stopping.is_set()

    def tick(self) -> BatchResult:
        """One loop turn: renew or try the lease, then one inbox batch while a thread
        keeps the lease renewed, so it does not expire under a backlog or slow rows."""
        with self.app.app_context():
            self._renew()
            with self._keeping_lease():
                return drain_inbox(should_stop=self._between_rows, max_batches=1,
                                   worker=self.name)

    def run(self) -> None:
        """Block until SIGTERM/SIGINT."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        self.scheduler.start(paused=True)
        log.info("worker.started", extra={"worker": self.name})
        poll = self.app.config["WORKER_POLL_SECONDS"]
        try:
            while not self.stopping.is_set():
                started = time.monotonic()
                try:
                    result = self.tick()
                except Exception as err:
                    self._tick_failures.failed(err)
                    result = BatchResult()
                else:
                    self._tick_failures.ok()
                if not result.total:
                    self.stopping.wait(max(0.0, poll - (time.monotonic() - started)))
        finally:
            self._finish_jobs()
            log.info("worker.stopped", extra={"worker": self.name})

    def _finish_jobs(self) -> None:
        """Let a running job finish, renewing the lease meanwhile (a standby must not start
        the same job beside it), then give the lease up."""
        stopper = threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True},
                                   name="scheduler-shutdown")
        stopper.start()
        cfg = self.app.config
        with self.app.app_context():
            while stopper.is_alive():
                stopper.join(cfg["WORKER_POLL_SECONDS"])
                if stopper.is_alive() and self.leader:
                    try:
                        self.leader = lease.acquire(LEASE_NAME, self.name,
                                                    cfg["SCHEDULER_LEASE_SECONDS"],
                                                    now=self._now())
                    except Exception:
                        db.session.rollback()
                        log.exception("worker.lease_renewal_failed", extra={"worker": self.name})
            if self.leader:
                lease.release(LEASE_NAME, self.name, now=self._now())


def run_worker(app: Flask) -> None:
    """``shopkeeper worker``."""
    Worker(app).run()


def start_background(app: Flask) -> Worker:
    """The demo's worker in a thread of the web process (still one scheduler: the lease)."""
    worker = Worker(app, name=f"{worker_name()}:demo")
    threading.Thread(target=worker.run, name="shopkeeper-worker", daemon=True).start()
    return worker


def current_leader() -> str | None:
    return lease.holder_of(LEASE_NAME)


__all__ = ["SCHEDULED_JOBS", "Worker", "drain_inbox", "run_worker"]
