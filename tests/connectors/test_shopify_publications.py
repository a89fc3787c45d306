"""Shopify: a product not published on the storefront's publication is not available.

The Storefront API (Headless, Hydrogen) sells only products published on its storefront's
publication; the Admin API says so per product with ``publishedOnPublication(publicationId:)``
(scope ``read_publications``). Payloads are shaped as shopify.dev documents them.
"""

from __future__ import annotations

import json

import pytest
import responses
from responses.registries import OrderedRegistry

from connectors.base import Credentials
from connectors.errors import InvalidPayload
from connectors.http import make_session
from connectors.records import Deletion
from connectors.shopify import STOREFRONT_PUBLICATION, ShopifyConnector, bulk
from connectors.shopify.client import AccessDenied
from tests.connectors.test_shopify import (
    GRAPHQL,
    SECRET,
    SHOP,
    fixture,
    product_node,
    shopify_headers,
)

PUBLICATION = "gid://shopify/Publication/98765"
GRANTED = "read_products,read_customers,read_orders,read_inventory,write_discounts," \
          "read_publications"
BEFORE = "read_products,read_customers,read_orders,read_inventory,write_discounts"
EXPORT = "https://storage.googleapis.com/shopify-tiers-assets-prod-us-east1/bulk-export.jsonl"
OP = "gid://shopify/BulkOperation/720918"


def connector(scope: str = GRANTED, publication: str | None = PUBLICATION,
              **extra: str) -> ShopifyConnector:
    chosen = {STOREFRONT_PUBLICATION: publication} if publication else {}
    creds = Credentials(SHOP, access_token="shpat_x", webhook_secret=SECRET,
                        extra={"currency": "USD", "scope": scope, **chosen, **extra})
    return ShopifyConnector(creds, session=make_session(sleep=lambda s: None))


def page_of(*nodes: dict) -> dict:
    return {"data": {"shop": {"currencyCode": "USD"}, "products": {
        "pageInfo": {"hasNextPage": False, "endCursor": "c1"}, "nodes": list(nodes)}}}


def test_the_backfill_reads_whether_each_product_is_on_the_storefront_publication() -> None:
    """Active and in stock but published only on the Online Store: the headless storefront
    cannot show or sell it, so it must not be recommended or offered."""
    hidden = {**product_node("1"), "publishedOnPublication": False}
    shown = {**product_node("2"), "publishedOnPublication": True}
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=page_of(hidden, shown))
        products = next(connector().iter_products()).items
        sent = json.loads(rsps.calls[0].request.body)
    assert "publishedOnPublication(publicationId: $publication)" in sent["query"]
    assert "$publication: ID!" in sent["query"]
    assert sent["variables"]["publication"] == PUBLICATION
    assert [(p.external_id, p.available) for p in products] == [("1", False), ("2", True)]


@pytest.mark.parametrize("scope,publication", [
    (BEFORE, PUBLICATION),  # installed before read_publications: not asked, never denied
    (GRANTED, None),        # no publication chosen yet
    ("", PUBLICATION),      # installed before scopes were recorded
])
def test_without_the_scope_or_a_choice_availability_is_status_and_stock_as_before(
        scope: str, publication: str | None) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=page_of(product_node("1")))
        products = next(connector(scope, publication).iter_products()).items
        sent = json.loads(rsps.calls[0].request.body)
    assert "publishedOnPublication" not in sent["query"] and "publication" not in sent["variables"]
    assert products[0].available


def test_a_product_delivery_is_read_back_for_its_publication() -> None:
    """The REST body (``published_scope``) speaks of the Online Store only: with a storefront
    publication chosen, even a body that says its stock is read back from Shopify."""
    shirt = json.loads(fixture("products_update.json"))
    for variant in shirt["variants"]:
        variant.update(inventory_management="shopify", inventory_quantity=5)
    body = json.dumps(shirt).encode()
    assert not connector(BEFORE).parse_webhook(shopify_headers("products/update", body),
                                               body).needs_fetch
    shop = connector()
    event = shop.parse_webhook(shopify_headers("products/update", body), body)
    assert event.needs_fetch and event.record.available
    node = {**product_node("9554194432293"), "publishedOnPublication": False}
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json={"data": {"shop": {"currencyCode": "USD"}, "product": node}})
        fetched = shop.fetch_event_record(event)
        sent = json.loads(rsps.calls[0].request.body)
    assert sent["variables"] == {"id": "gid://shopify/Product/9554194432293",
                                 "publication": PUBLICATION}
    assert "publishedOnPublication(publicationId: $publication)" in sent["query"]
    assert fetched.record.available is False and not fetched.needs_fetch


def test_a_stock_change_reads_the_product_with_its_publication() -> None:
    body = json.dumps({"inventory_item_id": 271878346596884015, "location_id": 24826418,
                       "available": 6, "updated_at": "2025-11-22T10:00:00-05:00"}).encode()
    shop = connector()
    event = shop.parse_webhook(shopify_headers("inventory_levels/update", body), body)
    node = {**product_node("4"), "publishedOnPublication": False}
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json={"data": {"shop": {"currencyCode": "USD"}, "inventoryItem": {
            "variant": {"product": node}}}})
        fetched = shop.fetch_event_record(event)
        sent = json.loads(rsps.calls[0].request.body)
    assert sent["variables"]["publication"] == PUBLICATION
    assert (fetched.record.external_id, fetched.record.available) == ("4", False)


