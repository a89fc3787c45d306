"""Signed discount tokens: the generic store has no discount API, so we sign the offer.

The token is a JWT (HS256, keyed with the shop's webhook secret) whose claims carry the
discount spec. The storefront verifies it before applying the code; see PROTOCOL.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import jwt

from connectors.errors import SignatureInvalid
from connectors.records import DiscountRef, DiscountSpec

__all__ = ["AUDIENCE", "ISSUER", "sign_discount", "verify_discount"]

ISSUER = "shopkeeper"
AUDIENCE = "shopkeeper-discount"


def sign_discount(secret: str, spec: DiscountSpec, *, now: datetime | None = None) -> DiscountRef:
    """Encode ``spec`` as an expiring HS256 token the storefront can check offline."""
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(issued.timestamp()),
        "exp": int(spec.expires_at.timestamp()),
        "code": spec.code,
        "kind": spec.kind,
        "value": str(spec.value),
        "currency": spec.currency,
        "usage_limit": spec.usage_limit,
        "customer_id": spec.customer_id,
        "product_ids": list(spec.product_ids),
        "min_subtotal": None if spec.min_subtotal is None else str(spec.min_subtotal),
    }
    token = jwt.encode(claims, secret, algorithm="HS256")
    return DiscountRef(platform_id=token, code=spec.code, expires_at=spec.expires_at)


def verify_discount(secret: str, token: str, *, leeway: float = 0) -> DiscountSpec:
    """Reference verifier (what a storefront does): signature, audience, expiry, then spec."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=leeway,
            options={"require": ["exp", "aud", "iss", "code"]},
        )
    except jwt.PyJWTError as exc:
        raise SignatureInvalid(f"discount token rejected: {type(exc).__name__}") from None
    return DiscountSpec(
        code=claims["code"],
        kind=claims["kind"],
        value=Decimal(claims["value"]),
        expires_at=datetime.fromtimestamp(claims["exp"], tz=UTC),
        currency=claims.get("currency"),
        usage_limit=int(claims.get("usage_limit", 1)),
        customer_id=claims.get("customer_id"),
        product_ids=tuple(claims.get("product_ids") or ()),
        min_subtotal=Decimal(minimum) if (minimum := claims.get("min_subtotal")) else None,
    )
