"""A shop its platform holds back for now (``ShopUnavailable``: Shopify's 402 for a store
frozen over an unpaid bill, 423 for one it locked).

That is no credentials problem: the installation is not marked ``auth_failed`` (the merchant
is not sent through OAuth, which changes nothing) and its credentials are kept. The shop
comes back on its own once paid or unlocked, so instead of the seconds-long retries meant
for an outage, everything that calls the platform for it waits ``RETRY_AFTER``:

- the scheduled sync skips the shop until ``retry_at``, then asks again from the cursors it
  kept (a sync that meets it stops, "paused", its cursor as it was);
- offers quote none (``REASON``) and an accept withdraws the offer: the shopper gets no
  offer rather than an error that asks them to try again;
- the webhook reconcile job waits as long, and counts it as no failure;
- the admin page says what Shopify reports (``note``) instead of "reinstall".

The state is ``Shop.settings[KEY]``: ``{"status": 402, "reason": "frozen", "since": ISO 8601,
"retry_at": ISO 8601}``, written through ``shops.update_settings``. A later call that
succeeds (a sync's page, a discount made) clears it (``clear``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import connectors
from connectors.errors import ShopUnavailable
from plugin import shops
from plugin.models import Shop
from plugin.models.types import utcnow

#: ``Shop.settings`` key while the platform holds the shop back; absent otherwise.
KEY = "platform_unavailable"
#: How long nothing asks the platform again for a held-back shop: it takes the merchant a
#: payment or Shopify's support, not seconds, and every call until then is refused.
RETRY_AFTER = timedelta(hours=1)
#: A quote's ``reason_code`` while the shop is held back.
REASON = "platform_unavailable"


def state(shop: Shop) -> dict[str, Any] | None:
    """The stored state, when the platform holds the shop back."""
    held = (shop.settings or {}).get(KEY)
    return held if isinstance(held, dict) else None


def record(shop: Shop, err: ShopUnavailable, *, now: datetime | None = None) -> None:
    """Keep that the platform holds the shop back, asked again after ``RETRY_AFTER`` (the
    caller commits). ``since`` stays from the first time it was met."""
    now = now or utcnow()

    def hold(settings: dict[str, Any]) -> dict[str, Any]:
        before = settings.get(KEY) if isinstance(settings.get(KEY), dict) else {}
        return {**settings, KEY: {"status": err.status, "reason": err.reason,
                                  "since": before.get("since") or now.isoformat(),
                                  "retry_at": (now + RETRY_AFTER).isoformat()}}

    shops.update_settings(shop.id, hold)


def clear(shop: Shop) -> bool:
    """The platform answered again: forget the state (the caller commits). True when there
    was one."""
    if state(shop) is None:
        return False
    shops.update_settings(shop.id, lambda settings: {
        k: v for k, v in settings.items() if k != KEY})
    return True


def wait_left(shop: Shop, *, now: datetime | None = None) -> float | None:
    """Seconds until the platform is to be asked again, None when it may be asked now."""
    held = state(shop)
    if held is None:
        return None
    try:
        retry_at = datetime.fromisoformat(str(held.get("retry_at")))
    except ValueError:
        return None
    left = (retry_at - (now or utcnow())).total_seconds()
    return left if left > 0 else None


def note(shop: Shop) -> str | None:
    """What the admin page says while the platform holds the shop back."""
    held = state(shop)
    if held is None:
        return None
    name = connectors.get(shop.platform).meta.name
    reason = str(held.get("reason") or "unavailable")
    status = f" (HTTP {held['status']})" if held.get("status") else ""
    return (f"{name} reports the store as {reason}{status}: syncing resumes once it is "
            "active again. Offers are paused until then; there is nothing to reinstall.")
