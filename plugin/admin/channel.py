"""The Saleor channel a shop's storefront sells through, as the merchant chooses it.

Install picks a default (``connectors.saleor.channels.choose_channel``); a shop with
several channels may sell through another. The choice is checked against the channels
Saleor lists now, kept in ``Shop.settings["saleor_channel"]`` (so a reinstall keeps it) and
applied to the credentials the connector reads (``channel`` for prices and availability,
``channel_id`` for vouchers), so every part of the connector uses the same channel.

Prices and availability already mirrored are the old channel's: the shop's products are
marked as never read and their sync starts over, so the next sync (the worker's within
30 minutes, or ``shopkeeper sync --resource products``) writes every product again from
the new channel. Offers quoted on the old prices are withdrawn.

Orders are mirrored from the shop's channel only, and the orders sync reads only changes
since its watermark, so the new channel's order history would never arrive: the orders
sync starts over from the first order (a full backfill at the next sync), and the stored
orders stop feeding recommendations. They stay for the dashboard and offer attribution
(a redemption, a click, a budget), their purchase interactions are set aside
(``SET_ASIDE``: out of training and of every model input) and they are marked as never
read, so the backfill writes again (interactions included) every one that belongs to the
new channel. Orders imported from a history CSV
(``Order.imported``) belong to no channel and no backfill could restore them: they stay
as they are, purchases included. The shop is marked for a refit once that backfill
has finished (``plugin.ingestion.sync.HISTORY_RESET``, read by the hourly retrain job);
until then the model fitted before the switch keeps serving.

Set aside, not deleted: when the backfill writes an order again (same order id), a line
the shopper gave to a sub-profile ("that was for Maya") is for Maya again. An order the new
channel does not have never comes back; its set-aside lines stay until the customer is
erased, so a switch back to the old channel finds them too. Meanwhile they say only what
the person already has, whatever channel the shop sells through now: a durable bought on
the old channel is not offered again (the toilet-seat rule, the owner's and a
sub-profile's), and whom a basket is for is judged against everything they bought.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import sqlalchemy as sa

from connectors.errors import ConnectorError
from connectors.saleor import SaleorConnector
from connectors.saleor.channels import Channel
from plugin import shops
from plugin.admin.settings import _forget_api_caches
from plugin.errors import BadRequest, NotFound
from plugin.extensions import db
from plugin.ingestion.mapping import erasure_lock
from plugin.ingestion.sync import HISTORY_RESET, restart_sync
from plugin.models import Interaction, Order, Product, Shop
from plugin.models.events import SET_ASIDE
from plugin.models.types import utcnow
from plugin.offers.service import withdraw_unaccepted

__all__ = ["choose", "current_channel", "read_products_again"]

#: ``source_updated_at`` for products to be read again: older than any real record, so
#: the monotonic upsert lets the next sync overwrite them.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def current_channel(shop: Shop) -> str | None:
    """The channel slug the connector uses now (None: not a Saleor shop, or none set)."""
    if shop.platform != "saleor":
        return None
    try:
        return shops.credentials_for(shop).extra.get("channel") or None
    except NotFound:  # an uninstalled shop has no credentials: nothing to show
        return None


def choose(shop: Shop, slug: str) -> Channel:
    """Make ``slug`` the shop's channel (raises ``BadRequest`` naming the shop's channels)."""
    if shop.platform != "saleor":
        raise BadRequest("Only Saleor shops have channels.")
    slug = (slug or "").strip()
    connector = shops.connector_for(shop)
    assert isinstance(connector, SaleorConnector)
    try:
        channels = connector.channels()
    except ConnectorError:
        raise BadRequest("Could not read the channels from Saleor; try again.",
                         {"saleor_channel": ["Saleor did not answer"]}) from None
    found = next((c for c in channels if c.slug == slug), None)
    if found is None:
        known = ", ".join(c.slug for c in channels) or "none"
        raise BadRequest("That is not a channel of this Saleor shop.",
                         {"saleor_channel": [f"not a channel here; Saleor has: {known}"]})
    creds = connector.credentials
    moved = (creds.extra.get("channel"), creds.extra.get("channel_id")) != (found.slug, found.id)
    shops.update_settings(shop.id, lambda settings: {**settings, "saleor_channel": found.slug})
    if moved:
        # the syncs restart first: a sync's page locks its state before it may store what
        # its connector learned with the credentials, so this order cannot deadlock
        read_products_again(shop.id)
        dropped = _read_orders_again(shop)
        shops.save_credentials(shop, replace(creds, extra={
            **creds.extra, "channel": found.slug, "channel_id": found.id}))
        withdrawn = withdraw_unaccepted(shop.id)
        shops.audit(shop.id, "settings.saleor_channel", channel=found.slug,
                    offers_withdrawn=withdrawn, purchases_dropped=dropped)
    db.session.commit()
    _forget_api_caches()
    return found


def read_products_again(shop_id: str) -> None:
    """Let the next products sync overwrite every live product, from its first page."""
    restart_sync(shop_id, "products")  # first: a run under way saves nothing after this
    db.session.execute(sa.update(Product).where(
        Product.shop_id == shop_id, Product.deleted_at.is_(None)).values(source_updated_at=NEVER))


def _read_orders_again(shop: Shop) -> int:
    """Backfill the orders from the first one and stop the stored ones feeding
    recommendations (see the module docstring); returns the purchase interactions set
    aside."""
    restart_sync(shop.id, "orders").watermark = None  # first, as for products
    # then the erasure lock, as every order write does (a sync page: its state first):
    # an erasure under way commits before, a later one starts after; between two
    # statements of an erasure, this bulk write held a guest order's purchase the
    # erasure was about to delete while waiting on its customer's, and they deadlocked
    erasure_lock(shop.id)
    mirrored = (Order.shop_id == shop.id, Order.imported.is_(False))  # not the CSV history
    orders = sa.select(Order.external_id).where(*mirrored)
    dropped = db.session.execute(sa.update(Interaction).where(
        Interaction.shop_id == shop.id, Interaction.kind == "purchase",
        Interaction.order_external_id.in_(orders)).values(kind=SET_ASIDE)).rowcount or 0
    db.session.execute(sa.update(Order).where(*mirrored).values(source_updated_at=NEVER))
    marked = utcnow().isoformat()
    shops.update_settings(shop.id, lambda settings: {**settings, HISTORY_RESET: marked})
    return dropped
