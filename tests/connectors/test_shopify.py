"""Shopify: the contract plus OAuth, session tokens, app proxy, mapping and discounts."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import responses

from connectors.base import Credentials
from connectors.errors import (
    AuthFailed,
    ConnectorError,
    InvalidPayload,
    RateLimited,
    SignatureInvalid,
)
from connectors.http import make_session
from connectors.records import (
    Cart,
    Customer,
    Deletion,
    DiscountSpec,
    Order,
    Product,
    Redaction,
)
from connectors.shopify import ShopifyConnector
from connectors.shopify.client import API_VERSION
from connectors.shopify.install import (
    QUERY_MAX_AGE_SECONDS,
    oauth_hmac,
    verify_app_proxy,
    verify_oauth_callback,
    verify_session_token,
    verify_signed_query,
)
from connectors.shopify.webhooks import sign_body
from tests.connectors.contract import ConnectorContract, WebhookSample

FIXTURES = Path(__file__).parents[1] / "fixtures" / "shopify"
SHOP = "jsmith.myshopify.com"
API_KEY = "4b0f3c2e9d1a7f6e5c4b3a2918273645"
SECRET = "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"
OTHER = "shpss_00000000000000000000000000000000"
GRAPHQL = f"https://{SHOP}/admin/api/{API_VERSION}/graphql.json"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def shopify_headers(topic: str, body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign_body(secret, body),
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-API-Version": API_VERSION,
        "X-Shopify-Webhook-Id": f"b54557e4-bdd9-4b37-8a5f-bf7d70bc{len(body):04d}",
        "X-Shopify-Triggered-At": "2025-11-22T10:00:00.123Z",
    }


def product_node(pid: str) -> dict:
    return {
        "id": f"gid://shopify/Product/{pid}",
        "title": f"Product {pid}",
        "handle": f"product-{pid}",
        "descriptionHtml": "<p>Nice</p>",
        "onlineStoreUrl": None,
        "vendor": "Acme",
        "productType": "Shirts",
        "tags": ["cotton"],
        "status": "ACTIVE",
        "updatedAt": "2025-11-20T08:00:00Z",
        "featuredMedia": {"preview": {"image": {"url": "https://cdn.example/p.png"}}},
        "variants": {
            "nodes": [
                {"id": f"gid://shopify/ProductVariant/{pid}1", "title": "S", "sku": "S-1",
                 "price": "19.99", "availableForSale": True, "inventoryQuantity": 3},
                {"id": f"gid://shopify/ProductVariant/{pid}2", "title": "M", "sku": "M-1",
                 "price": "17.50", "availableForSale": False, "inventoryQuantity": 0},
            ]
        },
    }


#: One node of the Admin GraphQL ``orders`` connection (the fields ORDERS_QUERY asks for).
ORDER_NODE = {
    "id": "gid://shopify/Order/5", "createdAt": "2025-11-01T10:00:00Z",
    "updatedAt": "2025-11-02T10:00:00Z", "cancelledAt": None, "currencyCode": "CAD",
    "discountCodes": ["SK-1"], "customer": {"id": "gid://shopify/Customer/9"},
    "totalPriceSet": {"shopMoney": {"amount": "40.5", "currencyCode": "CAD"}},
    "lineItems": {"nodes": [
        {"quantity": 2, "product": {"id": "gid://shopify/Product/3"},
         "variant": {"id": "gid://shopify/ProductVariant/31"},
         "originalUnitPriceSet": {"shopMoney": {"amount": "20.25"}}},
        {"quantity": 1, "product": None, "variant": None,
         "originalUnitPriceSet": {"shopMoney": {"amount": "5.00"}}},
    ]},
}


def cursor_matcher(expected_after: str | None):
    def match(request):
        body = json.loads(request.body)
        after = body["variables"].get("after")
        return after == expected_after, f"after={after!r}, expected {expected_after!r}"

    return match


def for_shop(body: bytes) -> bytes:
    """Shopify's documented samples name a placeholder shop; a real delivery names ours."""
    return body.replace(b"{shop}.myshopify.com", SHOP.encode()).replace(
        b"example.myshopify.com", SHOP.encode())


@pytest.mark.parametrize("topic,name", [
    ("app/uninstalled", "app_uninstalled.json"), ("shop/redact", "shop_redact.json"),
    ("customers/redact", "customers_redact.json"),
    ("customers/data_request", "customers_data_request.json"),
])
def test_a_body_naming_another_shop_cannot_uninstall_or_redact_this_one(topic, name):
    """One app secret signs every shop's deliveries, and the topic header is unsigned: a
    signed body of another shop re-sent here as an uninstall or a redaction is refused."""
    connector = ShopifyConnector(Credentials(SHOP, access_token="t", webhook_secret=SECRET))
    body = fixture(name).replace(b"{shop}.myshopify.com", b"another-shop.myshopify.com")
    headers = shopify_headers(topic, body, SECRET)
    connector.verify_webhook(headers, body)  # Shopify did sign it...
    with pytest.raises(InvalidPayload, match="names another shop"):
        connector.parse_webhook(headers, body)  # ...but not for this shop
    assert connector.parse_webhook(headers, for_shop(fixture(name))).topic == topic


