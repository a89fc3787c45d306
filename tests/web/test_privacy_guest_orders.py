"""Shopify compliance requests about orders: a redaction naming orders but no customer we
know, a data request listing guest orders. Each reaches that shop's orders only."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.base import Credentials
from connectors.shopify.mapping import order_from_rest
from plugin import shops
from plugin.extensions import db
from plugin.ingestion import mapping
from plugin.models import Interaction, Order, WebhookDelivery
from plugin.webhooks import inbox
from tests.connectors.test_shopify import shopify_headers
from tests.factories import make_shop
from tests.web.install_helpers import make_install_client

SHOP = "my-shop.myshopify.com"
SECRET = "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"
FIXTURE = Path(__file__).parents[1] / "fixtures" / "shopify" / "orders_create.json"


@pytest.fixture
def shopify(app):
    """A test client and an installed Shopify shop."""
    client = make_install_client(app)
    shop = shops.create_shop("shopify", SHOP, Credentials(SHOP, access_token="shpat_x",
                                                           webhook_secret=SECRET))
    db.session.commit()
    return client, shop


def order(order_id: int, customer_id: int | None = None, **changes) -> dict:
    """Shopify's documented order body, not cancelled, as a guest's unless ``customer_id``."""
    body = {**json.loads(FIXTURE.read_text()), "id": order_id, "cancelled_at": None,
            "email": f"buyer-{order_id}@example.com", **changes}
    body["customer"] = None if customer_id is None else {**body["customer"], "id": customer_id}
    return body


def deliver(client, shop, topic: str, body: dict, webhook_id: str) -> None:
    raw = json.dumps(body).encode()
    headers = {**shopify_headers(topic, raw, SECRET), "X-Shopify-Webhook-Id": webhook_id,
               "X-Shopify-Shop-Domain": SHOP}
    url = "/webhooks/shopify" if topic.startswith(("customers/", "shop/")) \
        else f"/webhooks/shopify/{shop.id}"
    response = client.post(url, data=raw, headers=headers)
    assert response.status_code == 200, response.get_json()


def purchases(shop_id: str) -> dict[str, str]:
    """Order id -> shopper id of the shop's purchases."""
    return dict(db.session.execute(sa.select(Interaction.order_external_id,
                                             Interaction.shopper_id)
                                   .where(Interaction.shop_id == shop_id)).all())


def other_shop_with_guest_order(order_id: int) -> str:
    """Another shop holding a guest order with the same id (ids are per platform shop)."""
    other = make_shop()
    mapping.upsert_order(other.id, order_from_rest(order(order_id, total_price="1.00")))
    db.session.commit()
    return other.id


@pytest.mark.parametrize("customer", [None, {"id": 987654321}], ids=["no-customer", "unseen"])
def test_a_redaction_of_orders_without_a_known_customer_still_redacts_them(shopify, customer):
    """Shopify's customers/redact for a guest checkout names the orders, not a customer we
    saw: the orders' purchases and the kept deliveries about them go, in this shop only."""
    client, shop = shopify
    other_id = other_shop_with_guest_order(4242)
    deliver(client, shop, "orders/create", order(4242), "o-4242")
    deliver(client, shop, "orders/create", order(4343), "o-4343")
    assert inbox.process_inbox().done == 2
    # a later update that failed until dead keeps the order's body (names, addresses)
    deliver(client, shop, "orders/updated", order(4242, note="ring twice"), "o-4242-upd")
    db.session.execute(sa.update(WebhookDelivery).where(
        WebhookDelivery.delivery_id == "o-4242-upd").values(status="dead", last_error="boom"))
    db.session.commit()
    assert purchases(shop.id) == {"4242": "order:4242", "4343": "order:4343"}

    redact = {"shop_id": 954889, "shop_domain": SHOP, "customer": customer,
              "orders_to_redact": [4242]}
    deliver(client, shop, "customers/redact", redact, "redact-guest")
    assert inbox.process_inbox().done == 1
    db.session.expire_all()

    assert purchases(shop.id) == {"4343": "order:4343"}
    kept = db.session.scalar(sa.select(WebhookDelivery).filter_by(delivery_id="o-4242-upd"))
    assert (kept.status, kept.body, kept.last_error) == ("done", b"", inbox.ERASED_NOT_APPLIED)
    # the order stays for the shop's totals; another shop's order 4242 keeps everything
    assert sorted(db.session.scalars(sa.select(Order.external_id).filter_by(
        shop_id=shop.id))) == ["4242", "4343"]
    assert purchases(other_id) == {"4242": "order:4242"}


