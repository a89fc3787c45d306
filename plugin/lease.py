"""A database lease so exactly one worker runs the scheduler; a standby takes over when the
holder stops renewing (crash, kill -9, network split) within the lease time."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from plugin.extensions import db, insert_or_ignore
from plugin.models import SchedulerLease
from plugin.models.types import utcnow


def acquire(name: str, holder: str, ttl_seconds: float, *, now: datetime | None = None) -> bool:
    """Take or renew the lease; True when ``holder`` holds it until ``now + ttl``.

    One conditional UPDATE (free or already ours), else an INSERT that loses quietly to a
    concurrent winner: atomic on SQLite and PostgreSQL without advisory locks.
    """
    now = now or utcnow()
    expires = now + timedelta(seconds=ttl_seconds)
    L = SchedulerLease
    res = db.session.execute(
        sa.update(L)
        .where(L.name == name, sa.or_(L.holder == holder, L.expires_at < now))
        .values(acquired_at=sa.case((L.holder == holder, L.acquired_at), else_=now),
                holder=holder, expires_at=expires)
    )
    if res.rowcount == 1:
        db.session.commit()
        return True
    got = db.session.execute(
        insert_or_ignore(L, ["name"], name=name, holder=holder, expires_at=expires,
                         acquired_at=now).returning(L.name)
    ).scalar()
    db.session.commit()
    return got is not None


def release(name: str, holder: str) -> None:
    """Give the lease up now (graceful shutdown), so a standby need not wait for expiry."""
    L = SchedulerLease
    db.session.execute(sa.update(L).where(L.name == name, L.holder == holder)
                       .values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()


def holder_of(name: str, *, now: datetime | None = None) -> str | None:
    """The current, unexpired holder (for /readyz, metrics and the admin page)."""
    row = db.session.get(SchedulerLease, name)
    if row is None or row.expires_at < (now or utcnow()):
        return None
    return row.holder
