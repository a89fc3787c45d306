"""Shopify bulk export: run, poll, download JSONL, stitch variants, page, resume."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import responses
from responses.registries import OrderedRegistry

from connectors.base import Credentials
from connectors.errors import AuthFailed, ConnectorError, TransientError
from connectors.http import make_session
from connectors.shopify import ShopifyConnector, bulk
from connectors.shopify.client import API_VERSION

SHOP = "jsmith.myshopify.com"
GRAPHQL = f"https://{SHOP}/admin/api/{API_VERSION}/graphql.json"
EXPORT = "https://storage.googleapis.com/shopify-tiers-assets-prod-us-east1/bulk-export.jsonl"
OP = "gid://shopify/BulkOperation/720918"


def jsonl(n_products: int) -> str:
    """The documented layout: parents first, children carry ``__parentId``."""
    rows = []
    for i in range(1, n_products + 1):
        pid = f"gid://shopify/Product/{i}"
        rows.append({"id": pid, "title": f"P{i}", "status": "ACTIVE", "tags": ["a"],
                     "productType": "Shirts", "vendor": "Acme",
                     "updatedAt": "2025-11-20T08:00:00Z"})
        rows.append({"id": f"gid://shopify/ProductVariant/{i}0", "title": "S", "sku": f"S{i}",
                     "price": "9.50", "availableForSale": True, "inventoryQuantity": 1,
                     "__parentId": pid})
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def connector(delays: list[float]) -> ShopifyConnector:
    creds = Credentials(SHOP, access_token="shpat_x", webhook_secret="s" * 32,
                        extra={"currency": "USD", "backfill": "bulk"})
    return ShopifyConnector(creds, session=make_session(sleep=delays.append))


def poll(status: str, url: str | None = None) -> dict:
    return {"data": {"node": {"id": OP, "status": status, "errorCode": None,
                              "objectCount": "0", "url": url}}}


def running(*ops: dict) -> dict:
    """A ``bulkOperations`` page (API 2026-01 on) of the app's unfinished operations."""
    return {"data": {"bulkOperations": {"nodes": list(ops)}}}


def op(gid: str, status: str = "RUNNING", query: str = bulk.BULK_PRODUCTS,
       created: str = "2026-11-24T08:00:00Z") -> dict:
    return {"id": gid, "status": status, "type": "QUERY", "query": query, "createdAt": created}


def test_bulk_export_is_stitched_paged_and_resumable() -> None:
    delays: list[float] = []
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        rsps.post(GRAPHQL, json=running())
        rsps.post(GRAPHQL, json={"data": {"bulkOperationRunQuery": {
            "bulkOperation": {"id": OP, "status": "CREATED"}, "userErrors": []}}})
        rsps.post(GRAPHQL, json=poll("RUNNING"))
        rsps.post(GRAPHQL, json=poll("COMPLETED", EXPORT))
        rsps.get(EXPORT, body=jsonl(300))
        pages = connector(delays).iter_products()
        first = next(pages)
        run = json.loads(rsps.calls[1].request.body)["variables"]["query"]
        assert "__parentId" not in run and "products" in run
        assert "X-Shopify-Access-Token" not in rsps.calls[4].request.headers
    assert delays == [bulk.POLL_SECONDS]
    assert len(first.items) == 250 and first.next_cursor == f"bulk:{OP}:250"
    product = first.items[0]
    assert product.external_id == "1" and product.variants[0].sku == "S1"
    assert product.price == Decimal("9.50") and product.currency == "USD"

    with responses.RequestsMock(registry=OrderedRegistry) as rsps:  # a new process resumes
        rsps.post(GRAPHQL, json=poll("COMPLETED", EXPORT))
        rsps.get(EXPORT, body=jsonl(300))
        rest = list(connector(delays).iter_products(cursor=first.next_cursor))
    ids = [p.external_id for p in first.items] + [p.external_id for p in rest[0].items]
    assert ids == [str(i) for i in range(1, 301)] and rest[-1].next_cursor is None


