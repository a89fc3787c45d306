"""Vendure connector: the shared contract plus Vendure specifics, on payloads captured from a
real Vendure 3.7.3 server (tests/fixtures/vendure/SOURCES.md)."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from connectors.base import Credentials
from connectors.errors import (
    AuthFailed,
    ConnectorError,
    InvalidPayload,
    RateLimited,
    TransientError,
    UnknownTopic,
)
from connectors.generic import sign_payload
from connectors.http import make_session
from connectors.records import Cart, Customer, Deletion, DiscountSpec, Order, Product
from connectors.vendure import VendureConnector
from connectors.vendure.discounts import ORDER_CURRENCY, default_tax_rate, promotion_input
from connectors.vendure.paging import Cursor, decode_cursor, encode_cursor
from tests.connectors.contract import ConnectorContract, WebhookSample

FIXTURES = Path(__file__).parents[1] / "fixtures" / "vendure"
API_URL = "https://vendure.example/admin-api"
SECRET = "whsec_vendure_0c5e1f2a9b7d4e3c"
OTHER_SECRET = "whsec_other_shop_9d8c7b6a5f4e"
EXPECTED = {
    "product.created": ("products/upsert", Product),
    "product.updated": ("products/upsert", Product),
    "variant.created": ("products/upsert", Product),
    "stock.movement": ("products/upsert", Product),
    "product.deleted": ("products/delete", Deletion),
    "customer.created": ("customers/upsert", Customer),
    "customer.deleted": ("customers/delete", Deletion),
    "order.placed": ("orders/upsert", Order),
    "app.uninstalled": ("app/uninstalled", None),
}


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def deliveries() -> list[dict[str, str]]:
    return load("webhooks.json")


def delivery(topic: str, predicate=lambda body: True) -> bytes:
    """The first captured delivery body with ``topic`` (exact bytes as sent)."""
    for item in deliveries():
        if item["topic"] == topic and predicate(json.loads(item["body"])):
            return item["body"].encode()
    raise LookupError(topic)


def headers_for(topic: str, body: bytes, *, now: float, secret: str = SECRET) -> dict[str, str]:
    return sign_payload(secret, body, int(now), topic=topic, delivery_id=f"dlv-{topic}")


def gql(operation: str, check=None):
    """responses matcher: the GraphQL operation by name, plus an optional variables check."""

    def match(request) -> tuple[bool, str]:
        payload = json.loads(request.body)
        if not re.search(rf"\b(query|mutation) {operation}\b", payload["query"]):
            return False, f"not {operation}"
        if check is not None and not check(payload["variables"]):
            return False, f"{operation} variables {payload['variables']}"
        return True, ""

    return match


def sent_input(operation: str) -> dict[str, Any]:
    """The ``input`` variable of the last recorded call of ``operation``."""
    for call in reversed(responses.calls):
        if gql(operation)(call.request)[0]:
            return json.loads(call.request.body)["variables"]["input"]
    raise LookupError(operation)


def connector(*, session=None, token: str | None = "tok", **extra: str) -> VendureConnector:
    creds = Credentials(
        "vendure.example",
        access_token=token,
        webhook_secret=SECRET,
        api_url=API_URL,
        extra=dict(extra),
    )
    return VendureConnector(creds, session=session)


def parsed(topic: str, body: bytes):
    return connector().parse_webhook(headers_for(topic, body, now=1e9), body)


class TestVendureConnector(ConnectorContract):
    connector_cls = VendureConnector
    SIGNATURE_HEADERS = ("X-Shopkeeper-Signature",)

    def make_connector(self, session=None, *, wrong_secret=False):
        creds = Credentials(
            "vendure.example",
            access_token=self.ACCESS_TOKEN,
            webhook_secret=OTHER_SECRET if wrong_secret else SECRET,
            api_url=API_URL,
        )
        instance = VendureConnector(creds, session=session)
        instance.page_size = 2  # the contract's pages hold two products
        return instance

    def webhook_samples(self):
        samples = []
        for item in deliveries():
            if item["topic"] == "order.state":
                continue  # cart or order depending on state; tested below
            expected_topic, record_type = EXPECTED[item["topic"]]
            samples.append(
                WebhookSample(item["topic"], item["body"].encode(), expected_topic, record_type)
            )
        return samples

    def signed_delivery(self, topic, body, *, now, wrong_key=False):
        return headers_for(topic, body, now=now, secret=OTHER_SECRET if wrong_key else SECRET)

    def api_endpoint(self):
        return "POST", API_URL

    def auth_refusal(self):
        return {"json": load("admin_forbidden.json")}  # Vendure refuses with HTTP 200

    def _page_item(self, pid: str) -> dict[str, Any]:
        item = copy.deepcopy(load("admin_product.json")["data"]["product"])
        minute = int(pid.removeprefix("p"))
        item["id"] = pid
        item["updatedAt"] = f"2026-01-01T00:{minute:02d}:00.000Z"
        return item

    def add_product_page(self, rsps, index, ids, last, broken=frozenset()):
        # Cursor after page k: watermark = updatedAt of its last item, whose id is excluded.
        expected = {0: None, 1: ("2026-01-01T00:01:59.999", "p2"),
                    2: ("2026-01-01T00:03:59.999", "p4")}

        def check(variables: dict[str, Any]) -> bool:
            options = variables["options"]
            after = options["filter"].get("updatedAt", {}).get("after")
            not_in = options["filter"].get("id", {}).get("notIn")
            if expected[index] is None:
                return after is None and not_in is None and options["skip"] == 0
            want, seen = expected[index]
            return (after is not None and after.startswith(want) and not_in == [seen]
                    and options["skip"] == 0)

        items = [self._page_item(pid) for pid in ids]
        for item in items:
            if item["id"] in broken:
                item["updatedAt"] = "someday"
        rsps.add(
            "POST",
            API_URL,
            json={"data": {"products": {"totalItems": 5, "items": items}}},
            match=[gql("Products", check)],
        )

    @pytest.mark.parametrize(
        ("status", "error"),
        [(401, TransientError), (403, TransientError), (500, TransientError),
         (429, RateLimited)],
    )
    def test_contract_backfill_errors_translated(self, delays, status, error) -> None:
        """As the contract, but a bare 401/403 is no refusal here: Vendure refuses in the
        body (``FORBIDDEN``, with HTTP 200: tests/fixtures/vendure/SOURCES.md), so one
        without it is a proxy's answer, tried again later; with it, it stays a refusal
        (test_vendure_answers.py)."""
        super().test_contract_backfill_errors_translated(delays, status, error)

    # -- webhooks ---------------------------------------------------------------------------
    def test_order_state_in_basket_is_a_cart(self) -> None:
        placed = json.loads(delivery("order.placed"))
        body = json.dumps({**placed, "state": "AddingItems"}).encode()
        event = parsed("order.state", body)
        assert event.topic == "carts/upsert" and isinstance(event.record, Cart)
        assert event.needs_fetch and event.record.external_id == json.loads(body)["id"]

    def test_upserts_are_thin_and_deletions_are_final(self) -> None:
        upsert = parsed("stock.movement", delivery("stock.movement"))
        assert upsert.needs_fetch and upsert.record.title == ""
        deletion = parsed("product.deleted", delivery("product.deleted"))
        assert not deletion.needs_fetch
        assert deletion.record == Deletion(
            "product", json.loads(delivery("product.deleted"))["id"], deletion.occurred_at
        )

    @pytest.mark.parametrize(
        ("topic", "body", "field"),
        [
            ("product.updated", b'{"type":"product"}', "id"),
            ("product.updated", b'{"id":""}', "id"),
            ("order.placed", b'{"id":"7"}', "state"),
            ("order.placed", b'{"id":"7","state":"PaymentSettled"}', "currency"),
        ],
    )
    def test_incomplete_body_rejected(self, topic: str, body: bytes, field: str) -> None:
        with pytest.raises(InvalidPayload) as info:
            parsed(topic, body)
        assert field in info.value.errors

    def test_generic_topic_names_are_not_vendure_topics(self) -> None:
        with pytest.raises(UnknownTopic):
            parsed("products/upsert", b'{"id":"1"}')

    # -- fetch back -------------------------------------------------------------------------
    @responses.activate
    def test_fetch_product_maps_captured_payload(self) -> None:
        raw = load("admin_product.json")
        responses.add("POST", API_URL, json=raw, match=[gql("Product")])
        thin = parsed("stock.movement", delivery("stock.movement"))
        event = connector().fetch_event_record(thin)
        product, variant = event.record, raw["data"]["product"]["variants"][0]
        assert not event.needs_fetch and isinstance(product, Product)
        assert product.title == raw["data"]["product"]["name"]
        assert product.price == Decimal(variant["priceWithTax"]) / 100
        assert product.currency == variant["currencyCode"]
        level = variant["stockLevels"][0]
        assert product.variants[0].inventory_qty == level["stockOnHand"] - level["stockAllocated"]
        # Stock moved after the product row was written, and the event after that: the newest
        # of the row, variant, stock level and event times is the record's time.
        newest = max(datetime.fromisoformat(level["updatedAt"]), thin.occurred_at)
        assert product.updated_at == newest > datetime.fromisoformat(variant["updatedAt"])

    @responses.activate
    def test_fetch_answer_of_an_unexpected_shape_is_invalid_payload(self) -> None:
        raw = load("admin_product.json")
        raw["data"]["product"]["collections"] = ["Kitchen"]  # names, not {"name": ...}
        responses.add("POST", API_URL, json=raw, match=[gql("Product")])
        with pytest.raises(InvalidPayload) as err:
            connector().fetch_event_record(parsed("stock.movement", delivery("stock.movement")))
        assert err.value.message == "unexpected product from Vendure"
        assert err.value.errors["product"][0].startswith("TypeError")

    @responses.activate
    def test_an_internal_server_error_is_transient_not_a_refusal(self) -> None:
        """Vendure answers a resolver's crash as a GraphQL error; read as InvalidPayload it
        withdrew an offer being accepted as refused, and sent a delivery to dead at once."""
        responses.add("POST", API_URL, json={"data": None, "errors": [{
            "message": "error.internal-server-error",
            "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}, match=[gql("Product")])
        with pytest.raises(TransientError, match="internal server error"):
            connector().fetch_event_record(parsed("stock.movement", delivery("stock.movement")))

    @responses.activate
    def test_fetch_of_deleted_product_becomes_deletion(self) -> None:
        responses.add("POST", API_URL, json=load("admin_product_missing.json"))
        event = connector().fetch_event_record(parsed("stock.movement", delivery("stock.movement")))
        assert event.topic == "products/delete" and isinstance(event.record, Deletion)

    @responses.activate
    def test_fetch_order_has_lines_total_and_customer(self) -> None:
        raw = load("admin_order.json")
        responses.add("POST", API_URL, json=raw, match=[gql("Order")])
        event = connector().fetch_event_record(parsed("order.placed", delivery("order.placed")))
        order, src = event.record, raw["data"]["order"]
        assert event.topic == "orders/upsert" and isinstance(order, Order)
        assert order.total == Decimal(src["totalWithTax"]) / 100
        assert order.customer_id == src["customer"]["id"]
        assert [(li.product_id, li.quantity) for li in order.lines] == [
            (line["productVariant"]["product"]["id"], line["quantity"]) for line in src["lines"]
        ]
        assert order.created_at == datetime.fromisoformat(src["orderPlacedAt"])
        # Placing an order does not bump Vendure's updatedAt; the event time does.
        assert order.updated_at >= datetime.fromisoformat(src["updatedAt"])
        assert order.updated_at >= parsed("order.placed", delivery("order.placed")).occurred_at

    @responses.activate
    def test_fetch_active_order_becomes_cart_whatever_the_delivery_said(self) -> None:
        raw = load("admin_order.json")
        raw["data"]["order"].update(active=True, state="AddingItems")
        responses.add("POST", API_URL, json=raw)
        event = connector().fetch_event_record(parsed("order.placed", delivery("order.placed")))
        assert event.topic == "carts/upsert" and isinstance(event.record, Cart)

    @responses.activate
    def test_expired_session_logs_in_again_with_password(self) -> None:
        responses.add("POST", API_URL, json=load("admin_forbidden.json"))
        responses.add(
            "POST",
            API_URL,
            json={"data": {"login": {"id": "1"}}},
            headers={"vendure-auth-token": "fresh"},
            match=[gql("Login")],
        )
        responses.add("POST", API_URL, json=load("admin_customer.json"), match=[gql("Customer")])
        c = connector(token="stale", username="superadmin", password="pw")
        event = c.fetch_event_record(parsed("customer.created", delivery("customer.created")))
        assert event.record.email == load("admin_customer.json")["data"]["customer"]["emailAddress"]
        assert responses.calls[-1].request.headers["Authorization"] == "Bearer fresh"

    @responses.activate
    def test_forbidden_with_fixed_token_is_auth_failed(self) -> None:
        responses.add("POST", API_URL, json=load("admin_forbidden.json"))
        with pytest.raises(AuthFailed):
            connector().fetch_event_record(parsed("customer.created", delivery("customer.created")))

    @responses.activate
    def test_graphql_error_is_invalid_payload_named_by_operation(self) -> None:
        error = {
            "errors": [
                {
                    "message": "Cannot query field",
                    "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
                }
            ],
            "data": None,
        }
        responses.add("POST", API_URL, json=error)
        with pytest.raises(InvalidPayload) as info:
            connector().fetch_event_record(parsed("customer.created", delivery("customer.created")))
        assert info.value.errors == {"Customer": ["Cannot query field"]}

    @pytest.mark.parametrize("body", [
        None, [], "down for maintenance", {"errors": "boom"}, {"errors": ["boom"]},
        {"errors": [None]}, {"errors": [{"extensions": "x"}]}, {"data": []}, {"data": {}},
        {"data": {"products": "x"}}, {"data": {"products": {"items": "x"}}}],
        ids=["null", "list", "text", "errors-text", "error-text", "error-null",
             "extensions-text", "data-list", "data-empty", "listing-text", "items-text"])
    @responses.activate
    def test_a_page_answer_of_an_unexpected_shape_is_a_connector_error(self, body) -> None:
        """A proxy's or a broken server's JSON raised AttributeError from a backfill page,
        not a connector error: the sync was marked failed as a crash and the job raised,
        where a platform fault leaves the cursor for the next run."""
        responses.add("POST", API_URL, json=body)
        with pytest.raises(ConnectorError):
            list(connector().iter_products(cursor=None))

    # -- backfill ---------------------------------------------------------------------------
    @responses.activate
    def test_orders_backfill_filters_placed_orders_since(self) -> None:
        since = datetime(2026, 11, 1, tzinfo=UTC)

        def check(variables: dict[str, Any]) -> bool:
            flt = variables["options"]["filter"]
            return flt["active"] == {"eq": False} and flt["updatedAt"]["after"].startswith(
                "2026-10-31T23:59:59.999"
            )

        responses.add(
            "POST", API_URL, json=load("admin_orders_page.json"), match=[gql("Orders", check)]
        )
        pages = list(connector().iter_orders(since=since))
        assert pages[-1].next_cursor is None
        assert [o.external_id for o in pages[0].items] == [
            o["id"] for o in load("admin_orders_page.json")["data"]["orders"]["items"]
        ]

    def test_cursor_names_the_items_sharing_the_watermark(self) -> None:
        # Seeded catalogues share one updatedAt: the ids read at it are excluded, not skipped.
        shared = "2026-11-23T05:45:53.000Z"
        raw = load("admin_products_page.json")["data"]["products"]["items"]
        calls: list[dict[str, Any]] = []

        def fetch(options: dict[str, Any]) -> dict[str, Any]:
            calls.append(options)
            n = 2 if len(calls) < 3 else 1
            return {
                "items": [
                    {**raw[0], "id": str(len(calls) * 10 + i), "updatedAt": shared}
                    for i in range(n)
                ]
            }

        c = connector()
        c.page_size = 2
        c._lister = lambda *args: fetch  # type: ignore[method-assign]
        cursors = [page.next_cursor for page in c.iter_products()]
        assert [o["skip"] for o in calls] == [0, 0, 0]
        assert [o["filter"].get("id") for o in calls] == [
            None, {"notIn": ["10", "11"]}, {"notIn": ["10", "11", "20", "21"]}]
        at = datetime.fromisoformat(shared)
        assert cursors[:2] == [
            encode_cursor(Cursor(at, ("10", "11"))),
            encode_cursor(Cursor(at, ("10", "11", "20", "21"))),
        ]
        assert cursors[2] is None

    @responses.activate
    def test_backfill_reads_every_product_when_ids_and_edits_disagree(self) -> None:
        # Vendure applies sort keys in its SortParameter's field order (id, createdAt,
        # updatedAt, ...), whatever order the query names them in. Product 2 was edited
        # last: a page ending on it must not hide the older products 3 and 4.
        stamps = {"1": "00:01", "2": "00:05", "3": "00:02", "4": "00:03"}
        catalogue = []
        for pid, hhmm in stamps.items():
            item = copy.deepcopy(load("admin_product.json")["data"]["product"])
            item.update(id=pid, updatedAt=f"2026-01-01T{hhmm}:00.000Z", variants=[])
            catalogue.append(item)

        def vendure(request) -> tuple[int, dict[str, str], str]:
            options = json.loads(request.body)["variables"]["options"]
            after = (options["filter"].get("updatedAt") or {}).get("after")
            rows = [p for p in catalogue
                    if after is None or datetime.fromisoformat(p["updatedAt"])
                    > datetime.fromisoformat(after)]
            for key in reversed([k for k in ("id", "createdAt", "updatedAt")
                                 if k in options["sort"]]):
                rows.sort(key=lambda p: int(p["id"]) if key == "id" else p[key])
            page = rows[options["skip"]:options["skip"] + options["take"]]
            return 200, {}, json.dumps({"data": {"products": {"totalItems": len(rows),
                                                              "items": page}}})

        responses.add_callback("POST", API_URL, callback=vendure)
        c = connector()
        c.page_size = 2
        seen = {p.external_id for page in c.iter_products() for p in page.items}
        assert seen == set(stamps)

    @pytest.mark.parametrize(
        "bad", ["", "{", '{"after": null}', '{"after":"x","skip":1}', '{"after":null,"skip":-1}']
    )
    def test_damaged_cursor_rejected(self, bad: str) -> None:
        with pytest.raises(InvalidPayload):
            decode_cursor(bad)

    # -- discounts --------------------------------------------------------------------------
    def spec(self, **overrides: Any) -> DiscountSpec:
        values = {
            "code": "FIXTURE10",
            "kind": "percent",
            "value": Decimal("10"),
            "expires_at": datetime.now(UTC) + timedelta(hours=2),
        }
        return DiscountSpec(**{**values, **overrides})

    @responses.activate
    def test_create_discount_sends_coupon_limits_and_expiry(self) -> None:
        responses.add(
            "POST",
            API_URL,
            json=load("admin_promotions_by_code_none.json"),
            match=[gql("PromotionsByCode")],
        )
        responses.add("POST", API_URL, json=load("admin_tax_setup.json"), match=[gql("TaxSetup")])
        responses.add(
            "POST", API_URL, json=load("admin_create_promotion.json"), match=[gql("Promotion")]
        )
        spec = self.spec(kind="fixed", value=Decimal("5.25"), min_subtotal=Decimal("30"))
        ref = connector().create_discount(spec)
        created = load("admin_create_promotion.json")["data"]["createPromotion"]
        assert (ref.platform_id, ref.code, ref.expires_at) == (
            created["id"],
            spec.code,
            spec.expires_at,
        )
        sent = sent_input("Promotion")
        assert sent["couponCode"] == "FIXTURE10" and sent["usageLimit"] == 1
        assert sent["perCustomerUsageLimit"] == 1
        assert datetime.fromisoformat(sent["endsAt"]) == spec.expires_at
        # The channel's prices exclude tax (20 % in its default zone): Vendure takes a fixed
        # discount off the net subtotal, so the gross 5.25 goes over as 5.25 / 1.2 = 4.375.
        assert sent["actions"] == [
            {"code": "order_fixed_discount", "arguments": [{"name": "discount", "value": "438"}]}
        ]
        assert sent["conditions"][0]["code"] == "minimum_order_amount"
        assert {"name": "amount", "value": "3000"} in sent["conditions"][0]["arguments"]

    @pytest.mark.parametrize("channel, spec", [
        # a second currency: the order can switch to it with the coupon on
        ({"availableCurrencyCodes": ["USD", "EUR"]}, {"kind": "fixed", "currency": "USD"}),
        ({"availableCurrencyCodes": ["USD", "EUR"]}, {"min_subtotal": Decimal("30")}),
        # a one-currency channel selling another currency than the offer's
        ({}, {"kind": "fixed", "currency": "GBP"}),
        # a channel naming no currency: nothing says where the amount would apply
        ({"defaultCurrencyCode": None, "availableCurrencyCodes": []},
         {"kind": "fixed", "currency": "USD"}),
    ])
    @responses.activate
    def test_amount_refused_where_vendure_could_apply_it_in_another_currency(
        self, channel, spec
    ) -> None:
        setup = load("admin_tax_setup.json")
        setup["data"]["activeChannel"].update(channel)
        responses.add("POST", API_URL, json=load("admin_promotions_by_code_none.json"),
                      match=[gql("PromotionsByCode")])
        responses.add("POST", API_URL, json=setup, match=[gql("TaxSetup")])
        with pytest.raises(InvalidPayload) as info:
            connector().create_discount(self.spec(customer_id="1", **spec))
        assert "currency" in info.value.errors
        assert not any(gql("Group")(c.request)[0] or gql("Promotion")(c.request)[0]
                       for c in responses.calls)  # nothing left behind in Vendure

    @pytest.mark.parametrize("currency, pinned", [("EUR", True), ("USD", True),
                                                  ("EUR", False)])
    @responses.activate
    def test_plugin_condition_limits_amounts_to_the_offers_currency(
        self, currency, pinned
    ) -> None:
        """With the plugin's order-currency condition on the server, a fixed offer in any
        currency the channel sells is made, and applies only to orders in that currency;
        without it (an older plugin) the multi-currency channel still refuses it."""
        setup = load("admin_tax_setup.json")
        setup["data"]["activeChannel"].update({"availableCurrencyCodes": ["USD", "EUR"]})
        codes = ["minimum_order_amount", "customer_group"] + ([ORDER_CURRENCY] if pinned else [])
        setup["data"]["promotionConditions"] = [{"code": c} for c in codes]
        responses.add("POST", API_URL, json=load("admin_promotions_by_code_none.json"),
                      match=[gql("PromotionsByCode")])
        responses.add("POST", API_URL, json=setup, match=[gql("TaxSetup")])
        responses.add("POST", API_URL, json=load("admin_create_promotion.json"),
                      match=[gql("Promotion")])
        spec = self.spec(kind="fixed", value=Decimal("5"), min_subtotal=Decimal("30"),
                         currency=currency.lower())
        if not pinned:
            with pytest.raises(InvalidPayload):
                connector().create_discount(spec)
            return
        connector().create_discount(spec)
        conditions = sent_input("Promotion")["conditions"]
        assert {"code": ORDER_CURRENCY,
                "arguments": [{"name": "currencyCode", "value": currency}]} in conditions
        assert conditions[0]["code"] == "minimum_order_amount"

    @responses.activate
    def test_currency_not_sold_is_refused_even_with_the_plugin_condition(self) -> None:
        setup = load("admin_tax_setup.json")
        setup["data"]["activeChannel"].update({"availableCurrencyCodes": ["USD", "EUR"]})
        setup["data"]["promotionConditions"] = [{"code": ORDER_CURRENCY}]
        responses.add("POST", API_URL, json=load("admin_promotions_by_code_none.json"),
                      match=[gql("PromotionsByCode")])
        responses.add("POST", API_URL, json=setup, match=[gql("TaxSetup")])
        with pytest.raises(InvalidPayload) as info:
            connector().create_discount(self.spec(kind="fixed", currency="GBP"))
        assert "currency" in info.value.errors

    @pytest.mark.parametrize("codes, pinned", [
        (["minimum_order_amount", ORDER_CURRENCY], True),
        (["minimum_order_amount", "customer_group"], False),
    ])
    @responses.activate
    def test_pins_order_currency_only_where_the_plugin_adds_the_condition(
        self, codes, pinned
    ) -> None:
        responses.add("POST", API_URL, match=[gql("PromotionConditions")], json={"data": {
            "promotionConditions": [{"code": c} for c in codes]}})
        assert connector().pins_order_currency() is pinned

    @responses.activate
    def test_sold_currencies_are_the_channels_default_and_available_ones(self) -> None:
        responses.add("POST", API_URL, match=[gql("ChannelCurrencies")], json={"data": {
            "activeChannel": {"defaultCurrencyCode": "USD",
                              "availableCurrencyCodes": ["eur", "USD"]}}})
        assert connector().sold_currencies() == frozenset({"USD", "EUR"})
        assert not connector().amounts_keep_currency

    @responses.activate
    def test_percentage_without_amounts_is_fine_in_a_multi_currency_channel(self) -> None:
        responses.add("POST", API_URL, json=load("admin_promotions_by_code_none.json"),
                      match=[gql("PromotionsByCode")])
        responses.add("POST", API_URL, json=load("admin_create_promotion.json"),
                      match=[gql("Promotion")])
        connector().create_discount(self.spec(currency="EUR"))  # no TaxSetup asked
        assert sent_input("Promotion")["actions"][0]["code"] == "order_percentage_discount"

    def test_tax_rate_only_when_prices_exclude_tax(self) -> None:
        setup = load("admin_tax_setup.json")["data"]
        assert default_tax_rate(setup) == Decimal(20)  # the sample data's standard rate
        setup["activeChannel"]["pricesIncludeTax"] = True
        assert default_tax_rate(setup) == 0

    @responses.activate
    def test_create_discount_is_idempotent_per_code(self) -> None:
        responses.add("POST", API_URL, json=load("admin_promotions_by_code.json"))
        ref = connector().create_discount(self.spec())
        assert (
            ref.platform_id
            == load("admin_promotions_by_code.json")["data"]["promotions"]["items"][0]["id"]
        )
        assert len(responses.calls) == 1  # no second promotion created

    @responses.activate
    def test_create_resent_after_a_timeout_leaves_one_promotion(self) -> None:
        # The first createPromotion reached Vendure but its answer timed out; the session
        # sent it again. Vendure keeps both and would apply both to an order with the code.
        made = load("admin_create_promotion.json")
        twin = {**load("admin_promotions_by_code.json")["data"]["promotions"]["items"][0],
                "id": "7"}
        listed = iter([[], [twin, {**twin, "id": made["data"]["createPromotion"]["id"]}]])
        responses.add_callback(
            "POST", API_URL, match=[gql("PromotionsByCode")],
            callback=lambda request: (200, {}, json.dumps(
                {"data": {"promotions": {"items": next(listed)}}})))
        responses.add("POST", API_URL, body=requests.ReadTimeout(), match=[gql("Promotion")])
        responses.add("POST", API_URL, json=made, match=[gql("Promotion")])
        responses.add("POST", API_URL, json={"data": {"deletePromotion": {
            "result": "DELETED", "message": None}}}, match=[gql("DeletePromotion")])
        ref = connector(session=make_session(sleep=lambda s: None)).create_discount(self.spec())
        assert ref.platform_id == made["data"]["createPromotion"]["id"]
        deleted = [json.loads(c.request.body)["variables"]["id"] for c in responses.calls
                   if gql("DeletePromotion")(c.request)[0]]
        assert deleted == ["7"]

    @responses.activate
    def test_adopting_a_lost_create_drops_its_twins(self) -> None:
        found = load("admin_promotions_by_code.json")["data"]["promotions"]["items"][0]
        responses.add("POST", API_URL, match=[gql("PromotionsByCode")], json={
            "data": {"promotions": {"items": [found, {**found, "id": "9"}]}}})
        responses.add("POST", API_URL, json={"data": {"deletePromotion": {
            "result": "DELETED", "message": None}}}, match=[gql("DeletePromotion")])
        assert connector().create_discount(self.spec()).platform_id == found["id"]
        assert json.loads(responses.calls[-1].request.body)["variables"] == {"id": "9"}

    @responses.activate
    def test_create_discount_for_customer_and_products(self) -> None:
        responses.add(
            "POST",
            API_URL,
            json=load("admin_promotions_by_code_none.json"),
            match=[gql("PromotionsByCode")],
        )
        responses.add(
            "POST", API_URL, json=load("admin_variant_ids.json"), match=[gql("VariantIds")]
        )
        responses.add(
            "POST",
            API_URL,
            json=load("admin_create_customer_group.json"),
            match=[gql("Group", lambda v: v["input"]["customerIds"] == ["1"])],
        )
        responses.add(
            "POST", API_URL, json=load("admin_create_promotion.json"), match=[gql("Promotion")]
        )
        connector().create_discount(self.spec(customer_id="1", product_ids=("55",)))
        sent = sent_input("Promotion")
        variant_ids = [
            v["id"] for v in load("admin_variant_ids.json")["data"]["productVariants"]["items"]
        ]
        group_id = load("admin_create_customer_group.json")["data"]["createCustomerGroup"]["id"]
        assert sent["actions"][0]["code"] == "products_percentage_discount"
        assert {"name": "productVariantIds", "value": json.dumps(variant_ids)} in sent["actions"][
            0
        ]["arguments"]
        assert sent["conditions"] == [
            {
                "code": "customer_group",
                "arguments": [{"name": "customerGroupId", "value": group_id}],
            }
        ]

    @pytest.mark.parametrize(
        "overrides",
        [
            {"value": Decimal("150")},
            {"kind": "fixed", "product_ids": ("55",)},
            {"expires_at": datetime(2020, 1, 1, tzinfo=UTC)},
            {"usage_limit": 0},
            # free_shipping waives any shipping price: no cap can be promised
            {"kind": "free_shipping", "value": Decimal("4.95")},
        ],
    )
    @responses.activate
    def test_create_discount_rejects_before_calling_vendure(self, overrides) -> None:
        with pytest.raises(InvalidPayload):
            connector().create_discount(self.spec(**overrides))
        assert len(responses.calls) == 0

    def test_uncapped_free_shipping_is_the_free_shipping_action(self) -> None:
        assert not VendureConnector.caps_free_shipping
        sent = promotion_input(self.spec(kind="free_shipping", value=Decimal(0)))
        assert sent["actions"] == [{"code": "free_shipping", "arguments": []}]

    @pytest.mark.parametrize("answer", [
        {}, {"createPromotion": None}, {"createPromotion": "errorCode: ISE"},
        {"createPromotion": ["errorCode"]},
    ])
    @responses.activate
    def test_a_promotion_answer_of_an_unexpected_shape_is_transient(self, answer) -> None:
        """Not Vendure's refusal but likelier a proxy's answer: retried (TransientError), as
        Shopify's and Saleor's garbled discount answers are. A string or list holding
        "errorCode" read as a refusal (the offer withdrawn), the others crashed."""
        responses.add("POST", API_URL, json=load("admin_promotions_by_code_none.json"))
        responses.add("POST", API_URL, json={"data": answer})
        with pytest.raises(TransientError):
            connector().create_discount(self.spec())

    @responses.activate
    def test_promotion_error_result_is_invalid_payload(self) -> None:
        responses.add("POST", API_URL, json=load("admin_promotions_by_code_none.json"))
        responses.add(
            "POST",
            API_URL,
            json={
                "data": {
                    "createPromotion": {"errorCode": "MISSING_CONDITIONS_ERROR", "message": "no"}
                }
            },
        )
        with pytest.raises(InvalidPayload) as info:
            connector().create_discount(self.spec())
        assert "MISSING_CONDITIONS_ERROR" in info.value.errors


# -- prices in each sold currency -------------------------------------------------------------
def _priced_mug(*, price: int = 1250, with_tax: int = 1500, rate: float = 20,
                listed: dict[str, int] | None = None) -> dict[str, Any]:
    raw = copy.deepcopy(load("admin_product.json")["data"]["product"])
    variant = raw["variants"][0]
    variant.update(price=price, priceWithTax=with_tax, taxRateApplied={"value": rate},
                   prices=[{"currencyCode": c, "price": p}
                           for c, p in (listed or {"USD": price}).items()])
    return raw


def _mapped(raw: dict[str, Any]) -> Product:
    from connectors.vendure.mapping import MappingOptions, to_product

    return to_product(raw, MappingOptions())


def test_other_currencies_are_priced_with_tax_where_the_channel_excludes_it() -> None:
    """A net list price gets the variant's tax rate, rounded as Vendure rounds priceWithTax:
    1234 * 1.2 = 1480.8 -> 1481; the default currency's comes out as priceWithTax."""
    product = _mapped(_priced_mug(listed={"USD": 1250, "EUR": 1234}))
    assert dict(product.variants[0].prices) == {"USD": Decimal("15.00"),
                                                "EUR": Decimal("14.81")}
    assert dict(product.prices) == dict(product.variants[0].prices)
    assert product.price == Decimal("15.00") and product.currency == "USD"


