"""Server-side handles for admin sessions, and single-use sign-in links.

Flask's session is a signed cookie: valid for whoever holds a copy until it expires. The
cookie now carries only a random handle whose row here says the session is live, so
signing out ends it for every copy, and an idle session ends on the server too. A used
sign-in link's nonce is kept until the link would have expired, so it signs in once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from plugin.extensions import db, insert_or_ignore
from plugin.models import AdminLinkUse, AdminSession
from plugin.models.types import utcnow

#: ``last_seen_at`` is written at most this often (not on every page view).
TOUCH_EVERY = timedelta(minutes=1)


def _key(handle: str) -> str:
    return hashlib.sha256(handle.encode()).hexdigest()


def _idle_limit() -> timedelta:
    return current_app.permanent_session_lifetime


def open_session(shop_id: str, via: str, *, now: datetime | None = None) -> str:
    """A new live session for ``shop_id``: returns the handle for the cookie. Sessions idle
    longer than the session lifetime (any shop) are purged here. The caller commits."""
    now = now or utcnow()
    purge(now)
    handle = secrets.token_urlsafe(32)
    db.session.add(AdminSession(id=_key(handle), shop_id=shop_id, via=via, created_at=now,
                                last_seen_at=now))
    return handle


def is_live(handle: str | None, shop_id: str, *, now: datetime | None = None) -> bool:
    """True when ``handle`` names a session of ``shop_id`` that was not signed out nor left
    idle too long; keeps it alive (commits when it records the visit)."""
    if not handle:
        return False
    now = now or utcnow()
    key = _key(handle)
    row = db.session.execute(sa.select(AdminSession.shop_id, AdminSession.last_seen_at)
                             .where(AdminSession.id == key)).first()
    if row is None or row.shop_id != shop_id:
        return False
    # statements, not ORM flushes: a sign-out deleting the row meanwhile is no error
    if row.last_seen_at < now - _idle_limit():
        db.session.execute(sa.delete(AdminSession).where(AdminSession.id == key))
        db.session.commit()
        return False
    if now - row.last_seen_at >= TOUCH_EVERY:
        db.session.execute(sa.update(AdminSession).where(AdminSession.id == key)
                           .values(last_seen_at=now))
        db.session.commit()
    return True


def close_session(handle: str | None) -> None:
    """End the session server-side (sign-out): copies of its cookie stop working. The
    caller commits."""
    if handle:
        db.session.execute(sa.delete(AdminSession).where(AdminSession.id == _key(handle)))


def claim_link(nonce: str, shop_id: str, expires_at: datetime) -> bool:
    """Record a sign-in link as used: False when it was used before (the unique nonce
    decides between two clicks at once). The caller commits."""
    purge()
    inserted = db.session.execute(insert_or_ignore(
        AdminLinkUse, ["nonce"], nonce=nonce, shop_id=shop_id, expires_at=expires_at,
        used_at=utcnow()).returning(AdminLinkUse.nonce)).first()
    return inserted is not None


def link_used(nonce: str) -> bool:
    """Whether a sign-in link was used already (a read: ``claim_link`` decides a race)."""
    return db.session.scalar(sa.select(AdminLinkUse.nonce).where(
        AdminLinkUse.nonce == nonce)) is not None


def purge(now: datetime | None = None) -> None:
    """Forget idle sessions and used links past their expiry (they open nothing anymore)."""
    now = now or utcnow()
    db.session.execute(sa.delete(AdminSession)
                       .where(AdminSession.last_seen_at < now - _idle_limit()))
    db.session.execute(sa.delete(AdminLinkUse).where(AdminLinkUse.expires_at < now))
