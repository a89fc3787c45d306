"""``DiscountSpec`` -> Shopify ``discountCodeBasicCreate`` / ``discountCodeFreeShippingCreate``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.errors import InvalidPayload
from connectors.records import DiscountSpec
from connectors.shopify.mapping import gid

__all__ = ["BASIC_MUTATION", "BY_CODE_QUERY", "FREE_SHIPPING_MUTATION", "SCOPES", "SCOPES_QUERY",
           "discount_input"]

BASIC_MUTATION = """
mutation Create($input: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $input) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}"""

FREE_SHIPPING_MUTATION = """
mutation Create($input: DiscountCodeFreeShippingInput!) {
  discountCodeFreeShippingCreate(freeShippingCodeDiscount: $input) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}"""


BY_CODE_QUERY = """
query ByCode($code: String!) { codeDiscountNodeByCode(code: $code) { id } }"""

#: The access scope creating, finding and deleting code discounts needs (a write scope
#: includes its read scope).
SCOPES = ("write_discounts",)
#: The scopes the token was granted; needs none itself (``AppInstallation.accessScopes``).
SCOPES_QUERY = "query { currentAppInstallation { accessScopes { handle } } }"

#: How far back a discount's ``startsAt`` is set: Shopify's clock may be seconds behind
#: ours, and a code handed out at once would then be refused as not yet active. Only the
#: start moves: the end (``spec.expires_at``) and the use limits do not depend on it.
START_LEEWAY = timedelta(minutes=1)


def discount_input(spec: DiscountSpec, *, now: datetime | None = None) -> dict[str, Any]:
    """The mutation input: one code, limited uses, optional customer/product/minimum scope."""
    data: dict[str, Any] = {
        "title": f"Shopkeeper offer {spec.code}",
        "code": spec.code,
        "startsAt": ((now or datetime.now(UTC)) - START_LEEWAY).isoformat(),
        "endsAt": spec.expires_at.isoformat(),
        "usageLimit": spec.usage_limit,
        "appliesOncePerCustomer": True,
        "context": (
            {"customers": {"add": [gid("Customer", spec.customer_id)]}}
            if spec.customer_id
            else {"all": "ALL"}
        ),
    }
    if spec.min_subtotal is not None:
        data["minimumRequirement"] = {
            "subtotal": {"greaterThanOrEqualToSubtotal": str(spec.min_subtotal)}
        }
    if spec.kind == "free_shipping":
        data["destination"] = {"all": True}
        if spec.value > 0:  # only rates up to the cost the offer was budgeted for ship free
            data["maximumShippingPrice"] = str(spec.value)
        return data
    if spec.kind == "percent":
        if not 0 < spec.value <= 100:
            raise InvalidPayload("percent out of range", {"value": ["must be in (0, 100]"]})
        value: dict[str, Any] = {"percentage": float(spec.value / 100)}
    else:
        value = {"discountAmount": {"amount": str(spec.value), "appliesOnEachItem": False}}
    items: dict[str, Any] = (
        {"products": {"productsToAdd": [gid("Product", p) for p in spec.product_ids]}}
        if spec.product_ids
        else {"all": True}
    )
    data["customerGets"] = {"value": value, "items": items}
    return data

DELETE_MUTATION = """
mutation DiscountCodeDelete($id: ID!) {
  discountCodeDelete(id: $id) { deletedCodeDiscountId userErrors { field code message } }
}"""
