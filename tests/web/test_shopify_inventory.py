"""Shopify stock changes reach serving: ``inventory_levels/update`` -> the product its item
stocks, read back over the Admin API -> availability -> the live filter every answer passes.

Real endpoint, inbox, connector, mapping and database; only Shopify's HTTP is mocked.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import responses
import sqlalchemy as sa

from connectors.base import Credentials
from connectors.shopify.client import API_VERSION
from connectors.shopify.webhooks import sign_body
from plugin import shops
from plugin.api.catalog import live_products
from plugin.api.filters import apply_live_filters
from plugin.engine.base import Recommendation
from plugin.extensions import db
from plugin.models import Product, Variant, WebhookDelivery
from plugin.webhooks.inbox import process_inbox
from tests.connectors.test_shopify import fixture

DOMAIN = "stock.myshopify.com"
SECRET = "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"
GRAPHQL = f"https://{DOMAIN}/admin/api/{API_VERSION}/graphql.json"
PRODUCT = "9554194432293"  # the documented products/update sample
ITEM = 271878346596884015  # the documented inventory_levels/update sample
_ids = itertools.count(1)


@pytest.fixture
def shop(app):
    app.config["API_CATALOG_CACHE_SECONDS"] = 0  # read availability as it is now
    shop = shops.create_shop("shopify", DOMAIN, Credentials(
        DOMAIN, access_token="shpat_test", webhook_secret=SECRET, extra={"currency": "USD"}))
    db.session.commit()
    return shop


def deliver(client, shop, topic: str, body: dict[str, Any], *,
            triggered_at: str = "2025-04-25T00:00:00Z"):
    raw = json.dumps(body).encode()
    return client.post(f"/webhooks/shopify/{shop.id}", data=raw, headers={
        "Content-Type": "application/json", "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign_body(SECRET, raw), "X-Shopify-Shop-Domain": DOMAIN,
        "X-Shopify-API-Version": API_VERSION, "X-Shopify-Webhook-Id": f"wh-{next(_ids)}",
        "X-Shopify-Triggered-At": triggered_at})


def level(updated_at: str, available: int) -> dict[str, Any]:
    """The documented inventory_levels/update body at another time and quantity."""
    return {**json.loads(fixture("inventory_levels_update.json")), "updated_at": updated_at,
            "available": available}


def item_answer(last_variant_left: int) -> dict[str, Any]:
    """Admin GraphQL: the item's product, whose first variant is sold out; the second, the
    item's, has ``last_variant_left`` (its updatedAt is not moved by stock changes)."""
    variants = [
        {"id": "gid://shopify/ProductVariant/123456789", "title": "S", "sku": "TSHIRT-001",
         "price": "29.99", "availableForSale": False, "inventoryQuantity": 0},
        {"id": "gid://shopify/ProductVariant/123456790", "title": "M", "sku": "TSHIRT-002",
         "price": "29.99", "availableForSale": last_variant_left > 0,
         "inventoryQuantity": last_variant_left},
    ]
    product = {"id": f"gid://shopify/Product/{PRODUCT}", "title": "T-Shirt", "handle": "t-shirt",
               "descriptionHtml": "", "onlineStoreUrl": None, "vendor": "My Store",
               "productType": "Shirts", "tags": ["cotton"], "status": "ACTIVE",
               "updatedAt": "2025-04-22T19:30:00Z", "featuredMedia": None,
               "variants": {"pageInfo": {"hasNextPage": False, "endCursor": None},
                            "nodes": variants}}
    return {"data": {"shop": {"currencyCode": "USD"},
                     "inventoryItem": {"variant": {"product": product}}}}


def apply(client, shop, body: dict[str, Any], answer: dict[str, Any] | None) -> list[dict]:
    """Deliver one inventory level and run the worker; the GraphQL variables it sent."""
    assert deliver(client, shop, "inventory_levels/update", body).status_code == 200
    with responses.RequestsMock() as rsps:
        if answer is not None:
            rsps.post(GRAPHQL, json=answer)
        result = process_inbox()
        sent = [json.loads(c.request.body)["variables"] for c in rsps.calls]
    assert (result.done, result.failed, result.dead) == (1, 0, 0)
    return sent


def recommendable(shop) -> bool:
    """Whether serving would show the product: the live filter every answer passes."""
    db.session.expire_all()
    candidates = [Recommendation(item=PRODUCT, score=1.0, source="popular", reason="")]
    shown = [s.product_id for s in apply_live_filters(shop, candidates, 5)]
    assert (PRODUCT in live_products(shop.id, [PRODUCT])) == bool(shown)
    return shown == [PRODUCT]


def stored() -> Product:
    db.session.expire_all()
    return db.session.scalar(sa.select(Product).filter_by(external_id=PRODUCT))


def seed(client, shop) -> None:
    """The product as products/update sent it: two tracked variants, only M in stock."""
    body = json.loads(fixture("products_update.json"))
    tracked = {"inventory_management": "shopify", "inventory_policy": "deny"}
    body["variants"] = [{**body["variants"][0], **tracked, "inventory_quantity": 0},
                        {**body["variants"][0], **tracked, "id": 123456790, "title": "M",
                         "sku": "TSHIRT-002", "inventory_quantity": 2}]
    assert deliver(client, shop, "products/update", body).status_code == 200
    assert process_inbox().done == 1
    assert recommendable(shop)


