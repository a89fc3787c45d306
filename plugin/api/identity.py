"""Who is asking: an anonymous first-party id, upgraded to a customer only by a signed token.

The storefront's backend mints the customer token (HS256 JWT) with the shop's
customer-token secret (per shop, on every platform; shown on the admin settings page,
where it can be rotated)::

    import jwt, time
    now = int(time.time())
    token = jwt.encode({"sub": "<customer id>", "shop": "<shop id>", "iat": now,
                        "exp": now + 3600}, CUSTOMER_TOKEN_SECRET, algorithm="HS256")

A generic shop's webhook secret is accepted too (its storefronts signed with it before).
No other platform's webhook secret is: a Shopify shop's is the app's client secret, the
same for every Shopify shop.

Anything wrong with the token (missing, forged, expired, another shop's, lifetime over
24 h) downgrades the request to the anonymous shopper: never an error, never another
customer's data. The anonymous id itself can never name a customer, because it must match
``anon_<22 urlsafe chars>`` and customer ids are only taken from verified tokens.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import jwt

from plugin.api.access import AnyShop, token_secrets_of

log = logging.getLogger("shopkeeper.api.identity")

ANON_ID = re.compile(r"anon_[A-Za-z0-9_-]{22}\Z")  # \Z: no final newline
SHOPPER_HEADER = "X-Shopkeeper-Shopper"
TOKEN_HEADER = "X-Shopkeeper-Customer-Token"
MAX_TOKEN_LIFETIME = 24 * 3600
LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class ShopperIdentity:
    """The anonymous browser id (if valid) and the verified customer id (if any)."""

    anonymous_id: str | None = None
    customer_id: str | None = None

    @property
    def key(self) -> str | None:
        """The id events and recommendations are keyed by: the customer when verified."""
        return self.customer_id or self.anonymous_id

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(i for i in (self.customer_id, self.anonymous_id) if i)


class InvalidCustomerToken(Exception):
    """The token does not prove a customer of this shop (reason in the message)."""


def mint_customer_token(shop_id: str, secret: str, customer_id: str, *,
                        ttl_seconds: int = 3600, now: int | None = None) -> str:
    """What a storefront backend does (also used by tests and the demo)."""
    issued = int(time.time()) if now is None else now
    return jwt.encode({"sub": str(customer_id), "shop": shop_id, "iat": issued,
                       "exp": issued + ttl_seconds}, secret, algorithm="HS256")


def verify_customer_token(shop: AnyShop, token: str) -> str:
    """The customer id the token proves for ``shop``; raises ``InvalidCustomerToken``."""
    return _verified_claims(shop, token)["sub"]


def _verified_claims(shop: AnyShop, token: str) -> dict:
    secrets = token_secrets_of(shop)
    if not secrets:
        raise InvalidCustomerToken("shop has no secret")
    claims: dict | None = None
    for secret in secrets:  # the customer-token secret first; a bad signature tries the next
        try:
            claims = jwt.decode(token, secret, algorithms=["HS256"], leeway=LEEWAY_SECONDS,
                                options={"require": ["sub", "shop", "exp", "iat"]})
            break
        except jwt.InvalidSignatureError as err:
            failed: jwt.PyJWTError = err
        except jwt.PyJWTError as err:
            raise InvalidCustomerToken(type(err).__name__) from None
    if claims is None:
        raise InvalidCustomerToken(type(failed).__name__) from None
    if claims["shop"] != shop.id:
        raise InvalidCustomerToken("token for another shop")
    if not isinstance(claims["sub"], str) or not claims["sub"]:
        raise InvalidCustomerToken("bad subject")
    if int(claims["exp"]) - int(claims["iat"]) > MAX_TOKEN_LIFETIME:
        raise InvalidCustomerToken("lifetime over 24 h")
    return claims


_verified_lock = threading.Lock()
_verified: OrderedDict[tuple[str, str, str], tuple[str, float]] = OrderedDict()
VERIFIED_CACHE_SIZE = 4096


def _cached_customer(shop: AnyShop, token: str) -> str:
    """``verify_customer_token`` remembered per process until the token's own expiry.

    A storefront sends the same token on every call of a visit; only exact token strings
    of this shop that verified before are remembered, so nothing weaker is ever accepted.
    """
    key = (shop.id, "\0".join(token_secrets_of(shop)), token)  # rotated: a cache miss
    now = time.time()
    with _verified_lock:
        hit = _verified.get(key)
        if hit is not None and hit[1] > now:
            _verified.move_to_end(key)
            return hit[0]
    claims = _verified_claims(shop, token)
    customer_id, exp = claims["sub"], float(claims["exp"])
    with _verified_lock:
        _verified[key] = (customer_id, exp)
        while len(_verified) > VERIFIED_CACHE_SIZE:
            _verified.popitem(last=False)
    return customer_id


def forget_verified_tokens() -> None:
    """Forget remembered tokens (after rotating a shop's secret in this process; tests)."""
    with _verified_lock:
        _verified.clear()


def resolve_identity(shop: AnyShop, headers: Mapping[str, str]) -> ShopperIdentity:
    """Read the shopper headers; invalid parts are dropped, never trusted."""
    anonymous = (headers.get(SHOPPER_HEADER) or "").strip()
    anonymous_id = anonymous if ANON_ID.fullmatch(anonymous) else None
    token = (headers.get(TOKEN_HEADER) or "").strip()
    customer_id = None
    if token:
        try:
            customer_id = _cached_customer(shop, token)
        except InvalidCustomerToken as err:
            log.info("api.customer_token_rejected", extra={"shop_id": shop.id,
                                                           "reason": str(err)})
    return ShopperIdentity(anonymous_id=anonymous_id, customer_id=customer_id)
