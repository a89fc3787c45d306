"""Signed offer tokens: an HS256 JWT bound to shop, shopper, cart contents, amount and expiry.

The header's ``kid`` names the per-shop key, so keys rotate without breaking live offers:
the caller passes every key that may still verify (active and retired). Every failure
raises ``OfferTokenInvalid``; nothing here returns False. Single use is enforced by the
offer row's status in the service, not by the token.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import jwt

ISSUER = "shopkeeper"
AUDIENCE = "shopkeeper-offer"
ALGORITHM = "HS256"
CLOCK_SKEW_SECONDS = 30


class OfferTokenInvalid(Exception):
    """The token does not prove this offer for this shop, shopper and cart."""


@dataclass(frozen=True)
class OfferClaims:
    offer_id: str
    shop_id: str
    shopper_id: str
    cart_hash: str
    amount: Decimal
    kind: str
    currency: str
    expires_at: datetime


def cart_hash(currency: str, lines: list[Mapping[str, Any]]) -> str:
    """Canonical hash of the cart contents: product, variant, quantity and unit price."""
    canon = sorted([str(ln["product_id"]), str(ln.get("variant_id") or ""), int(ln["quantity"]),
                    str(Decimal(str(ln["price"])).normalize())] for ln in lines)
    body = json.dumps([currency.upper(), canon], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def sign_offer(claims: OfferClaims, key: bytes, kid: str, *, now: datetime | None = None) -> str:
    """Encode the claims with the shop's current key."""
    issued = now or datetime.now(UTC)
    payload = {"iss": ISSUER, "aud": AUDIENCE, "jti": claims.offer_id, "shop": claims.shop_id,
               "sub": claims.shopper_id, "cart": claims.cart_hash,
               "amount": str(claims.amount), "kind": claims.kind,
               "currency": claims.currency, "iat": int(issued.timestamp()),
               "exp": int(claims.expires_at.timestamp())}
    return jwt.encode(payload, key, algorithm=ALGORITHM, headers={"kid": kid})


def verify_offer(token: str, keys: Mapping[str, bytes], *, shop_id: str, shopper_id: str,
                 cart: str, now: datetime | None = None) -> OfferClaims:
    """Check key, signature, expiry and every binding; raise ``OfferTokenInvalid`` if any fail."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        raise OfferTokenInvalid("malformed token") from None
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise OfferTokenInvalid("unknown or rotated-out key")
    current = now or datetime.now(UTC)
    try:
        data = jwt.decode(token, key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                          options={"require": ["exp", "iat", "jti", "sub"], "verify_exp": False,
                                   "verify_iat": False})
    except jwt.PyJWTError as err:
        raise OfferTokenInvalid(type(err).__name__) from None
    if int(data["exp"]) <= current.timestamp():
        raise OfferTokenInvalid("expired")
    if int(data["iat"]) > current.timestamp() + CLOCK_SKEW_SECONDS:
        raise OfferTokenInvalid("issued in the future")
    if data.get("shop") != shop_id:
        raise OfferTokenInvalid("offer of another shop")
    if data.get("sub") != shopper_id:
        raise OfferTokenInvalid("offer of another shopper")
    if data.get("cart") != cart:
        raise OfferTokenInvalid("cart changed since the offer")
    return OfferClaims(offer_id=str(data["jti"]), shop_id=shop_id, shopper_id=shopper_id,
                       cart_hash=cart, amount=Decimal(str(data["amount"])),
                       kind=str(data["kind"]), currency=str(data["currency"]),
                       expires_at=datetime.fromtimestamp(int(data["exp"]), tz=UTC))
