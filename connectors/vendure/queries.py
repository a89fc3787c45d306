"""Admin API GraphQL documents, kept in one place so fixtures can be captured with the same text.

Lists are sorted by ``updatedAt`` (or ``id`` within one tie: ``paging.iter_pages``) so a
watermark cursor can resume after any page.
"""

from __future__ import annotations

LOGIN = """
mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password) {
    ... on CurrentUser { id }
    ... on ErrorResult { errorCode message }
  }
}
"""

PRODUCT_FIELDS = """
fragment ProductFields on Product {
  id name slug description enabled createdAt updatedAt
  featuredAsset { preview }
  facetValues { code name facet { code } }
  collections { slug name }
  variants {
    id name sku enabled currencyCode price priceWithTax updatedAt
    prices { currencyCode price } taxRateApplied { value }
    stockLevel stockLevels { stockOnHand stockAllocated updatedAt }
  }
}
"""

PRODUCTS = (
    PRODUCT_FIELDS
    + """
query Products($options: ProductListOptions) {
  products(options: $options) { totalItems items { ...ProductFields } }
}
"""
)

PRODUCT = (
    PRODUCT_FIELDS
    + """
query Product($id: ID!) { product(id: $id) { ...ProductFields } }
"""
)

CUSTOMER_FIELDS = """
fragment CustomerFields on Customer { id emailAddress createdAt updatedAt }
"""

CUSTOMERS = (
    CUSTOMER_FIELDS
    + """
query Customers($options: CustomerListOptions) {
  customers(options: $options) { totalItems items { ...CustomerFields } }
}
"""
)

CUSTOMER = (
    CUSTOMER_FIELDS
    + """
query Customer($id: ID!) { customer(id: $id) { ...CustomerFields } }
"""
)

ORDER_FIELDS = """
fragment OrderFields on Order {
  id code state active createdAt updatedAt orderPlacedAt currencyCode totalWithTax couponCodes
  customer { id }
  lines { id quantity proratedUnitPriceWithTax productVariant { id product { id } } }
}
"""

ORDERS = (
    ORDER_FIELDS
    + """
query Orders($options: OrderListOptions) {
  orders(options: $options) { totalItems items { ...OrderFields } }
}
"""
)

ORDER = (
    ORDER_FIELDS
    + """
query Order($id: ID!) { order(id: $id) { ...OrderFields } }
"""
)

PRODUCT_VARIANT_IDS = """
query VariantIds($options: ProductVariantListOptions) {
  productVariants(options: $options) { items { id } }
}
"""

CREATE_CUSTOMER_GROUP = """
mutation Group($input: CreateCustomerGroupInput!) { createCustomerGroup(input: $input) { id } }
"""

TAX_SETUP = """
query TaxSetup {
  activeChannel {
    pricesIncludeTax defaultTaxZone { id } defaultCurrencyCode availableCurrencyCodes
  }
  taxRates(options: { take: 1000 }) {
    items { value enabled zone { id } category { id isDefault } }
  }
  promotionConditions { code }
}
"""

CHANNEL_CURRENCIES = """
query ChannelCurrencies { activeChannel { defaultCurrencyCode availableCurrencyCodes } }
"""

PROMOTION_CONDITIONS = """
query PromotionConditions { promotionConditions { code } }
"""

PROMOTIONS_BY_CODE = """
query PromotionsByCode($code: String!) {
  promotions(options: { filter: { couponCode: { eq: $code } } }) {
    items { id couponCode endsAt enabled }
  }
}
"""

CREATE_PROMOTION = """
mutation Promotion($input: CreatePromotionInput!) {
  createPromotion(input: $input) {
    ... on Promotion { id couponCode endsAt enabled usageLimit perCustomerUsageLimit }
    ... on ErrorResult { errorCode message }
  }
}
"""

DELETE_PROMOTION = """
mutation DeletePromotion($id: ID!) { deletePromotion(id: $id) { result message } }
"""

CUSTOMER_GROUPS_BY_NAME = """
query GroupsByName($name: String!) {
  customerGroups(options: { filter: { name: { eq: $name } } }) { items { id name } }
}
"""

DELETE_CUSTOMER_GROUP = """
mutation DeleteGroup($id: ID!) { deleteCustomerGroup(id: $id) { result message } }
"""

#: The logged-in user's permissions per channel (any logged-in user may read its own).
CURRENT_PERMISSIONS = """
query CurrentPermissions { me { channels { code token permissions } } }
"""