def test_the_hour_of_polls_before_the_first_page_keeps_the_caller_alive() -> None:
    """The sync renews its (short) lease on pages; an export yields none while it runs."""
    beats: list[int] = []
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        rsps.post(GRAPHQL, json=running())
        rsps.post(GRAPHQL, json={"data": {"bulkOperationRunQuery": {
            "bulkOperation": {"id": OP, "status": "CREATED"}, "userErrors": []}}})
        for _ in range(3):
            rsps.post(GRAPHQL, json=poll("RUNNING"))
        rsps.post(GRAPHQL, json=poll("COMPLETED", EXPORT))
        rsps.get(EXPORT, body=jsonl(3))
        shop = connector([])
        shop.keep_alive = lambda: beats.append(len(rsps.calls))
        assert len(next(shop.iter_products()).items) == 3
    assert beats == [2, 3, 4, 5]  # before each poll


def test_unreadable_products_are_named_once_across_a_resume() -> None:
    rows = jsonl(300).splitlines()
    bad = json.loads(rows[4])  # product 3 (every product is followed by its variant)
    rows[4] = json.dumps({**bad, "updatedAt": "someday"})
    body = "\n".join(rows) + "\n"
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        rsps.post(GRAPHQL, json=poll("COMPLETED", EXPORT))
        rsps.get(EXPORT, body=body)
        first = next(connector([]).iter_products(cursor=f"bulk:{OP}:0"))
    assert [r.record_id for r in first.rejected] == ["gid://shopify/Product/3"]
    assert "3" not in [p.external_id for p in first.items] and len(first.items) == 250
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        rsps.post(GRAPHQL, json=poll("COMPLETED", EXPORT))
        rsps.get(EXPORT, body=body)
        rest = list(connector([]).iter_products(cursor=first.next_cursor))
    assert [len(p.items) for p in rest] == [49] and rest[0].rejected == ()


def test_empty_shop_yields_one_empty_last_page() -> None:
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        rsps.post(GRAPHQL, json=poll("COMPLETED", None))
        pages = list(connector([]).iter_products(cursor=f"bulk:{OP}:0"))
    assert len(pages) == 1 and pages[0].items == [] and pages[0].next_cursor is None


@pytest.mark.parametrize("status", ["FAILED", "CANCELED"])
def test_failed_export_is_transient(status: str) -> None:
    # EXPIRED on a resume starts a new export (see the test below)
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=poll(status))
        with pytest.raises(TransientError):
            next(connector([]).iter_products(cursor=f"bulk:{OP}:0"))


REFUSED = {"data": {"bulkOperationRunQuery": {"bulkOperation": None, "userErrors": [
    {"field": None, "message": "Bulk operations limit reached. Please try again later.",
     "code": "LIMIT_REACHED"}]}}}


@pytest.mark.parametrize("answer", [
    running(), running(op(OP, query="{ orders { edges { node { id } } } }"))])
def test_refused_bulk_run_is_connector_error(answer: dict) -> None:
    """Five exports of something else fill the shop's slots: nothing of ours to read."""
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        rsps.post(GRAPHQL, json=answer)
        rsps.post(GRAPHQL, json=REFUSED)
        rsps.post(GRAPHQL, json=answer)
        with pytest.raises(ConnectorError, match="limit reached"):
            next(connector([]).iter_products())


def test_our_export_still_running_is_read_not_started_again() -> None:
    """A sync killed while polling (or out of polls) leaves its export running with its id
    unsaved. From API 2026-01 Shopify runs up to five bulk queries per shop and no longer
    refuses a second one (``currentBulkOperation``, deprecated, names only the latest): the
    next sync must find that export among the app's running operations and read it, not
    start another beside it (five such and every run is refused)."""
    delays: list[float] = []
    older = "gid://shopify/BulkOperation/720917"
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        rsps.post(GRAPHQL, json=running(
            op(OP, created="2026-11-24T09:00:00Z"),
            op("gid://shopify/BulkOperation/1", query="{ orders { edges { node { id } } } }",
               created="2026-11-24T07:00:00Z"),
            op(older, created="2026-11-24T08:00:00Z")))
        rsps.post(GRAPHQL, json=poll("RUNNING"))
        rsps.post(GRAPHQL, json=poll("COMPLETED", EXPORT))
        rsps.get(EXPORT, body=jsonl(300))
        first = next(connector(delays).iter_products())
        asked = json.loads(rsps.calls[0].request.body)["query"]
        polled = json.loads(rsps.calls[1].request.body)["variables"]["id"]
    assert "bulkOperations" in asked and "currentBulkOperation" not in asked
    assert polled == older and delays == [bulk.POLL_SECONDS]  # ours, started first
    assert len(first.items) == 250 and first.next_cursor == f"bulk:{older}:250"