def test_other_currencies_are_taken_as_listed_where_the_channel_includes_tax() -> None:
    product = _mapped(_priced_mug(listed={"USD": 1500, "EUR": 1300}))
    assert dict(product.variants[0].prices) == {"USD": Decimal("15.00"),
                                                "EUR": Decimal("13.00")}


def test_a_fractional_tax_rate_rounds_half_up_like_math_round() -> None:
    # 1000 * 1.075 = 1075 exactly; 999 * 1.075 = 1073.925 -> 1074; 998 * 1.075 = 1072.85
    product = _mapped(_priced_mug(price=1000, with_tax=1075, rate=7.5,
                                  listed={"USD": 1000, "EUR": 999, "GBP": 998}))
    assert dict(product.variants[0].prices) == {"USD": Decimal("10.75"), "EUR": Decimal(
        "10.74"), "GBP": Decimal("10.73")}


@pytest.mark.parametrize("change", [
    {"listed": {"USD": 1400, "EUR": 1300}},  # own list price gives neither price: not guessed
    {"with_tax": 1510, "listed": {"USD": 1250, "EUR": 1300}},  # tax not as the rate says
    {"listed": {"EUR": 1300}},  # not listed in its own currency
])
def test_prices_that_do_not_give_back_vendures_own_are_left_out(change) -> None:
    product = _mapped(_priced_mug(**change))
    assert product.variants[0].prices == {} and product.prices == {}
    assert product.price == Decimal(product.variants[0].price)  # the default one still counts