class TestShopifyConnector(ConnectorContract):
    connector_cls = ShopifyConnector
    SIGNATURE_HEADERS = ("X-Shopify-Hmac-Sha256",)

    def make_connector(self, session=None, *, wrong_secret=False):
        creds = Credentials(
            SHOP,
            access_token=self.ACCESS_TOKEN,
            webhook_secret=OTHER if wrong_secret else SECRET,
            extra={"api_key": API_KEY, "currency": "USD"},
        )
        return ShopifyConnector(creds, session=session)

    def webhook_samples(self):
        s = WebhookSample
        return [
            s("products/update", fixture("products_update.json"), "products/upsert", Product),
            s("products/delete", fixture("products_delete.json"), "products/delete", Deletion),
            s("inventory_levels/update", fixture("inventory_levels_update.json"),
              "products/upsert", Product),
            s("customers/create", fixture("customers_create.json"), "customers/upsert", Customer),
            s("customers/update", fixture("customers_create_legacy.json"),
              "customers/upsert", Customer),
            s("customers/delete", fixture("customers_delete.json"), "customers/delete", Deletion),
            s("orders/create", fixture("orders_create.json"), "orders/upsert", Order),
            s("orders/cancelled", fixture("orders_create.json"), "orders/upsert", Order),
            s("carts/update", fixture("carts_update.json"), "carts/upsert", Cart),
            s("checkouts/update", fixture("checkouts_update.json"), "carts/upsert", Cart),
            s("app/uninstalled", for_shop(fixture("app_uninstalled.json")), "app/uninstalled",
              None),
            s("publications/delete", fixture("publications_delete.json"),
              "publications/delete", Deletion),
            s("customers/data_request", for_shop(fixture("customers_data_request.json")),
              "customers/data_request", Redaction),
            s("customers/redact", for_shop(fixture("customers_redact.json")),
              "customers/redact", Redaction),
            s("shop/redact", for_shop(fixture("shop_redact.json")), "shop/redact", Redaction),
        ]

    def signed_delivery(self, topic, body, *, now, wrong_key=False):
        return shopify_headers(topic, body, OTHER if wrong_key else SECRET)

    def api_endpoint(self):
        return "POST", GRAPHQL

    def add_product_page(self, rsps, index, ids, last, broken=frozenset()):
        rsps.post(
            GRAPHQL,
            json={
                "data": {
                    "shop": {"currencyCode": "EUR"},
                    "products": {
                        "pageInfo": {"hasNextPage": not last,
                                     "endCursor": None if last else f"cur{index + 1}"},
                        "nodes": [{**product_node(pid), **({"updatedAt": "someday"}
                                                           if pid in broken else {})}
                                  for pid in ids],
                    },
                },
                "extensions": {"cost": {"requestedQueryCost": 112, "actualQueryCost": 60}},
            },
            match=[cursor_matcher(None if index == 0 else f"cur{index}")],
        )

    # -- webhooks ---------------------------------------------------------------------------
    @pytest.mark.parametrize("topic", ["customers/data_request", "customers/redact",
                                       "shop/redact"])
    def test_compliance_topics_reject_bad_hmac(self, topic: str) -> None:
        body = fixture(topic.replace("/", "_") + ".json")
        headers = shopify_headers(topic, body, OTHER)
        with pytest.raises(SignatureInvalid):
            self.make_connector().verify_webhook(headers, body)

    def test_hmac_is_over_raw_bytes_not_reserialized_json(self) -> None:
        body = b'{"id":1,"url":"https:\\/\\/x.test\\/a\\u0026b"}'
        headers = shopify_headers("products/delete", body)
        self.make_connector().verify_webhook(headers, body)
        reserialized = json.dumps(json.loads(body)).encode()
        with pytest.raises(SignatureInvalid):
            self.make_connector().verify_webhook(headers, reserialized)

    def test_rest_product_mapping(self) -> None:
        body = fixture("products_update.json")
        product = self.make_connector().parse_webhook(
            shopify_headers("products/update", body), body).record
        assert product.external_id == "9554194432293"
        assert product.tags == ("cotton", "comfortable")
        assert product.categories == ("Shirts",)
        assert product.price == Decimal("29.99") and product.currency == "USD"
        assert product.updated_at == datetime(2025, 4, 22, 19, 30, tzinfo=UTC)
        assert product.variants[0].sku == "TSHIRT-001"

    def test_order_mapping_keeps_total_codes_and_cancellation(self) -> None:
        body = fixture("orders_create.json")
        order = self.make_connector().parse_webhook(
            shopify_headers("orders/create", body), body).record
        assert order.external_id == "820982911946154508"
        assert order.customer_id == "115310627314723954"
        assert order.total == Decimal("359.97") and order.currency == "USD"
        assert order.cancelled is True
        assert [(li.product_id, li.price) for li in order.lines] == [
            ("788032119674292922", Decimal("89.99")),
            ("788032119674292922", Decimal("159.99")),
            ("788032119674292922", Decimal("119.99")),
        ]

    def test_null_timestamps_fall_back_to_triggered_at(self) -> None:
        body = fixture("customers_create_legacy.json")
        customer = self.make_connector().parse_webhook(
            shopify_headers("customers/update", body), body).record
        assert customer.updated_at == datetime(2025, 11, 22, 10, 0, 0, 123000, tzinfo=UTC)
        assert customer.email == "bob@biller.com"

    def test_checkout_is_keyed_by_its_cart_token(self) -> None:
        cart_body, checkout_body = fixture("carts_update.json"), fixture("checkouts_update.json")
        conn = self.make_connector()
        cart = conn.parse_webhook(shopify_headers("carts/update", cart_body), cart_body).record
        checkout = conn.parse_webhook(
            shopify_headers("checkouts/update", checkout_body), checkout_body).record
        assert cart.external_id == checkout.external_id == "eeafa272cebfd4b22385bc4b645e762c"
        assert checkout.customer_id == "603851970716743426"
        assert cart.lines[0].quantity == 3

    def test_redaction_lists_customer_and_orders(self) -> None:
        body = for_shop(fixture("customers_redact.json"))
        record = self.make_connector().parse_webhook(
            shopify_headers("customers/redact", body), body).record
        assert record == Redaction("customer_redact", "191167", "john@example.com",
                                   ("299938", "280263", "220458"))

    def test_missing_webhook_id_is_invalid(self) -> None:
        body = fixture("products_delete.json")
        headers = shopify_headers("products/delete", body)
        del headers["X-Shopify-Webhook-Id"]
        with pytest.raises(InvalidPayload):
            self.make_connector().parse_webhook(headers, body)

    @pytest.mark.parametrize("webhook_id", ["x" * 129, "w\x01\x7f"])
    def test_webhook_id_must_be_a_short_printable_key(self, webhook_id: str) -> None:
        body = fixture("products_delete.json")
        headers = {**shopify_headers("products/delete", body),
                   "X-Shopify-Webhook-Id": webhook_id}
        with pytest.raises(InvalidPayload):
            self.make_connector().parse_webhook(headers, body)

    def test_order_without_currency_is_invalid(self) -> None:
        data = json.loads(fixture("orders_create.json"))
        del data["currency"]
        body = json.dumps(data).encode()
        with pytest.raises(InvalidPayload):
            self.make_connector().parse_webhook(shopify_headers("orders/create", body), body)

    # -- backfill specifics -----------------------------------------------------------------
    def test_backfill_product_mapping_uses_shop_currency(self, delays) -> None:
        with responses.RequestsMock() as rsps:
            self.add_product_page(rsps, 0, ["7"], True)
            page = next(self.make_connector(self._session(delays)).iter_products())
            calls = list(rsps.calls)
        product = page.items[0]
        assert product.external_id == "7" and product.currency == "EUR"
        assert product.price == Decimal("17.50")
        assert product.image_url == "https://cdn.example/p.png"
        assert [v.external_id for v in product.variants] == ["71", "72"]
        sent = json.loads(calls[0].request.body)
        assert calls[0].request.headers["X-Shopify-Access-Token"] == self.ACCESS_TOKEN
        assert sent["variables"]["first"] == 50

    def test_graphql_throttled_waits_for_bucket_refill(self, delays) -> None:
        throttled = {
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": {"cost": {"requestedQueryCost": 202, "actualQueryCost": None,
                                    "throttleStatus": {"maximumAvailable": 2000.0,
                                                       "currentlyAvailable": 2,
                                                       "restoreRate": 100.0}}},
        }
        with responses.RequestsMock(registry=responses.registries.OrderedRegistry) as rsps:
            rsps.post(GRAPHQL, json=throttled)
            self.add_product_page(rsps, 0, ["1"], True)
            pages = list(self.make_connector(self._session(delays)).iter_products())
        assert delays == [2.0]  # (202 - 2) / 100 points per second
        assert pages[0].items[0].external_id == "1"

    def test_graphql_throttled_forever_raises_rate_limited(self, delays) -> None:
        throttled = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]}
        with responses.RequestsMock() as rsps:
            rsps.post(GRAPHQL, json=throttled)
            with pytest.raises(RateLimited):
                next(self.make_connector(self._session(delays)).iter_products())

    def test_access_denied_is_auth_failed(self, delays) -> None:
        denied = {"errors": [{"message": "Access denied",
                              "extensions": {"code": "ACCESS_DENIED"}}]}
        with responses.RequestsMock() as rsps:
            rsps.post(GRAPHQL, json=denied)
            with pytest.raises(AuthFailed):
                next(self.make_connector(self._session(delays)).iter_customers())

    def test_orders_incremental_sync_filters_by_updated_at(self, delays) -> None:
        order = copy.deepcopy(ORDER_NODE)
        page = {"data": {"orders": {"pageInfo": {"hasNextPage": False, "endCursor": "x"},
                                    "nodes": [order]}}}
        since = datetime(2025, 11, 1, tzinfo=UTC)
        with responses.RequestsMock() as rsps:
            rsps.post(GRAPHQL, json=page)
            pages = list(self.make_connector(self._session(delays)).iter_orders(since=since))
            calls = list(rsps.calls)
        sent = json.loads(calls[0].request.body)["variables"]
        assert sent["query"] == "updated_at:>='2025-11-01T00:00:00+00:00'"
        got = pages[0].items[0]
        assert pages[0].next_cursor is None
        assert (got.external_id, got.customer_id, got.total, got.currency) == (
            "5", "9", Decimal("40.5"), "CAD")
        assert [(li.product_id, li.variant_id, li.quantity) for li in got.lines] == [
            ("3", "31", 2)]

    # -- discounts --------------------------------------------------------------------------
    def _spec(self, **kw) -> DiscountSpec:
        base = dict(code="SK-ABC123", kind="percent", value=Decimal("15"),
                    expires_at=datetime(2025, 12, 1, tzinfo=UTC), customer_id="9",
                    product_ids=("3",), min_subtotal=Decimal("30.00"))
        return DiscountSpec(**{**base, **kw})

    def test_create_discount_sends_basic_code_input(self, delays) -> None:
        created = {"data": {"discountCodeBasicCreate": {
            "codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/77"}, "userErrors": []}}}
        with responses.RequestsMock() as rsps:
            rsps.post(GRAPHQL, json=created)
            ref = self.make_connector(self._session(delays)).create_discount(self._spec())
            calls = list(rsps.calls)
        sent = json.loads(calls[0].request.body)
        assert "discountCodeBasicCreate" in sent["query"]
        data = sent["variables"]["input"]
        assert data["code"] == "SK-ABC123" and data["usageLimit"] == 1
        assert data["customerGets"]["value"] == {"percentage": 0.15}
        assert data["customerGets"]["items"] == {
            "products": {"productsToAdd": ["gid://shopify/Product/3"]}}
        assert data["context"] == {"customers": {"add": ["gid://shopify/Customer/9"]}}
        assert data["minimumRequirement"]["subtotal"]["greaterThanOrEqualToSubtotal"] == "30.00"
        assert data["endsAt"] == "2025-12-01T00:00:00+00:00"
        assert ref.platform_id == "gid://shopify/DiscountCodeNode/77"

    def test_create_discount_user_errors_raise(self, delays) -> None:
        refused = {"data": {"discountCodeBasicCreate": {"codeDiscountNode": None, "userErrors": [
            {"field": ["basicCodeDiscount", "endsAt"], "code": "INVALID",
             "message": "Ends at needs to be after starts_at"}]}}}
        with responses.RequestsMock() as rsps:
            rsps.post(GRAPHQL, json=refused)
            # a refusal, not a failure: the offer is withdrawn instead of left to retries
            with pytest.raises(InvalidPayload, match="Ends at") as refusal:
                self.make_connector(self._session(delays)).create_discount(self._spec())
        assert refusal.value.errors == {"basicCodeDiscount.endsAt": [
            "Ends at needs to be after starts_at"]}

    def test_create_discount_after_retried_post_reuses_the_code(self, delays) -> None:
        taken = {"data": {"discountCodeBasicCreate": {"codeDiscountNode": None, "userErrors": [
            {"field": ["basicCodeDiscount", "code"], "code": "TAKEN",
             "message": "Code must be unique."}]}}}
        with responses.RequestsMock(registry=responses.registries.OrderedRegistry) as rsps:
            rsps.post(GRAPHQL, status=502)  # the first attempt created it, then timed out
            rsps.post(GRAPHQL, json=taken)
            rsps.post(GRAPHQL, json={"data": {"codeDiscountNodeByCode": {
                "id": "gid://shopify/DiscountCodeNode/77"}}})
            ref = self.make_connector(self._session(delays)).create_discount(self._spec())
            lookup = json.loads(rsps.calls[2].request.body)["variables"]
        assert ref.platform_id == "gid://shopify/DiscountCodeNode/77"
        assert lookup == {"code": "SK-ABC123"} and delays == [1.0]

    def test_find_discount_by_code(self, delays) -> None:
        with responses.RequestsMock(registry=responses.registries.OrderedRegistry) as rsps:
            rsps.post(GRAPHQL, json={"data": {"codeDiscountNodeByCode": {
                "id": "gid://shopify/DiscountCodeNode/77"}}})
            rsps.post(GRAPHQL, json={"data": {"codeDiscountNodeByCode": None}})
            conn = self.make_connector(self._session(delays))
            assert conn.find_discount("SK-ABC123") == "gid://shopify/DiscountCodeNode/77"
            assert conn.find_discount("SK-OTHER") is None
            sent = json.loads(rsps.calls[0].request.body)["variables"]
        assert sent == {"code": "SK-ABC123"}

    def test_delete_discount_removes_the_code_and_tolerates_one_already_gone(self, delays
                                                                             ) -> None:
        from connectors.records import DiscountRef

        ref = DiscountRef("gid://shopify/DiscountCodeNode/77", "SK-ABC123",
                          datetime(2025, 12, 1, tzinfo=UTC))
        deleted = {"data": {"discountCodeDelete": {
            "deletedCodeDiscountId": ref.platform_id, "userErrors": []}}}
        gone = {"data": {"discountCodeDelete": {"deletedCodeDiscountId": None, "userErrors": [
            {"field": ["id"], "code": "INVALID", "message": "Discount does not exist"}]}}}
        refused = {"data": {"discountCodeDelete": {"deletedCodeDiscountId": None, "userErrors": [
            {"field": ["id"], "code": "INTERNAL_ERROR", "message": "Try again later"}]}}}
        with responses.RequestsMock(registry=responses.registries.OrderedRegistry) as rsps:
            for answer in (deleted, gone, refused):
                rsps.post(GRAPHQL, json=answer)
            conn = self.make_connector(self._session(delays))
            conn.delete_discount(ref)
            conn.delete_discount(ref)
            with pytest.raises(ConnectorError, match="Try again later"):
                conn.delete_discount(ref)
            sent = json.loads(rsps.calls[0].request.body)
        assert "discountCodeDelete" in sent["query"]
        assert sent["variables"] == {"id": "gid://shopify/DiscountCodeNode/77"}

    def test_fixed_and_free_shipping_inputs(self, delays) -> None:
        ok = {"codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/1"}, "userErrors": []}
        with responses.RequestsMock() as rsps:
            rsps.post(GRAPHQL, json={"data": {"discountCodeBasicCreate": ok}})
            rsps.post(GRAPHQL, json={"data": {"discountCodeFreeShippingCreate": ok}})
            conn = self.make_connector(self._session(delays))
            conn.create_discount(self._spec(kind="fixed", value=Decimal("5.00"), product_ids=()))
            conn.create_discount(self._spec(kind="free_shipping", customer_id=None))
            calls = list(rsps.calls)
        fixed = json.loads(calls[0].request.body)["variables"]["input"]
        free = json.loads(calls[1].request.body)
        assert fixed["customerGets"]["value"] == {
            "discountAmount": {"amount": "5.00", "appliesOnEachItem": False}}
        assert fixed["customerGets"]["items"] == {"all": True}
        assert "discountCodeFreeShippingCreate" in free["query"]
        assert free["variables"]["input"]["context"] == {"all": "ALL"}


    def test_free_shipping_is_capped_at_the_budgeted_shipping_cost(self) -> None:
        """Without ``maximumShippingPrice`` any rate (express, overseas) ships free while the
        budget and margin were checked against the shop's ``shipping_cost``."""
        from connectors.shopify.discounts import discount_input

        capped = discount_input(self._spec(kind="free_shipping", value=Decimal("4.95")))
        assert capped["maximumShippingPrice"] == "4.95"
        assert "maximumShippingPrice" not in discount_input(
            self._spec(kind="free_shipping", value=Decimal("0")))