def test_the_last_variant_selling_out_stops_recommending_and_a_restock_resumes(client, shop):
    seed(client, shop)
    sent = apply(client, shop, level("2025-04-23T10:00:00-05:00", 0), item_answer(0))
    assert sent == [{"id": f"gid://shopify/InventoryItem/{ITEM}"}]
    assert not recommendable(shop)
    assert not stored().available
    quantities = {v.external_id: v.inventory_qty for v in db.session.scalars(sa.select(Variant))}
    assert quantities == {"123456789": 0, "123456790": 0}

    apply(client, shop, level("2025-04-24T10:00:00-05:00", 4), item_answer(4))
    assert recommendable(shop)
    assert stored().source_updated_at.isoformat() == "2025-04-24T15:00:00+00:00"


def test_a_stale_inventory_delivery_changes_nothing(client, shop):
    """Deliveries arrive out of order (and the API read may lag its own webhooks): a level
    older than the stored state must not flip a restocked product back to sold out."""
    seed(client, shop)
    apply(client, shop, level("2025-04-24T10:00:00-05:00", 4), item_answer(4))
    before = stored().source_updated_at
    apply(client, shop, level("2025-04-23T10:00:00-05:00", 0), item_answer(0))
    assert recommendable(shop)
    assert stored().source_updated_at == before


def test_an_unknown_inventory_item_is_acknowledged_and_ignored(client, shop):
    """An item Shopify no longer knows (deleted with its variant since): 200, then done."""
    apply(client, shop, level("2025-04-23T10:00:00-05:00", 0),
          {"data": {"shop": {"currencyCode": "USD"}, "inventoryItem": None}})
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Product)) == 0
    row = db.session.scalar(sa.select(WebhookDelivery))
    assert (row.topic, row.status, row.last_error) == ("products/upsert", "done", None)


def test_editing_a_sold_out_product_does_not_make_it_recommendable(client, shop):
    """Product bodies lost ``inventory_management`` in API 2024-07: read alone, the sold-out
    shirt below counted as in stock, so any edit of it put it back in recommendations."""
    body = json.loads(fixture("products_update.json"))  # verbatim: no inventory_management
    body["variants"][0].update(inventory_policy="deny", inventory_quantity=0)
    assert deliver(client, shop, "products/update", body).status_code == 200
    answer = item_answer(0)["data"]["inventoryItem"]["variant"]["product"]
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json={"data": {"shop": {"currencyCode": "USD"}, "product": answer}})
        result = process_inbox()
    assert (result.done, result.failed, result.dead) == (1, 0, 0)
    assert stored() is not None and not stored().available
    assert not recommendable(shop)


def _uninstall(client, shop) -> None:
    from plugin.models.types import utcnow

    body = {**json.loads(fixture("app_uninstalled.json")), "myshopify_domain": DOMAIN}
    now = utcnow().isoformat()  # after the install, or it is taken for an older install's
    assert deliver(client, shop, "app/uninstalled", body, triggered_at=now).status_code == 200


@pytest.mark.parametrize("topic", ["products/update", "inventory_levels/update"])
def test_a_read_back_for_an_uninstalled_shop_is_dropped_not_retried_to_death(
        client, shop, app, topic):
    """A stock change or a product body that cannot say stock is read back with the shop's
    token; one queued when the merchant uninstalled failed on the revoked token and was
    retried until dead. Once the uninstall is applied it is acknowledged and dropped: the
    shop's rows are erased after the grace period, and a reinstall backfills."""
    from datetime import timedelta

    from plugin.models.types import utcnow

    body = (json.loads(fixture("products_update.json")) if topic == "products/update"
            else level("2025-04-23T10:00:00-05:00", 0))  # verbatim: both need a read-back
    assert deliver(client, shop, topic, body).status_code == 200
    _uninstall(client, shop)  # received after it, applied after it
    with responses.RequestsMock() as rsps:  # the uninstall revoked the token
        rsps.post(GRAPHQL, status=401, json={"errors": "[API] Invalid API key or access "
                                                      "token (unrecognized login or wrong "
                                                      "password)"})
        first = process_inbox()
    assert (first.done, first.failed) == (1, 1)  # the uninstall is applied, the read failed
    db.session.expire_all()
    assert shops.get_shop(shop.id).status == "uninstalled"
    later = utcnow() + timedelta(seconds=app.config["INBOX_RETRY_BASE_SECONDS"] * 2)
    with responses.RequestsMock():  # no call to Shopify: there is no token to call it with
        retried = process_inbox(now=later)
    assert (retried.done, retried.failed, retried.dead) == (1, 0, 0)
    statuses = {row.topic: row.status for row in db.session.scalars(sa.select(WebhookDelivery))}
    assert statuses == {"products/upsert": "done", "app/uninstalled": "done"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Product)) == 0