def test_a_server_without_per_currency_prices_maps_as_before() -> None:
    raw = _priced_mug()
    del raw["variants"][0]["prices"], raw["variants"][0]["taxRateApplied"]
    assert _mapped(raw).prices == {}


def test_a_products_price_in_a_currency_is_its_cheapest_variant_for_sale() -> None:
    raw = _priced_mug(listed={"USD": 1250, "EUR": 1100})
    dearer, sold_out = copy.deepcopy(raw["variants"][0]), copy.deepcopy(raw["variants"][0])
    dearer.update(id="90", prices=[{"currencyCode": "USD", "price": 1250},
                                   {"currencyCode": "EUR", "price": 1200}])
    sold_out.update(id="91", stockLevel="OUT_OF_STOCK", prices=[
        {"currencyCode": "USD", "price": 1250}, {"currencyCode": "EUR", "price": 500}])
    raw["variants"] = [dearer, raw["variants"][0], sold_out]
    assert dict(_mapped(raw).prices) == {"USD": Decimal("15.00"), "EUR": Decimal("13.20")}


def _ref():
    from connectors.records import DiscountRef

    return DiscountRef("12", "SK-XYZ", datetime(2030, 1, 1, tzinfo=UTC))


@responses.activate
def test_delete_discount_deletes_the_promotion_and_its_group_and_tolerates_one_gone() -> None:
    responses.add("POST", API_URL, match=[gql("DeletePromotion")], json={"data": {
        "deletePromotion": {"result": "DELETED", "message": None}}})
    responses.add("POST", API_URL, match=[gql("DeletePromotion")], json={"errors": [
        {"message": 'No Promotion with the id "12" could be found',
         "extensions": {"code": "ENTITY_NOT_FOUND"}}], "data": None})
    responses.add("POST", API_URL, match=[gql("GroupsByName")], json={"data": {
        "customerGroups": {"items": [{"id": "4", "name": "shopkeeper-offer-SK-XYZ"}]}}})
    responses.add("POST", API_URL, match=[gql("DeleteGroup")], json={"data": {
        "deleteCustomerGroup": {"result": "DELETED", "message": None}}})
    shop = connector()
    shop.delete_discount(_ref())
    shop.delete_discount(_ref())  # deleted already: done
    assert sum(gql("DeleteGroup")(c.request)[0] for c in responses.calls) == 2


