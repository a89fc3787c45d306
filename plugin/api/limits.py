"""Rate limits per widget key and per client address (flask-limiter).

Storage follows ``RATELIMIT_STORAGE_URI`` (default ``memory://``: counters are per process,
so with several gunicorn workers use ``redis://...`` for exact limits). Behind a reverse
proxy, wrap the app in ``ProxyFix`` so ``remote_addr`` is the shopper's address.
"""

from __future__ import annotations

from flask import current_app, request
from flask_limiter import Limiter

from plugin.api.access import widget_key

#: Defaults, overridable in the app config (flask-limiter syntax).
DEFAULT_PER_KEY = "6000 per minute"
DEFAULT_PER_CLIENT = "300 per minute"


def _client() -> str:
    return "client:" + (request.remote_addr or "unknown")


def _key() -> str:
    return "key:" + (widget_key(request) or "-")


def _per_key_limit() -> str:
    return str(current_app.config.get("API_RATE_LIMIT_PER_KEY", DEFAULT_PER_KEY))


def _per_client_limit() -> str:
    return str(current_app.config.get("API_RATE_LIMIT_PER_CLIENT", DEFAULT_PER_CLIENT))


limiter = Limiter(key_func=_client, headers_enabled=True, default_limits=[])

#: Decorators applied to every ``/api/v1`` view.
per_key = limiter.limit(_per_key_limit, key_func=_key)
per_client = limiter.limit(_per_client_limit, key_func=_client)
