"""End to end through Shopkeeper: a real Vendure's signed webhooks land in Shopkeeper's database.

Shopkeeper runs as a real HTTP server (werkzeug, its own threads) on a free port. The session's
Vendure delivers to the peer receiver, which relays the exact bytes and signature headers to
``/webhooks/vendure/<shop_id>`` and hands Shopkeeper's status back to the plugin (so a 401
would make the plugin give up, a 5xx retry). The inbox worker then fetches each thin record
back from Vendure and upserts it.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal

import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import make_server

from connectors.base import Credentials
from connectors.vendure.discounts import ORDER_CURRENCY
from plugin import shops
from plugin.api.identity import TOKEN_HEADER, mint_customer_token
from plugin.extensions import db
from plugin.ingestion.sync import run_sync
from plugin.models import Customer, Interaction, Order, OrderLine, Product, Shop, WebhookDelivery
from plugin.offers import platform as offer_platform
from plugin.webhooks.inbox import process_inbox
from tests.offers.conftest import SHOPPER, cart_body, configure, make_idle
from tests.peer import vendure_api as api
from tests.peer.receiver import Delivery
from tests.peer.vendure_server import NODE, PEER_DIR

pytestmark = [pytest.mark.peer, pytest.mark.slow]

PLUGIN_DIR = PEER_DIR.parents[2] / "connectors" / "vendure" / "vendure-plugin"


@pytest.fixture
def shopkeeper_url(app) -> Iterator[str]:
    """The app served over real HTTP from a background thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def vendure_shop(app, vendure_peer) -> Shop:
    """A Vendure shop installed in Shopkeeper with the peer's Admin API and webhook secret."""
    creds = Credentials(
        "127.0.0.1",
        webhook_secret=vendure_peer.webhook_secret,
        api_url=vendure_peer.admin_url,
        extra={"username": "superadmin", "password": "superadmin"},
    )
    shop = shops.create_shop("vendure", f"vendure-{uuid.uuid4().hex[:6]}.test", creds)
    db.session.commit()
    return shop


def _about(delivery: Delivery, kind: str, ext_id: str) -> bool:
    body = json.loads(delivery.body)
    return (body.get("type"), body.get("id")) == (kind, ext_id)


def _relayed(topic: str, ext_id: str):
    def predicate(deliveries: list[Delivery]) -> bool:
        return any(
            d.topic == topic and json.loads(d.body).get("id") == ext_id and d.status == 200
            for d in deliveries
        )

    return predicate


def _row(model, shop: Shop, external_id: str):
    db.session.expire_all()
    return db.session.scalar(sa.select(model).filter_by(shop_id=shop.id, external_id=external_id))


