"""Persist an installation: create the shop or refresh an existing one's credentials."""

from __future__ import annotations

import sqlalchemy as sa

from connectors.base import Credentials
from plugin import shops
from plugin.extensions import db
from plugin.models import Shop
from plugin.models.types import utcnow

__all__ = ["upsert_installation"]


def upsert_installation(platform: str, domain: str, credentials: Credentials) -> tuple[Shop, bool]:
    """The shop for (platform, domain) holding ``credentials``; True when newly created.

    A reinstall after an uninstall reactivates the same shop, so its history is kept if
    the retention period has not erased it yet.
    """
    domain = domain.strip().lower()
    shop = db.session.scalar(sa.select(Shop).filter_by(platform=platform, domain=domain))
    if shop is None:
        return shops.create_shop(platform, domain, credentials), True
    if not credentials.webhook_secret and shop.installation is not None:
        previous = shop.installation.credentials_encrypted
        if previous is not None:
            credentials.webhook_secret = shops.credentials_for(shop).webhook_secret
    shops.save_credentials(shop, credentials)
    # this install starts now: an uninstall received or sent before it is an older one's
    shop.installation.installed_at = utcnow()  # type: ignore[union-attr]
    shop.status = "active"
    shop.uninstalled_at = None
    shops.audit(shop.id, "shop.reinstalled", platform=platform)
    return shop, False
