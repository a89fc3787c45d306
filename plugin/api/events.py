"""Widget events -> ``Interaction`` rows (views, clicks, carts) with click attribution."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from plugin.api import linking
from plugin.api.access import AnyShop
from plugin.api.consent import has_consent
from plugin.api.identity import ShopperIdentity
from plugin.api.impressions import rec_id_valid
from plugin.extensions import db
from plugin.ingestion.mapping import forget_cached_recommendations
from plugin.models import Interaction
from plugin.models.types import utcnow

#: A browser-reported purchase is a signal, not a sale: training learns only from verified
#: orders (webhooks, imports), so it is stored under another kind.
KINDS = {"purchase": "widget_purchase"}
MAX_FUTURE = timedelta(minutes=5)
#: a storefront may replay events it queued offline, but not rewrite history: an older
#: ``at`` is stored at this bound (and year-1 times no longer overflow on the way to UTC)
MAX_PAST = timedelta(days=30)


def store_events(shop: AnyShop, identity: ShopperIdentity, events: list[dict[str, Any]]) -> int:
    """Store a batch; returns how many were stored (0 without required consent).

    A signed-in batch that also names the browser's anonymous id first links that id's
    earlier events to the customer (``linking``).
    """
    if not identity.key or not has_consent(shop, identity):
        return 0
    linking.link(shop, identity)
    now = utcnow()
    rows = []
    for event in events:
        at = min(max(event.get("at") or now, now - MAX_PAST), now + MAX_FUTURE)
        context: dict[str, Any] = {"via": "widget"}
        if event.get("rec_id") and rec_id_valid(shop.id, event["rec_id"]):
            context["rec_id"] = event["rec_id"]
        if identity.customer_id and identity.anonymous_id:
            context["anonymous_id"] = identity.anonymous_id  # the browser it came from
        rows.append(dict(shop_id=shop.id, shopper_id=identity.key, subprofile_id=None,
                         product_external_id=event.get("product_id") or "",
                         kind=KINDS.get(event["type"], event["type"]),
                         quantity=event.get("quantity") or 1, price=None,
                         order_external_id=None, occurred_at=at,
                         context=context))
    db.session.execute(sa.insert(Interaction), rows)
    if identity.customer_id and any(r["kind"] in KINDS.values() for r in rows):
        # its list was computed before: serving recomputes it without what was just bought
        forget_cached_recommendations(shop.id, identity.customer_id)
    db.session.commit()
    return len(rows)
