"""Which shop a request is for (public widget key) and which origins may call it (CORS).

The shop is read once per ``API_SHOP_CACHE_SECONDS`` per process (default 10 s) as a small
immutable ``ApiShop``: the hot path then costs no query, and a settings change (origins,
consent, holdout) reaches every worker within that time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Request, Response, current_app, g, make_response, request

from plugin.errors import Forbidden, NotFound
from plugin.extensions import db
from plugin.models import Shop
from plugin.shops import customer_token_secrets

KEY_PARAM = "key"
KEY_HEADER = "X-Shopkeeper-Key"
ALLOWED_HEADERS = ("Content-Type, X-Shopkeeper-Key, X-Shopkeeper-Shopper, "
                   "X-Shopkeeper-Customer-Token")
PREFLIGHT_MAX_AGE = 600
DEFAULT_SHOP_CACHE_SECONDS = 10.0


@dataclass(frozen=True)
class ApiShop:
    """What the shopper API needs of a shop, detached from any database session."""

    id: str
    platform: str
    settings: dict[str, Any]
    #: what customer tokens may be signed with (never logged; excluded from the repr)
    token_secrets: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def of(cls, shop: Shop) -> ApiShop:
        # no installation left: no secret, so no customer can be verified
        return cls(id=shop.id, platform=shop.platform, settings=dict(shop.settings or {}),
                   token_secrets=customer_token_secrets(shop))


#: Either form is accepted by the API helpers (other blueprints pass ORM shops).
AnyShop = ApiShop | Shop


def settings_of(shop: AnyShop) -> dict[str, Any]:
    return shop.settings or {}


def token_secrets_of(shop: AnyShop) -> tuple[str, ...]:
    """The secrets a customer token of the shop may be signed with: its customer-token
    secret, and for generic shops also its webhook secret (see ``customer_token_secrets``).
    """
    if isinstance(shop, ApiShop):
        return shop.token_secrets
    return customer_token_secrets(shop)


_lock = threading.Lock()
_shops: dict[str, tuple[float, ApiShop]] = {}


def widget_key(request: Request) -> str:
    """The key from the query (needed for CORS preflights) or the header."""
    return (request.args.get(KEY_PARAM) or request.headers.get(KEY_HEADER) or "").strip()


def shop_for_key(key: str) -> Shop:
    """The active shop owning ``key``; unknown and uninstalled look the same (404)."""
    shop = db.session.scalar(sa.select(Shop).where(Shop.widget_key == key)) if key else None
    if shop is None or shop.status != "active":
        raise NotFound("Unknown widget key.")
    return shop


def cached_shop_for_key(key: str) -> ApiShop:
    """``shop_for_key`` for the hot path: a detached copy, re-read after the TTL."""
    ttl = float(current_app.config.get("API_SHOP_CACHE_SECONDS", DEFAULT_SHOP_CACHE_SECONDS))
    now = time.monotonic()
    with _lock:
        hit = _shops.get(key)
    if hit is not None and now - hit[0] < ttl:
        return hit[1]
    try:
        api_shop = ApiShop.of(shop_for_key(key))
    except NotFound:
        with _lock:  # misses are not cached: no memory spent on junk keys
            _shops.pop(key, None)
        raise
    with _lock:
        _shops[key] = (now, api_shop)
    return api_shop


def forget_shops() -> None:
    """Drop the per-process shop cache (tests; after settings changes in this process)."""
    with _lock:
        _shops.clear()


def _normalise(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def origin_allowed(shop: AnyShop, origin: str) -> bool:
    """Exact match against ``Shop.settings["allowed_origins"]`` (scheme, host and port)."""
    allowed = {_normalise(o) for o in settings_of(shop).get("allowed_origins", [])}
    return _normalise(origin) in allowed


def enforce_origin(shop: AnyShop, origin: str | None) -> None:
    """A browser call from a foreign origin is refused outright, not only hidden by CORS.

    ``sendBeacon`` posts without a preflight, so CORS alone would not stop a foreign page
    from writing events. Requests without ``Origin`` (server to server) pass: the key is
    public anyway and grants nothing personal.
    """
    if origin and not origin_allowed(shop, origin):
        raise Forbidden("This origin may not call this shop's API.")


def add_cors_headers(response: Response, origin: str, *, preflight: bool = False) -> Response:
    """Echo the (already checked) origin; never ``*``, and ``Vary`` for shared caches."""
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers.add("Vary", "Origin")
    response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    if preflight:
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    return response


def open_gate(*, cached: bool = True, methods: str | None = None) -> Response | None:
    """``before_request`` of every shopper-facing blueprint: the shop by its public key,
    foreign browser origins refused, preflights answered (``methods`` overrides the
    allowed methods). ``cached`` reuses the per-process shop snapshot."""
    g.api_shop = None
    key = widget_key(request)
    shop = cached_shop_for_key(key) if cached else shop_for_key(key)
    origin = request.headers.get("Origin")
    enforce_origin(shop, origin)
    g.api_shop = shop
    if request.method != "OPTIONS":
        return None
    response = make_response("", 204)
    if origin:
        add_cors_headers(response, origin, preflight=True)
        if methods:
            response.headers["Access-Control-Allow-Methods"] = methods
    return response


def close_gate(response: Response) -> Response:
    """``after_request`` twin of ``open_gate``: CORS for allowed origins, never cached."""
    origin = request.headers.get("Origin")
    shop = g.get("api_shop")
    if origin and shop is not None and origin_allowed(shop, origin) \
            and "Access-Control-Allow-Origin" not in response.headers:
        add_cors_headers(response, origin)
    response.headers.setdefault("Cache-Control", "no-store")
    return response