@pytest.mark.parametrize("answer", [
    None,
    "deleted",
    {"result": None, "message": None},
    {},
])
@responses.activate
def test_a_promotion_deletion_nobody_confirmed_is_transient(answer) -> None:
    """No ``result`` (null, a proxy's body): not a deletion Vendure confirmed. Read as
    done, the offer forgot a promotion Vendure still weighs on every order change (and
    a string answer raised AttributeError, which crashed the cleanup run)."""
    responses.add("POST", API_URL, match=[gql("DeletePromotion")],
                  json={"data": {"deletePromotion": answer}})
    with pytest.raises(TransientError, match="confirmed no deletePromotion"):
        connector().delete_discount(_ref())
    assert len(responses.calls) == 1  # the group stays with its promotion, for the retry


@responses.activate
def test_a_promotion_vendure_kept_is_a_connector_error() -> None:
    responses.add("POST", API_URL, match=[gql("DeletePromotion")], json={"data": {
        "deletePromotion": {"result": "NOT_DELETED", "message": "in use"}}})
    with pytest.raises(ConnectorError, match="kept the promotion: in use"):
        connector().delete_discount(_ref())


def _promotion_deleted_then_groups(groups: Any) -> None:
    responses.add("POST", API_URL, match=[gql("DeletePromotion")], json={"data": {
        "deletePromotion": {"result": "DELETED", "message": None}}})
    responses.add("POST", API_URL, match=[gql("GroupsByName")], json={"data": groups})