# -- install, session tokens, app proxy ------------------------------------------------------
VECTOR_1 = {
    "code": "0907a61c0c8d55e99db179b68161bc00",
    "shop": "some-shop.myshopify.com",
    "state": "0.6784241404160823",
    "timestamp": "1337178173",
    "hmac": "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf",
}


#: when the documented vector was made (its own ``timestamp``)
VECTOR_1_AT = 1337178173.0


def test_oauth_callback_documented_vector() -> None:
    assert oauth_hmac(VECTOR_1, "hush") == VECTOR_1["hmac"]
    shop = verify_oauth_callback(VECTOR_1, "hush", expected_state="0.6784241404160823",
                                 now=VECTOR_1_AT)
    assert shop == "some-shop.myshopify.com"


@pytest.mark.parametrize("age", [QUERY_MAX_AGE_SECONDS + 1, -QUERY_MAX_AGE_SECONDS - 1])
def test_a_signed_query_outside_the_time_window_is_refused(age: int) -> None:
    """The hmac never expires by itself: an old callback or launch URL (from a log, a proxy,
    the browser's history) must not verify for ever."""
    with pytest.raises(SignatureInvalid, match="timestamp"):
        verify_oauth_callback(VECTOR_1, "hush", expected_state=VECTOR_1["state"],
                              now=VECTOR_1_AT + age)
    assert verify_signed_query(VECTOR_1, "hush", now=VECTOR_1_AT + 240) == VECTOR_1["shop"]


