"""Admin GraphQL calls: cursor-paged backfill, cost-based throttling, discount creation.

Page sizes keep each query well under Shopify's 1,000-point single-query cost limit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import requests

from connectors.errors import (
    AuthFailed,
    ConnectorError,
    InvalidPayload,
    PermissionDenied,
    ShopUnavailable,
    TransientError,
)
from connectors.http import server_trouble
from connectors.pages import convert_nodes
from connectors.parsing import as_object
from connectors.records import Page

__all__ = ["API_VERSION", "AccessDenied", "ShopifyGraphQL", "UserError", "required_scope",
           "throttle_delay", "unavailable", "user_errors"]

log = logging.getLogger(__name__)

#: The Admin API version every call names, and the one ``shopify.app.toml`` must give for
#: webhook payloads (connectors/INSTALLING.md). Shopify supports a version for a year and
#: then serves its calls as the oldest supported one: 2026-10 is supported until at least
#: 2027-10-01, so move to 2027-07 (released 2027-07-01) before then.
API_VERSION = "2026-10"
T = TypeVar("T")

#: What the backfill reads of a variant and of an order line (pages and follow-up pages).
VARIANT_FIELDS = """
fragment VariantFields on ProductVariant {
  id title sku price availableForSale inventoryQuantity
}"""
LINE_FIELDS = """
fragment LineFields on LineItem {
  quantity product { id } variant { id } originalUnitPriceSet { shopMoney { amount } }
}"""

#: Whether a product is published on the storefront's publication (``$publication``): the
#: Storefront API sells only what is published there. Needs ``read_publications``.
PUBLISHED_FIELD = "publishedOnPublication(publicationId: $publication)"


def product_fields(published: bool) -> str:
    """What the backfill and an inventory change read of a product (its first ten
    variants), and whether it is published on ``$publication`` when ``published``."""
    extra = f" {PUBLISHED_FIELD}" if published else ""
    return f"""
fragment ProductFields on Product {{
  id title handle descriptionHtml onlineStoreUrl vendor productType tags status updatedAt{extra}
  featuredMedia {{ preview {{ image {{ url }} }} }}
  variants(first: 10) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ ...VariantFields }}
  }}
}}""" + VARIANT_FIELDS


def _publication_var(published: bool) -> str:
    return ", $publication: ID!" if published else ""


def products_query(published: bool) -> str:
    """A page of products, newest change last (``PRODUCTS_QUERY`` unless ``published``)."""
    return f"""
query Products($first: Int!, $after: String, $query: String{_publication_var(published)}) {{
  shop {{ currencyCode }}
  products(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ ...ProductFields }}
  }}
}}""" + product_fields(published)


def inventory_item_product_query(published: bool) -> str:
    """The product whose variant an inventory item stocks (``inventory_levels/update``
    names only the item); ``inventoryItem`` is null for an item Shopify does not know."""
    return f"""
query InventoryItemProduct($id: ID!{_publication_var(published)}) {{
  shop {{ currencyCode }}
  inventoryItem(id: $id) {{ variant {{ product {{ ...ProductFields }} }} }}
}}""" + product_fields(published)


def product_query(published: bool) -> str:
    """A product as Shopify has it now, for a ``products/create|update`` body that cannot
    say whether it is in stock or published (``fetch_event_record``)."""
    return f"""
