"""Offers held back while the shop's platform refuses discounts for a missing permission.

A shop whose credentials lack the discount permission (a Shopify token without
``write_discounts``, a Saleor app without ``MANAGE_DISCOUNTS``, a Vendure role made from the
old README without ``ReadPromotion``, ``DeletePromotion`` and ``DeleteCustomerGroup``) has
every accept refused. Quoting on would show shoppers offers that always fail with "try
again" and churn the budget's reservations, with nothing on the admin page saying why.

A create refused with ``PermissionDenied`` is confirmed by the platform's own listing of the
credentials' permissions (``Connector.missing_discount_permissions``): Vendure and Saleor
refuse an expired or unknown token the same way, and that is a credentials problem the
sync reports, not this. A confirmed refusal is kept in ``Shop.settings[KEY]``; quotes then
answer ``REASON`` and the admin names what to grant. The offers job asks again at every run
and lifts the block once nothing creating discounts needs is missing. The credentials are
never marked failed: the sync needs other permissions and goes on.

Permissions only removing discounts needs (``Connector.discount_cleanup_permissions``:
Vendure's ``DeletePromotion``, ``DeleteCustomerGroup``) block nothing, since offers are
still made; lacking them, spent offers' discounts stay on the platform. That is kept in
``Shop.settings[CLEANUP_KEY]`` when a listing shows it (a refused create, a refused delete,
the job's recheck) and the settings page says what to grant, until a listing shows them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import requests

import connectors
from connectors.base import Connector
from connectors.errors import ConnectorError, PermissionDenied
from plugin import shops
from plugin.models import Shop
from plugin.models.types import utcnow
from plugin.shops import connector_for

log = logging.getLogger("shopkeeper.offers")

#: ``Shop.settings`` key: ``{"missing": [permission names], "since": ISO 8601, "checked_at":
#: ISO 8601}`` while the platform refuses to create discounts; absent otherwise.
KEY = "offers_blocked"
#: ``Shop.settings`` key: ``{"missing": [permission names], "checked_at": ISO 8601}`` while
#: the credentials lack permissions only removing spent discounts needs; absent otherwise.
CLEANUP_KEY = "offers_cleanup_refused"
#: A quote's ``reason_code`` while the shop is blocked.
REASON = "platform_permission"
#: Where the merchant grants the missing permissions, per platform.
WHERE = {
    "shopify": "approve Shopkeeper's access again (update or reinstall the app from the "
               "Shopify admin) so its token has {them}",
    "saleor": "grant {them} to the Shopkeeper app in the Saleor Dashboard (Apps, the app's "
              "permissions)",
    "vendure": "add {them} to the role of Shopkeeper's administrator or API key in the "
               "Vendure dashboard (Settings, Roles)",
}


def blocked(shop: Shop) -> dict[str, Any] | None:
    """The stored block, when offers are held back for a missing permission."""
    state = (shop.settings or {}).get(KEY)
    return state if isinstance(state, dict) else None


def cleanup_refused(shop: Shop) -> dict[str, Any] | None:
    """The stored note, when the credentials may not remove spent discounts."""
    state = (shop.settings or {}).get(CLEANUP_KEY)
    return state if isinstance(state, dict) else None


def confirm(shop: Shop, connector: Connector, err: PermissionDenied, *,
            now: datetime | None = None) -> bool:
    """Whether the platform confirms that ``err``, met creating a discount, is a missing
    permission; if so the block is stored (the caller commits). A check that fails (dead
    credentials, a timeout) confirms nothing: the accept fails as any other would."""
    try:
        missing = connector.missing_discount_permissions()
    except ConnectorError as probe_err:
        log.warning("offers.permission_unconfirmed", extra={
            "shop_id": shop.id, "error": type(probe_err).__name__})
        return False
    if missing is None:  # the platform cannot list them: what its refusal named
        missing = (err.permission,) if err.permission else ()
    now = now or utcnow()
    create, cleanup = _split(connector, missing)
    _note_cleanup(shop, cleanup, now)
    if not create:  # creating is allowed: the refusal was something else
        return False
    _store(shop, create, now)
    log.warning("offers.blocked", extra={"shop_id": shop.id, "missing": list(create)})
    return True


def check_cleanup(shop: Shop, connector: Connector, *, now: datetime | None = None) -> None:
    """Note what the credentials lack for removing discounts after a refused delete (the
    caller commits); a check that fails notes nothing."""
    try:
        missing = connector.missing_discount_permissions()
    except ConnectorError as err:
        log.warning("offers.cleanup_permission_unconfirmed", extra={
            "shop_id": shop.id, "error": type(err).__name__})
        return
    _note_cleanup(shop, _split(connector, missing or ())[1], now or utcnow())


def recheck(shop: Shop, *, now: datetime | None = None,
            session: requests.Session | None = None) -> bool:
    """Ask the platform again for a blocked shop (the caller commits); True when the block
    was lifted. A failed check keeps it for the next run."""
    if blocked(shop) is None and cleanup_refused(shop) is None:
        return False
    connector = connector_for(shop, session=session)
    try:
        missing = connector.missing_discount_permissions()
    except ConnectorError as err:
        log.warning("offers.permission_recheck_failed", extra={
            "shop_id": shop.id, "error": type(err).__name__})
        return False
    now = now or utcnow()
    create, cleanup = _split(connector, missing or ())
    _note_cleanup(shop, cleanup, now)
    if blocked(shop) is None:
        return False
    if create:
        _store(shop, create, now)
        return False
    # nothing missing, or a platform that cannot list them: the next create tells again
    lift(shop)
    log.info("offers.unblocked", extra={"shop_id": shop.id})
    return True


def lift(shop: Shop) -> None:
    """Offers may be quoted again (the caller commits)."""
    shops.update_settings(shop.id, lambda settings: {
        k: v for k, v in settings.items() if k != KEY})


def note(shop: Shop) -> str | None:
    """What the admin says while offers are blocked: what was refused and what to grant."""
    said = _missing(shop, blocked(shop))
    if said is None:
        return None
    name, which, where = said
    return (f"Offers are blocked: {name} refused creating discounts: missing {which}. "
            f"To make offers again, {where}; Shopkeeper checks again every few minutes "
            "and resumes offers by itself.")


def cleanup_note(shop: Shop) -> str | None:
    """What the settings page says while spent discounts cannot be removed (not a block)."""
    said = _missing(shop, cleanup_refused(shop))
    if said is None:
        return None
    name, which, where = said
    return (f"Spent offers stay on {name}: its credentials may not remove discounts "
            f"(missing {which}). Offers are still made; to have Shopkeeper remove expired "
            f"ones, {where}.")


def _missing(shop: Shop, state: dict[str, Any] | None) -> tuple[str, str, str] | None:
    """The platform's name, "permission(s) X, Y" and where to grant them, for a stored state."""
    if state is None:
        return None
    missing = [str(p) for p in state.get("missing") or ()]
    which = ("permission " if len(missing) == 1 else "permissions ") + ", ".join(missing)
    return (connectors.get(shop.platform).meta.name, which,
            where_to_grant(shop.platform, "it" if len(missing) == 1 else "them"))