@pytest.mark.parametrize("age", [10 * 60, 3600, -10 * 60])
def test_a_signed_query_minutes_old_no_longer_verifies(age: int) -> None:
    """Shopify signs a query as it sends the browser on, so a genuine one is seconds old:
    a copied launch or callback URL stops verifying within minutes (it was a day)."""
    with pytest.raises(SignatureInvalid, match="timestamp"):
        verify_signed_query(VECTOR_1, "hush", now=VECTOR_1_AT + age)


@pytest.mark.parametrize("skew", [-240, -60, 0, 90, 240])
def test_a_signed_query_verifies_through_a_few_minutes_of_clock_drift(skew: int) -> None:
    """Our clock a few minutes ahead of Shopify's (or behind it) still lets merchants in."""
    assert verify_signed_query(VECTOR_1, "hush", now=VECTOR_1_AT + skew) == VECTOR_1["shop"]


@pytest.mark.parametrize("timestamp", [None, "", "soon", "1337178173.5"])
def test_a_signed_query_without_a_usable_timestamp_is_refused(timestamp) -> None:
    params = {k: v for k, v in VECTOR_1.items() if k not in ("hmac", "timestamp")}
    if timestamp is not None:
        params["timestamp"] = timestamp
    params["hmac"] = oauth_hmac(params, "hush")
    with pytest.raises(SignatureInvalid, match="timestamp"):
        verify_signed_query(params, "hush", now=VECTOR_1_AT)