def test_a_data_request_exports_the_customers_guest_orders(shopify):
    """Orders the customer placed as a guest (no customer id on them) that the request
    lists are theirs: the export holds them, their purchases and the kept bodies about
    them, from this shop only; a guest order the request does not list stays out."""
    from plugin import privacy

    client, shop = shopify
    other_shop_with_guest_order(4242)
    deliver(client, shop, "orders/create", order(1001, customer_id=5151), "o-1001")
    for guest in (4242, 4343):
        deliver(client, shop, "orders/create", order(guest), f"o-{guest}")
    assert inbox.process_inbox().done == 3
    for guest in (4242, 4343):  # failed until dead: their bodies are kept
        deliver(client, shop, "orders/updated", order(guest, note="ring twice"),
                f"o-{guest}-upd")
    db.session.execute(sa.update(WebhookDelivery).where(
        WebhookDelivery.delivery_id.like("o-%-upd")).values(status="dead", last_error="boom"))
    db.session.commit()

    request = {"shop_id": 954889, "shop_domain": SHOP, "orders_requested": [4242, 1001],
               "customer": {"id": 5151, "email": "jon@example.com", "phone": "555-625-1199"},
               "data_request": {"id": 9999}}
    deliver(client, shop, "customers/data_request", request, "request-1")
    assert inbox.process_inbox().done == 1

    [made] = privacy.data_requests(shop.id)
    export = json.loads(privacy.data_request_file(shop.id, made["name"]).read_text())
    assert export["customer_id"] == "5151"
    assert sorted(o["id"] for o in export["orders"]) == ["1001", "4242"]
    assert {Decimal(o["total"]) for o in export["orders"]} == {Decimal("359.97")}  # not 1.00
    assert len(export["interactions"]) == 6  # three lines in each of the two orders
    kept = [d["body"]["id"] for d in export["webhook_deliveries"]
            if d["topic"] == "orders/upsert"]
    assert kept == [4242]


@pytest.mark.parametrize("customer", [None, {"id": 5151}], ids=["guest", "customer"])
def test_a_late_update_of_a_redacted_order_does_not_bring_it_back(shopify, customer):
    """orders/updated sent after the redaction (or a redelivery under a new id once the
    first was purged) would file the order's purchases again: the shop's redacted order ids
    are kept (no personal data) and later deliveries of them ignored, in that shop only."""
    from plugin.models import RedactedOrder

    client, shop = shopify
    other_id = other_shop_with_guest_order(4242)
    deliver(client, shop, "orders/create", order(4242), "o-4242")
    assert inbox.process_inbox().done == 1
    redact = {"shop_id": 954889, "shop_domain": SHOP, "customer": customer,
              "orders_to_redact": [4242]}
    deliver(client, shop, "customers/redact", redact, "redact-1")
    assert inbox.process_inbox().done == 1
    assert purchases(shop.id) == {}

    late = order(4242, updated_at="2022-01-05T10:00:00Z", financial_status="paid")
    deliver(client, shop, "orders/updated", late, "o-4242-late")
    assert inbox.process_inbox().done == 1
    db.session.expire_all()
    assert purchases(shop.id) == {}
    [kept] = db.session.scalars(sa.select(RedactedOrder))
    assert (kept.shop_id, kept.order_external_id) == (shop.id, "4242")
    # another shop's order 4242 is not redacted
    assert mapping.upsert_order(other_id, order_from_rest(late))
    db.session.commit()
    assert purchases(other_id) == {"4242": "order:4242"}