def where_to_grant(platform: str, them: str) -> str:
    """How the merchant grants ``them`` (permission names, or "it"/"them") on ``platform``."""
    return WHERE.get(platform, "grant {them} on the platform").format(them=them)


def _split(connector: Connector, missing: tuple[str, ...] | list[str]
           ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``missing`` as (what creating discounts needs, what only removing them needs)."""
    cleanup = set(connector.discount_cleanup_permissions)
    return (tuple(p for p in missing if p not in cleanup),
            tuple(p for p in missing if p in cleanup))


def _note_cleanup(shop: Shop, missing: tuple[str, ...], now: datetime) -> None:
    """Keep (or clear, when nothing is missing) the note on removing discounts."""

    def note_it(settings: dict) -> dict:
        rest = {k: v for k, v in settings.items() if k != CLEANUP_KEY}
        if not missing:
            return rest
        return {**rest, CLEANUP_KEY: {"missing": list(dict.fromkeys(missing)),
                                      "checked_at": now.isoformat()}}

    if missing or cleanup_refused(shop) is not None:
        shops.update_settings(shop.id, note_it)


def _store(shop: Shop, missing: tuple[str, ...], now: datetime) -> None:
    """Keep the block (through ``update_settings``: a concurrent settings save is kept)."""

    def block(settings: dict) -> dict:
        since = (settings.get(KEY) or {}).get("since") or now.isoformat()
        return {**settings, KEY: {"missing": list(dict.fromkeys(missing)), "since": since,
                                  "checked_at": now.isoformat()}}

    shops.update_settings(shop.id, block)