@pytest.mark.parametrize(
    "change",
    [{"hmac": "0" * 64}, {"code": "tampered"}, {"state": "other"}, {"hmac": ""}],
)
def test_oauth_callback_rejects_tampering(change: dict) -> None:
    with pytest.raises(SignatureInvalid):
        verify_oauth_callback({**VECTOR_1, **change}, "hush", expected_state=VECTOR_1["state"],
                              now=VECTOR_1_AT)


def test_oauth_callback_rejects_wrong_state_even_with_valid_hmac() -> None:
    with pytest.raises(SignatureInvalid, match="state"):
        verify_oauth_callback(VECTOR_1, "hush", expected_state="a-different-nonce",
                              now=VECTOR_1_AT)


@pytest.mark.parametrize(
    "shop", ["evil.com", "some-shop.myshopify.com.evil.com", "-x.myshopify.com",
             "Some-Shop.myshopify.com", "a.b.myshopify.com", "", None],
)
def test_shop_domain_validation(shop) -> None:
    conn = ShopifyConnector.for_app(API_KEY, SECRET)
    with pytest.raises(InvalidPayload):
        conn.install_url(shop, "nonce", "https://app.example/install/shopify/callback")


def test_install_url_carries_scopes_state_and_redirect() -> None:
    url = ShopifyConnector.for_app(API_KEY, SECRET).install_url(
        "my-shop.myshopify.com", "n0nce", "https://app.example/cb")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.netloc == "my-shop.myshopify.com" and parts.path == "/admin/oauth/authorize"
    assert query == {"client_id": [API_KEY], "state": ["n0nce"],
                     "redirect_uri": ["https://app.example/cb"],
                     "scope": ["read_products,read_customers,read_orders,read_inventory,"
                               "write_discounts,read_publications,write_app_proxy"]}


def _signed_callback(shop: str = "my-shop.myshopify.com", state: str = "n0nce") -> dict:
    params = {"code": "c0de", "shop": shop, "state": state, "timestamp": str(int(time.time()))}
    return {**params, "hmac": oauth_hmac(params, SECRET)}


def test_complete_install_exchanges_code_and_reads_currency() -> None:
    conn = ShopifyConnector.for_app(API_KEY, SECRET, session=make_session(sleep=lambda s: None))
    with responses.RequestsMock() as rsps:
        # an expiring offline token (``expiring=1``), answered as Shopify documents it
        rsps.post("https://my-shop.myshopify.com/admin/oauth/access_token",
                  json={"access_token": "shpat_abc", "scope": "read_products,write_discounts",
                        "expires_in": 3600, "refresh_token": "shprt_abc",
                        "refresh_token_expires_in": 7776000},
                  match=[responses.matchers.json_params_matcher(
                      {"client_id": API_KEY, "client_secret": SECRET, "code": "c0de",
                       "expiring": "1"})])
        rsps.post(f"https://my-shop.myshopify.com/admin/api/{API_VERSION}/graphql.json",
                  json={"data": {"shop": {"currencyCode": "GBP",
                                          "ianaTimezone": "Europe/London"}}})
        before = datetime.now(UTC)
        creds = conn.complete_install(_signed_callback(), expected_state="n0nce")
    assert creds.shop_domain == "my-shop.myshopify.com"
    assert creds.access_token == "shpat_abc" and creds.webhook_secret == SECRET
    expires = datetime.fromisoformat(creds.extra.pop("access_token_expires_at"))
    refresh_expires = datetime.fromisoformat(creds.extra.pop("refresh_token_expires_at"))
    assert timedelta(seconds=3599) <= expires - before <= timedelta(seconds=3660)
    assert timedelta(days=89) < refresh_expires - before <= timedelta(days=90, minutes=1)
    assert creds.extra == {"api_key": API_KEY, "scope": "read_products,write_discounts",
                           "refresh_token": "shprt_abc",
                           "currency": "GBP", "timezone": "Europe/London"}


