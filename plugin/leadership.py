"""Whether the worker running a scheduled job still holds the scheduler lease.

The lease was checked only when a job started: a job still running when its worker lost
the lease (a stall past it, a slow database) ran on beside the new leader's run of the
same job, both sending nudges or trading tokens. The worker now signals each loss of the
lease (an Event per hold, set when a renewal finds the lease lapsed or taken), and the
jobs call ``checkpoint`` between units of work (a shop, a resource): it raises
``LeaseLost`` there, so the job stops and commits nothing more, and its run is recorded
as stopped by the lost lease, not as failed.

A checkpoint comes before a unit, and a unit running when the lease was lost still
committed beside the new leader's run. So every commit made by a job (in its thread, on
its session) is fenced too: its transaction first checks that the lease still has the
holder and generation the job started under (``lease.fence``), and the commit raises
``LeaseLost`` with nothing committed when it has not. A job's per-unit ``except
Exception`` (one shop's failure must not stop the others) lets it through
(``stop_if_lease_lost``), so the job stops there too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flask.globals import app_ctx
from sqlalchemy import event
from sqlalchemy.orm import Session

from plugin import lease, lease_lock
from plugin.extensions import db

#: The lease whose holder runs the scheduled jobs (``scheduler_leases.name``).
LEASE_NAME = "scheduler"


class LeaseLost(Exception):
    """The worker running this job lost the scheduler lease: the job stopped at a unit
    boundary, since the new leader runs it."""

    def __init__(self, holder: str) -> None:
        super().__init__(f"{holder} lost the scheduler lease; stopped between units of work")
        self.holder = holder


class LeaseBusy(LeaseLost):
    """A commit's fence found the lease row locked past ``lease_lock.LOCK_TIMEOUT_SECONDS``
    (PostgreSQL): the hold was not confirmed, so nothing was committed and the job stops
    as for a lost lease (a ``LeaseLost``, for every ``except`` and ``stop_if_lease_lost``
    that lets it through), but the lease need not be lost: the run is recorded
    ``lease_busy`` with this message, not as a lost lease, and the job runs again at its
    next check if this worker still leads."""

    def __init__(self, holder: str) -> None:
        Exception.__init__(self, (
            f"the scheduler lease row stayed locked past {lease_lock.LOCK_TIMEOUT_SECONDS} s "
            f"at a commit (another transaction held it): {holder}'s hold not confirmed, "
            "nothing committed; stopped, to run again at the next check"))
        self.holder = holder


#: (holder, the signal its worker sets once its hold on the lease ends, the lease's
#: generation the job started under, the app context whose session the job commits on) of
#: the scheduled job running in this thread
_WATCHED: ContextVar[tuple[str, threading.Event | None, int | None, object] | None] = \
    ContextVar("scheduler_hold", default=None)


@contextmanager
def watching(holder: str | None, lost: threading.Event | None = None,
             generation: int | None = None) -> Iterator[None]:
    """Make ``checkpoint`` in the job run in this block (this thread) stop it once
    ``holder`` no longer holds the lease, or ``lost`` (its worker's signal for the hold the
    job started in) is set; with ``generation`` (the lease's when the job started), each
    commit in this thread is fenced by it too. With no holder (the command line), it never
    stops."""
    watched = None if holder is None else (holder, lost, generation, _app_context())
    token = _WATCHED.set(watched)
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
    holder, lost, generation, _ = watched
    if lost is not None and lost.is_set():
        raise LeaseLost(holder)
    with db.session.no_autoflush:
        held = lease.hold_of(LEASE_NAME)
    if held is None or held[0] != holder or generation not in (None, held[1]):
        raise LeaseLost(holder)


def stop_if_lease_lost(err: Exception) -> None:
    """Re-raise ``err`` when it is a lost lease: call first in a job's per-unit
    ``except Exception``. One unit's failure must not stop the others, but a fenced commit
    raises ``LeaseLost`` mid-unit, and caught there it was logged as that shop's failure
    and, in the last unit, left the run recorded ``failed`` or ``ok``, not ``lease_lost``."""
    if isinstance(err, LeaseLost):
        raise err


@contextmanager
def unfenced() -> Iterator[None]:
    """Commit, outside the fence, what a job gives up of its own whether or not its worker
    still holds the scheduler lease: a fit's or a sync's lease, which a fenced release left
    held until it lapsed (the new leader waiting that long to refit or sync the shop), and
    the record of the fit it stopped. The job's transaction is rolled back first, so none
    of the unit's work commits with it."""
    db.session.rollback()
    token = _WATCHED.set(None)
    try:
        yield
    finally:
        _WATCHED.reset(token)


def _app_context() -> object:
    """The app context this thread runs in (its session's scope), or None."""
    return app_ctx._get_current_object() if app_ctx else None


@event.listens_for(Session, "before_commit")
def _fence(session: Session) -> None:
    """A scheduled job's commit goes through only while its worker still holds the lease
    it started under: checked in the committing transaction (``lease.fence``), so a lease
    taken over between the job's checkpoint and its commit makes the commit raise
    ``LeaseLost``, committing nothing (the caller rolls back). A lease row too busy to
    check (``RowLocked``) raises ``LeaseBusy``, committing nothing likewise."""
    watched = _WATCHED.get()
    if watched is None or watched[2] is None or watched[3] is not _app_context() \
            or session is not db.session():
        return  # not a job's, or another app context's session (the job's worker's own)
    holder, _, generation, _ = watched
    try:
        held = lease.fence(LEASE_NAME, holder, generation)
    except lease_lock.RowLocked as err:
        raise LeaseBusy(holder) from err
    if not held:
        raise LeaseLost(holder)
