"""Background jobs. Only ``shopkeeper worker`` (or the demo server) starts a scheduler."""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from plugin.webhooks.inbox import BatchResult, process_inbox

log = logging.getLogger("shopkeeper.jobs")


def drain_inbox() -> BatchResult:
    """Process every due inbox row (idempotent; safe to run in several workers)."""
    result = process_inbox()
    if result.total:
        log.info("jobs.inbox_drained", extra={"done": result.done, "failed": result.failed,
                                              "dead": result.dead})
    return result


def purge_uninstalled_shops() -> list[str]:
    from plugin.shops import purge_uninstalled

    return purge_uninstalled()


def _in_context(app: Flask, fn):
    def run():
        with app.app_context():
            try:
                fn()
            except Exception:  # a failing job must not kill the scheduler
                log.exception("jobs.failed", extra={"job": fn.__name__})
    run.__name__ = fn.__name__
    return run


def add_jobs(scheduler, app: Flask) -> None:
    poll = app.config["WORKER_POLL_SECONDS"]
    scheduler.add_job(_in_context(app, drain_inbox), "interval", seconds=poll,
                      id="drain_inbox", max_instances=1, coalesce=True)
    scheduler.add_job(_in_context(app, purge_uninstalled_shops), "interval", hours=1,
                      id="purge_uninstalled", max_instances=1, coalesce=True)


def run_worker(app: Flask) -> None:
    """Block running the scheduler (``shopkeeper worker``)."""
    scheduler = BlockingScheduler(timezone="UTC")
    add_jobs(scheduler, app)
    log.info("worker.started")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=True)


def start_background(app: Flask) -> BackgroundScheduler:
    """The demo's in-process scheduler (single process, so still exactly one)."""
    scheduler = BackgroundScheduler(timezone="UTC")
    add_jobs(scheduler, app)
    scheduler.start()
    return scheduler