def test_complete_install_refused_exchange_is_auth_failed() -> None:
    conn = ShopifyConnector.for_app(API_KEY, SECRET, session=make_session(sleep=lambda s: None))
    with responses.RequestsMock() as rsps:
        rsps.post("https://my-shop.myshopify.com/admin/oauth/access_token", status=400,
                  json={"error": "invalid_request"})
        with pytest.raises(AuthFailed):
            conn.complete_install(_signed_callback(), expected_state="n0nce")


def test_complete_install_never_calls_out_on_bad_hmac() -> None:
    conn = ShopifyConnector.for_app(API_KEY, SECRET)
    params = {**_signed_callback(), "code": "swapped"}
    with responses.RequestsMock(), pytest.raises(SignatureInvalid):
        conn.complete_install(params, expected_state="n0nce")


def _session_token(**overrides) -> str:
    now = int(time.time())
    claims = {"iss": "https://my-shop.myshopify.com/admin",
              "dest": "https://my-shop.myshopify.com",
              "aud": API_KEY, "sub": "42", "exp": now + 60, "nbf": now - 1, "iat": now - 1,
              "jti": "f8912129-1af6-4cad-9ca3-76b0f7621087",
              "sid": "aaea182f2732d44c23057c0fea584021"}
    overrides = dict(overrides)
    for name in ("exp", "nbf"):  # relative times are resolved now, not at collection
        if f"{name}_in" in overrides:
            overrides[name] = now + overrides.pop(f"{name}_in")
    claims.update(overrides)
    key = claims.pop("_key", SECRET)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="HS256")


def test_session_token_valid_returns_claims() -> None:
    claims = verify_session_token(_session_token(), API_KEY, SECRET)
    assert claims["dest"] == "https://my-shop.myshopify.com" and claims["sub"] == "42"


def test_session_token_within_leeway_accepted() -> None:
    verify_session_token(_session_token(exp=int(time.time()) - 5), API_KEY, SECRET)


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp_in": -30},
        {"nbf_in": 60},
        {"aud": "another-app"},
        {"_key": OTHER},
        {"dest": "https://evil.example"},
        {"iss": "https://other-shop.myshopify.com/admin"},
        {"sub": None},
    ],
)
def test_session_token_rejections(overrides: dict) -> None:
    with pytest.raises(SignatureInvalid):
        verify_session_token(_session_token(**overrides), API_KEY, SECRET)


PROXY = ("extra=1&extra=2&shop=shop-name.myshopify.com&logged_in_customer_id={cid}"
         "&path_prefix=%2Fapps%2Fawesome_reviews&timestamp=1317327555&signature={sig}")
#: when Shopify signed the documented app proxy vectors (their ``timestamp``)
PROXY_AT = 1317327555
PROXY_LOGGED_IN = PROXY.format(
    cid="1", sig="4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb")


def test_app_proxy_documented_vectors() -> None:
    anonymous = PROXY.format(
        cid="", sig="e072b6d7e6622d85912a5214b860d3100dc1e73d9bc29f43796ac8c9ff8093cb")
    assert verify_app_proxy(PROXY_LOGGED_IN, "hush", now=PROXY_AT)["extra"] == "1,2"
    assert verify_app_proxy(anonymous, "hush", now=PROXY_AT)["logged_in_customer_id"] == ""


@pytest.mark.parametrize("query", [
    PROXY.format(cid="2", sig="4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb"),
    PROXY.format(cid="1", sig=""),
    "shop=shop-name.myshopify.com&timestamp=1317327555",
])
def test_app_proxy_rejections(query: str) -> None:
    with pytest.raises(SignatureInvalid):
        verify_app_proxy(query, "hush", now=PROXY_AT)


@pytest.mark.parametrize("age", [QUERY_MAX_AGE_SECONDS + 1, -QUERY_MAX_AGE_SECONDS - 1, 86400])
def test_an_app_proxy_url_outside_the_time_window_is_refused(age: int) -> None:
    """The signature never expires by itself: a proxied storefront URL copied from a log or
    the browser's history (it names the logged-in customer) must not verify for ever."""
    with pytest.raises(SignatureInvalid, match="timestamp"):
        verify_app_proxy(PROXY_LOGGED_IN, "hush", now=PROXY_AT + age)
    assert verify_app_proxy(PROXY_LOGGED_IN, "hush", now=PROXY_AT + 240)["shop"] \
        == "shop-name.myshopify.com"


def test_an_app_proxy_query_signed_without_a_timestamp_is_refused() -> None:
    query = "shop=shop-name.myshopify.com&logged_in_customer_id=1"
    signature = hmac.new(b"hush", b"logged_in_customer_id=1shop=shop-name.myshopify.com",
                         hashlib.sha256).hexdigest()
    with pytest.raises(SignatureInvalid, match="timestamp"):
        verify_app_proxy(f"{query}&signature={signature}", "hush", now=PROXY_AT)


def test_expired_discount_dates_are_iso() -> None:
    from connectors.shopify.discounts import discount_input

    data = discount_input(DiscountSpec("C", "percent", Decimal("10"),
                                       datetime(2030, 1, 1, tzinfo=UTC)),
                          now=datetime(2029, 12, 31, tzinfo=UTC) - timedelta(hours=1))
    assert data["startsAt"] == "2029-12-30T22:59:00+00:00"  # START_LEEWAY before now
    assert data["endsAt"] == "2030-01-01T00:00:00+00:00"
    with pytest.raises(InvalidPayload):
        discount_input(DiscountSpec("C", "percent", Decimal("150"),
                                    datetime(2030, 1, 1, tzinfo=UTC)))


def test_subscribe_webhooks_tolerates_existing_subscriptions() -> None:
    creds = Credentials(SHOP, access_token="shpat_x", webhook_secret=SECRET)
    conn = ShopifyConnector(creds, session=make_session(sleep=lambda s: None))
    taken = {"data": {"webhookSubscriptionCreate": {"webhookSubscription": None, "userErrors": [
        {"field": ["webhookSubscription", "callbackUrl"],
         "message": "Address for this topic has already been taken"}]}}}
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=taken)
        ids = conn.subscribe_webhooks("https://sk.example/webhooks/shopify/shp_1")
        topics = [json.loads(c.request.body)["variables"]["topic"] for c in rsps.calls]
    assert ids == [""] * len(topics)
    assert len(topics) == len(ShopifyConnector.meta.webhook_topics) - 3


