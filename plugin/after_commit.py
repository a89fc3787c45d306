"""Work that must follow the session's transaction: files that go (or are written) with
rows, done once the rows commit and forgotten if they roll back (a failed delivery,
retried later, must find the files as it left them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from plugin.extensions import db

#: ``Session.info`` keys: the actions waiting for the commit, and whether the session's
#: listeners are in place.
_PENDING = "shopkeeper_after_commit"
_LISTENING = "shopkeeper_after_commit_listening"


def after_commit(action: Callable[[], None]) -> None:
    """Run ``action`` once the current session's transaction commits, in the order they
    were asked for; drop it if the transaction rolls back. A process stopping between the
    commit and the action leaves it undone: callers keep a sweep for that."""
    session = db.session()
    if not session.info.get(_LISTENING):
        event.listen(session, "after_commit", _run_pending)
        event.listen(session, "after_soft_rollback", _drop_pending)
        session.info[_LISTENING] = True
    session.info.setdefault(_PENDING, []).append(action)


def _run_pending(session: Session) -> None:
    for action in session.info.pop(_PENDING, ()):
        action()


def _drop_pending(session: Session, previous_transaction: Any) -> None:
    session.info.pop(_PENDING, None)  # rolled back: the files stay, as the rows do
