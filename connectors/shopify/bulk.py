"""Bulk operations for large shops: one JSONL export instead of thousands of cursor pages.

The export is linked by ``__parentId`` (variants point at their product). Pages are cut
from the file in order, and the cursor ``bulk:<operation gid>:<products done>`` resumes
from the same export while its URL is still valid (7 days); a resume after that runs a
new export.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from connectors.errors import AuthFailed, ConnectorError, InvalidPayload, TransientError
from connectors.pages import convert_nodes
from connectors.parsing import as_object, decode_json
from connectors.records import Page, Product, Rejected
from connectors.shopify import mapping
from connectors.shopify.client import AccessDenied, ShopifyGraphQL, user_errors

__all__ = ["BULK_PRODUCTS", "BulkNotEnabled", "bulk_products_query", "iter_bulk_products",
           "parse_cursor"]

#: A publication's global id, the only text a bulk query takes from outside (a bulk query
#: has no variables, so the id is written into it).
PUBLICATION_GID = re.compile(r"gid://shopify/Publication/[0-9]+")


def bulk_products_query(publication: str | None = None) -> str:
    """The products export; with ``publication``, whether each is published there."""
    published = ""
    if publication is not None:
        if not PUBLICATION_GID.fullmatch(publication):
            raise InvalidPayload("bad publication id", {"publication": [publication[:100]]})
        published = f'\n      publishedOnPublication(publicationId: "{publication}")'
    return f"""
{{
  products {{
    edges {{ node {{
      id title handle descriptionHtml onlineStoreUrl vendor productType tags status
      updatedAt{published}
      featuredMedia {{ preview {{ image {{ url }} }} }}
      variants {{ edges {{ node {{ id title sku price availableForSale inventoryQuantity }} }} }}
    }} }}
  }}
}}"""


BULK_PRODUCTS = bulk_products_query()

RUN_MUTATION = """
mutation Run($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message }
  }
}"""

#: The app's unfinished bulk operations (``currentBulkOperation`` is deprecated from API
#: 2026-01, which runs up to five bulk queries per shop at once: it names only the latest).
RUNNING_QUERY = """
query Running {
  bulkOperations(first: 10, query: "status:created OR status:running") {
    nodes { id status type query createdAt }
  }
}"""

POLL_QUERY = """
query Poll($id: ID!) {
  node(id: $id) { ... on BulkOperation { id status errorCode objectCount url } }
}"""

PAGE = 250
POLL_SECONDS = 5.0
MAX_POLLS = 720  # an hour at 5 s


def parse_cursor(cursor: str) -> tuple[str, int]:
    """``bulk:<gid>:<n>`` -> (operation gid, products already yielded)."""
    try:
        _, rest = cursor.split(":", 1)
        gid, done = rest.rsplit(":", 1)
        return gid, int(done)
    except ValueError:
        raise InvalidPayload("bad bulk cursor", {"cursor": [cursor]}) from None


class BulkNotEnabled(ConnectorError):
    """Shopify denied the app bulk queries: from 2026-11-06 a partner app must allow them in
    the Partner Dashboard (API access requests, "Allow bulk queries") and loses that after
    31 days without a bulk query. The shop's token is fine, so this is no ``AuthFailed``."""


def _start(client: ShopifyGraphQL, query: str = BULK_PRODUCTS) -> str:
    """Adopt our products export that is still running, else start one (``BulkNotEnabled``
    when the app may not run bulk queries).

    An export whose run was cut short (the worker killed while polling, or the hour of
    polls used up) keeps running, but its id was never saved, since the cursor is saved
    with the first page. Shopify (API 2026-01 on) runs up to five bulk queries per shop
    and no longer refuses a second one, so starting anew would leave each cut-short export
    running beside a new one until all five slots are taken and every run is refused.
    """
    try:
        running = _running_export(client, query)
        if running is not None:
            return running
        result = client.execute(RUN_MUTATION, {"query": query}).get(
            "bulkOperationRunQuery")
    except AccessDenied:
        # neither call reads shop data (a scope the export's query needs fails the export
        # itself, errorCode ACCESS_DENIED): denied here, the app lacks bulk access
        raise BulkNotEnabled("Shopify denied the app bulk queries: allow them in the "
                             "Partner Dashboard (API access requests)") from None
    errors = user_errors(result)
    if errors:
        running = _running_export(client, query)  # another run may have started ours meanwhile
        if running is not None:
            return running
        raise ConnectorError(f"Shopify refused the bulk operation: {[e.message for e in errors]}")
    op_id = as_object(as_object(result).get("bulkOperation")).get("id")
    if not op_id or not isinstance(op_id, str):
        raise ConnectorError("Shopify started no bulk operation")
    return op_id


