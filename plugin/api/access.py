"""Which shop a request is for (public widget key) and which origins may call it (CORS)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Request, Response

from plugin.errors import Forbidden, NotFound
from plugin.extensions import db
from plugin.models import Shop

KEY_PARAM = "key"
KEY_HEADER = "X-Shopkeeper-Key"
ALLOWED_HEADERS = ("Content-Type, X-Shopkeeper-Key, X-Shopkeeper-Shopper, "
                   "X-Shopkeeper-Customer-Token")
PREFLIGHT_MAX_AGE = 600


def widget_key(request: Request) -> str:
    """The key from the query (needed for CORS preflights) or the header."""
    return (request.args.get(KEY_PARAM) or request.headers.get(KEY_HEADER) or "").strip()


def shop_for_key(key: str) -> Shop:
    """The active shop owning ``key``; unknown and uninstalled look the same (404)."""
    shop = db.session.scalar(sa.select(Shop).where(Shop.widget_key == key)) if key else None
    if shop is None or shop.status != "active":
        raise NotFound("Unknown widget key.")
    return shop


def _normalise(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def origin_allowed(shop: Shop, origin: str) -> bool:
    """Exact match against ``Shop.settings["allowed_origins"]`` (scheme, host and port)."""
    allowed = {_normalise(o) for o in (shop.settings or {}).get("allowed_origins", [])}
    return _normalise(origin) in allowed


def enforce_origin(shop: Shop, origin: str | None) -> None:
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
