"""Which offer amounts the shop's platform can honour, known without asking it at quote time.

Every offer becomes amounts on the platform (a fixed value or a shipping cap, and the cart's
subtotal as the minimum: ``service.discount_spec``). Most platforms take them in the offer's
currency; one that keeps bare numbers applied in the order's currency (Vendure:
``Connector.amounts_keep_currency`` False) gives the amount in any currency the shop sells,
so it is exact only where the shop sells the offer's currency alone, or where the platform
limits each discount to orders in its own currency (``Connector.pins_order_currency``: the
Vendure plugin's currency condition), then in every currency the shop sells. Both are
read from the platform at each sync (at most every ``MAX_AGE``) and kept in
``Shop.settings[KEY]``; until it was read, such a shop is quoted nothing (unknown is unsafe).
The connector checks again when the discount is created, so a stale reading only costs a
refused accept.

The sold currencies are read for every platform that can name them (Shopify's presentment
currencies, the Saleor channel's): the settings page lists a row of money guardrails for
each (``plugin.admin.settings.other_currencies``). Where amounts keep their currency the
reading changes no offer.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import connectors
from connectors.base import Connector
from connectors.errors import ConnectorError
from plugin import shops
from plugin.models import Shop
from plugin.models.types import utcnow

log = logging.getLogger("shopkeeper.offers")

#: ``Shop.settings`` key: ``{"sold": [currencies], "pinned": bool, "read_at": ISO 8601 UTC,
#: "tried_at": ISO 8601 UTC}`` (``pinned`` absent in readings stored before it was read:
#: False; ``tried_at``: the last attempt that failed, kept beside the reading before it,
#: or alone when there was none).
KEY = "sold_currencies"
#: A reading older than this is read again by the next sync (every 30 min); a failed
#: attempt waits as long before the next.
MAX_AGE = timedelta(hours=1)


def amount_currencies(shop: Shop) -> frozenset[str] | None:
    """The currencies an offer's amounts are exact in on the shop's platform.

    None: any (the platform keeps the offer's currency). Otherwise every sold currency
    where the platform pins a discount to its currency, else the shop's one sold currency;
    nothing when it sells several unpinned or was not read yet.
    """
    if connectors.get(shop.platform).amounts_keep_currency:
        return None
    sold = _stored(shop)
    if sold is None:
        return frozenset()
    return frozenset(sold) if len(sold) == 1 or _pinned(shop) else frozenset()


def amounts_exact(shop: Shop, currency: str) -> bool | None:
    """Whether amounts in ``currency`` are exact there (None: not read yet, cannot tell)."""
    if connectors.get(shop.platform).amounts_keep_currency:
        return True
    if _stored(shop) is None:
        return None
    return currency.upper() in (amount_currencies(shop) or ())


def refresh(shop: Shop, connector: Connector, *, now: datetime | None = None) -> bool:
    """Read what the shop sells when the stored reading is missing or old (the caller
    commits). A platform error (a permission the credentials lack too) keeps the old
    reading, noting the attempt so that a failing platform too is asked at most every
    ``MAX_AGE``, and the sync goes on; True when a new reading was stored."""
    now = now or utcnow()
    stored = (shop.settings or {}).get(KEY)
    if not _due(stored if isinstance(stored, dict) else {}, now):
        return False
    try:
        sold = connector.sold_currencies()
        # asked only where it matters: one sold currency is exact without it, and an
        # amount that keeps its currency is exact anyway
        pinned = (sold is not None and len(sold) > 1 and not connector.amounts_keep_currency
                  and connector.pins_order_currency())
    except ConnectorError as err:  # the sync's pages will say what is wrong
        log.warning("offers.currencies_unread", extra={"shop_id": shop.id,
                                                       "error": type(err).__name__})
        shops.update_settings(shop.id, lambda settings: {**settings, KEY: {
            **_reading(settings), "tried_at": now.isoformat()}})
        return False
    if sold is None:
        return False
    reading = {"sold": sorted(sold), "pinned": bool(pinned), "read_at": now.isoformat()}
    # onto the settings as they are now: a merchant may have saved during the round trip
    shops.update_settings(shop.id, lambda settings: {**settings, KEY: reading})
    return True


def _due(stored: dict, now: datetime) -> bool:
    """Whether neither the reading nor a failed attempt since is under ``MAX_AGE`` old
    (one never made, or unreadable, is not)."""
    for key in ("read_at", "tried_at"):
        try:
            if now - datetime.fromisoformat(stored[key]) < MAX_AGE:
                return False
        except (KeyError, TypeError, ValueError):
            pass
    return True


def _reading(settings: dict) -> dict:
    """The stored reading as an object (an empty one when there is none)."""
    stored = settings.get(KEY)
    return stored if isinstance(stored, dict) else {}


def note(shop: Shop) -> str | None:
    """What the admin's guardrails section should say about it, when offers are held back."""
    if connectors.get(shop.platform).amounts_keep_currency:
        return None
    name = connectors.get(shop.platform).meta.name
    sold = _stored(shop)
    if sold is None:
        return (f"Offers wait for the first sync: {name} takes a discount's amount in the "
                "order's currency, and the currencies this channel sells were not read yet.")
    if not sold:
        return f"Offers are off: {name} named no currency this channel sells."
    if len(sold) == 1 or _pinned(shop):
        return None
    return (f"Offers are off: this channel sells several currencies ({', '.join(sold)}), and "
            f"{name} would take an offer's fixed amount and minimum order in whichever "
            "the order is in. Install the current Shopkeeper plugin (it limits each offer "
            "to orders in its currency) or sell one currency in this channel to make offers.")


def sold(shop: Shop) -> list[str]:
    """The currencies the platform sold in at its last reading (none: not read yet, or a
    platform that cannot name them: the generic store)."""
    return _stored(shop) or []


def _stored(shop: Shop) -> list[str] | None:
    """The sold currencies as last read (None: never read)."""
    stored = (shop.settings or {}).get(KEY)
    if not isinstance(stored, dict) or not isinstance(stored.get("sold"), list):
        return None
    return sorted({str(c).upper() for c in stored["sold"]})


def _pinned(shop: Shop) -> bool:
    """Whether the last reading found discounts limited to their own currency."""
    stored = (shop.settings or {}).get(KEY)
    return isinstance(stored, dict) and stored.get("pinned") is True