def test_backfill_reads_every_variant_of_a_product_with_more_than_a_page() -> None:
    """The products page asks for 10 variants per product; a product with more (sizes x
    colours easily pass 10; Shopify allows 2,048) was stored with its first 10 only: when
    those were sold out it looked unavailable, its price was the minimum of those 10, and
    the webhook for the same product (REST, every variant) disagreed. The rest of the
    connection is read with the product's own ``variants`` cursor (shopify.dev: connections
    page with ``first``/``after`` and ``pageInfo``)."""
    node = product_node("7")
    node["variants"] = {
        "pageInfo": {"hasNextPage": True, "endCursor": "v10"},
        "nodes": [{"id": f"gid://shopify/ProductVariant/7{i:02d}", "title": f"S{i}",
                   "sku": f"S{i}", "price": "30.00", "availableForSale": False,
                   "inventoryQuantity": 0} for i in range(10)],
    }
    rest = {"data": {"node": {"variants": {
        "pageInfo": {"hasNextPage": False, "endCursor": "v12"},
        "nodes": [{"id": "gid://shopify/ProductVariant/710", "title": "XL", "sku": "XL",
                   "price": "25.00", "availableForSale": True, "inventoryQuantity": 4},
                  {"id": "gid://shopify/ProductVariant/711", "title": "XXL", "sku": "XXL",
                   "price": "35.00", "availableForSale": False, "inventoryQuantity": 0}],
    }}}}
    page = {"data": {"shop": {"currencyCode": "EUR"}, "products": {
        "pageInfo": {"hasNextPage": False, "endCursor": "c1"}, "nodes": [node]}}}
    creds = Credentials("jsmith.myshopify.com", access_token="shpat_x", webhook_secret="s" * 32,
                        extra={"currency": "EUR"})
    with responses.RequestsMock(registry=responses.registries.OrderedRegistry) as rsps:
        rsps.post(GRAPHQL, json=page)
        rsps.post(GRAPHQL, json=rest)
        pages = list(ShopifyConnector(creds, session=make_session(sleep=lambda s: None))
                     .iter_products())
        asked = json.loads(rsps.calls[1].request.body)["variables"]
    assert asked["id"] == "gid://shopify/Product/7" and asked["after"] == "v10"
    product = pages[0].items[0]
    assert len(product.variants) == 12 and product.variants[-1].external_id == "711"
    assert product.available and product.price == Decimal("25.00")


def test_backfill_reads_every_line_of_an_order_with_more_than_a_page() -> None:
    """Orders come 25 line items each; ingestion replaces an order's lines with the
    record's, so a 30-line order lost five purchases (and disagreed with its orders/*
    webhook, which lists every line). The rest is read by the order's lineItems cursor."""
    order = copy.deepcopy(ORDER_NODE)
    line = order["lineItems"]["nodes"][0]
    order["lineItems"] = {"pageInfo": {"hasNextPage": True, "endCursor": "l25"},
                          "nodes": [line] * 25}
    more = {"data": {"node": {"lineItems": {
        "pageInfo": {"hasNextPage": False, "endCursor": "l30"},
        "nodes": [{**line, "product": {"id": f"gid://shopify/Product/{40 + i}"}}
                  for i in range(5)]}}}}
    page = {"data": {"orders": {"pageInfo": {"hasNextPage": False, "endCursor": "x"},
                                "nodes": [order]}}}
    creds = Credentials("jsmith.myshopify.com", access_token="shpat_x", webhook_secret="s" * 32)
    with responses.RequestsMock(registry=responses.registries.OrderedRegistry) as rsps:
        rsps.post(GRAPHQL, json=page)
        rsps.post(GRAPHQL, json=more)
        pages = list(ShopifyConnector(creds, session=make_session(sleep=lambda s: None))
                     .iter_orders())
        got = pages[0].items[0]
        asked = json.loads(rsps.calls[1].request.body)["variables"]
    assert asked == {"id": "gid://shopify/Order/5", "after": "l25"}
    assert len(got.lines) == 30 and got.lines[-1].product_id == "44"


# -- inventory levels ----------------------------------------------------------------------
ITEM_GID = "gid://shopify/InventoryItem/271878346596884015"


def test_an_inventory_level_is_a_placeholder_naming_its_item_for_the_worker_to_fetch() -> None:
    body = fixture("inventory_levels_update.json")
    conn = ShopifyConnector(Credentials(SHOP, access_token="shpat_x", webhook_secret=SECRET))
    with responses.RequestsMock():  # parsing never calls Shopify
        event = conn.parse_webhook(shopify_headers("inventory_levels/update", body), body)
    assert (event.topic, event.needs_fetch) == ("products/upsert", True)
    assert event.record.external_id == ITEM_GID
    assert event.record.updated_at == datetime(2022, 1, 1, tzinfo=UTC)  # 19:00 at -05:00
    bare = json.dumps({k: v for k, v in json.loads(body).items() if k != "updated_at"}).encode()
    event = conn.parse_webhook(shopify_headers("inventory_levels/update", bare), bare)
    assert event.record.updated_at == datetime(2025, 11, 22, 10, 0, 0, 123000, tzinfo=UTC)


def _level_event(conn: ShopifyConnector):
    body = fixture("inventory_levels_update.json")
    return conn.parse_webhook(shopify_headers("inventory_levels/update", body), body)


