"""Each connector behind the real webhook endpoint: 200 when signed, 401 (never 500) when not."""

from __future__ import annotations

import pytest
import responses

from connectors.base import Credentials
from connectors.generic import sign_payload
from connectors.shopify.webhooks import sign_body
from plugin import shops
from plugin.extensions import db
from tests.connectors.test_saleor import JWKS_URL, KEY, OTHER_KEY, jwk, saleor_headers
from tests.connectors.test_saleor import fixture as saleor_fixture
from tests.connectors.test_shopify import GRAPHQL, for_shop, product_node, shopify_headers
from tests.connectors.test_shopify import fixture as shopify_fixture

SHOPIFY_SECRET = "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"


@pytest.fixture
def shopify_shop(app):
    creds = Credentials("jsmith.myshopify.com", access_token="shpat_x",
                        webhook_secret=SHOPIFY_SECRET, extra={"currency": "USD"})
    shop = shops.create_shop("shopify", "jsmith.myshopify.com", creds)
    db.session.commit()
    return shop


@pytest.fixture
def saleor_shop(app):
    from connectors.saleor import SaleorConnector

    SaleorConnector.jwks_cache.clear()
    creds = Credentials("demo.saleor.io", access_token="app-token",
                        api_url="https://demo.saleor.io/graphql/")
    shop = shops.create_shop("saleor", "demo.saleor.io", creds)
    db.session.commit()
    return shop


@pytest.mark.parametrize("topic", ["orders/create", "customers/redact", "shop/redact"])
def test_shopify_signed_delivery_is_accepted(client, shopify_shop, topic: str) -> None:
    body = for_shop(shopify_fixture(topic.replace("/", "_") + ".json"))
    response = client.post(f"/webhooks/shopify/{shopify_shop.id}", data=body,
                           headers=shopify_headers(topic, body))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "accepted"


@pytest.mark.parametrize("topic", ["customers/data_request", "customers/redact", "shop/redact"])
def test_shopify_compliance_topics_answer_401_on_bad_hmac(client, shopify_shop, topic) -> None:
    body = for_shop(shopify_fixture(topic.replace("/", "_") + ".json"))
    headers = {**shopify_headers(topic, body),
               "X-Shopify-Hmac-Sha256": sign_body("shpss_wrong_secret_00000000000000", body)}
    response = client.post(f"/webhooks/shopify/{shopify_shop.id}", data=body, headers=headers)
    assert response.status_code == 401


def test_saleor_signed_delivery_is_accepted(client, saleor_shop) -> None:
    body = saleor_fixture("order_created.json")
    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, json={"keys": [jwk(KEY)]})
        response = client.post(f"/webhooks/saleor/{saleor_shop.id}", data=body,
                               headers=saleor_headers("order_created", body))
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("signature", ["not-a-jws", "e30..", "a.b.c"])
def test_saleor_malformed_jws_is_401_not_500(client, saleor_shop, signature: str) -> None:
    body = saleor_fixture("order_created.json")
    headers = {**saleor_headers("order_created", body), "Saleor-Signature": signature}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(JWKS_URL, json={"keys": [jwk(OTHER_KEY)]})
        response = client.post(f"/webhooks/saleor/{saleor_shop.id}", data=body, headers=headers)
    assert response.status_code == 401


def test_generic_signed_delivery_is_accepted(client, shop, shop_secret) -> None:
    body = b'{"id": "p1", "title": "Tea", "price": "1.00", "currency": "GBP",' \
           b' "updated_at": "2025-11-22T10:00:00Z"}'
    headers = sign_payload(shop_secret, body, topic="products/upsert", delivery_id="d-1")
    response = client.post(f"/webhooks/generic/{shop.id}", data=body, headers=headers)
    assert response.status_code == 200


def test_shopify_order_and_product_reach_the_database(client, shopify_shop) -> None:
    from decimal import Decimal

    from plugin.models import Order, Product
    from plugin.webhooks.inbox import process_inbox

    for topic, name in (("products/update", "products_update"),
                        ("orders/create", "orders_create")):
        body = shopify_fixture(f"{name}.json")
        assert client.post(f"/webhooks/shopify/{shopify_shop.id}", data=body,
                           headers=shopify_headers(topic, body)).status_code == 200
    with responses.RequestsMock() as rsps:  # the product body cannot say its stock: read back
        rsps.post(GRAPHQL, json={"data": {"shop": {"currencyCode": "USD"}, "product": {
            **product_node("9554194432293"), "title": "T-Shirt"}}})
        result = process_inbox()
    assert (result.done, result.failed) == (2, 0)
    product = db.session.scalar(db.select(Product).filter_by(shop_id=shopify_shop.id))
    order = db.session.scalar(db.select(Order).filter_by(shop_id=shopify_shop.id))
    assert product.external_id == "9554194432293" and product.title == "T-Shirt"
    assert order.external_id == "820982911946154508" and order.total == Decimal("359.97")
    assert order.cancelled and sorted(line.price for line in order.lines) == [
        Decimal("89.99"), Decimal("119.99"), Decimal("159.99")]


def test_saleor_order_reaches_the_database(client, saleor_shop) -> None:
    from decimal import Decimal

    from plugin.models import Order
    from plugin.webhooks.inbox import process_inbox

    body = saleor_fixture("order_created.json")
    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, json={"keys": [jwk(KEY)]})
        assert client.post(f"/webhooks/saleor/{saleor_shop.id}", data=body,
                           headers=saleor_headers("order_created", body)).status_code == 200
    assert process_inbox().done == 1
    order = db.session.scalar(db.select(Order).filter_by(shop_id=saleor_shop.id))
    assert order.discount_codes == ["SK-7QX2"] and order.total == Decimal("11.0")
    assert sorted(line.quantity for line in order.lines) == [1, 2]


def test_saleor_price_change_reaches_the_database(client, saleor_shop) -> None:
    """Saleor changes a price in the variant's channel listing and sends PRODUCT_VARIANT_UPDATED,
    but neither that mutation nor a stock update touches ``Product.updatedAt`` (only a name,
    SKU or attribute change of the variant does: saleor/saleor
    graphql/product/mutations/product_variant/product_variant_update.py). Stamped with the
    product's unchanged ``updatedAt``, the new price looked stale and was skipped; the event's
    ``issuedAt`` ("Time of the event", docs.saleor.io Event interface) says it is newer."""
    import json
    from decimal import Decimal

    from plugin.models import Product
    from plugin.webhooks.inbox import process_inbox

    first = json.loads(saleor_fixture("product_updated.json"))
    first["issuedAt"] = "2025-11-20T10:15:31+00:00"
    repriced = json.loads(saleor_fixture("product_variant_updated.json"))
    variants = repriced["productVariant"]["product"]["variants"]
    for variant in variants:
        for listing in variant["channelListings"]:
            listing["price"]["amount"] = 2.5 if listing["price"]["currency"] == "USD" else 10.0
    repriced["issuedAt"] = "2025-11-21T08:00:00.500000+00:00"
    for event, data in (("product_updated", first), ("product_variant_updated", repriced)):
        body = json.dumps(data).encode()
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            rsps.get(JWKS_URL, json={"keys": [jwk(KEY)]})
            assert client.post(f"/webhooks/saleor/{saleor_shop.id}", data=body,
                               headers=saleor_headers(event, body)).status_code == 200
        assert process_inbox().done == 1
    db.session.expire_all()
    product = db.session.scalar(db.select(Product).filter_by(shop_id=saleor_shop.id))
    assert product.price == Decimal("2.5")
