"""Whether the worker running a scheduled job still holds the scheduler lease.

The lease was checked only when a job started: a job still running when its worker lost
the lease (a stall past it, a slow database) ran on beside the new leader's run of the
same job, both sending nudges or trading tokens. The worker now signals each loss of the
lease (an Event per hold, set when a renewal finds the lease lapsed or taken), and the
jobs call ``checkpoint`` between units of work (a shop, a resource): it raises
``LeaseLost`` there, so the job stops and commits nothing more, and its run is recorded
as stopped by the lost lease, not as failed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from plugin import lease
from plugin.extensions import db

#: The lease whose holder runs the scheduled jobs (``scheduler_leases.name``).
LEASE_NAME = "scheduler"


class LeaseLost(Exception):
    """The worker running this job lost the scheduler lease: the job stopped at a unit
    boundary, since the new leader runs it."""

    def __init__(self, holder: str) -> None:
        super().__init__(f"{holder} lost the scheduler lease; stopped between units of work")
        self.holder = holder


#: (holder, the signal its worker sets once its hold on the lease ends) of the scheduled
#: job running in this thread
_WATCHED: ContextVar[tuple[str, threading.Event | None] | None] = ContextVar(
    "scheduler_hold", default=None)


@contextmanager
def watching(holder: str | None, lost: threading.Event | None = None) -> Iterator[None]:
    """Make ``checkpoint`` in the job run in this block (this thread) stop it once
    ``holder`` no longer holds the lease, or ``lost`` (its worker's signal for the hold the
    job started in) is set; with no holder (the command line), it never stops."""
    token = _WATCHED.set((holder, lost) if holder is not None else None)
    try:
        yield
    finally:
        _WATCHED.reset(token)


def checkpoint() -> None:
    """Raise ``LeaseLost`` when the running job's worker no longer holds the scheduler
    lease: its renewal said so, or the lease row names another holder or has lapsed (a
    worker stalled past its lease learns it here before its renewal thread does).

    Call between units of work, before the next one starts (outside a per-unit
    ``except Exception``); a no-op outside a scheduled job's run.
    """
    watched = _WATCHED.get()
    if watched is None:
        return
    holder, lost = watched
    if lost is not None and lost.is_set():
        raise LeaseLost(holder)
    with db.session.no_autoflush:
        if lease.holder_of(LEASE_NAME) != holder:
            raise LeaseLost(holder)
