"""Rate limits per widget key and per client address (flask-limiter).

Storage follows ``RATELIMIT_STORAGE_URI`` (default ``sk-memory://``, the in-process store
below; counters are per process, so with several gunicorn workers use ``redis://...`` for
exact limits). Behind a reverse
proxy, wrap the app in ``ProxyFix`` so ``remote_addr`` is the shopper's address.
"""

from __future__ import annotations

import os
import threading
import time

from flask import current_app, request
from flask_limiter import Limiter
from limits.storage import MemoryStorage

from plugin.api.access import widget_key

#: Defaults, overridable in the app config (flask-limiter syntax).
DEFAULT_PER_KEY = "6000 per minute"
DEFAULT_PER_CLIENT = "300 per minute"


DEFAULT_STORAGE_URI = "sk-memory://"


class SweptMemoryStorage(MemoryStorage):
    """``memory://`` with one sweeper thread per process instead of a new timer thread per
    hit (limits starts one whenever its 10 ms timer has expired: measurable at load).

    Correctness does not depend on the sweep: counters expire lazily on read.
    """

    STORAGE_SCHEME = ["sk-memory"]  # registers the scheme with ``limits``
    SWEEP_SECONDS = 1.0

    _sweeper_pid: int | None = None

    def _MemoryStorage__schedule_expiry(self) -> None:  # overrides the parent's private hook
        if self._sweeper_pid != os.getpid():
            self._sweeper_pid = os.getpid()
            threading.Thread(target=self._sweep, daemon=True, name="ratelimit-sweep").start()

    def _sweep(self) -> None:
        while True:
            time.sleep(self.SWEEP_SECONDS)
            self._MemoryStorage__expire_events()


def _client() -> str:
    return "client:" + (request.remote_addr or "unknown")


def _key() -> str:
    return "key:" + (widget_key(request) or "-")


def _per_key_limit() -> str:
    return str(current_app.config.get("API_RATE_LIMIT_PER_KEY", DEFAULT_PER_KEY))


def _per_client_limit() -> str:
    return str(current_app.config.get("API_RATE_LIMIT_PER_CLIENT", DEFAULT_PER_CLIENT))


# Headers are added by ``retry_after`` on 429 answers only (the library's would put a
# ``Retry-After`` on every 200 too).
limiter = Limiter(key_func=_client, headers_enabled=False, default_limits=[])


def retry_after_seconds() -> int:
    """Seconds until the breached limit's window resets (at least 1)."""
    current = limiter.current_limit
    if current is None:
        return 1
    return max(1, int(current.reset_at - time.time()) + 1)

#: Decorators applied to every ``/api/v1`` view.
per_key = limiter.limit(_per_key_limit, key_func=_key)
per_client = limiter.limit(_per_client_limit, key_func=_client)
