"""Deleting spent discounts from the platform.

Every accepted offer leaves a single-use code on the platform (a Shopify code discount, a
Saleor voucher, a Vendure promotion and its one-customer group). Once the offer has
expired unused, the code can never be used again, but it still fills the merchant's
discount list, and Vendure weighs every promotion on every order change. Redeemed codes
stay: they belong to an order's history.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import requests
import sqlalchemy as sa

from connectors.errors import ConnectorError, PermissionDenied, RateLimited
from connectors.records import DiscountRef
from plugin.extensions import db
from plugin.models import Offer, Shop
from plugin.models.types import utcnow
from plugin.offers import permissions
from plugin.shops import connector_for

log = logging.getLogger("shopkeeper.offers.cleanup")

#: Discounts deleted per shop per run (the job runs every few minutes).
BATCH = 50
#: A discount the platform keeps refusing to delete is given up after this long.
GIVE_UP_AFTER = timedelta(days=30)


def delete_spent_discounts(shop: Shop, *, now: datetime | None = None,
                           session: requests.Session | None = None) -> int:
    """Delete the platform discounts of the shop's expired, unused offers; returns how many.

    A deleted discount's offer forgets its platform reference, so each is deleted once.
    One the platform refuses stays for the next run; a rate limit ends this run, and so
    does a permission refusal, after noting for the merchant what the credentials lack
    (``permissions.check_cleanup``): every further delete would be refused too.
    """
    now = now or utcnow()
    offers = db.session.scalars(sa.select(Offer).where(
        Offer.shop_id == shop.id, Offer.status == "expired", Offer.platform_ref.is_not(None),
        Offer.expires_at > now - GIVE_UP_AFTER)
        # newest first: discounts the platform keeps refusing sink to the back and cannot
        # take every place in the batch from the ones that can still be deleted
        .order_by(Offer.expires_at.desc(), Offer.id.desc()).limit(BATCH)).all()
    if not offers:
        return 0
    connector = connector_for(shop, session=session)
    deleted = 0
    for offer in offers:
        try:
            connector.delete_discount(DiscountRef(offer.platform_ref or "", offer.code or "",
                                                  offer.expires_at or now))
        except RateLimited:
            break
        except PermissionDenied:
            permissions.check_cleanup(shop, connector, now=now)
            break
        except ConnectorError as err:
            log.warning("offers.discount_delete_failed", extra={
                "shop_id": shop.id, "offer": offer.public_id, "error": type(err).__name__})
            continue
        offer.platform_ref = None
        deleted += 1
    db.session.commit()
    return deleted
