"""A database lease so exactly one worker runs the scheduler; a standby takes over when the
holder stops renewing (crash, kill -9, network split) within the lease time.

Expiry is set and compared on the database's clock (``db_clock``): with each worker's own,
one whose clock runs ahead saw a live lease as expired and took it, and two ran the jobs.

On PostgreSQL each statement on a lease row waits at most ``LOCK_TIMEOUT_SECONDS`` for the
row (``lease_lock``): a job's fence holds it to that job's commit's end, and a commit stuck
there held every renewal, takeover and other job's commit behind it, with no end.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from plugin.db_clock import db_utcnow
from plugin.extensions import db, insert_or_ignore
from plugin.lease_lock import RowLocked, bounded
from plugin.models import SchedulerLease
from plugin.models.types import UTCDateTime


def _clock(now: datetime | None, offset_seconds: float = 0.0) -> ColumnElement:
    """The database's clock, or a fixed ``now`` (tests replaying a timeline)."""
    if now is None:
        return db_utcnow(offset_seconds)
    return sa.literal(now + timedelta(seconds=offset_seconds), UTCDateTime())


def acquire(name: str, holder: str, ttl_seconds: float, *, now: datetime | None = None) -> bool:
    """Take or renew the lease; True when ``holder`` holds it for ``ttl_seconds`` more.

    One conditional UPDATE (free or already ours), else an INSERT that loses quietly to a
    concurrent winner: atomic on SQLite and PostgreSQL without advisory locks.

    The row locked past ``LOCK_TIMEOUT_SECONDS`` (PostgreSQL): not taken this time, and
    not extended either; True only when ``holder`` already held it (until its expiry as
    it stands, so a leader is not made to drop the jobs it runs for a busy row).
    """
    try:
        got = bounded("acquire", name, holder, lambda: _take(name, holder, ttl_seconds, now))
    except RowLocked:
        got = _holds(name, holder, now)
    db.session.commit()
    return got


def _take(name: str, holder: str, ttl_seconds: float, now: datetime | None) -> bool:
    L = SchedulerLease
    res = db.session.execute(
        sa.update(L)
        .where(L.name == name, sa.or_(L.holder == holder, L.expires_at < _clock(now)))
        .values(acquired_at=sa.case((L.holder == holder, L.acquired_at), else_=_clock(now)),
                generation=sa.case((L.holder == holder, L.generation),
                                   else_=L.generation + 1),
                holder=holder, expires_at=_clock(now, ttl_seconds))
    )
    if res.rowcount == 1:
        return True
    got = db.session.execute(
        insert_or_ignore(L, ["name"], name=name, holder=holder,
                         expires_at=_clock(now, ttl_seconds), acquired_at=_clock(now),
                         generation=1)
        .returning(L.name)
    ).scalar()
    return got is not None


def renew(name: str, holder: str, ttl_seconds: float, *, now: datetime | None = None) -> bool:
    """Extend a lease ``holder`` still holds by ``ttl_seconds``; False once it lapsed or
    another took it. Unlike ``acquire`` it never takes the lease: a holder's renewing
    thread must not outlive its leadership (taking it back is ``acquire``'s, with the
    scheduler resumed to match).

    The row locked past ``LOCK_TIMEOUT_SECONDS`` (PostgreSQL): not extended, and True
    while the lease it has still runs, so the next renewal tries again; False once it
    lapsed meanwhile (the caller's lost lease, as any lapse)."""
    L = SchedulerLease
    try:
        renewed = bounded("renew", name, holder, lambda: db.session.execute(
            sa.update(L).where(L.name == name, L.holder == holder, L.expires_at >= _clock(now))
            .values(expires_at=_clock(now, ttl_seconds))).rowcount == 1)
    except RowLocked:
        renewed = _holds(name, holder, now)
    db.session.commit()
    return renewed


def fence(name: str, holder: str, generation: int) -> bool:
    """Whether ``holder`` still holds the lease it took as ``generation``, checked in the
    session's transaction and not committed: a unit of work commits only with this True.

    An UPDATE, not a SELECT: on PostgreSQL it locks the row until that commit, so a
    standby's takeover waits for it (SQLite's single writer does the same), and a unit
    cannot commit after another worker took the lease over.

    The row locked past ``LOCK_TIMEOUT_SECONDS`` (PostgreSQL), the hold is neither
    confirmed nor found lost: ``RowLocked`` is raised, the transaction left as it was
    before the check (usable, for the caller to roll back). It returned False, and a busy
    row was recorded as a lost lease.
    """
    L = SchedulerLease
    return bounded("fence", name, holder, lambda: db.session.execute(
        sa.update(L).where(L.name == name, L.holder == holder, L.generation == generation,
                           L.expires_at >= _clock(None))
        .values(generation=L.generation)
        .execution_options(synchronize_session=False)).rowcount == 1)


def release(name: str, holder: str, *, now: datetime | None = None) -> None:
    """Give the lease up now (graceful shutdown), so a standby need not wait for expiry.
    The row locked past ``LOCK_TIMEOUT_SECONDS`` (PostgreSQL), it is left to lapse."""
    L = SchedulerLease
    with suppress(RowLocked):
        bounded("release", name, holder, lambda: db.session.execute(
            sa.update(L).where(L.name == name, L.holder == holder)
            .values(expires_at=_clock(now, -1))))
    db.session.commit()


def holder_of(name: str, *, now: datetime | None = None) -> str | None:
    """The current, unexpired holder (for /readyz, metrics and the admin page)."""
    held = hold_of(name, now=now)
    return None if held is None else held[0]


def hold_of(name: str, *, now: datetime | None = None) -> tuple[str, int] | None:
    """The current, unexpired holder and its generation (the token ``fence`` checks)."""
    L = SchedulerLease
    row = db.session.execute(sa.select(L.holder, L.generation).where(
        L.name == name, L.expires_at >= _clock(now))).first()
    return None if row is None else (row.holder, row.generation)


def _holds(name: str, holder: str, now: datetime | None) -> bool:
    """Whether ``holder`` holds the unexpired lease as last committed (a read: it does not
    wait on the row's lock)."""
    held = hold_of(name, now=now)
    return held is not None and held[0] == holder
