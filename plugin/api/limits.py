"""Rate limits per widget key and per client address, counted per view (``limits`` library).

Storage follows ``RATELIMIT_STORAGE_URI`` (default ``sk-memory://``, the in-process store
below; counters are per process, so with several gunicorn workers use ``redis://...`` for
exact limits). Behind a reverse proxy set ``PROXY_HOPS`` (the app then applies werkzeug's
``ProxyFix``), so ``remote_addr`` is the shopper's address, not the balancer's.

The decorators call ``limits`` directly (fixed window, the same strategy flask-limiter
uses by default): flask-limiter's per-request limit resolution, exemption scopes and
context bookkeeping cost more than the counting itself, on the hottest endpoint we have.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from plugin.api.access import widget_key
from plugin.errors import error_response

#: Defaults, overridable in the app config (``limits`` syntax, e.g. "300 per minute").
DEFAULT_PER_KEY = "6000 per minute"
DEFAULT_PER_CLIENT = "300 per minute"
DEFAULT_STORAGE_URI = "sk-memory://"
_EXTENSION = "shopkeeper.ratelimit"

View = TypeVar("View", bound=Callable[..., Any])


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


class RateLimited(Exception):
    """A limit of this view is used up; ``retry_after`` seconds until its window resets."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited; retry after {retry_after} s")
        self.retry_after = retry_after


def _rate_limited(err: RateLimited) -> Response:
    response = error_response(429, "Too many requests; retry later.")
    response.headers["Retry-After"] = str(err.retry_after)
    return response


def init_app(app: Flask) -> None:
    """One counter store and strategy per app; 429 answers in the common error shape."""
    if _EXTENSION in app.extensions:
        return
    app.config.setdefault("RATELIMIT_STORAGE_URI", DEFAULT_STORAGE_URI)
    storage = storage_from_string(app.config["RATELIMIT_STORAGE_URI"])
    app.extensions[_EXTENSION] = FixedWindowRateLimiter(storage)
    app.register_error_handler(RateLimited, _rate_limited)


def storage_of(app: Flask) -> Storage:
    return app.extensions[_EXTENSION].storage


@lru_cache(maxsize=64)
def _parse(spec: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(spec))


def check(spec: str, scope: str, key: str) -> None:
    """Count one call of ``key`` in ``scope``; raise ``RateLimited`` when over ``spec``."""
    strategy: FixedWindowRateLimiter = current_app.extensions[_EXTENSION]
    for item in _parse(spec):
        if not strategy.hit(item, scope, key):
            reset = strategy.get_window_stats(item, scope, key).reset_time
            raise RateLimited(max(1, int(reset - time.time()) + 1))


def _limited(config_key: str, default: str, key_of: Callable[[], str]) -> Callable[[View], View]:
    def decorator(view: View) -> View:
        @wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            spec = str(current_app.config.get(config_key, default))
            check(spec, request.endpoint or view.__name__, key_of())
            return view(*args, **kwargs)

        return limited  # type: ignore[return-value]

    return decorator


def _client() -> str:
    return "client:" + (request.remote_addr or "unknown")


def _key() -> str:
    return "key:" + (widget_key(request) or "-")


#: Decorators applied to every shopper-facing view (each view counts separately).
per_key = _limited("API_RATE_LIMIT_PER_KEY", DEFAULT_PER_KEY, _key)
per_client = _limited("API_RATE_LIMIT_PER_CLIENT", DEFAULT_PER_CLIENT, _client)
#: Shopify's app proxy: every shopper arrives from Shopify's addresses, so there the shop
#: (``g.api_shop``, resolved from the signed query) takes the widget key's limit, and no
#: per-client limit applies (it would be one bucket for every Shopify store's shoppers).
per_shop = _limited("API_RATE_LIMIT_PER_KEY", DEFAULT_PER_KEY, lambda: "shop:" + g.api_shop.id)
#: Accepting an offer creates a real discount and spends budget: anonymous ids cost nothing
#: to invent, so one client address may only accept a few an hour.
DEFAULT_OFFER_ACCEPTS = "20 per hour"
offer_accepts = _limited("OFFER_ACCEPTS_PER_CLIENT", DEFAULT_OFFER_ACCEPTS,
                         lambda: "accepts:" + _client())
#: ... and through Shopify's app proxy, where no shopper's address is known: a customer
#: Shopify signed in for is counted alone, with the per-address figure (their id cannot be
#: invented), while anonymous shoppers, whose ids can, share one bucket per shop, so that
#: one of them cannot use up the signed-in customers' accepts (the offers' daily and
#: monthly budgets bound the spend too).
DEFAULT_PROXIED_OFFER_ACCEPTS = "300 per hour"


def proxied_offer_accepts(view: View) -> View:
    @wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        customer = (g.proxy_params.get("logged_in_customer_id") or "").strip()
        if customer:
            spec = str(current_app.config.get("OFFER_ACCEPTS_PER_CLIENT", DEFAULT_OFFER_ACCEPTS))
            key = f"accepts:shop:{g.api_shop.id}:customer:{customer}"
        else:
            spec = str(current_app.config.get("OFFER_ACCEPTS_PER_PROXIED_SHOP",
                                              DEFAULT_PROXIED_OFFER_ACCEPTS))
            key = f"accepts:shop:{g.api_shop.id}:anonymous"
        check(spec, request.endpoint or view.__name__, key)
        return view(*args, **kwargs)

    return limited  # type: ignore[return-value]


#: Saleor's /api/register is unauthenticated and calls out to the URL it is given (up to
#: 15 s): one client address may not tie up the workers' threads with it.
DEFAULT_SALEOR_REGISTER = "10 per minute"
saleor_register = _limited("SALEOR_REGISTER_PER_CLIENT", DEFAULT_SALEOR_REGISTER,
                           lambda: "register:" + _client())
