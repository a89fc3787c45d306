"""Impressions: signed rec ids and a write-behind buffer so serving never waits on a commit.

A rec id is ``r<token>-<hex mac>``; item ``k`` of an answer is ``<rec id>.<k>``. The MAC binds
the token to the shop (HMAC with ``SECRET_KEY``), so an event can be attributed without a
database read and one shop's rec ids mean nothing in another. Rows are buffered per
process and inserted in one statement every ``API_IMPRESSION_FLUSH_SECONDS`` (default 1 s;
0 writes inside the request). A crash can lose the last second of impressions, never an
order or an event.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

from plugin.extensions import db
from plugin.models import Impression
from plugin.models.types import utcnow

log = logging.getLogger("shopkeeper.api.impressions")

DEFAULT_FLUSH_SECONDS = 1.0
MAX_BUFFERED = 10_000  # beyond this (database down) the oldest rows are dropped


def _mac(shop_id: str, token: str) -> str:
    key = ("shopkeeper-rec-id:" + current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, f"{shop_id}:{token}".encode(), hashlib.sha256).hexdigest()[:16]


def new_rec_id(shop_id: str) -> str:
    token = secrets.token_urlsafe(12)
    return f"r{token}-{_mac(shop_id, token)}"


def rec_id_valid(shop_id: str, rec_id: str) -> bool:
    """True when ``rec_id`` (an answer's or one item's) was issued for this shop."""
    head = rec_id.split(".", 1)[0]
    if not head.startswith("r") or "-" not in head:
        return False
    token, mac = head[1:].rsplit("-", 1)
    return hmac.compare_digest(mac, _mac(shop_id, token))


class ImpressionBuffer:
    """Rows waiting to be inserted, per app; one daemon thread per process flushes them."""

    def __init__(self) -> None:
        self._pending: dict[int, tuple[Flask, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._pid: int | None = None

    def add(self, app: Flask, row: dict[str, Any], interval: float) -> None:
        with self._lock:
            rows = self._pending.setdefault(id(app), (app, []))[1]
            rows.append(row)
            if len(rows) > MAX_BUFFERED:
                del rows[: len(rows) - MAX_BUFFERED]
            if self._pid != os.getpid():  # first use in this (possibly forked) process
                self._pid = os.getpid()
                threading.Thread(target=self._run, args=(interval,), daemon=True,
                                 name="impression-flush").start()

    def pending(self) -> int:
        with self._lock:
            return sum(len(rows) for _, rows in self._pending.values())

    def _run(self, interval: float) -> None:
        while True:
            time.sleep(interval)
            self.flush()

    def flush(self) -> int:
        """Insert everything buffered now; returns the number of rows written."""
        with self._lock:
            batches, self._pending = list(self._pending.values()), {}
        written = 0
        for app, rows in batches:
            if not rows:
                continue
            try:
                with app.app_context(), db.engine.begin() as conn:
                    conn.execute(_INSERT, rows)  # Core executemany: no ORM bookkeeping
                written += len(rows)
            except Exception as err:  # keep serving; retry these rows on the next flush
                log.warning("impressions.flush_failed",
                            extra={"rows": len(rows), "error_type": type(err).__name__})
                with self._lock:
                    self._pending.setdefault(id(app), (app, []))[1][:0] = rows
        return written


BUFFER = ImpressionBuffer()
atexit.register(BUFFER.flush)


_INSERT = sa.insert(Impression.__table__)


def record_impression(**row: Any) -> None:
    """Log one served answer (buffered unless ``API_IMPRESSION_FLUSH_SECONDS`` is 0)."""
    row.setdefault("created_at", utcnow())
    interval = float(current_app.config.get("API_IMPRESSION_FLUSH_SECONDS",
                                            DEFAULT_FLUSH_SECONDS))
    if interval <= 0:
        db.session.execute(sa.insert(Impression), [row])
        db.session.commit()
        return
    BUFFER.add(current_app._get_current_object(), row, interval)
