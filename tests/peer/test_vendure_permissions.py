"""The Admin API permissions the merchant grants (``VendureConnector.meta.scopes``, repeated in
manifest.yaml and the connector's README) are enough for everything the connector does in
production, and each one is needed: checked against a real Vendure 3.7.3, whose resolvers
answer FORBIDDEN for a missing permission.

The connector logs in as an administrator whose only role holds exactly those permissions,
as the README tells the merchant to set it up.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from connectors.base import Credentials
from connectors.errors import AuthFailed, PermissionDenied
from connectors.generic.webhooks import DELIVERY_ID_HEADER, TOPIC_HEADER
from connectors.records import Customer, DiscountSpec, Order, Product
from connectors.vendure import VendureConnector
from connectors.vendure.discounts import promotion_input
from tests.peer import vendure_api as api

pytestmark = [pytest.mark.peer, pytest.mark.slow]

SCOPES = list(VendureConnector.meta.scopes)
PROMOTIONS = ("query($c:String!){promotions(options:{filter:{couponCode:{contains:$c}}})"
              "{items{id couponCode}}}")
GROUPS = "query($n:String!){customerGroups(options:{filter:{name:{contains:$n}}}){items{id}}}"


@pytest.fixture(scope="module")
def shopper(vendure_admin: api.GraphQL, vendure_peer) -> dict[str, str]:
    """A customer with a placed order, so every kind of record has one to read."""
    email = f"perm-{uuid.uuid4().hex[:8]}@example.com"
    customer_id = api.register_customer(vendure_admin, email)
    order = api.place_order(vendure_peer.base_url, email, [("1", 1)])
    return {"customer_id": customer_id, "order_id": order["id"]}


@pytest.fixture
def tag(vendure_admin: api.GraphQL) -> Iterator[str]:
    """A marker in this test's coupon codes; whatever a refused flow left behind (the
    promotion it could not delete) is removed afterwards by the superadmin."""
    tag = f"PERM{uuid.uuid4().hex[:8].upper()}"
    yield tag
    for promo in vendure_admin(PROMOTIONS, c=tag)["promotions"]["items"]:
        vendure_admin("mutation($id:ID!){deletePromotion(id:$id){result}}", id=promo["id"])
    for group in vendure_admin(GROUPS, n=tag)["customerGroups"]["items"]:
        vendure_admin("mutation($id:ID!){deleteCustomerGroup(id:$id){result}}", id=group["id"])


def _connector(vendure_peer, vendure_admin: api.GraphQL, permissions: list[str]
               ) -> VendureConnector:
    username, password = api.create_limited_admin(vendure_admin, permissions)
    creds = Credentials(
        "127.0.0.1",
        webhook_secret=vendure_peer.webhook_secret,
        api_url=vendure_peer.admin_url,
        extra={"username": username, "password": password},
    )
    shop = VendureConnector(creds)
    shop.page_size = 5
    return shop


def _fetched(shop: VendureConnector, topic: str, body: dict[str, str]):
    """A thin plugin delivery parsed and read back, as the inbox worker does."""
    headers = {TOPIC_HEADER: topic, DELIVERY_ID_HEADER: uuid.uuid4().hex}
    event = shop.parse_webhook(headers, json.dumps(body).encode())
    return shop.fetch_event_record(event).record


def _every_call(shop: VendureConnector, admin: api.GraphQL, shopper: dict[str, str],
                tag: str) -> None:
    """Every Admin API call the connector makes in production, checked for its result."""
    # sync: a page of each backfill, and the channel's currencies the offers engine reads
    products = next(iter(shop.iter_products())).items
    assert products and next(iter(shop.iter_customers())).items
    assert next(iter(shop.iter_orders())).items
    assert shop.sold_currencies() == frozenset({"USD"})
    assert shop.pins_order_currency()
    # inbox: thin webhooks read back
    product_id = products[0].external_id
    assert isinstance(_fetched(shop, "product.updated", {"id": product_id}), Product)
    customer = _fetched(shop, "customer.updated", {"id": shopper["customer_id"]})
    assert isinstance(customer, Customer)
    order = _fetched(shop, "order.placed", {"id": shopper["order_id"],
                                            "state": "PaymentAuthorized", "currency": "USD"})
    assert isinstance(order, Order) and order.external_id == shopper["order_id"]
    # offers: one limited to a product (variant ids), one with amounts (tax setup, currency
    # condition); both for one customer (a customer group)
    expires = datetime.now(UTC) + timedelta(hours=1)
    percent = DiscountSpec(code=f"SK-{tag}-P", kind="percent", value=Decimal("10"),
                           expires_at=expires, product_ids=(product_id,),
                           customer_id=shopper["customer_id"])
    fixed = DiscountSpec(code=f"SK-{tag}-F", kind="fixed", value=Decimal("5"), currency="USD",
                         min_subtotal=Decimal("20"), expires_at=expires,
                         customer_id=shopper["customer_id"])
    refs = [shop.create_discount(percent), shop.create_discount(fixed)]
    # a retried create whose first answer was lost: the twin promotion is deleted
    admin("mutation($in:CreatePromotionInput!){createPromotion(input:$in){... on Promotion{id}}}",
          **{"in": promotion_input(percent)})
    refs[0] = shop.create_discount(percent)
    twins = admin(PROMOTIONS, c=percent.code)["promotions"]["items"]
    assert [p["id"] for p in twins] == [refs[0].platform_id]
    assert shop.find_discount(fixed.code) == refs[1].platform_id
    # cleanup of spent or expired offers (and the reconcile job's)
    for ref in refs:
        shop.delete_discount(ref)
    assert admin(PROMOTIONS, c=tag)["promotions"]["items"] == []
    assert admin(GROUPS, n=tag)["customerGroups"]["items"] == []


def test_the_documented_permissions_are_enough(vendure_peer, vendure_admin, shopper, tag) -> None:
    shop = _connector(vendure_peer, vendure_admin, SCOPES)
    _every_call(shop, vendure_admin, shopper, tag)


@pytest.mark.parametrize("missing", SCOPES)
def test_each_documented_permission_is_needed(vendure_peer, vendure_admin, shopper, tag,
                                              missing: str) -> None:
    shop = _connector(vendure_peer, vendure_admin, [s for s in SCOPES if s != missing])
    with pytest.raises(AuthFailed, match="FORBIDDEN"):
        _every_call(shop, vendure_admin, shopper, tag)


@pytest.mark.parametrize("resource", sorted(VendureConnector.read_permissions))
def test_a_refused_backfill_is_told_from_dead_credentials(vendure_peer, vendure_admin,
                                                          resource: str) -> None:
    """A role without a resource's read permission is refused its backfill, and the role's
    own listing names that permission (the sync then stops that resource only); with the
    permission granted, nothing is missing."""
    needed = VendureConnector.read_permissions[resource]
    shop = _connector(vendure_peer, vendure_admin, [s for s in SCOPES if s not in needed])
    with pytest.raises(PermissionDenied):
        next(iter(getattr(shop, f"iter_{resource}")()))
    assert shop.missing_read_permissions(resource) == needed
    assert _connector(vendure_peer, vendure_admin, SCOPES).missing_read_permissions(
        resource) == ()
