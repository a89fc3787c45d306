"""Optional Redis in front of the precomputed recommendations.

Without ``REDIS_URL`` every call is a miss and nothing else changes. When Redis is down or
slow, a call fails fast (short socket timeouts), the failure opens a breaker for
``REDIS_RETRY_SECONDS`` so later requests skip Redis entirely, and serving falls back to the
database: Redis can make serving faster, never make it fail.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from flask import current_app
from sqlalchemy import event

from plugin.extensions import db

log = logging.getLogger("shopkeeper.cache")

_clients: dict[str, Any] = {}
_open_until: dict[str, float] = {}
_lock = threading.Lock()


def _client():
    url = current_app.config.get("REDIS_URL") or ""
    if not url:
        return None, url
    if time.monotonic() < _open_until.get(url, 0.0):
        return None, url  # breaker open: Redis failed recently
    with _lock:
        client = _clients.get(url)
        if client is None:
            import redis

            client = redis.Redis.from_url(url, socket_timeout=0.05,
                                          socket_connect_timeout=0.05)
            _clients[url] = client
    return client, url


def _trip(url: str, err: Exception) -> None:
    retry = float(current_app.config.get("REDIS_RETRY_SECONDS", 30))
    first = time.monotonic() >= _open_until.get(url, 0.0)
    _open_until[url] = time.monotonic() + retry
    if first:
        log.warning("cache.redis_unavailable", extra={"error_type": type(err).__name__})


def get_json(key: str) -> Any | None:
    """The cached value, or None on a miss, without Redis, or when Redis is failing."""
    client, url = _client()
    if client is None:
        return None
    try:
        raw = client.get(key)
    except Exception as err:  # redis.RedisError, OSError: degrade, never raise
        _trip(url, err)
        return None
    return None if raw is None else json.loads(raw)


def set_json(key: str, value: Any, ttl_seconds: int) -> None:
    """Store ``value`` for ``ttl_seconds``; silently skipped when Redis is unavailable."""
    client, url = _client()
    if client is None:
        return
    try:
        client.setex(key, ttl_seconds, json.dumps(value, default=str))
    except Exception as err:
        _trip(url, err)


def delete(*keys: str) -> None:
    """Invalidate keys (after retraining or a privacy erasure)."""
    client, url = _client()
    if client is None or not keys:
        return
    try:
        client.delete(*keys)
    except Exception as err:
        _trip(url, err)


#: Keys ``delete_after_commit`` deletes again when the session commits (``Session.info``).
_PENDING = "shopkeeper_cache_delete_after_commit"


def delete_after_commit(*keys: str) -> None:
    """Invalidate keys now and again once the session's transaction commits.

    Until the commit, another request still reads the rows being deleted (an erased
    customer's cached list, a list a new order made stale) and may put them back in Redis,
    where they would be served for their whole TTL. Deleting again after the commit closes
    that window; a rollback leaves the keys for the next commit, which does no harm.
    """
    delete(*keys)
    session = db.session()
    pending: set[str] = session.info.setdefault(_PENDING, set())
    if not pending:
        event.listen(session, "after_commit", _delete_pending, once=True)
    pending.update(keys)


def _delete_pending(session: Any) -> None:
    delete(*session.info.pop(_PENDING, set()))


def delete_prefix(prefix: str) -> None:
    """Delete every key starting with ``prefix`` (an erased shop's cached lists, keyed by
    shoppers no table names any more); skipped, like every call, without Redis."""
    client, url = _client()
    if client is None or not prefix:
        return
    escaped = "".join(f"\\{c}" if c in "*?[]\\" else c for c in prefix)
    try:
        batch: list[Any] = []
        for key in client.scan_iter(match=escaped + "*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
    except Exception as err:
        _trip(url, err)


def reset() -> None:
    """Forget clients and breaker state (tests)."""
    _clients.clear()
    _open_until.clear()
