"""A database lease so exactly one worker runs the scheduler; a standby takes over when the
holder stops renewing (crash, kill -9, network split) within the lease time.

Expiry is set and compared on the database's clock (``db_clock``): with each worker's own,
one whose clock runs ahead saw a live lease as expired and took it, and two ran the jobs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from plugin.db_clock import db_utcnow
from plugin.extensions import db, insert_or_ignore
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
    """
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
        db.session.commit()
        return True
    got = db.session.execute(
        insert_or_ignore(L, ["name"], name=name, holder=holder,
                         expires_at=_clock(now, ttl_seconds), acquired_at=_clock(now),
                         generation=1)
        .returning(L.name)
    ).scalar()
    db.session.commit()
    return got is not None


def renew(name: str, holder: str, ttl_seconds: float, *, now: datetime | None = None) -> bool:
    """Extend a lease ``holder`` still holds by ``ttl_seconds``; False once it lapsed or
    another took it. Unlike ``acquire`` it never takes the lease: a holder's renewing
    thread must not outlive its leadership (taking it back is ``acquire``'s, with the
    scheduler resumed to match)."""
    L = SchedulerLease
    res = db.session.execute(
        sa.update(L).where(L.name == name, L.holder == holder, L.expires_at >= _clock(now))
        .values(expires_at=_clock(now, ttl_seconds)))
    db.session.commit()
    return res.rowcount == 1


def fence(name: str, holder: str, generation: int) -> bool:
    """Whether ``holder`` still holds the lease it took as ``generation``, checked in the
    session's transaction and not committed: a unit of work commits only with this True.

    An UPDATE, not a SELECT: on PostgreSQL it locks the row until that commit, so a
    standby's takeover waits for it (SQLite's single writer does the same), and a unit
    cannot commit after another worker took the lease over.
    """
    L = SchedulerLease
    res = db.session.execute(
        sa.update(L).where(L.name == name, L.holder == holder, L.generation == generation,
                           L.expires_at >= _clock(None))
        .values(generation=L.generation)
        .execution_options(synchronize_session=False))
    return res.rowcount == 1


def release(name: str, holder: str, *, now: datetime | None = None) -> None:
    """Give the lease up now (graceful shutdown), so a standby need not wait for expiry."""
    L = SchedulerLease
    db.session.execute(sa.update(L).where(L.name == name, L.holder == holder)
                       .values(expires_at=_clock(now, -1)))
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