def _running_export(client: ShopifyGraphQL, query: str) -> str | None:
    """The id of the app's oldest unfinished export of ``query`` (the first to finish)."""
    found = (client.execute(RUNNING_QUERY).get("bulkOperations") or {}).get("nodes") or ()
    ours = [op for op in found if isinstance(op, dict) and op.get("id")
            and op.get("type", "QUERY") == "QUERY"
            and op.get("status") in ("CREATED", "RUNNING")
            # an export of something else is not ours to read
            and _squeeze(op.get("query") or "") == _squeeze(query)]
    return min(ours, key=lambda op: op.get("createdAt") or "")["id"] if ours else None


def _squeeze(query: str) -> str:
    return " ".join(query.split())


class _Expired(TransientError):
    """The export's URL has expired (kept seven days), or its storage refuses it: that
    export can never be read again."""


def _wait(client: ShopifyGraphQL, gid: str, sleep: Callable[[float], Any],
          keep_alive: Callable[[], object]) -> str | None:
    """Poll until the export is done; its JSONL URL (None when the shop has no products).
    ``keep_alive`` runs before each poll: the hour of polls yields no page to renew on."""
    for _ in range(MAX_POLLS):
        keep_alive()
        node = client.execute(POLL_QUERY, {"id": gid}).get("node") or {}
        status = node.get("status")
        if status == "COMPLETED":
            return node.get("url")
        if status == "EXPIRED":
            raise _Expired(f"bulk operation {status} ({node.get('errorCode')})")
        if status in ("FAILED", "CANCELED", "EXPIRED"):
            raise TransientError(f"bulk operation {status} ({node.get('errorCode')})")
        sleep(POLL_SECONDS)
    raise TransientError("bulk operation did not finish in time")


def _products(
    lines: Iterator[str], currency: str | None
) -> tuple[list[Product], tuple[Rejected, ...]]:
    """Group the JSONL rows: products in file order, each with its variants, and the
    products that could not be read.

    A variant may come before its product: exports are ungrouped by default from API
    2026-01 (``groupObjects``), and Shopify says not to rely on line order at all.
    """
    nodes: dict[str, dict[str, Any]] = {}
    children: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        if not line.strip():
            continue
        row = decode_json(line)
        parent = row.pop("__parentId", None)
        if parent is None:
            row["variants"] = {"nodes": []}
            nodes[row["id"]] = row
        else:
            children.setdefault(parent, []).append(row)
    for parent, rows in children.items():
        if parent in nodes:
            nodes[parent]["variants"]["nodes"].extend(rows)
    return convert_nodes(list(nodes.values()),
                         lambda node: mapping.product_from_gql(node, currency=currency),
                         what="products")


def _read(client: ShopifyGraphQL, gid: str, sleep: Callable[[float], Any],
          keep_alive: Callable[[], object]) -> str | None:
    """The export's JSONL once it is done (None when the shop has no products).

    The URL is signed storage, sent no shop token: a 401/403 from it means its signature
    is no longer good (``_Expired``), not that the shop revoked us (``AuthFailed``).
    """
    url = _wait(client, gid, sleep, keep_alive)
    if url is None:
        return None
    try:
        response = client.session.get(url)
    except AuthFailed as exc:
        raise _Expired(f"bulk export URL refused ({exc})") from None
    if response.status_code != 200:
        raise TransientError(f"bulk export download failed: HTTP {response.status_code}")
    return response.text


def iter_bulk_products(
    client: ShopifyGraphQL,
    *,
    currency: str | None,
    cursor: str | None = None,
    sleep: Callable[[float], Any] = time.sleep,
    keep_alive: Callable[[], object] = lambda: None,
    publication: str | None = None,
) -> Iterator[Page[Product]]:
    """Run (or resume) a products export and yield it in pages of 250; with
    ``publication``, the export says whether each product is published there."""
    query = bulk_products_query(publication)
    gid, done = parse_cursor(cursor) if cursor else (_start(client, query), 0)
    try:
        text = _read(client, gid, sleep, keep_alive)
    except _Expired:
        if not cursor:
            raise  # a fresh export refused: retried later (a new export), never AuthFailed
        # resuming an export older than its URL: asking again would answer EXPIRED on
        # every run, so export afresh and read it from the start (upserts are monotonic)
        gid, done = _start(client, query), 0
        text = _read(client, gid, sleep, keep_alive)
    if text is None:
        yield Page(items=[], next_cursor=None)
        return
    try:
        products, rejected = _products(iter(text.splitlines()), currency)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidPayload("unreadable bulk export", {"jsonl": [repr(exc)]}) from None
    while True:
        page = products[done : done + PAGE]
        done += len(page)
        last = done >= len(products)
        # the export's rejections ride on its first page, so a resumed run does not
        # count them twice
        yield Page(items=page, next_cursor=None if last else f"bulk:{gid}:{done}",
                   rejected=rejected if done == len(page) else ())
        if last:
            return