query Product($id: ID!{_publication_var(published)}) {{
  shop {{ currencyCode }}
  product(id: $id) {{ ...ProductFields }}
}}""" + product_fields(published)


PRODUCT_FIELDS = product_fields(False)
PRODUCTS_QUERY = products_query(False)
INVENTORY_ITEM_PRODUCT_QUERY = inventory_item_product_query(False)
PRODUCT_QUERY = product_query(False)

#: The shop's publications (sales channels, each Headless storefront its own), named by
#: their catalog's title (``Publication.name`` is deprecated). Needs ``read_publications``.
PUBLICATIONS_QUERY = """
query Publications($after: String) {
  publications(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id catalog { title } }
  }
}"""

#: The rest of one product's variants, when the products page holds only its first ten.
PRODUCT_VARIANTS_QUERY = """
query ProductVariants($id: ID!, $after: String) {
  node: product(id: $id) {
    variants(first: 250, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...VariantFields }
    }
  }
}""" + VARIANT_FIELDS

#: The rest of one order's line items, when the orders page holds only its first 25.
ORDER_LINES_QUERY = """
query OrderLines($id: ID!, $after: String) {
  node: order(id: $id) {
    lineItems(first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...LineFields }
    }
  }
}""" + LINE_FIELDS

CUSTOMERS_QUERY = """
query Customers($first: Int!, $after: String, $query: String) {
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { id createdAt updatedAt defaultEmailAddress { emailAddress } }
  }
}"""

ORDERS_QUERY = """
query Orders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id createdAt updatedAt cancelledAt currencyCode discountCodes
      customer { id }
      totalPriceSet { shopMoney { amount currencyCode } }
      lineItems(first: 25) {
        pageInfo { hasNextPage endCursor }
        nodes { ...LineFields }
      }
    }
  }
}""" + LINE_FIELDS

SHOP_QUERY = "query { shop { currencyCode ianaTimezone } }"
#: The shop's currency and the presentment currencies its Markets sell in (``shop`` needs
#: no access scope: any token of the shop may read it).
SOLD_CURRENCIES_QUERY = ("query SoldCurrencies { shop { currencyCode "
                         "enabledPresentmentCurrencies } }")


#: Statuses Shopify answers for a store it holds back, whatever the endpoint (Admin API,
#: token endpoint): 402 "Payment Required: the requested shop is currently frozen" (an
#: unpaid bill) and 423 "Locked" (e.g. a detected compromise or fraud risk). See
#: https://shopify.dev/docs/api/usage/response-codes
UNAVAILABLE_STATUSES: dict[int, str] = {402: "frozen", 423: "locked"}


def unavailable(status: int, what: str = "Shopify") -> ShopUnavailable | None:
    """The error for a status saying the store is frozen or locked, None for any other."""
    reason = UNAVAILABLE_STATUSES.get(status)
    if reason is None:
        return None
    return ShopUnavailable(f"{what}: the store is {reason} (HTTP {status})", status=status,
                           reason=reason)


class AccessDenied(PermissionDenied):
    """GraphQL ``ACCESS_DENIED``: the token may not run this query (a scope the merchant did
    not grant), or the app may not (bulk operations not allowed in the Partner Dashboard,
    which ``bulk`` tells apart)."""


#: The scope an ``ACCESS_DENIED`` names: "Access denied for discountCodeBasicCreate field.
#: Required access: `write_discounts` access scope." (also in ``extensions.requiredAccess``)
_REQUIRED_SCOPE = re.compile(r"`?\b((?:read|write)_\w+)`?\s+access scope")


def required_scope(errors: Any) -> str | None:
    """The first access scope an ``ACCESS_DENIED`` entry says the call needs, if any."""
    for entry in errors if isinstance(errors, list) else [errors]:
        entry = as_object(entry)
        for text in (as_object(entry.get("extensions")).get("requiredAccess"),
                     entry.get("message")):
            found = _REQUIRED_SCOPE.search(text) if isinstance(text, str) else None
            if found:
                return found.group(1)
    return None


def throttle_delay(response: requests.Response) -> float | None:
    """Seconds until the cost bucket refills enough, when a 200 carries ``THROTTLED``."""
    try:
        body = response.json()
    except ValueError:
        return None
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return None
    if "THROTTLED" not in error_codes(errors):
        return None
    cost = as_object(as_object(body.get("extensions")).get("cost"))
    status = as_object(cost.get("throttleStatus"))
    try:
        missing = float(cost["requestedQueryCost"]) - float(status["currentlyAvailable"])
        return max(missing, 0.0) / float(status["restoreRate"]) or 1.0
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return 1.0


def error_codes(errors: Any) -> set[str | None]:
    """The ``extensions.code`` of each entry of a GraphQL ``errors`` list, None for one
    without (an entry, its extensions or its code of another shape raised AttributeError
    or TypeError, a crash instead of a connector error)."""
    entries = errors if isinstance(errors, list) else [errors]
    return {code if isinstance(code := as_object(as_object(e).get("extensions")).get("code"),
                                str) else None
            for e in entries}


class UserError(NamedTuple):
    """One ``userErrors`` entry of a mutation's answer."""

    message: str
    field: str  # its path joined with dots, "_" for none
    code: str | None


def user_errors(result: Any) -> list[UserError]:
    """A mutation answer's ``userErrors``, read whatever their shape: an answer, a list or
    an entry that was no object (or a code that was a list) raised AttributeError or
    TypeError, a crash instead of the platform's refusal. An entry that is no object
    counts as its message."""
    errors = as_object(result).get("userErrors") or []
    read = []
    for error in errors if isinstance(errors, list) else [errors]:
        entry = error if isinstance(error, dict) else {"message": error}
        message, path, code = entry.get("message"), entry.get("field"), entry.get("code")
        path = path if isinstance(path, list) else [path] if path else []
        read.append(UserError("" if message is None else str(message),
                              ".".join(map(str, path)) or "_",
                              code if isinstance(code, str) else None))
    return read