def test_a_data_request_of_guest_orders_without_a_customer_exports_them(shopify):
    """A guest checkout's customers/data_request names its orders, no customer: those
    orders, their purchases and the kept bodies about them are exported (this shop's only)
    and the request is listed for the merchant like the others."""
    from plugin import privacy

    client, shop = shopify
    other_shop_with_guest_order(4242)
    for guest in (4242, 4343):
        deliver(client, shop, "orders/create", order(guest), f"o-{guest}")
    deliver(client, shop, "orders/create", order(1001, customer_id=5151), "o-1001")
    assert inbox.process_inbox().done == 3
    deliver(client, shop, "orders/updated", order(4242, note="ring twice"), "o-4242-upd")
    db.session.execute(sa.update(WebhookDelivery).where(
        WebhookDelivery.delivery_id == "o-4242-upd").values(status="dead", last_error="boom"))
    db.session.commit()

    request = {"shop_id": 954889, "shop_domain": SHOP, "customer": None,
               "orders_requested": [4242, 1001], "data_request": {"id": 9999}}
    deliver(client, shop, "customers/data_request", request, "request-guest")
    assert inbox.process_inbox().done == 1

    [made] = privacy.data_requests(shop.id)
    assert made["customer_id"] is None
    export = json.loads(privacy.data_request_file(shop.id, made["name"]).read_text())
    # 1001 is a customer's order: a request naming no customer does not reach it
    assert [o["id"] for o in export["orders"]] == ["4242"]
    assert {Decimal(o["total"]) for o in export["orders"]} == {Decimal("359.97")}  # not 1.00
    assert len(export["interactions"]) == 3
    assert [d["body"]["id"] for d in export["webhook_deliveries"]] == [4242]


def test_a_later_update_of_an_erased_customers_other_order_files_no_purchases(shopify):
    """The redaction lists one of the customer's orders; a later update of another of their
    orders (or a redelivery) still names the erased customer: its purchases must not come
    back, neither under the customer nor as a guest's (``order:<id>``). The order itself
    stays, unlinked, for the shop's totals."""
    client, shop = shopify
    for order_id in (1001, 1002):
        deliver(client, shop, "orders/create", order(order_id, customer_id=5151),
                f"o-{order_id}")
    assert inbox.process_inbox().done == 2
    redact = {"shop_id": 954889, "shop_domain": SHOP, "customer": {"id": 5151},
              "orders_to_redact": [1001]}
    deliver(client, shop, "customers/redact", redact, "redact-5151")
    assert inbox.process_inbox().done == 1
    assert purchases(shop.id) == {}

    late = order(1002, customer_id=5151, updated_at="2022-01-05T10:00:00Z",
                 financial_status="paid")
    deliver(client, shop, "orders/updated", late, "o-1002-late")
    assert inbox.process_inbox().done == 1
    db.session.expire_all()
    assert purchases(shop.id) == {}
    kept = db.session.scalar(sa.select(Order).filter_by(shop_id=shop.id, external_id="1002"))
    assert kept.customer_external_id is None
    assert kept.source_updated_at.day == 5  # the update itself was applied


def test_a_history_import_obeys_redactions_and_erasures(app, shop, tmp_path):
    """A CSV history names orders and customers the shop's redactions reached: a redacted
    order is not imported, an erased customer's order is kept unlinked with no purchases
    (as ``upsert_order`` does), and the other rows are imported as before."""
    from plugin import privacy
    from plugin.ingestion.importer import import_history

    privacy.redact_orders(shop.id, ["b1"])  # a guest order redacted before any import
    privacy.erase_customer(shop.id, "c9")
    db.session.commit()
    csv = tmp_path / "orders.csv"
    csv.write_text("customer_id,item_id,timestamp,basket_id\n"
                   "c1,A,2024-01-01T10:00:00,b1\n"
                   "c9,B,2024-01-02T10:00:00,b2\n"
                   "c1,C,2024-01-03T10:00:00,b3\n")
    stats = import_history(shop.id, csv)
    assert stats.orders == 2
    assert purchases(shop.id) == {"b3": "c1"}
    kept = dict(db.session.execute(sa.select(Order.external_id, Order.customer_external_id)
                                   .where(Order.shop_id == shop.id)).all())
    assert kept == {"b2": None, "b3": "c1"}
