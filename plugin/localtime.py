"""The shop's time zone: "per day" means the merchant's day, not UTC's.

Timestamps stay naive UTC in the database; only what is shown per day (the dashboard's
figures and charts, its window) is cut at the shop's local midnight. The zone is the
``timezone`` setting (an IANA name), "UTC" until the merchant or the platform sets one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plugin import shops
from plugin.extensions import db
from plugin.models import Shop

DEFAULT_TIMEZONE = "UTC"


def zone_named(name: object) -> ZoneInfo | None:
    """The zone for an IANA name, or None for anything zoneinfo does not know (a typo,
    "PST", a path, an empty string)."""
    if not isinstance(name, str) or not name.strip():
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


def shop_zone(shop_id: str) -> ZoneInfo:
    """The shop's zone; UTC when none is set or the stored name is no longer known (a
    tzdata without it), so a dashboard always renders."""
    shop = db.session.get(Shop, shop_id)
    name = (shop.settings or {}).get("timezone") if shop else None
    return zone_named(name) or ZoneInfo(DEFAULT_TIMEZONE)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant (aware UTC) of ``day`` in ``zone``. A midnight that a DST change
    skips resolves to the moment the day begins; a repeated one to its first occurrence."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def wall_clock(moment: datetime, zone: ZoneInfo, fmt: str = "%d %b %Y %H:%M") -> str:
    """A stored moment (naive means UTC) as the merchant reads a clock, with the zone's
    abbreviation ("23 Nov 2026 23:21 PST"): a merchant in California should not have to
    convert "07:21 UTC" in their head."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    local = aware.astimezone(zone)
    return f"{local.strftime(fmt)} {local.tzname()}"


def adopt_platform_zone(shop: Shop, name: str | None) -> bool:
    """Store the zone the platform reports unless the merchant chose one (or the name is
    not one zoneinfo knows). True when it was stored."""
    if (shop.settings or {}).get("timezone") or zone_named(name) is None:
        return False
    zone = str(name).strip()

    def unless_chosen(settings: dict[str, Any]) -> dict[str, Any]:
        return settings if settings.get("timezone") else {**settings, "timezone": zone}

    update = shops.update_settings(shop.id, unless_chosen)
    return update.after != update.before
