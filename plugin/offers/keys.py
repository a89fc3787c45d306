"""Per-shop offer-signing keys with rotation; the key bytes are never stored.

A key is ``HMAC(SECRET_KEY, shop:kid:salt)``: the table holds only the random salt, so a
database dump alone cannot forge offers. Rotation makes a new active key and retires the
old one, which still verifies for ``RETIRED_GRACE`` (longer than any offer stands) and is
then rotated out. ``revoke`` drops a key at once (a suspected leak). Offers' discount codes
are derived the same way (``discount_code``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from plugin.extensions import db
from plugin.models import Offer, OfferKey
from plugin.models.types import utcnow
from plugin.shops import audit

RETIRED_GRACE = timedelta(days=1)


def _derive(shop_id: str, row: OfferKey) -> bytes:
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, f"offer-key:{shop_id}:{row.kid}:{row.salt}".encode(),
                    hashlib.sha256).digest()


def discount_code(offer: Offer) -> str:
    """The offer's platform discount code: the same on every attempt, guessable by no one.

    A create whose answer was lost may have made the discount; asking again with the same
    code lets the platform (or our lookup by code) hand back that one instead of a second.
    Derived once, at the offer's first claim, and stored on it (``Offer.code``): a rotated
    ``SECRET_KEY`` derives another code.
    """
    secret = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(secret, f"offer-code:{offer.shop_id}:{offer.public_id}".encode(),
                      hashlib.sha256).hexdigest()
    return "SK-" + digest[:10].upper()


def _new_key(shop_id: str) -> OfferKey:
    row = OfferKey(shop_id=shop_id, kid="k" + secrets.token_hex(6),
                   salt=secrets.token_hex(16), status="active")
    db.session.add(row)
    db.session.flush()
    return row


def signing_key(shop_id: str) -> tuple[str, bytes]:
    """The active key (created on first use)."""
    row = db.session.scalar(sa.select(OfferKey).where(
        OfferKey.shop_id == shop_id, OfferKey.status == "active").order_by(OfferKey.id.desc()))
    if row is None:
        row = _new_key(shop_id)
    return row.kid, _derive(shop_id, row)


def verification_keys(shop_id: str, *, now: datetime | None = None) -> dict[str, bytes]:
    """Active keys and retired ones still inside the grace period."""
    cutoff = (now or utcnow()) - RETIRED_GRACE
    rows = db.session.scalars(sa.select(OfferKey).where(OfferKey.shop_id == shop_id,
                                                        OfferKey.status != "revoked"))
    return {r.kid: _derive(shop_id, r) for r in rows
            if r.status == "active" or (r.retired_at is not None and r.retired_at > cutoff)}


def rotate(shop_id: str) -> str:
    """Retire the active key(s) and make a new one; returns the new ``kid``."""
    now = utcnow()
    for row in db.session.scalars(sa.select(OfferKey).where(
            OfferKey.shop_id == shop_id, OfferKey.status == "active")):
        row.status, row.retired_at = "retired", now
    kid = _new_key(shop_id).kid
    audit(shop_id, "offers.key_rotated", kid=kid)
    return kid


def revoke(shop_id: str, kid: str) -> None:
    """Stop a key verifying anything, immediately."""
    db.session.execute(sa.update(OfferKey).where(OfferKey.shop_id == shop_id,
                                                 OfferKey.kid == kid).values(status="revoked"))
    audit(shop_id, "offers.key_revoked", kid=kid)
