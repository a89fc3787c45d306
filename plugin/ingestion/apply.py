"""Turn a stored delivery into database changes (called by the inbox worker)."""

from __future__ import annotations

import logging
from datetime import timedelta

import connectors
from connectors.base import Connector, Credentials
from connectors.records import Deletion, WebhookEvent
from plugin import privacy, shops
from plugin.errors import NotFound
from plugin.extensions import db
from plugin.ingestion import mapping
from plugin.models import Shop, WebhookDelivery
from plugin.offers.availability import withdraw_off_sale

log = logging.getLogger("shopkeeper.ingestion")


def apply_delivery(delivery: WebhookDelivery) -> None:
    """Parse the stored raw body again and apply it; raising makes the inbox retry."""
    shop = db.session.get(Shop, delivery.shop_id)
    if shop is None:
        return  # shop erased since: nothing left to update
    connector = delivery_connector(shop)
    event = connector.parse_webhook(delivery.headers, delivery.body)
    if event.topic == "app/uninstalled" and _before_current_install(shop, delivery, event):
        log.info("ingestion.stale_uninstall_ignored", extra={"shop_id": shop.id})
        return
    if event.needs_fetch and shop.status != "active":
        # the read-back needs the token the uninstall revoked: retrying could only end
        # dead; the rows go with the shop's erasure, and a reinstall backfills
        log.info("ingestion.fetch_skipped_uninstalled",
                 extra={"shop_id": shop.id, "topic": event.topic})
        return
    if event.needs_fetch:
        event = connector.fetch_event_record(event)
    apply_event(shop, event)


#: How far a platform's clock may be behind ours before its uninstall time is believed to
#: precede an install we recorded.
CLOCK_SKEW = timedelta(seconds=60)


def _before_current_install(shop: Shop, delivery: WebhookDelivery, event: WebhookEvent) -> bool:
    """Whether an uninstall belongs to an earlier installation than the current one: the
    merchant installed again after it was received (the worker was behind) or, by the
    platform's clock, after it happened (the platform retried a delivery that failed here).
    Applied, it would wipe the new installation's credentials and have the shop erased."""
    started = shop.installation.installed_at if shop.installation is not None else None
    if started is None:
        return False
    if delivery.received_at is not None and delivery.received_at < started:
        return True
    return event.occurred_at is not None and event.occurred_at < started - CLOCK_SKEW


def delivery_connector(shop: Shop) -> Connector:
    """The connector that parses the shop's stored deliveries (bare once credentials are gone:
    parsing needs no secret, only fetching does)."""
    if shop.installation is not None and shop.installation.credentials_encrypted:
        return shops.connector_for(shop)
    return connectors.get(shop.platform)(Credentials(shop_domain=shop.domain))


def apply_event(shop: Shop, event: WebhookEvent) -> None:
    """Dispatch one normalized event; topics we don't act on are accepted and ignored."""
    handler = _HANDLERS.get(event.topic)
    if handler is None:
        log.info("ingestion.topic_ignored", extra={"shop_id": shop.id, "topic": event.topic})
        return
    handler(shop, event)


def _uninstalled(shop: Shop, event: WebhookEvent) -> None:
    shops.mark_uninstalled(shop, at=event.occurred_at)


def _publication_deleted(shop: Shop, event: WebhookEvent) -> None:
    """A deleted sales-channel publication: the storefront's chosen one is cleared."""
    from plugin.admin.publication import forget_deleted  # the admin setting it clears

    rec = event.record
    if isinstance(rec, Deletion) and forget_deleted(shop, rec.external_id,
                                                    at=event.occurred_at):
        log.info("ingestion.storefront_publication_deleted", extra={"shop_id": shop.id})


def _product(shop: Shop, event: WebhookEvent) -> None:
    """A product upsert; one it takes off sale withdraws the offers standing for it."""
    if mapping.upsert_product(shop.id, event.record) and not mapping.sells(event.record):
        withdraw_off_sale(shop.id, [event.record.external_id])


def _product_deleted(shop: Shop, event: WebhookEvent) -> None:
    mapping.delete_product(shop.id, event.record)
    withdraw_off_sale(shop.id, [event.record.external_id])


def _order(shop: Shop, event: WebhookEvent) -> None:
    if event.record is None:  # e.g. a Saleor order of another channel than the shop's
        log.info("ingestion.order_ignored", extra={"shop_id": shop.id})
        return
    mapping.upsert_order(shop.id, event.record)


def _cart(shop: Shop, event: WebhookEvent) -> None:
    if event.record is None:  # e.g. a Saleor checkout of another channel than the shop's
        log.info("ingestion.cart_ignored", extra={"shop_id": shop.id})
        return
    mapping.upsert_cart(shop.id, event.record)


def _redact(shop: Shop, event: WebhookEvent) -> None:
    rec = event.record
    if rec is None:
        return
    if rec.kind == "shop_redact":
        if _installed_again(shop):
            log.info("ingestion.shop_redact_ignored", extra={"shop_id": shop.id})
            return
        shops.erase_shop(shop.id)
    elif rec.kind == "customer_redact" and rec.customer_id:
        privacy.erase_customer(shop.id, rec.customer_id, order_ids=rec.order_ids)
    elif rec.kind == "customer_redact":  # a guest checkout: no customer, only its orders
        privacy.redact_orders(shop.id, rec.order_ids)
    elif rec.kind == "customer_data_request" and (rec.customer_id or rec.order_ids):
        # a guest checkout's request names only its orders: those are exported
        privacy.record_data_request(shop.id, rec.customer_id, order_ids=rec.order_ids)


def _installed_again(shop: Shop) -> bool:
    """An active shop receiving its erasure request: either its uninstall notice was lost
    (the grant is revoked: erase) or the merchant installed the app again before the
    request came (the grant works: the data belongs to the new installation)."""
    if shop.status != "active":
        return False
    try:
        connector = shops.connector_for(shop)
    except NotFound:  # no credentials left: nothing was granted again
        return False
    return connector.still_installed() is True


_HANDLERS = {
    "products/upsert": _product,
    "products/delete": _product_deleted,
    "customers/upsert": lambda shop, ev: mapping.upsert_customer(shop.id, ev.record),
    "customers/delete": lambda shop, ev: privacy.erase_customer(
        shop.id, ev.record.external_id, deleted_at=ev.record.deleted_at),
    "orders/upsert": _order,
    "carts/upsert": _cart,
    "app/uninstalled": _uninstalled,
    "publications/delete": _publication_deleted,
    "customers/redact": _redact,
    "customers/data_request": _redact,
    "shop/redact": _redact,
}
