"""Consent: when a shop requires it, nothing personal is stored or used until granted."""

from __future__ import annotations

import sqlalchemy as sa

from plugin.api.access import AnyShop, settings_of
from plugin.api.identity import ShopperIdentity
from plugin.extensions import db
from plugin.models import ShopperConsent
from plugin.models.types import utcnow


def consent_required(shop: AnyShop) -> bool:
    return bool(settings_of(shop).get("consent_required", False))


def has_consent(shop: AnyShop, identity: ShopperIdentity) -> bool:
    """True when the shop does not ask, else the shopper's latest answer (default: no)."""
    if not consent_required(shop):
        return True
    if not identity.ids:
        return False
    latest = db.session.scalar(
        sa.select(ShopperConsent.granted)
        .where(ShopperConsent.shop_id == shop.id, ShopperConsent.shopper_id.in_(identity.ids))
        .order_by(ShopperConsent.updated_at.desc(), ShopperConsent.id.desc()).limit(1))
    return bool(latest)


def record_consent(shop: AnyShop, identity: ShopperIdentity, granted: bool) -> bool:
    """Store the answer for the browser id and, when verified, the customer id."""
    now = utcnow()
    for shopper_id in identity.ids:
        row = db.session.scalar(sa.select(ShopperConsent).filter_by(shop_id=shop.id,
                                                                   shopper_id=shopper_id))
        if row is None:
            db.session.add(ShopperConsent(shop_id=shop.id, shopper_id=shopper_id,
                                          granted=granted, updated_at=now))
        else:
            row.granted = granted
            row.updated_at = now
    db.session.commit()
    return granted