def test_backfill_then_webhooks_fill_shopkeeper(
    vendure_peer, vendure_admin, receiver, shopkeeper_url, vendure_shop, app
) -> None:
    backfill = run_sync(vendure_shop.id, "products")  # the real resumable backfill
    assert backfill.finished and backfill.error is None and backfill.skipped == 0
    count = db.session.scalar(
        sa.select(sa.func.count()).select_from(Product).filter_by(shop_id=vendure_shop.id)
    )
    assert count >= 54
    laptop = db.session.scalar(
        sa.select(Product).filter_by(shop_id=vendure_shop.id, title="Laptop")
    )
    assert laptop.vendor == "Apple" and laptop.currency == "USD" and len(laptop.variants) == 4

    receiver.relay_to = f"{shopkeeper_url}/webhooks/vendure/{vendure_shop.id}"
    made = api.create_product(vendure_admin, "Shopkeeper Teapot", 3100)
    email = f"sk-{uuid.uuid4().hex[:8]}@example.com"
    customer_id = api.register_customer(vendure_admin, email)
    placed = api.place_order(vendure_peer.base_url, email, [(made["variant_id"], 3)])
    again = api.place_order(vendure_peer.base_url, email, [(made["variant_id"], 1)])
    receiver.wait_for(
        lambda ds: (
            _relayed("order.placed", placed["id"])(ds)
            and _relayed("order.placed", again["id"])(ds)
            and _relayed("customer.created", customer_id)(ds)
            and any(_about(d, "product", made["product_id"]) and d.status == 200 for d in ds)
        )
    )
    ours = {("product", made["product_id"]), ("order", placed["id"]), ("customer", customer_id)}
    relayed = {
        d.delivery_id
        for d in receiver.snapshot()
        if (json.loads(d.body).get("type"), json.loads(d.body).get("id")) in ours
    }
    stored = db.session.scalars(
        sa.select(WebhookDelivery.delivery_id).filter_by(shop_id=vendure_shop.id)
    ).all()
    assert relayed and relayed <= set(stored)

    result = process_inbox()
    assert result.failed == 0 and result.dead == 0 and result.done >= 3

    teapot = _row(Product, vendure_shop, made["product_id"])
    assert teapot is not None and teapot.title == "Shopkeeper Teapot"
    assert teapot.variants[0].sku == made["sku"] and teapot.price > Decimal("31")
    order = _row(Order, vendure_shop, placed["id"])
    assert order is not None and order.customer_external_id == customer_id
    assert order.total == Decimal(placed["totalWithTax"]) / 100 and order.currency == "USD"
    lines = db.session.scalars(sa.select(OrderLine).filter_by(order_id=order.id)).all()
    assert [(ln.product_external_id, ln.quantity) for ln in lines] == [(made["product_id"], 3)]
    bought = db.session.scalars(
        sa.select(Interaction).filter_by(
            shop_id=vendure_shop.id, kind="purchase", order_external_id=placed["id"]
        )
    ).all()
    assert [(i.shopper_id, i.product_external_id) for i in bought] == [
        (customer_id, made["product_id"])
    ]
    assert _row(Customer, vendure_shop, customer_id).email_hash

    # The customer's recommendations now reflect the two real orders ("the usual?").
    shop = db.session.get(Shop, vendure_shop.id)
    shop.settings = {**(shop.settings or {}), "holdout_share": 0}
    db.session.commit()
    secret = shops.credentials_for(shop).extra[shops.CUSTOMER_TOKEN_SECRET]
    token = mint_customer_token(shop.id, secret, customer_id)
    answer = requests.get(
        f"{shopkeeper_url}/api/v1/recommendations",
        params={"key": shop.widget_key, "placement": "reorder"},
        headers={TOKEN_HEADER: token},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    first = answer.json()["items"][0]
    assert (first["product_id"], first["title"]) == (made["product_id"], "Shopkeeper Teapot")
    assert "2 times" in first["reason"]


def test_wrong_secret_is_refused_and_nothing_stored(
    vendure_peer, vendure_admin, receiver, shopkeeper_url, app
) -> None:
    creds = Credentials(
        "127.0.0.1", webhook_secret="whsec_not_the_plugin_secret", api_url=vendure_peer.admin_url
    )
    shop = shops.create_shop("vendure", f"wrong-{uuid.uuid4().hex[:6]}.test", creds)
    db.session.commit()
    receiver.relay_to = f"{shopkeeper_url}/webhooks/vendure/{shop.id}"
    made = api.create_product(vendure_admin, "Refused Mug", 100)
    receiver.wait_for(lambda ds: any(_about(d, "product", made["product_id"]) for d in ds))
    time.sleep(1.5)  # the plugin would retry a 5xx after 200 ms here; a 401 must not be
    ours = [d for d in receiver.snapshot() if _about(d, "product", made["product_id"])]
    assert {d.status for d in ours} == {401}
    assert len({d.delivery_id for d in ours}) == len(ours)  # no retries
    stored = db.session.scalar(
        sa.select(sa.func.count()).select_from(WebhookDelivery).filter_by(shop_id=shop.id)
    )
    assert stored == 0


def test_disconnect_script_uninstalls_the_shop(
    vendure_peer, shopkeeper_url, vendure_shop, app
) -> None:
    env = {
        **os.environ,
        "SHOPKEEPER_WEBHOOK_URL": f"{shopkeeper_url}/webhooks/vendure/{vendure_shop.id}",
        "SHOPKEEPER_WEBHOOK_SECRET": vendure_peer.webhook_secret,
    }
    done = subprocess.run(
        [str(NODE), "disconnect.js"],
        cwd=PLUGIN_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert process_inbox().done == 1
    db.session.expire_all()
    shop = db.session.get(Shop, vendure_shop.id)
    assert shop.status == "uninstalled"
    assert shop.installation.credentials_encrypted is None


def test_accepted_offer_is_a_real_vendure_coupon(
    vendure_peer, vendure_admin, shopkeeper_url, vendure_shop, app
) -> None:
    configure(vendure_shop)  # offers on, no holdout, 15 % max discount, budgets
    # offers value a cart by the mirrored catalogue (the laptop lists far above 60 USD)
    assert run_sync(vendure_shop.id, "products").finished
    # the sync read what the channel sells: dollars alone, so amounts in USD are exact
    db.session.refresh(vendure_shop)
    assert vendure_shop.settings[offer_platform.KEY]["sold"] == ["USD"]
    make_idle(vendure_shop.id, SHOPPER)  # an idle cart: the stage where offers are made
    cart = cart_body(price="60.00", quantity=2, product="1", currency="USD")
    url = f"{shopkeeper_url}/api/v1/offers"
    params = {"key": vendure_shop.widget_key}
    shopper = {"X-Shopkeeper-Shopper": SHOPPER}
    quoted = requests.post(
        f"{url}/quote", params=params, json={"cart": cart}, headers=shopper, timeout=30
    )
    offer = quoted.json()["offer"]
    assert quoted.status_code == 200 and offer is not None, quoted.text
    accepted = requests.post(
        f"{url}/accept",
        params=params,
        json={"token": offer["token"], "cart": cart},
        headers=shopper,
        timeout=60,
    )
    assert accepted.status_code == 200, accepted.text
    code = accepted.json()["code"]

    promos = vendure_admin(
        "query($c:String!){promotions(options:{filter:{couponCode:{eq:$c}}}){items{id enabled "
        "usageLimit endsAt actions{code args{name value}} conditions{code args{name value}}}}}",
        c=code,
    )["promotions"]["items"]
    assert len(promos) == 1 and promos[0]["enabled"] and promos[0]["usageLimit"] == 1
    action = promos[0]["actions"][0]
    minor = int(Decimal(offer["amount"]) * 100)
    # Prices in this channel exclude tax (20 %): Vendure takes the discount off the net total.
    net = (Decimal(minor) / Decimal("1.2")).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert (action["code"], action["args"][0]["value"]) == ("order_fixed_discount", str(net))

    # The coupon works once in a real checkout, for exactly the offered amount.
    email = f"offer-{uuid.uuid4().hex[:8]}@example.com"
    api.register_customer(vendure_admin, email)
    full = api.place_order(vendure_peer.base_url, email, [("2", 1)])
    discounted = api.place_order(vendure_peer.base_url, email, [("2", 1)], coupon=code)
    assert discounted["couponCodes"] == [code]
    assert abs(full["totalWithTax"] - discounted["totalWithTax"] - minor) <= 1  # cent rounding


def test_a_two_currency_channel_is_quoted_and_the_coupon_keeps_the_carts_currency(
    vendure_peer, vendure_admin, shopkeeper_url, vendure_shop, app, dollars_and_euros
) -> None:
    """Dollars and euros in one channel: the sync finds the plugin's order-currency
    condition, so a dollar cart is quoted (before, such a channel got no offer at all) and
    its coupon is a promotion for orders in dollars alone."""
    configure(vendure_shop)
    assert run_sync(vendure_shop.id, "products").finished
    db.session.refresh(vendure_shop)
    reading = vendure_shop.settings[offer_platform.KEY]
    assert (reading["sold"], reading["pinned"]) == (["EUR", "USD"], True)
    make_idle(vendure_shop.id, SHOPPER)
    cart = cart_body(price="60.00", quantity=2, product="1", currency="USD")
    url = f"{shopkeeper_url}/api/v1/offers"
    params = {"key": vendure_shop.widget_key}
    shopper = {"X-Shopkeeper-Shopper": SHOPPER}
    quoted = requests.post(
        f"{url}/quote", params=params, json={"cart": cart}, headers=shopper, timeout=30
    )
    offer = quoted.json()["offer"]
    assert quoted.status_code == 200 and offer is not None, quoted.text
    assert offer["currency"] == "USD"
    accepted = requests.post(f"{url}/accept", params=params,
                             json={"token": offer["token"], "cart": cart},
                             headers=shopper, timeout=60)
    assert accepted.status_code == 200, accepted.text
    code = accepted.json()["code"]
    promos = vendure_admin(
        "query($c:String!){promotions(options:{filter:{couponCode:{eq:$c}}})"
        "{items{conditions{code args{name value}}}}}", c=code,
    )["promotions"]["items"]
    assert {"code": ORDER_CURRENCY, "args": [{"name": "currencyCode", "value": "USD"}]} \
        in promos[0]["conditions"]
    email = f"offer-{uuid.uuid4().hex[:8]}@example.com"
    api.register_customer(vendure_admin, email)
    full = api.place_order(vendure_peer.base_url, email, [("2", 1)])
    discounted = api.place_order(vendure_peer.base_url, email, [("2", 1)], coupon=code)
    minor = int(Decimal(offer["amount"]) * 100)
    assert abs(full["totalWithTax"] - discounted["totalWithTax"] - minor) <= 1


def test_a_euro_cart_in_a_dollar_channel_is_offered_euros_that_apply_to_the_euro_order(
    vendure_peer, vendure_admin, shopkeeper_url, vendure_shop, app, dollars_and_euros
) -> None:
    """Dollars by default, euros besides: the sync mirrors each variant's euro price (with
    tax, as its dollar one), so a euro cart is valued at it (not at an inflated reported
    price) and, with the merchant's euro budgets, quoted a euro offer whose coupon takes
    exactly that off a real order in euros."""
    from plugin.models import Offer, Variant

    item = api.create_product(vendure_admin, "Euro Mug", 4000)  # 40.00 USD net, 48.00 gross
    api.price_variant(vendure_admin, item["variant_id"], "EUR", 3500)  # 35.00 net, 42.00 gross
    configure(vendure_shop, currency_guardrails={"EUR": {
        "daily_budget": 100, "monthly_budget": 1000, "min_cart_value": 20}})
    assert run_sync(vendure_shop.id, "products").finished
    variant = _row(Variant, vendure_shop, item["variant_id"])
    assert variant.prices == {"EUR": "42.00", "USD": "48.00"} and variant.price == Decimal(48)
    make_idle(vendure_shop.id, SHOPPER)
    cart = {"currency": "EUR", "lines": [{"product_id": item["product_id"], "variant_id":
                                          item["variant_id"], "quantity": 3, "price": "60.00"}]}
    url = f"{shopkeeper_url}/api/v1/offers"
    params = {"key": vendure_shop.widget_key}
    shopper = {"X-Shopkeeper-Shopper": SHOPPER}
    quoted = requests.post(f"{url}/quote", params=params, json={"cart": cart},
                           headers=shopper, timeout=30)
    offer = quoted.json()["offer"]
    assert quoted.status_code == 200 and offer is not None, quoted.text
    assert offer["currency"] == "EUR"
    db.session.expire_all()
    row = db.session.scalar(sa.select(Offer).where(Offer.public_id == offer["id"]))
    assert row.cart_value == Decimal("126.00")  # 3 x 42 euros, not the 180 claimed
    accepted = requests.post(f"{url}/accept", params=params,
                             json={"token": offer["token"], "cart": cart},
                             headers=shopper, timeout=60)
    assert accepted.status_code == 200, accepted.text
    code = accepted.json()["code"]
    promos = vendure_admin(
        "query($c:String!){promotions(options:{filter:{couponCode:{eq:$c}}})"
        "{items{conditions{code args{name value}}}}}", c=code,
    )["promotions"]["items"]
    assert {"code": ORDER_CURRENCY, "args": [{"name": "currencyCode", "value": "EUR"}]} \
        in promos[0]["conditions"]
    email = f"euro-offer-{uuid.uuid4().hex[:8]}@example.com"
    api.register_customer(vendure_admin, email)
    lines = [(item["variant_id"], 3)]
    full = api.place_order(vendure_peer.base_url, email, lines, currency="EUR")
    discounted = api.place_order(vendure_peer.base_url, email, lines, coupon=code,
                                 currency="EUR")
    assert full["totalWithTax"] > 12600 and discounted["currencyCode"] == "EUR"
    assert discounted["couponCodes"] == [code]
    minor = int(Decimal(offer["amount"]) * 100)
    assert abs(full["totalWithTax"] - discounted["totalWithTax"] - minor) <= 1  # cent rounding
