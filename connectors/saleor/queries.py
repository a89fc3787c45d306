"""GraphQL documents for Saleor: shared fragments, subscriptions (webhooks) and backfill.

The subscription queries are rendered into the app manifest, so webhook payloads have
exactly the shape ``mapping.py`` reads.
"""

from __future__ import annotations

__all__ = [
    "CUSTOMERS_QUERY",
    "FRAGMENTS",
    "ORDERS_QUERY",
    "PRODUCTS_QUERY",
    "SUBSCRIPTIONS",
    "VOUCHERS_BY_CODE",
    "VOUCHER_CHANNEL_MUTATION",
    "VOUCHER_CREATE_MUTATION",
]

PRODUCT_FIELDS = """
fragment ProductFields on Product {
  id name description updatedAt
  thumbnail { url }
  category { name }
  collections { name }
  productType { name }
  channelListings {
    channel { slug } isPublished publishedAt isAvailableForPurchase availableForPurchaseAt
  }
  variants {
    id name sku trackInventory
    stocks { quantity }
    channelListings { channel { slug } price { amount currency } }
  }
}"""

USER_FIELDS = """
fragment UserFields on User { id email dateJoined updatedAt }"""

LINE_FIELDS = """
fragment VariantRef on ProductVariant { id product { id } }"""

ORDER_FIELDS = """
fragment OrderFields on Order {
  id created updatedAt status voucherCode
  channel { slug }
  user { id }
  total { gross { amount currency } }
  lines { quantity unitPrice { gross { amount currency } } variant { ...VariantRef } }
}"""

CHECKOUT_FIELDS = """
fragment CheckoutFields on Checkout {
  id token updatedAt
  channel { slug }
  user { id }
  totalPrice { gross { amount currency } }
  lines { quantity unitPrice { gross { amount currency } } variant { ...VariantRef } }
}"""

FRAGMENTS = {
    "product": PRODUCT_FIELDS,
    "user": USER_FIELDS,
    "order": LINE_FIELDS + ORDER_FIELDS,
    "checkout": LINE_FIELDS + CHECKOUT_FIELDS,
}


def _subscription(name: str, cases: dict[str, str], fragment: str) -> str:
    body = "\n".join(f"    ... on {event} {{ {selection} }}" for event, selection in cases.items())
    query = f"subscription {name} {{\n  event {{\n{body}\n  }}\n}}\n{fragment.strip()}"
    return query.strip() + "\n"


#: Webhook name (as in manifest.yaml) -> subscription query; its events come from the manifest.
#: Deletions and the uninstall also ask for ``__typename``: the ``Saleor-Event`` header is
#: not signed, so their signed body must say which event it is (see ``webhooks.py``).
#: Upserts ask for ``issuedAt`` (the event's time): a price or stock change leaves
#: ``Product.updatedAt`` as it was, so the record is stamped no older than its event.
SUBSCRIPTIONS: dict[str, str] = {
    "shopkeeper-products": _subscription(
        "ProductChanged",
        {
            "ProductCreated": "issuedAt product { ...ProductFields }",
            "ProductUpdated": "issuedAt product { ...ProductFields }",
            "ProductVariantCreated": "issuedAt productVariant { product { ...ProductFields } }",
            "ProductVariantUpdated": "issuedAt productVariant { product { ...ProductFields } }",
            "ProductVariantDeleted": "issuedAt productVariant { product { ...ProductFields } }",
        },
        PRODUCT_FIELDS,
    ),
    "shopkeeper-product-deleted": _subscription(
        "ProductDeleted", {"ProductDeleted": "__typename product { id }"}, ""
    ),
    "shopkeeper-customers": _subscription(
        "CustomerChanged",
        {"CustomerCreated": "issuedAt user { ...UserFields }",
         "CustomerUpdated": "issuedAt user { ...UserFields }"},
        USER_FIELDS,
    ),
    "shopkeeper-customer-deleted": _subscription(
        "CustomerDeleted", {"CustomerDeleted": "__typename user { id }"}, ""
    ),
    "shopkeeper-orders": _subscription(
        "OrderChanged",
        {
            "OrderCreated": "issuedAt order { ...OrderFields }",
            "OrderUpdated": "issuedAt order { ...OrderFields }",
            "OrderFullyPaid": "issuedAt order { ...OrderFields }",
            "OrderCancelled": "issuedAt order { ...OrderFields }",
        },
        FRAGMENTS["order"],
    ),
    "shopkeeper-checkouts": _subscription(
        "CheckoutChanged",
        {
            "CheckoutCreated": "issuedAt checkout { ...CheckoutFields }",
            "CheckoutUpdated": "issuedAt checkout { ...CheckoutFields }",
        },
        FRAGMENTS["checkout"],
    ),
    "shopkeeper-app-deleted": _subscription(
        "AppDeleted", {"AppDeleted": "__typename app { id }"}, ""
    ),
}

PRODUCTS_QUERY = (
    """
query Products($first: Int!, $after: String) {
  products(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node { ...ProductFields } }
  }
}"""
    + PRODUCT_FIELDS
)

CUSTOMERS_QUERY = (
    """
query Customers($first: Int!, $after: String) {
  customers(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node { ...UserFields } }
  }
}"""
    + USER_FIELDS
)

ORDERS_QUERY = (
    """
query Orders($first: Int!, $after: String, $filter: OrderFilterInput,
             $sortBy: OrderSortingInput) {
  orders(first: $first, after: $after, filter: $filter, sortBy: $sortBy) {
    pageInfo { hasNextPage endCursor }
    edges { node { ...OrderFields } }
  }
}"""
    + FRAGMENTS["order"]
)

VOUCHER_CREATE_MUTATION = """
mutation VoucherCreate($input: VoucherInput!) {
  voucherCreate(input: $input) {
    voucher { id }
    errors { field code message }
  }
}"""

VOUCHER_CHANNEL_MUTATION = """
mutation VoucherChannels($id: ID!, $input: VoucherChannelListingInput!) {
  voucherChannelListingUpdate(id: $id, input: $input) {
    voucher { id }
    errors { field code message }
  }
}"""

VOUCHERS_BY_CODE = """
query VouchersByCode($code: String!) {
  vouchers(first: 10, filter: { search: $code }) {
    edges { node { id codes(first: 10) { edges { node { code } } } } }
  }
}"""

VOUCHER_DELETE_MUTATION = """
mutation VoucherDelete($id: ID!) {
  voucherDelete(id: $id) { voucher { id } errors { field code message } }
}"""