def _bulk_rows() -> str:
    rows = [{"id": "gid://shopify/Product/1", "title": "P1", "status": "ACTIVE",
             "updatedAt": "2025-11-20T08:00:00Z", "publishedOnPublication": False},
            {"id": "gid://shopify/ProductVariant/10", "title": "S", "sku": "S1",
             "price": "9.50", "availableForSale": True, "inventoryQuantity": 1,
             "__parentId": "gid://shopify/Product/1"},
            {"id": "gid://shopify/Product/2", "title": "P2", "status": "ACTIVE",
             "updatedAt": "2025-11-20T08:00:00Z", "publishedOnPublication": True}]
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def test_the_bulk_export_asks_for_the_publication_and_adopts_only_its_own_run() -> None:
    """A bulk query takes no variables: the (checked) id is written into it. A running
    export of the query without the publication is not this one and is not adopted."""
    shop = connector(backfill="bulk")
    ours = bulk.bulk_products_query(PUBLICATION)
    other = {"id": "gid://shopify/BulkOperation/1", "status": "RUNNING", "type": "QUERY",
             "query": bulk.BULK_PRODUCTS, "createdAt": "2026-11-24T08:00:00Z"}
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        rsps.post(GRAPHQL, json={"data": {"bulkOperations": {"nodes": [other]}}})
        rsps.post(GRAPHQL, json={"data": {"bulkOperationRunQuery": {
            "bulkOperation": {"id": OP, "status": "CREATED"}, "userErrors": []}}})
        rsps.post(GRAPHQL, json={"data": {"node": {"id": OP, "status": "COMPLETED",
                                                   "errorCode": None, "objectCount": "3",
                                                   "url": EXPORT}}})
        rsps.get(EXPORT, body=_bulk_rows())
        products = next(shop.iter_products()).items
        run = json.loads(rsps.calls[1].request.body)["variables"]["query"]
    assert run == ours and f'publishedOnPublication(publicationId: "{PUBLICATION}")' in run
    assert [(p.external_id, p.available) for p in products] == [("1", False), ("2", True)]


@pytest.mark.parametrize("bad", ['gid://shopify/Publication/1") { id } #', "1",
                                 "gid://shopify/Channel/1"])
def test_the_bulk_query_takes_only_a_publication_id(bad: str) -> None:
    with pytest.raises(InvalidPayload):
        bulk.bulk_products_query(bad)


def test_the_shops_publications_are_listed_by_their_catalog_title() -> None:
    answer = {"data": {"publications": {
        "pageInfo": {"hasNextPage": False, "endCursor": "p2"},
        "nodes": [{"id": "gid://shopify/Publication/1", "catalog": {"title": "Online Store"}},
                  {"id": PUBLICATION, "catalog": {"title": "Shoe storefront"}},
                  {"id": "gid://shopify/Publication/7", "catalog": None}]}}}
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=answer)
        found = connector(publication=None).publications()
    assert [(p.id, p.name) for p in found] == [
        ("gid://shopify/Publication/1", "Online Store"), (PUBLICATION, "Shoe storefront"),
        ("gid://shopify/Publication/7", "gid://shopify/Publication/7")]


def test_listing_publications_without_the_scope_is_access_denied() -> None:
    denied = {"errors": [{"message": "Access denied for publications field. Required access: "
                                     "`read_publications` access scope.",
                          "extensions": {"code": "ACCESS_DENIED",
                                         "documentation": "https://shopify.dev/api/usage/"
                                                          "access-scopes"}}],
              "data": None}
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=denied)
        with pytest.raises(AccessDenied):
            connector(BEFORE, None).publications()


@pytest.mark.parametrize("body", [
    fixture("publications_delete.json"),
    b'{"id": "gid://shopify/Publication/72156512402"}',
    b'{"id": 72156512402, "admin_graphql_api_id": "gid://shopify/Publication/72156512402"}',
])
def test_a_deleted_publication_is_named_by_its_global_id(body) -> None:
    """``publications/delete`` names the publication as the merchant's choice is kept (a
    global id, ``Publication.id``), whichever form of id the body carries. Parsing asks
    Shopify nothing, publication chosen or not."""
    with responses.RequestsMock():
        event = connector().parse_webhook(shopify_headers("publications/delete", body), body)
    assert event.topic == "publications/delete" and not event.needs_fetch
    assert event.record == Deletion(kind="publication",
                                    external_id="gid://shopify/Publication/72156512402",
                                    deleted_at=event.occurred_at)


def test_the_publication_delete_topic_is_subscribed() -> None:
    """Shopify's enum for it is PUBLICATIONS_DELETE (API 2023-10 on, read_publications)."""
    answer = {"data": {"webhookSubscriptionCreate": {
        "webhookSubscription": {"id": "gid://shopify/WebhookSubscription/1"},
        "userErrors": []}}}
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=answer)  # the same answer to every topic
        connector().subscribe_webhooks("https://sk.example/webhooks/shopify/shp_1")
        topics = [json.loads(c.request.body)["variables"]["topic"] for c in rsps.calls]
    assert "PUBLICATIONS_DELETE" in topics
