"""Renewing something from a thread while slow work runs: a job run's heartbeat, inbox
claims, the scheduler lease.

Each was renewed only between units of work, so one slow unit (a platform fetch with its
retries takes minutes) outlasted it and another worker took over beside the first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask

from plugin.extensions import db

#: How long the end of the block waits for a renewal in progress (a statement waiting on
#: a lock, a database gone quiet): the join was unbounded, and such a renewal hung the job
#: or the worker loop that had finished its work, with nothing logged.
STOP_WAIT_SECONDS = 15.0


@contextmanager
def renewing(app: Flask, every: float, renew: Callable[[], bool | None], *, name: str,
             log: logging.Logger, event: str, extra: dict | None = None,
             stop_wait: float | None = None) -> Iterator[None]:
    """Call ``renew`` every ``every`` seconds from a thread (its own session) until the
    block ends. A ``renew`` that returns False ends the renewals (what it renews was lost:
    renewing on would hold it over its new owner). A failed renewal is rolled back,
    logged as ``event`` and tried again at the next beat; the work goes on.

    The block's end waits at most ``stop_wait`` (``STOP_WAIT_SECONDS``) seconds for a
    renewal in progress; one still running then is logged (``event`` + ``_stuck``) and
    left to end on its own (a daemon thread, told to stop: it renews no more once its
    current call returns)."""
    stop = threading.Event()

    def beat() -> None:
        with app.app_context():
            try:
                while not stop.wait(every):
                    try:
                        if renew() is False:
                            return
                    except Exception as err:
                        db.session.rollback()
                        log.warning(event, extra={**(extra or {}),
                                                  "error": type(err).__name__})
            finally:
                db.session.remove()

    thread = threading.Thread(target=beat, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        waited = STOP_WAIT_SECONDS if stop_wait is None else stop_wait
        thread.join(waited)
        if thread.is_alive():
            log.warning(f"{event}_stuck", extra={**(extra or {}), "renewal": name,
                                                  "waited_seconds": waited})