class ShopifyGraphQL:
    """One shop's Admin GraphQL endpoint over a retrying session."""

    def __init__(self, session: requests.Session, shop_domain: str, access_token: str, *,
                 renew: Callable[[bool], str | None] | None = None) -> None:
        """``renew(False)`` returns the token to send now (renewed when about to expire: a
        backfill outlives the hour an expiring token lasts); ``renew(True)`` one to retry a
        401 with, or None when renewing cannot help."""
        self.session = session
        self.url = f"https://{shop_domain}/admin/api/{API_VERSION}/graphql.json"
        self._token = access_token
        self._renew = renew
        if getattr(session, "throttle_hint", "absent") is None:
            session.throttle_hint = throttle_delay  # type: ignore[attr-defined]

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a query; translate transport and GraphQL errors into the connector tree.

        A 401 is asked again once with a renewed token: an expiring token may have run out
        between the check and the call (or another worker's refresh replaced it).
        """
        if self._renew is not None:
            self._token = self._renew(False) or self._token
        try:
            response = self._post(query, variables)
        except AuthFailed as err:
            fresh = self._renew(True) if self._renew is not None and err.status == 401 else None
            if fresh is None and err.status == 403:  # authenticated, but not for this
                raise PermissionDenied(str(err), status=403) from None
            if fresh is None:
                raise
            self._token = fresh
            response = self._post(query, variables)
        held_back = unavailable(response.status_code, "Shopify GraphQL")
        if held_back is not None:  # not our credentials: re-authorizing changes nothing
            raise held_back
        if server_trouble(response.status_code):
            raise TransientError(f"Shopify GraphQL HTTP {response.status_code}")
        if response.status_code >= 400:
            raise ConnectorError(f"Shopify GraphQL HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise TransientError("Shopify answered with a non-JSON body") from None
        if not isinstance(body, dict):
            raise TransientError("Shopify answered with an unexpected body")
        errors = body.get("errors")
        if errors:
            codes = error_codes(errors)
            if "ACCESS_DENIED" in codes:
                raise AccessDenied("access denied for this query (ACCESS_DENIED)",
                                   permission=required_scope(errors))
            if "THROTTLED" in codes:
                raise TransientError("still throttled")
            raise ConnectorError(f"Shopify GraphQL errors: {sorted(map(str, codes))}")
        cost = as_object(as_object(body.get("extensions")).get("cost"))
        log.debug("shopify.graphql.cost", extra={"cost": cost.get("actualQueryCost")})
        data = body.get("data") or {}
        if not isinstance(data, dict):
            raise TransientError("Shopify answered with an unexpected body")
        return data

    def _post(self, query: str, variables: dict[str, Any] | None) -> requests.Response:
        return self.session.post(
            self.url,
            json={"query": query, "variables": variables or {}},
            headers={"X-Shopify-Access-Token": self._token},
        )

    def complete(self, node: dict[str, Any], field: str, query: str) -> dict[str, Any]:
        """``node`` with all of its ``field`` connection, when its page cut that short.

        ``query`` reads the rest by the node's id and the connection's ``endCursor``
        (``PRODUCT_VARIANTS_QUERY``, ``ORDER_LINES_QUERY``).
        """
        connection = node.get(field) or {}
        info = connection.get("pageInfo") or {}
        if not info.get("hasNextPage"):
            return node
        nodes, cursor = list(connection.get("nodes") or ()), info.get("endCursor")
        while cursor:
            data = self.execute(query, {"id": node["id"], "after": cursor})
            try:
                more = data["node"][field]
                nodes.extend(more["nodes"])
                info = more["pageInfo"]
            except (KeyError, TypeError) as exc:
                raise InvalidPayload(f"unexpected {field} page", {field: [repr(exc)]}) from None
            cursor = info.get("endCursor") if info.get("hasNextPage") else None
        return {**node, field: {"nodes": nodes}}

    def pages(
        self,
        query: str,
        root: str,
        convert: Callable[[dict[str, Any], dict[str, Any]], T],
        *,
        cursor: str | None = None,
        search: str | None = None,
        first: int = 50,
        variables: dict[str, Any] | None = None,
    ) -> Iterator[Page[T]]:
        """Yield converted pages of ``data[root]``; ``next_cursor`` is its ``endCursor``.
        ``variables``: more the query declares (e.g. ``publication``)."""
        while True:
            data = self.execute(query, {**(variables or {}), "first": first, "after": cursor,
                                        "query": search})
            try:
                connection = data[root]
                info = connection["pageInfo"]
                nodes = connection["nodes"]
                cursor = info.get("endCursor") if info.get("hasNextPage") else None
            except (KeyError, TypeError, AttributeError) as exc:
                raise InvalidPayload(f"unexpected {root} page", {root: [repr(exc)]}) from None
            items, rejected = convert_nodes(
                nodes, lambda node, page=data: convert(node, page), what=root
            )
            yield Page(items=items, next_cursor=cursor, rejected=rejected)
            if cursor is None:
                return


def updated_since(since: datetime | None) -> str | None:
    """Shopify search syntax for incremental sync by ``updated_at``."""
    return None if since is None else f"updated_at:>='{since.isoformat()}'"