def test_a_refused_run_reads_our_export_started_meanwhile() -> None:
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        rsps.post(GRAPHQL, json=running())
        rsps.post(GRAPHQL, json=REFUSED)
        rsps.post(GRAPHQL, json=running(op(OP, status="CREATED")))
        rsps.post(GRAPHQL, json=poll("COMPLETED", EXPORT))
        rsps.get(EXPORT, body=jsonl(3))
        assert len(next(connector([]).iter_products()).items) == 3


def test_resuming_an_export_whose_url_expired_starts_a_new_export() -> None:
    """``EXPIRED`` means the export's URL is gone for good (shopify.dev BulkOperationStatus:
    "The bulk operation URL has expired"; url values expire after seven days). Asking about
    the same operation again can only answer EXPIRED again, so a paused backfill resumed
    after a week must run a new export rather than fail on every run forever."""
    new_op = "gid://shopify/BulkOperation/720919"
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        rsps.post(GRAPHQL, json=poll("EXPIRED"))
        rsps.post(GRAPHQL, json=running())
        rsps.post(GRAPHQL, json={"data": {"bulkOperationRunQuery": {
            "bulkOperation": {"id": new_op, "status": "CREATED"}, "userErrors": []}}})
        rsps.post(GRAPHQL, json={"data": {"node": {"id": new_op, "status": "COMPLETED",
                                                   "errorCode": None, "objectCount": "600",
                                                   "url": EXPORT}}})
        rsps.get(EXPORT, body=jsonl(300))
        pages = list(connector([]).iter_products(cursor=f"bulk:{OP}:250"))
        polled = json.loads(rsps.calls[3].request.body)["variables"]["id"]
    assert polled == new_op
    # the new export is read from its start: products the old one had paged may have changed
    assert [len(p.items) for p in pages] == [250, 50]
    assert pages[0].next_cursor == f"bulk:{new_op}:250" and pages[-1].next_cursor is None


def test_variants_listed_before_their_product_are_kept() -> None:
    """From API 2026-01 an export is not grouped by default (``groupObjects: false``), and
    Shopify says not to rely on line order: a variant may precede its product. Dropping it
    left the product without price or stock (a sold-out one recommended as available)."""
    rows = [json.loads(r) for r in jsonl(2).splitlines()]
    rows.append({**rows[1], "id": "gid://shopify/ProductVariant/11", "sku": "S1-OUT",
                 "availableForSale": False})
    ungrouped = [rows[3], rows[1], rows[0], rows[2], rows[4]]  # variants first, mixed
    body = "\n".join(json.dumps(r) for r in ungrouped) + "\n"
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        rsps.post(GRAPHQL, json=poll("COMPLETED", EXPORT))
        rsps.get(EXPORT, body=body)
        page = next(connector([]).iter_products(cursor=f"bulk:{OP}:0"))
    products = {p.external_id: p for p in page.items}
    assert [v.sku for v in products["1"].variants] == ["S1", "S1-OUT"]
    assert [v.sku for v in products["2"].variants] == ["S2"]
    assert products["2"].price == Decimal("9.50")


#: GraphQL's access-denied answer (HTTP 200), here for a partner app whose bulk queries are
#: not allowed in the Partner Dashboard (required from 2026-11-06, shopify.dev/changelog/
#: partner-apps-must-enable-bulk-operations-before-use: "the request returns an access
#: denied error").
DENIED = {"data": {"bulkOperationRunQuery": None}, "errors": [{
    "message": "Access denied for bulkOperationRunQuery field.",
    "locations": [{"line": 3, "column": 3}], "path": ["bulkOperationRunQuery"],
    "extensions": {"code": "ACCESS_DENIED",
                   "documentation": "https://shopify.dev/api/usage/access-scopes"}}]}


