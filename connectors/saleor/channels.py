"""Which Saleor channel is the shop's storefront.

Saleor prices, publishes and discounts per channel, and a shop may have several (one per
country, currency or B2B storefront). The connector mirrors prices and availability from
one channel (``extra["channel"]``, its slug) and lists vouchers in it (``extra["channel_id"]``),
so both must name the channel the storefront sells through. Saleor has no "default
channel" flag and lists channels by slug, so the first one is often not the storefront:
the merchant may choose (admin settings), and the default prefers an active channel,
Saleor's own ``default-channel`` first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["CHANNELS_QUERY", "DEFAULT_SLUG", "Channel", "choose_channel", "parse_channels",
           "shop_channel"]

CHANNELS_QUERY = "query Channels { channels { id slug name currencyCode isActive } }"
#: The slug Saleor gives the channel it creates itself (new instances, ``populatedb``).
DEFAULT_SLUG = "default-channel"


@dataclass(frozen=True, slots=True)
class Channel:
    """One channel as the merchant knows it."""

    id: str
    slug: str
    name: str = ""
    currency: str | None = None
    active: bool = True


def parse_channels(raw: Any) -> list[Channel]:
    """``channels`` from Saleor; entries without a string id and slug are left out. A
    channel whose ``isActive`` was not asked for (older queries) counts as active."""
    out = []
    for c in raw if isinstance(raw, list) else ():
        if isinstance(c, dict) and isinstance(c.get("id"), str) and isinstance(c.get("slug"), str):
            out.append(Channel(c["id"], c["slug"], str(c.get("name") or c["slug"]),
                               c.get("currencyCode") or None, c.get("isActive") is not False))
    return out


def choose_channel(channels: Iterable[Channel], preferred: str | None = None
                   ) -> Channel | None:
    """The ``preferred`` slug while the shop still has it (the merchant's choice survives a
    reinstall); else an active ``default-channel``; else the first active channel; else the
    first channel; None without channels."""
    channels = list(channels)
    for wanted in (lambda c: c.slug == preferred,
                   lambda c: c.active and c.slug == DEFAULT_SLUG,
                   lambda c: c.active,
                   lambda c: True):
        found = next((c for c in channels if wanted(c)), None)
        if found is not None:
            return found
    return None


def shop_channel(channels: Iterable[Channel], channel_id: str | None = None,
                 slug: str | None = None) -> Channel | None:
    """The channel the shop's credentials name: by id (vouchers), else by slug (prices);
    with neither, the one ``choose_channel`` would pick; None when Saleor no longer has
    the one named (not another in its place: that one is another storefront)."""
    channels = list(channels)
    if not channel_id and not slug:
        return choose_channel(channels)
    return next((c for c in channels if channel_id and c.id == channel_id), None) \
        or next((c for c in channels if slug and c.slug == slug), None)