@pytest.mark.parametrize("groups", [
    None,
    {"customerGroups": None},
    {"customerGroups": ["4"]},
    {"customerGroups": {"items": None}},
    {"customerGroups": {"items": {"id": "4"}}},
    {"customerGroups": {"items": ["4"]}},
    {"customerGroups": {"items": [{"name": "shopkeeper-offer-SK-XYZ"}]}},
    {"customerGroups": {"items": [{"id": None}]}},
    {"customerGroups": {"items": [{"id": ["4"]}]}},
])
@responses.activate
def test_a_customer_group_listing_of_an_unexpected_shape_is_transient(groups) -> None:
    """A garbled listing raised KeyError/TypeError/AttributeError (a crash), or (no items)
    was read as no group to delete: the group stayed for good. It is retried instead."""
    _promotion_deleted_then_groups(groups)
    with pytest.raises(TransientError, match=r"customerGroups|customer group without an id"):
        connector().delete_discount(_ref())
    assert not any(gql("DeleteGroup")(c.request)[0] for c in responses.calls)


def test_an_empty_customer_group_listing_is_nothing_to_delete() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add("POST", API_URL, match=[gql("DeletePromotion")], json={"data": {
            "deletePromotion": {"result": "DELETED", "message": None}}})
        rsps.add("POST", API_URL, match=[gql("GroupsByName")], json={"data": {
            "customerGroups": {"items": []}}})
        connector().delete_discount(_ref())
        assert len(rsps.calls) == 2


