"""Drive a real Vendure server the way a merchant and a shopper would (tests and fixture capture).

Deliberately independent of ``connectors.vendure`` so the peer tests check the connector
against calls it did not write itself.
"""

from __future__ import annotations

import uuid
from typing import Any

import requests

SUPERADMIN = ("superadmin", "superadmin")


class GraphQL:
    """One GraphQL endpoint with its own bearer session (admin or shop)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        resp = self.http.post(self.url, json={"query": query, "variables": variables}, timeout=30)
        resp.raise_for_status()
        token = resp.headers.get("vendure-auth-token")
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"
        body = resp.json()
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {body['errors']}")
        return body["data"]


def admin(base_url: str) -> GraphQL:
    """An Admin API client logged in as the superadmin."""
    gql = GraphQL(f"{base_url}/admin-api")
    user, password = SUPERADMIN
    gql(
        "mutation($u:String!,$p:String!){login(username:$u,password:$p){... on CurrentUser{id}}}",
        u=user,
        p=password,
    )
    return gql


def create_product(adm: GraphQL, name: str, price_minor: int, stock: int = 50) -> dict[str, str]:
    """Create a product with one variant; returns ids, slug and sku."""
    slug = f"{name.lower().replace(' ', '-')}-{uuid.uuid4().hex[:6]}"
    product = adm(
        "mutation($in:CreateProductInput!){createProduct(input:$in){id slug}}",
        **{
            "in": {
                "translations": [
                    {"languageCode": "en", "name": name, "slug": slug, "description": "made in CI"}
                ]
            }
        },
    )["createProduct"]
    tax = adm("{taxCategories{items{id}}}")["taxCategories"]["items"][0]["id"]
    sku = f"SK-{uuid.uuid4().hex[:8].upper()}"
    variant = adm(
        "mutation($in:[CreateProductVariantInput!]!){createProductVariants(input:$in){id sku}}",
        **{
            "in": [
                {
                    "productId": product["id"],
                    "sku": sku,
                    "price": price_minor,
                    "taxCategoryId": tax,
                    "stockOnHand": stock,
                    "translations": [{"languageCode": "en", "name": name}],
                }
            ]
        },
    )["createProductVariants"][0]
    return {"product_id": product["id"], "variant_id": variant["id"], "slug": slug, "sku": sku}


def price_variant(adm: GraphQL, variant_id: str, currency: str, price_minor: int) -> None:
    """Give a variant a price in another currency (a channel selling it needs one)."""
    adm(
        "mutation($in:[UpdateProductVariantInput!]!){updateProductVariants(input:$in){id}}",
        **{"in": [{"id": variant_id,
                   "prices": [{"currencyCode": currency, "price": price_minor}]}]},
    )


def sell_currencies(adm: GraphQL, currencies: list[str]) -> list[str]:
    """Make the default channel sell ``currencies`` (the first its default); returns the
    currencies it sold before, to restore."""
    channel = adm("{activeChannel{id availableCurrencyCodes}}")["activeChannel"]
    result = adm(
        "mutation($in:UpdateChannelInput!){updateChannel(input:$in)"
        "{... on Channel{availableCurrencyCodes} ... on ErrorResult{message}}}",
        **{"in": {"id": channel["id"], "defaultCurrencyCode": currencies[0],
                  "availableCurrencyCodes": currencies}},
    )["updateChannel"]
    if "message" in result:
        raise AssertionError(f"channel not updated: {result}")
    return channel["availableCurrencyCodes"]


def register_customer(adm: GraphQL, email: str, password: str = "secret123") -> str:
    """Create a verified customer with a password; returns the customer id."""
    data = adm(
        "mutation($in:CreateCustomerInput!,$pw:String){createCustomer(input:$in,password:$pw)"
        "{... on Customer{id} ... on ErrorResult{message}}}",
        **{
            "in": {"firstName": "Ada", "lastName": "Lovelace", "emailAddress": email},
            "pw": password,
        },
    )
    return data["createCustomer"]["id"]


def place_order(
    base_url: str,
    email: str,
    lines: list[tuple[str, int]],
    password: str = "secret123",
    coupon: str | None = None,
    currency: str | None = None,
) -> dict[str, Any]:
    """Log in on the Shop API, fill a basket, check out with the dummy payment method.

    ``currency``: the basket's currency (Vendure's ``currencyCode`` query parameter; the
    channel's default without it)."""
    query = f"?currencyCode={currency}" if currency else ""
    shop = GraphQL(f"{base_url}/shop-api{query}")
    shop(
        "mutation($u:String!,$p:String!){login(username:$u,password:$p){... on CurrentUser{id}}}",
        u=email,
        p=password,
    )
    for variant_id, qty in lines:
        shop(
            "mutation($v:ID!,$q:Int!){addItemToOrder(productVariantId:$v,quantity:$q)"
            "{... on Order{id} ... on ErrorResult{message}}}",
            v=variant_id,
            q=qty,
        )
    if coupon:
        result = shop(
            "mutation($c:String!){applyCouponCode(couponCode:$c)"
            "{... on Order{couponCodes} ... on ErrorResult{errorCode message}}}",
            c=coupon,
        )["applyCouponCode"]
        if "errorCode" in result:
            raise AssertionError(f"coupon refused: {result}")
    shop(
        "mutation($a:CreateAddressInput!){setOrderShippingAddress(input:$a){... on Order{id}}}",
        a={
            "fullName": "Ada",
            "streetLine1": "1 Test St",
            "city": "London",
            "postalCode": "N1",
            "countryCode": "GB",
        },
    )
    method = shop("{eligibleShippingMethods{id}}")["eligibleShippingMethods"][0]["id"]
    shop(
        "mutation($m:[ID!]!){setOrderShippingMethod(shippingMethodId:$m){... on Order{id}}}",
        m=[method],
    )
    shop('mutation{transitionOrderToState(state:"ArrangingPayment"){... on Order{state}}}')
    payment = shop("{eligiblePaymentMethods{code isEligible}}")["eligiblePaymentMethods"][0]["code"]
    return shop(
        "mutation($m:String!){addPaymentToOrder(input:{method:$m,metadata:{}})"
        "{... on Order{id code state currencyCode totalWithTax couponCodes"
        " discounts{amountWithTax}} ... on ErrorResult{message}}}",
        m=payment,
    )["addPaymentToOrder"]


def create_limited_admin(adm: GraphQL, permissions: list[str]) -> tuple[str, str]:
    """A role with exactly ``permissions`` (Vendure adds ``Authenticated``) on the default
    channel, and an administrator holding only it: what a merchant makes for Shopkeeper.
    Returns the administrator's username and password."""
    tag = uuid.uuid4().hex[:8]
    role = adm(
        "mutation($in:CreateRoleInput!){createRole(input:$in){id permissions}}",
        **{"in": {"code": f"shopkeeper-{tag}", "description": "Shopkeeper",
                  "permissions": permissions}},
    )["createRole"]
    assert set(role["permissions"]) == {"Authenticated", *permissions}, role
    username, password = f"shopkeeper-{tag}@example.com", f"pw-{tag}"
    adm(
        "mutation($in:CreateAdministratorInput!){createAdministrator(input:$in){id}}",
        **{"in": {"firstName": "Shop", "lastName": "Keeper", "emailAddress": username,
                  "password": password, "roleIds": [role["id"]]}},
    )
    return username, password
