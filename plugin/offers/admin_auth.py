"""Merchant-only endpoints (the uplift report): a short-lived admin JWT, never the widget key.

The widget key is public, so the admin dashboard (or the merchant's backend) sends
``Authorization: Bearer <jwt>`` minted with the shop's webhook secret::

    jwt.encode({"shop": "<shop id>", "aud": "shopkeeper-admin", "iat": now,
                "exp": now + 300}, WEBHOOK_SECRET, algorithm="HS256")
"""

from __future__ import annotations

import time

import jwt

from plugin.errors import Unauthorized
from plugin.models import Shop
from plugin.shops import auth_secret

AUDIENCE = "shopkeeper-admin"
MAX_LIFETIME = 3600


def mint_admin_token(shop_id: str, secret: str, *, ttl_seconds: int = 300) -> str:
    """What the merchant's backend does (also used by tests)."""
    now = int(time.time())
    return jwt.encode({"shop": shop_id, "aud": AUDIENCE, "iat": now, "exp": now + ttl_seconds},
                      secret, algorithm="HS256")


def require_admin(shop: Shop, authorization: str | None) -> None:
    """Raise ``Unauthorized`` unless the bearer token is a valid admin token of ``shop``."""
    scheme, _, token = (authorization or "").partition(" ")
    secret = auth_secret(shop)
    if scheme.lower() != "bearer" or not token or not secret:
        raise Unauthorized("An admin token is required.")
    try:
        claims = jwt.decode(token.strip(), secret, algorithms=["HS256"], audience=AUDIENCE,
                            options={"require": ["exp", "iat", "aud", "shop"]})
    except jwt.PyJWTError:
        raise Unauthorized("An admin token is required.") from None
    if claims["shop"] != shop.id or int(claims["exp"]) - int(claims["iat"]) > MAX_LIFETIME:
        raise Unauthorized("An admin token is required.")