@pytest.mark.parametrize("answer", [None, "deleted", {"result": None}, {}])
@responses.activate
def test_a_customer_group_deletion_nobody_confirmed_is_transient(answer) -> None:
    _promotion_deleted_then_groups({"customerGroups": {"items": [{"id": "4"}]}})
    responses.add("POST", API_URL, match=[gql("DeleteGroup")],
                  json={"data": {"deleteCustomerGroup": answer}})
    with pytest.raises(TransientError, match="confirmed no deleteCustomerGroup"):
        connector().delete_discount(_ref())


@responses.activate
def test_a_customer_group_vendure_kept_is_a_connector_error() -> None:
    _promotion_deleted_then_groups({"customerGroups": {"items": [{"id": "4"}]}})
    responses.add("POST", API_URL, match=[gql("DeleteGroup")], json={"data": {
        "deleteCustomerGroup": {"result": "NOT_DELETED", "message": "in use"}}})
    with pytest.raises(ConnectorError, match="kept the customer group: in use") as caught:
        connector().delete_discount(_ref())
    assert not isinstance(caught.value, TransientError)


@responses.activate
def test_a_customer_group_deleted_meanwhile_counts_as_deleted() -> None:
    _promotion_deleted_then_groups({"customerGroups": {"items": [{"id": "4"}, {"id": "5"}]}})
    responses.add("POST", API_URL, match=[gql("DeleteGroup")], json={"errors": [
        {"message": 'No CustomerGroup with the id "4" could be found',
         "extensions": {"code": "ENTITY_NOT_FOUND"}}], "data": None})
    responses.add("POST", API_URL, match=[gql("DeleteGroup")], json={"data": {
        "deleteCustomerGroup": {"result": "DELETED", "message": None}}})
    connector().delete_discount(_ref())
    assert sum(gql("DeleteGroup")(c.request)[0] for c in responses.calls) == 2