def test_fetching_an_inventory_level_reads_the_product_its_item_stocks() -> None:
    conn = ShopifyConnector(Credentials(SHOP, access_token="shpat_x", webhook_secret=SECRET,
                                        extra={"currency": "USD"}),
                            session=make_session(sleep=lambda s: None))
    node = product_node("7")  # updatedAt 2025-11-20, older than no level: kept
    for variant in node["variants"]["nodes"]:
        variant.update(availableForSale=False, inventoryQuantity=0)
    answer = {"data": {"shop": {"currencyCode": "EUR"},
                       "inventoryItem": {"variant": {"product": node}}}}
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=answer)
        event = conn.fetch_event_record(_level_event(conn))
        [call] = rsps.calls
    sent = json.loads(call.request.body)
    assert sent["variables"] == {"id": ITEM_GID}
    assert "inventoryItem(id: $id)" in sent["query"]
    assert call.request.headers["X-Shopify-Access-Token"] == "shpat_x"
    product = event.record
    assert (event.topic, event.needs_fetch) == ("products/upsert", False)
    assert (product.external_id, product.available, product.currency) == ("7", False, "EUR")
    assert product.updated_at == datetime(2025, 11, 20, 8, tzinfo=UTC)


def test_a_stock_change_newer_than_the_product_stamps_the_product_with_its_time() -> None:
    """A stock change need not move the product's updatedAt: unstamped, the monotonic upsert
    would take the re-read product for the state it already holds and drop it."""
    conn = ShopifyConnector(Credentials(SHOP, access_token="shpat_x", webhook_secret=SECRET),
                            session=make_session(sleep=lambda s: None))
    body = json.dumps({**json.loads(fixture("inventory_levels_update.json")),
                       "updated_at": "2025-11-21T09:30:00Z"}).encode()
    event = conn.parse_webhook(shopify_headers("inventory_levels/update", body), body)
    answer = {"data": {"shop": {"currencyCode": "USD"},
                       "inventoryItem": {"variant": {"product": product_node("7")}}}}
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=answer)
        product = conn.fetch_event_record(event).record
    assert product.updated_at == datetime(2025, 11, 21, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("item", [None, {"variant": None}])
def test_an_inventory_item_shopify_does_not_know_becomes_an_ignored_topic(item) -> None:
    from connectors.shopify import UNKNOWN_ITEM_TOPIC

    conn = ShopifyConnector(Credentials(SHOP, access_token="shpat_x", webhook_secret=SECRET),
                            session=make_session(sleep=lambda s: None))
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json={"data": {"shop": {"currencyCode": "USD"},
                                          "inventoryItem": item}})
        event = conn.fetch_event_record(_level_event(conn))
    assert (event.topic, event.record, event.needs_fetch) == (UNKNOWN_ITEM_TOPIC, None, False)


def _sold_out_shirt(**overrides) -> dict:
    """The documented products/update body (API 2024-07 on: no ``inventory_management``)
    for a variant sold out with overselling denied."""
    body = json.loads(fixture("products_update.json"))
    body["variants"][0].update(inventory_policy="deny", inventory_quantity=0, **overrides)
    return body


def test_a_product_body_that_cannot_say_its_stock_is_read_back_from_shopify() -> None:
    """Without ``inventory_management`` a sold-out variant read as in stock: every product
    edit made a sold-out product recommendable again (and wiped its storefront URL, which
    the REST body lacks). The worker reads the product back, as the backfill does."""
    conn = ShopifyConnector(Credentials(SHOP, access_token="shpat_x", webhook_secret=SECRET,
                                        extra={"currency": "USD"}),
                            session=make_session(sleep=lambda s: None))
    body = json.dumps(_sold_out_shirt()).encode()
    event = conn.parse_webhook(shopify_headers("products/update", body), body)
    assert (event.topic, event.needs_fetch) == ("products/upsert", True)
    node = {**product_node("9554194432293"), "updatedAt": "2025-04-22T19:30:00Z",
            "onlineStoreUrl": "https://shirts.example/products/t-shirt"}
    for variant in node["variants"]["nodes"]:
        variant.update(availableForSale=False, inventoryQuantity=0)
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json={"data": {"shop": {"currencyCode": "USD"}, "product": node}})
        fetched = conn.fetch_event_record(event)
        sent = json.loads(rsps.calls[0].request.body)
    assert sent["variables"] == {"id": "gid://shopify/Product/9554194432293"}
    product = fetched.record
    assert (fetched.topic, fetched.needs_fetch, product.available) == (
        "products/upsert", False, False)
    assert product.url == "https://shirts.example/products/t-shirt"
    assert product.updated_at == datetime(2025, 4, 22, 19, 30, tzinfo=UTC)


def test_a_product_body_that_says_its_stock_is_used_as_is_and_a_gone_one_keeps_its_body(
) -> None:
    conn = ShopifyConnector(Credentials(SHOP, access_token="shpat_x", webhook_secret=SECRET),
                            session=make_session(sleep=lambda s: None))
    told = json.dumps(_sold_out_shirt(inventory_management="shopify")).encode()
    event = conn.parse_webhook(shopify_headers("products/update", told), told)
    assert not event.needs_fetch and event.record.available is False
    body = json.dumps(_sold_out_shirt()).encode()
    event = conn.parse_webhook(shopify_headers("products/create", body), body)
    with responses.RequestsMock() as rsps:  # deleted since: a products/delete follows
        rsps.post(GRAPHQL, json={"data": {"shop": {"currencyCode": "USD"}, "product": None}})
        kept = conn.fetch_event_record(event)
    assert (kept.topic, kept.record, kept.needs_fetch) == ("products/upsert", event.record,
                                                           False)


def test_the_pinned_api_version_is_supported_and_is_the_apps_webhook_version() -> None:
    """2025-10 lost support on 2026-10-01 and Shopify served its calls as 2026-01, itself
    supported only until 2027-01-01. 2026-10 is supported until at least 2027-10-01
    (shopify.dev/changelog/release-notes/2026-10). Shop webhooks inherit the app's version
    (``shopify.app.toml``), so INSTALLING.md must ask for the version the parsers read."""
    assert API_VERSION == "2026-10"
    installing = Path(__file__).resolve().parents[2] / "connectors" / "INSTALLING.md"
    assert f'api_version = "{API_VERSION}"' in installing.read_text()
    assert "2025-10" not in installing.read_text()
