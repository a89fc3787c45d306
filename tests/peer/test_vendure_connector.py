"""End to end against a real Vendure 3.7.3 server: the connector and the JS plugin together.

The session's Vendure runs our plugin with its webhook URL pointing at a local receiver; every
delivery checked here was signed by the plugin and is verified by ``VendureConnector``.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from connectors.base import Credentials
from connectors.errors import SignatureInvalid
from connectors.records import Customer, Deletion, DiscountSpec, Order, Product
from connectors.vendure import VendureConnector, paging
from connectors.vendure.discounts import ORDER_CURRENCY
from connectors.vendure.paging import CURSOR_LIMIT
from tests.peer import vendure_api as api
from tests.peer.receiver import Delivery

pytestmark = [pytest.mark.peer, pytest.mark.slow]

SEEDED_PRODUCTS = 54  # @vendure/create 3.7.3 sample catalogue (products.csv)


@pytest.fixture
def shop(vendure_peer) -> VendureConnector:
    creds = Credentials(
        "127.0.0.1",
        webhook_secret=vendure_peer.webhook_secret,
        api_url=vendure_peer.admin_url,
        extra={"username": "superadmin", "password": "superadmin"},
    )
    return VendureConnector(creds)


@pytest.fixture
def admin(vendure_admin) -> api.GraphQL:
    return vendure_admin


def _events(shop: VendureConnector, deliveries: list[Delivery]):
    """Verify (for real: current clock) and parse every delivery."""
    events = []
    for d in deliveries:
        shop.verify_webhook(d.headers, d.body)
        events.append(shop.parse_webhook(d.headers, d.body))
    return events


def _has(topic: str, ext_id: str):
    def predicate(deliveries: list[Delivery]) -> bool:
        return any(
            d.topic.split(".")[0] == topic and json.loads(d.body).get("id") == ext_id
            for d in deliveries
        )

    return predicate


def test_backfill_reads_the_sample_catalogue_and_resumes(shop: VendureConnector) -> None:
    shop.page_size = 20
    pages = list(shop.iter_products())
    products = [p for page in pages for p in page.items]
    ids = [p.external_id for p in products]
    assert len(ids) == len(set(ids)) >= SEEDED_PRODUCTS
    assert {str(i) for i in range(1, SEEDED_PRODUCTS + 1)} <= set(ids)
    assert pages[-1].next_cursor is None and all(p.next_cursor for p in pages[:-1])
    laptop = next(p for p in products if p.title == "Laptop")
    assert laptop.currency == "USD" and laptop.vendor == "Apple"
    assert "Electronics" in laptop.categories and len(laptop.variants) == 4
    assert all(isinstance(v.price, Decimal) and v.price > 0 for v in laptop.variants)
    # Kill after the first page and resume from its cursor: nothing missing, nothing twice.
    resumed = [
        p.external_id
        for page in shop.iter_products(cursor=pages[0].next_cursor)
        for p in page.items
    ]
    assert [p.external_id for p in pages[0].items] + resumed == ids


@pytest.mark.parametrize("limit", [CURSOR_LIMIT, 60])
def test_backfill_in_small_pages_splits_ties_and_loses_nothing(
    shop: VendureConnector, monkeypatch, limit: int
) -> None:
    # The seed stamps 3-12 products per whole second: pages of 3 end inside those runs.
    # A 60-character limit makes most runs too long to name, so they are read in id order.
    monkeypatch.setattr(paging, "CURSOR_LIMIT", limit)
    shop.page_size = 3
    cursor, ids, modes = None, [], set()
    for _ in range(200):  # one page per run, as if the process died after each
        page = next(iter(shop.iter_products(cursor=cursor)))
        ids += [p.external_id for p in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
        modes.add("scan" if "scan" in json.loads(cursor) else "seen")
    assert cursor is None
    assert {str(i) for i in range(1, SEEDED_PRODUCTS + 1)} <= set(ids)
    assert modes == ({"seen"} if limit == CURSOR_LIMIT else {"seen", "scan"})


def test_new_product_and_real_order_arrive_as_signed_webhooks(
    vendure_peer, receiver, shop: VendureConnector, admin
) -> None:
    made = api.create_product(admin, "Peer Kettle", 2500, stock=10)
    email = f"peer-{uuid.uuid4().hex[:8]}@example.com"
    customer_id = api.register_customer(admin, email)
    placed = api.place_order(vendure_peer.base_url, email, [(made["variant_id"], 2), ("1", 1)])
    assert placed["state"] == "PaymentAuthorized"

    def arrived(ds: list[Delivery]) -> bool:
        return (
            (_has("product", made["product_id"])(ds) or _has("stock", made["product_id"])(ds))
            and any(
                d.topic == "order.placed" and json.loads(d.body)["id"] == placed["id"] for d in ds
            )
            and _has("customer", customer_id)(ds)
        )

    seen = receiver.wait_for(arrived)
    events = _events(shop, seen)
    assert len({e.delivery_id for e in events}) == len(events)  # unique per delivery

    products = [shop.fetch_event_record(e).record for e in events if e.topic == "products/upsert"]
    kettle = next(p for p in products if isinstance(p, Product) and p.title == "Peer Kettle")
    assert kettle.external_id == made["product_id"]
    assert kettle.variants[0].sku == made["sku"]
    assert kettle.price is not None and kettle.price >= Decimal("25.00")  # net 25.00 + tax

    order_event = next(e for e in events if e.topic == "orders/upsert")
    order = shop.fetch_event_record(order_event).record
    assert isinstance(order, Order) and order.external_id == placed["id"]
    assert order.customer_id == customer_id and order.currency == "USD"
    assert order.total == Decimal(placed["totalWithTax"]) / 100
    kettle_line = next(li for li in order.lines if li.product_id == made["product_id"])
    assert (kettle_line.quantity, kettle_line.price) == (2, kettle.price)

    customer = next(
        shop.fetch_event_record(e).record for e in events if e.topic == "customers/upsert"
    )
    assert isinstance(customer, Customer) and customer.email == email

    orders = [
        o
        for page in shop.iter_orders(since=datetime.now(UTC) - timedelta(minutes=5))
        for o in page.items
    ]
    assert placed["id"] in {o.external_id for o in orders}


def test_plugin_retries_until_shopkeeper_accepts(receiver, shop, admin) -> None:
    made = api.create_product(admin, "Peer Retry", 900)
    receiver.wait_for(_has("stock", made["product_id"]))
    receiver.clear()
    receiver.fail_next = 2  # Shopkeeper "down" for the next two attempts
    admin(
        "mutation($in:UpdateProductInput!){updateProduct(input:$in){id}}",
        **{
            "in": {
                "id": made["product_id"],
                "translations": [{"languageCode": "en", "name": "Peer Retry v2"}],
            }
        },
    )
    seen = receiver.wait_for(lambda ds: any(d.status == 200 for d in ds), timeout=30)
    assert [d.status for d in seen] == [503, 503, 200]
    assert len({d.delivery_id for d in seen}) == 1  # same delivery, deduped by Shopkeeper
    event = _events(shop, seen[-1:])[0]
    assert shop.fetch_event_record(event).record.title == "Peer Retry v2"


def test_deletions_arrive_without_fetch(receiver, shop, admin) -> None:
    made = api.create_product(admin, "Peer Doomed", 100)
    customer_id = api.register_customer(admin, f"gone-{uuid.uuid4().hex[:8]}@example.com")
    receiver.wait_for(_has("customer", customer_id))
    admin("mutation($id:ID!){deleteProduct(id:$id){result}}", id=made["product_id"])
    admin("mutation($id:ID!){deleteCustomer(id:$id){result}}", id=customer_id)
    seen = receiver.wait_for(
        lambda ds: {"product.deleted", "customer.deleted"} <= {d.topic for d in ds}
    )
    deletions = {e.record for e in _events(shop, seen) if isinstance(e.record, Deletion)}
    assert {(d.kind, d.external_id) for d in deletions} >= {
        ("product", made["product_id"]),
        ("customer", customer_id),
    }


def test_wrong_secret_rejects_real_delivery(vendure_peer, receiver, admin) -> None:
    made = api.create_product(admin, "Peer Secret", 100)
    seen = receiver.wait_for(_has("stock", made["product_id"]))
    other = VendureConnector(Credentials("127.0.0.1", webhook_secret="whsec_not_this_shop"))
    with pytest.raises(SignatureInvalid):
        other.verify_webhook(seen[0].headers, seen[0].body)


def test_offer_discount_exists_and_works_once(vendure_peer, shop, admin) -> None:
    code = f"SK-{uuid.uuid4().hex[:10].upper()}"
    expires = datetime.now(UTC) + timedelta(hours=1)
    first, second = (f"offer-{uuid.uuid4().hex[:8]}@example.com" for _ in range(2))
    first_id = api.register_customer(admin, first)
    api.register_customer(admin, second)
    spec = DiscountSpec(
        code=code, kind="percent", value=Decimal("10"), expires_at=expires, customer_id=first_id
    )
    ref = shop.create_discount(spec)
    assert shop.create_discount(spec) == ref  # a retried call does not mint a second coupon

    promo = admin(
        "query($id:ID!){promotion(id:$id){couponCode usageLimit perCustomerUsageLimit "
        "endsAt enabled}}",
        id=ref.platform_id,
    )["promotion"]
    assert promo["couponCode"] == code and promo["enabled"]
    assert (promo["usageLimit"], promo["perCustomerUsageLimit"]) == (1, 1)
    assert abs(datetime.fromisoformat(promo["endsAt"]) - expires) < timedelta(seconds=1)

    full = api.place_order(vendure_peer.base_url, first, [("2", 1)])
    # Another customer may type the code, but the customer-group condition withholds the discount.
    stranger = api.place_order(vendure_peer.base_url, second, [("2", 1)], coupon=code)
    assert stranger["totalWithTax"] == full["totalWithTax"]
    discounted = api.place_order(vendure_peer.base_url, first, [("2", 1)], coupon=code)
    assert discounted["couponCodes"] == [code]
    assert discounted["totalWithTax"] < full["totalWithTax"]
    with pytest.raises(AssertionError, match="coupon refused"):  # usage limit 1: spent
        api.place_order(vendure_peer.base_url, first, [("2", 1)], coupon=code)


def test_a_spent_offer_discount_is_deleted_with_its_customer_group(vendure_peer, shop, admin
                                                                  ) -> None:
    code = f"SK-{uuid.uuid4().hex[:10].upper()}"
    customer_id = api.register_customer(admin, f"spent-{uuid.uuid4().hex[:8]}@example.com")
    spec = DiscountSpec(code=code, kind="fixed", value=Decimal("5"),
                        expires_at=datetime.now(UTC) + timedelta(hours=1), customer_id=customer_id)
    ref = shop.create_discount(spec)
    groups = "query($n:String!){customerGroups(options:{filter:{name:{eq:$n}}}){items{id}}}"
    assert admin(groups, n=f"shopkeeper-offer-{code}")["customerGroups"]["items"]

    shop.delete_discount(ref)
    found = admin("query($c:String!){promotions(options:{filter:{couponCode:{eq:$c}}})"
                  "{items{id}}}", c=code)["promotions"]["items"]
    assert found == []
    assert admin(groups, n=f"shopkeeper-offer-{code}")["customerGroups"]["items"] == []
    shop.delete_discount(ref)  # deleted already (by us, or in the Dashboard): done, no error


def test_euro_offer_in_a_dollar_and_euro_channel_applies_to_euro_orders_only(
    vendure_peer, shop, admin, dollars_and_euros
) -> None:
    """The plugin's order-currency condition: an offer made for a euro cart carries its
    amounts in euro cents and applies to an order in euros, never to one in dollars (where
    Vendure would otherwise take the same numbers as dollar cents)."""
    assert shop.sold_currencies() == frozenset({"USD", "EUR"})
    assert shop.pins_order_currency()
    item = api.create_product(admin, "Currency Mug", 4000)  # 40.00 USD net, 48.00 gross
    api.price_variant(admin, item["variant_id"], "EUR", 3500)  # 35.00 EUR net, 42.00 gross
    email = f"euro-{uuid.uuid4().hex[:8]}@example.com"
    customer_id = api.register_customer(admin, email)
    code = f"SK-{uuid.uuid4().hex[:10].upper()}"
    spec = DiscountSpec(code=code, kind="fixed", value=Decimal("6"), currency="EUR",
                        min_subtotal=Decimal("40"), customer_id=customer_id,
                        expires_at=datetime.now(UTC) + timedelta(hours=1))
    ref = shop.create_discount(spec)
    promo = admin("query($id:ID!){promotion(id:$id){conditions{code args{name value}}}}",
                  id=ref.platform_id)["promotion"]
    pinned = [c for c in promo["conditions"] if c["code"] == ORDER_CURRENCY]
    assert pinned == [{"code": ORDER_CURRENCY,
                       "args": [{"name": "currencyCode", "value": "EUR"}]}]

    lines = [(item["variant_id"], 1)]
    base = vendure_peer.base_url
    full_usd = api.place_order(base, email, lines, currency="USD")
    # in dollars the coupon is accepted as a code but gives nothing, and is not used up
    usd = api.place_order(base, email, lines, coupon=code, currency="USD")
    assert usd["currencyCode"] == "USD" and usd["couponCodes"] == [code]
    assert usd["discounts"] == [] and usd["totalWithTax"] == full_usd["totalWithTax"]
    full_eur = api.place_order(base, email, lines, currency="EUR")
    eur = api.place_order(base, email, lines, coupon=code, currency="EUR")
    assert eur["currencyCode"] == "EUR" and eur["couponCodes"] == [code]
    assert abs(full_eur["totalWithTax"] - eur["totalWithTax"] - 600) <= 1  # cent rounding