@pytest.mark.parametrize("cursor", [None, f"bulk:{OP}:250"])
def test_bulk_queries_not_allowed_for_the_app_fall_back_to_pages(cursor: str | None) -> None:
    """The shop's token is fine: AuthFailed would flag the installation for re-auth (the
    merchant can do nothing about a Partner Dashboard setting) and stop its syncs. The
    products are read in cursor pages instead, from the start on a resume."""
    page = {"data": {"shop": {"currencyCode": "USD"}, "products": {
        "pageInfo": {"hasNextPage": False, "endCursor": "c1"},
        "nodes": [{"id": "gid://shopify/Product/1", "title": "P1", "status": "ACTIVE",
                   "updatedAt": "2026-11-20T08:00:00Z",
                   "variants": {"pageInfo": {"hasNextPage": False, "endCursor": None},
                                "nodes": [{"id": "gid://shopify/ProductVariant/10",
                                           "price": "9.50", "availableForSale": True}]}}]}}}
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        if cursor:
            rsps.post(GRAPHQL, json=poll("EXPIRED"))
        rsps.post(GRAPHQL, json=running())
        rsps.post(GRAPHQL, json=DENIED)
        rsps.post(GRAPHQL, json=page)
        pages = list(connector([]).iter_products(cursor=cursor))
        paged = json.loads(rsps.calls[-1].request.body)
    assert "products(first: $first" in paged["query"] and paged["variables"]["after"] is None
    assert [[p.external_id for p in pg.items] for pg in pages] == [["1"]]
    assert pages[0].items[0].price == Decimal("9.50") and pages[-1].next_cursor is None


def test_bulk_not_enabled_is_a_connector_error_not_auth_failed() -> None:
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        rsps.post(GRAPHQL, json=running())
        rsps.post(GRAPHQL, json=DENIED)
        client = connector([])._client()
        with pytest.raises(bulk.BulkNotEnabled, match="Partner Dashboard") as raised:
            next(bulk.iter_bulk_products(client, currency="USD"))
    assert not isinstance(raised.value, AuthFailed)


#: What signed Cloud Storage answers for a URL whose signature it no longer accepts.
STORAGE_403 = ("<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
               "<Message>Access denied.</Message></Error>")


def test_a_refused_export_url_is_retryable_not_auth_failed() -> None:
    """The download URL is signed storage, sent no shop token: its 403 says nothing about
    the shop's token, so it must not flag the installation for re-auth."""
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        rsps.post(GRAPHQL, json=running(op(OP)))
        rsps.post(GRAPHQL, json=poll("COMPLETED", EXPORT))
        rsps.get(EXPORT, status=403, body=STORAGE_403, content_type="application/xml")
        with pytest.raises(TransientError) as raised:
            next(connector([]).iter_products())
    assert not isinstance(raised.value, AuthFailed)


def test_resuming_an_export_whose_url_is_refused_starts_a_new_export() -> None:
    new_op, new_export = "gid://shopify/BulkOperation/720919", EXPORT + "?fresh"
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        rsps.post(GRAPHQL, json=poll("COMPLETED", EXPORT))
        rsps.get(EXPORT, status=403, body=STORAGE_403, content_type="application/xml")
        rsps.post(GRAPHQL, json=running())
        rsps.post(GRAPHQL, json={"data": {"bulkOperationRunQuery": {
            "bulkOperation": {"id": new_op, "status": "CREATED"}, "userErrors": []}}})
        rsps.post(GRAPHQL, json={"data": {"node": {"id": new_op, "status": "COMPLETED",
                                                   "errorCode": None, "objectCount": "600",
                                                   "url": new_export}}})
        rsps.get(new_export, body=jsonl(300))
        pages = list(connector([]).iter_products(cursor=f"bulk:{OP}:250"))
    assert [len(p.items) for p in pages] == [250, 50]
    assert pages[0].next_cursor == f"bulk:{new_op}:250"
