"""Saleor: the contract plus JWS/JWKS rotation, payload mapping, vouchers and app manifest."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.base import Credentials
from connectors.errors import InvalidPayload, SignatureInvalid, TransientError
from connectors.manifest import load_manifest
from connectors.records import Cart, Customer, Deletion, DiscountSpec, Order, Product
from connectors.saleor import SaleorConnector
from connectors.saleor.app_manifest import render_app_manifest, webhook_definitions
from connectors.saleor.jwks import JWKSCache
from connectors.saleor.queries import SUBSCRIPTIONS
from tests.connectors.contract import ConnectorContract, WebhookSample

FIXTURES = Path(__file__).parents[1] / "fixtures" / "saleor"
API_URL = "https://demo.saleor.io/graphql/"
JWKS_URL = "https://demo.saleor.io/.well-known/jwks.json"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def jwk(key, kid: str = "1") -> dict:
    data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**data, "kid": kid, "use": "sig", "alg": "RS256"}


def sign(body: bytes, key=KEY, kid: str = "1") -> str:
    """As saleor/core/jwt_manager.py does: RS256, detached, unencoded payload."""
    return jwt.api_jws.encode(body, key, "RS256", headers={"kid": kid, "b64": False,
                                                           "crit": ["b64"]},
                              is_payload_detached=True)


def saleor_headers(event: str, body: bytes, key=KEY, kid: str = "1") -> dict[str, str]:
    return {
        "Saleor-Event": event,
        "Saleor-Domain": "demo.saleor.io",
        "Saleor-Api-Url": API_URL,
        "Saleor-Signature": sign(body, key, kid),
    }


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestSaleorConnector(ConnectorContract):
    connector_cls = SaleorConnector
    SIGNATURE_HEADERS = ("Saleor-Signature",)

    @pytest.fixture(autouse=True)
    def _fresh_cache(self):
        self.clock = Clock()
        self.cache = JWKSCache(clock=self.clock)

    def make_connector(self, session=None, *, wrong_secret=False):
        creds = Credentials(
            "demo.saleor.io", access_token=self.ACCESS_TOKEN, api_url=API_URL,
            extra={"channel": "default-channel", "channel_id": "Q2hhbm5lbDox"},
        )
        conn = SaleorConnector(creds, session=session)
        conn.jwks_cache = self.cache
        return conn

    def webhook_samples(self):
        s = WebhookSample
        return [
            s("product_updated", fixture("product_updated.json"), "products/upsert", Product),
            s("product_variant_updated", fixture("product_variant_updated.json"),
              "products/upsert", Product),
            s("product_deleted", fixture("product_deleted.json"), "products/delete", Deletion),
            s("customer_created", fixture("customer_created.json"), "customers/upsert", Customer),
            s("customer_deleted", fixture("customer_deleted.json"), "customers/delete", Deletion),
            s("order_created", fixture("order_created.json"), "orders/upsert", Order),
            s("order_cancelled", fixture("order_cancelled.json"), "orders/upsert", Order),
            s("checkout_updated", fixture("checkout_updated.json"), "carts/upsert", Cart),
            s("app_deleted", fixture("app_deleted.json"), "app/uninstalled", None),
        ]

    def signed_delivery(self, topic, body, *, now, wrong_key=False):
        return saleor_headers(topic, body, OTHER_KEY if wrong_key else KEY)

    def webhook_http(self, rsps):
        rsps.get(JWKS_URL, json={"keys": [jwk(KEY)]})

    def api_endpoint(self):
        return "POST", API_URL

    def add_product_page(self, rsps, index, ids, last, broken=frozenset()):
        node = json.loads(fixture("product_updated.json"))["product"]

        def match(request):
            after = json.loads(request.body)["variables"].get("after")
            expected = None if index == 0 else f"YXJyYXljb25uZWN0aW9uOj{index}"
            return after == expected, f"after={after!r}"

        rsps.post(API_URL, json={"data": {"products": {
            "pageInfo": {"hasNextPage": not last,
                         "endCursor": None if last else f"YXJyYXljb25uZWN0aW9uOj{index + 1}"},
            "edges": [{"node": {**node, "id": pid,
                                **({"updatedAt": "someday"} if pid in broken else {})}}
                      for pid in ids],
        }}}, match=[match])

    # -- signatures -------------------------------------------------------------------------
    def _verify_with(self, jwks_keys: list[dict], headers, body, conn=None) -> int:
        conn = conn or self.make_connector()
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            rsps.get(JWKS_URL, json={"keys": jwks_keys})
            try:
                conn.verify_webhook(headers, body)
            finally:
                fetches = len(rsps.calls)
        return fetches

    def test_jwks_is_cached_per_instance(self) -> None:
        body = fixture("product_deleted.json")
        conn = self.make_connector()
        assert self._verify_with([jwk(KEY)], saleor_headers("product_deleted", body), body,
                                 conn) == 1
        assert self._verify_with([jwk(KEY)], saleor_headers("product_deleted", body), body,
                                 conn) == 0

    def test_rotation_to_new_kid_refetches_once(self) -> None:
        body = fixture("product_deleted.json")
        self._verify_with([jwk(KEY)], saleor_headers("product_deleted", body), body)
        self.clock.now += 60
        rotated = saleor_headers("product_deleted", body, OTHER_KEY, kid="2")
        assert self._verify_with([jwk(KEY), jwk(OTHER_KEY, "2")], rotated, body) == 1

    def test_rotation_keeping_the_same_kid_is_handled(self) -> None:
        body = fixture("product_deleted.json")
        self._verify_with([jwk(KEY)], saleor_headers("product_deleted", body), body)
        self.clock.now += 60
        rotated = saleor_headers("product_deleted", body, OTHER_KEY, kid="1")
        assert self._verify_with([jwk(OTHER_KEY, "1")], rotated, body) == 1

    def test_unknown_kid_refetch_is_rate_limited(self) -> None:
        body = fixture("product_deleted.json")
        self._verify_with([jwk(KEY)], saleor_headers("product_deleted", body), body)
        forged = saleor_headers("product_deleted", body, OTHER_KEY, kid="nope")
        with pytest.raises(SignatureInvalid):
            self._verify_with([jwk(KEY)], forged, body)
        self.clock.now += 5  # within the cooldown: no second fetch for a forged kid
        with responses.RequestsMock() as rsps, pytest.raises(SignatureInvalid):
            self.make_connector().verify_webhook(forged, body)
        assert len(rsps.calls) == 0

    @pytest.mark.parametrize(
        "signature",
        ["garbage", "a.b.c", "..", "eyJhbGciOiJSUzI1NiJ9..", "!!!..$$$",
         "eyJhbGciOiJub25lIn0..", "e30..c2ln", ""],
    )
    def test_malformed_jws_is_signature_invalid(self, signature: str) -> None:
        body = fixture("product_deleted.json")
        headers = {**saleor_headers("product_deleted", body), "Saleor-Signature": signature}
        with pytest.raises(SignatureInvalid):
            self._verify_with([jwk(KEY)], headers, body)

    def test_hs256_with_public_key_as_secret_is_rejected(self) -> None:
        body = fixture("product_deleted.json")
        pem = KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        forged = jwt.api_jws.encode(body, pem.decode()[:64], "HS256", headers={"kid": "1"},
                                    is_payload_detached=True)
        headers = {**saleor_headers("product_deleted", body), "Saleor-Signature": forged}
        with pytest.raises(SignatureInvalid):
            self._verify_with([jwk(KEY)], headers, body)

    def test_request_api_url_header_is_not_trusted(self) -> None:
        body = fixture("product_deleted.json")
        headers = {**saleor_headers("product_deleted", body, OTHER_KEY),
                   "Saleor-Api-Url": "https://evil.example/graphql/"}
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            rsps.get(JWKS_URL, json={"keys": [jwk(KEY)]})
            rsps.get("https://evil.example/.well-known/jwks.json",
                     json={"keys": [jwk(OTHER_KEY)]})
            with pytest.raises(SignatureInvalid):
                self.make_connector().verify_webhook(headers, body)
            assert [c.request.url for c in rsps.calls] == [JWKS_URL]

    def test_unreachable_jwks_is_transient(self) -> None:
        body = fixture("product_deleted.json")
        from connectors.http import make_session

        conn = self.make_connector(make_session(retries=0))
        with responses.RequestsMock() as rsps:
            rsps.get(JWKS_URL, status=404)
            with pytest.raises(TransientError):
                conn.verify_webhook(saleor_headers("product_deleted", body), body)

    def test_keys_held_are_used_while_the_hourly_refetch_fails(self) -> None:
        """The key set down for longer than Saleor retries (minutes) lost every delivery
        once the hour's keys aged out; they are used for up to a day while refetches fail,
        with one refetch per cooldown rather than one per delivery."""
        from connectors.http import make_session
        from connectors.saleor import jwks

        body = fixture("product_deleted.json")
        headers = saleor_headers("product_deleted", body)
        conn = self.make_connector(make_session(retries=0))
        conn._jwks_session = make_session(retries=0)
        assert self._verify_with([jwk(KEY)], headers, body, conn) == 1
        self.clock.now += jwks.MAX_AGE + 1
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            rsps.get(JWKS_URL, status=503)
            conn.verify_webhook(headers, body)  # the held keys, after one failed refetch
            conn.verify_webhook(headers, body)  # within the cooldown: no second fetch
            assert len(rsps.calls) == 1
            self.clock.now += jwks.STALE_IF_ERROR
            with pytest.raises(TransientError):  # a day on, stale keys are not trusted
                conn.verify_webhook(headers, body)
        # a forged signature still fails against the held keys
        self.clock.now -= jwks.STALE_IF_ERROR
        forged = saleor_headers("product_deleted", body, OTHER_KEY)
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            rsps.get(JWKS_URL, status=503)
            with pytest.raises((SignatureInvalid, TransientError)):
                conn.verify_webhook(forged, body)

    @pytest.mark.parametrize("status", [401, 403, 429])
    def test_a_refused_or_throttled_jwks_fetch_is_transient(self, status: int) -> None:
        """The retrying session raises AuthFailed (401/403) and RateLimited (429), which
        neither webhook receipt nor Dashboard sign-in catch: a WAF or rate limit in front
        of Saleor's public key set answered 500 with a logged crash instead of 503."""
        body = fixture("product_deleted.json")
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            rsps.get(JWKS_URL, status=status, headers={"Retry-After": "0"})
            with pytest.raises(TransientError):
                self.make_connector().verify_webhook(saleor_headers("product_deleted", body),
                                                     body)

    def test_jwks_fetch_does_not_follow_redirects(self) -> None:
        body = fixture("product_deleted.json")
        evil = "https://evil.example/.well-known/jwks.json"
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            rsps.get(JWKS_URL, status=302, headers={"Location": evil})
            rsps.get(evil, json={"keys": [jwk(KEY)]})
            with pytest.raises(TransientError):
                self.make_connector().verify_webhook(saleor_headers("product_deleted", body),
                                                     body)
            assert [c.request.url for c in rsps.calls] == [JWKS_URL]

    def test_jwks_fetch_is_bounded_even_beside_a_sync_session(self) -> None:
        """Webhook receipt fetches keys with short timeouts and a cap, not the sync session."""
        from connectors.guarded_http import GuardedSession
        from connectors.http import make_session

        body = fixture("product_deleted.json")
        conn = self.make_connector(make_session())  # the connector's long-running session
        with responses.RequestsMock() as rsps:
            rsps.get(JWKS_URL, json={"keys": [jwk(KEY)]})
            conn.verify_webhook(saleor_headers("product_deleted", body), body)
            sent = rsps.calls[0].request.req_kwargs
        assert sent["timeout"] == (2.0, 5.0) and sent["stream"] is True
        jwks_http = conn.jwks_session()
        assert isinstance(jwks_http, GuardedSession) and jwks_http.retries == 1
        assert jwks_http.deadline == 10.0 and jwks_http.max_body == 256 * 1024
        assert conn.session.retries == 5  # syncs keep theirs

    def test_oversized_jwks_is_transient(self) -> None:
        body = fixture("product_deleted.json")
        with responses.RequestsMock() as rsps:
            padded = json.dumps({"keys": [jwk(KEY)]}) + " " * (256 * 1024)  # valid, but huge
            rsps.get(JWKS_URL, body=padded, content_type="application/json")
            with pytest.raises(TransientError):
                self.make_connector().verify_webhook(saleor_headers("product_deleted", body),
                                                     body)

    # -- parsing ----------------------------------------------------------------------------
    def test_product_mapping_uses_configured_channel(self) -> None:
        body = fixture("product_updated.json")
        product = self.make_connector().parse_webhook(
            saleor_headers("product_updated", body), body).record
        assert product.title == "Apple Juice" and product.currency == "USD"
        assert product.price == Decimal("3.0")
        assert product.description.startswith("Fell straight from the tree")
        assert product.categories == ("Juices", "Summer Picks") and product.tags == ("Juice",)
        assert [(v.sku, v.inventory_qty, v.available) for v in product.variants] == [
            ("43226647", 54, True), ("80884671", 0, False)]
        assert product.updated_at == datetime(2025, 11, 20, 10, 15, 30, 123456, tzinfo=UTC)

    def test_order_mapping(self) -> None:
        body = fixture("order_created.json")
        order = self.make_connector().parse_webhook(
            saleor_headers("ORDER_CREATED", body), body).record
        assert order.discount_codes == ("SK-7QX2",) and order.customer_id == "VXNlcjoyMg=="
        assert order.total == Decimal("11.0") and not order.cancelled
        assert [(li.quantity, li.price) for li in order.lines] == [
            (2, Decimal("3.0")), (1, Decimal("5.0"))]  # the deleted variant's line is skipped
        body = fixture("order_cancelled.json")
        cancelled = self.make_connector().parse_webhook(
            saleor_headers("order_cancelled", body), body).record
        assert cancelled.cancelled and cancelled.customer_id is None

    def test_null_object_with_errors_is_invalid_payload(self) -> None:
        body = fixture("order_created_permission_error.json")
        with pytest.raises(InvalidPayload) as info:
            self.make_connector().parse_webhook(saleor_headers("order_created", body), body)
        assert "MANAGE_ORDERS" in info.value.errors["order"][0]

    def test_delivery_id_dedupes_retries_not_changes(self) -> None:
        conn = self.make_connector()
        a, b = fixture("order_created.json"), fixture("order_cancelled.json")
        first = conn.parse_webhook(saleor_headers("order_created", a), a).delivery_id
        retry = conn.parse_webhook(saleor_headers("order_created", a), a).delivery_id
        other = conn.parse_webhook(saleor_headers("order_updated", a), a).delivery_id
        change = conn.parse_webhook(saleor_headers("order_created", b), b).delivery_id
        assert first == retry and len({first, other, change}) == 3

    # -- backfill and discounts -------------------------------------------------------------
    def test_orders_filter_and_bearer_token(self, delays) -> None:
        node = json.loads(fixture("order_created.json"))["order"]
        page = {"data": {"orders": {"pageInfo": {"hasNextPage": False, "endCursor": "x"},
                                    "edges": [{"node": node}]}}}
        with responses.RequestsMock() as rsps:
            rsps.post(API_URL, json=page)
            pages = list(self.make_connector(self._session(delays)).iter_orders(
                since=datetime(2025, 11, 1, tzinfo=UTC)))
            request = rsps.calls[0].request
        sent = json.loads(request.body)["variables"]
        assert request.headers["Authorization"] == f"Bearer {self.ACCESS_TOKEN}"
        assert sent["first"] == 100
        assert sent["filter"] == {"updatedAt": {"gte": "2025-11-01T00:00:00+00:00"},
                                  "channels": ["Q2hhbm5lbDox"]}  # the shop's channel only
        assert pages[0].items[0].external_id == node["id"]

    def test_permission_denied_is_auth_failed(self, delays) -> None:
        from connectors.errors import AuthFailed

        denied = {"errors": [{"message": "You need one of the following permissions",
                              "extensions": {"exception": {"code": "PermissionDenied"}}}]}
        with responses.RequestsMock() as rsps:
            rsps.post(API_URL, json=denied)
            with pytest.raises(AuthFailed):
                next(self.make_connector(self._session(delays)).iter_customers())

    def test_create_discount_creates_voucher_then_channel_value(self, delays) -> None:
        spec = DiscountSpec("SK-XYZ", "percent", Decimal("10"),
                            datetime(2025, 12, 1, tzinfo=UTC), product_ids=("UHJvZHVjdDo3Mg==",),
                            min_subtotal=Decimal("20"))
        with responses.RequestsMock(registry=responses.registries.OrderedRegistry) as rsps:
            rsps.post(API_URL, json={"data": {"voucherCreate": {
                "voucher": {"id": "Vm91Y2hlcjox"}, "errors": []}}})
            rsps.post(API_URL, json={"data": {"voucherChannelListingUpdate": {
                "voucher": {"id": "Vm91Y2hlcjox"}, "errors": []}}})
            ref = self.make_connector(self._session(delays)).create_discount(spec)
            created, listed = (json.loads(c.request.body) for c in rsps.calls)
        assert ref.platform_id == "Vm91Y2hlcjox" and ref.code == "SK-XYZ"
        voucher = created["variables"]["input"]
        assert voucher["addCodes"] == ["SK-XYZ"] and voucher["type"] == "SPECIFIC_PRODUCT"
        assert voucher["discountValueType"] == "PERCENTAGE" and voucher["usageLimit"] == 1
        assert listed["variables"] == {"id": "Vm91Y2hlcjox", "input": {"addChannels": [
            {"channelId": "Q2hhbm5lbDox", "discountValue": "10", "minAmountSpent": "20"}]}}

    def test_voucher_starts_a_minute_early_and_ends_when_the_offer_does(self, delays) -> None:
        """``startDate`` was our ``now``: Saleor applies a voucher only once its start is
        at or before Saleor's clock, so a code handed out at once was refused as not yet
        active while that clock lagged ours. The end and the use limit are the offer's."""
        spec = DiscountSpec("SK-XYZ", "percent", Decimal("10"), datetime(2030, 1, 1, tzinfo=UTC))
        before = datetime.now(UTC)
        with responses.RequestsMock(registry=responses.registries.OrderedRegistry) as rsps:
            rsps.post(API_URL, json={"data": {"voucherCreate": {
                "voucher": {"id": "Vm91Y2hlcjox"}, "errors": []}}})
            rsps.post(API_URL, json={"data": {"voucherChannelListingUpdate": {
                "voucher": {"id": "Vm91Y2hlcjox"}, "errors": []}}})
            self.make_connector(self._session(delays)).create_discount(spec)
            voucher = json.loads(rsps.calls[0].request.body)["variables"]["input"]
        starts = datetime.fromisoformat(voucher["startDate"])
        assert before - starts >= timedelta(seconds=59)  # not "now": Saleor may lag behind
        assert before - starts <= timedelta(minutes=2)  # nor long before the offer
        assert voucher["endDate"] == "2030-01-01T00:00:00+00:00" and voucher["usageLimit"] == 1

    def test_create_discount_adopts_the_voucher_an_unanswered_attempt_made(self, delays
                                                                          ) -> None:
        """Our first voucherCreate committed but its answer was lost: the retried call
        finds the code taken, adopts that voucher and still sets its channel value."""
        spec = DiscountSpec("SK-XYZ", "fixed", Decimal("5"), datetime(2025, 12, 1, tzinfo=UTC))
        found = {"data": {"vouchers": {"edges": [
            {"node": {"id": "Vm91Y2hlcjoy", "codes": {"edges": [{"node": {"code": "SK-XYZ-2"}}]}}},
            {"node": {"id": "Vm91Y2hlcjox", "codes": {"edges": [{"node": {"code": "SK-XYZ"}}]}}},
        ]}}}
        with responses.RequestsMock(registry=responses.registries.OrderedRegistry) as rsps:
            rsps.post(API_URL, json={"data": {"voucherCreate": {"voucher": None, "errors": [
                {"field": "addCodes", "code": "ALREADY_EXISTS", "message": "Code exists."}]}}})
            rsps.post(API_URL, json=found)
            rsps.post(API_URL, json={"data": {"voucherChannelListingUpdate": {
                "voucher": {"id": "Vm91Y2hlcjox"}, "errors": []}}})
            ref = self.make_connector(self._session(delays)).create_discount(spec)
            sent = [json.loads(c.request.body) for c in rsps.calls]
        assert ref.platform_id == "Vm91Y2hlcjox"
        assert "vouchers(" in sent[1]["query"] and sent[1]["variables"] == {"code": "SK-XYZ"}
        assert sent[2]["variables"]["id"] == "Vm91Y2hlcjox"

    def test_find_discount_matches_the_exact_code(self, delays) -> None:
        near = {"data": {"vouchers": {"edges": [
            {"node": {"id": "Vm91Y2hlcjoy", "codes": {"edges": [{"node": {"code": "SK-XYZ-2"}}]}}},
        ]}}}
        with responses.RequestsMock() as rsps:
            rsps.post(API_URL, json=near)
            assert self.make_connector(self._session(delays)).find_discount("SK-XYZ") is None

    def test_delete_discount_deletes_the_voucher_and_tolerates_one_already_gone(self, delays
                                                                                ) -> None:
        from connectors.errors import InvalidPayload
        from connectors.records import DiscountRef

        ref = DiscountRef("Vm91Y2hlcjox", "SK-XYZ", datetime(2025, 12, 1, tzinfo=UTC))
        with responses.RequestsMock(registry=responses.registries.OrderedRegistry) as rsps:
            rsps.post(API_URL, json={"data": {"voucherDelete": {
                "voucher": {"id": "Vm91Y2hlcjox"}, "errors": []}}})
            rsps.post(API_URL, json={"data": {"voucherDelete": {"voucher": None, "errors": [
                {"field": "id", "code": "NOT_FOUND",
                 "message": "Couldn't resolve id: Vm91Y2hlcjox."}]}}})
            rsps.post(API_URL, json={"data": {"voucherDelete": {"voucher": None, "errors": [
                {"field": "id", "code": "GRAPHQL_ERROR", "message": "Database busy"}]}}})
            conn = self.make_connector(self._session(delays))
            conn.delete_discount(ref)
            conn.delete_discount(ref)
            with pytest.raises(InvalidPayload):
                conn.delete_discount(ref)
            sent = json.loads(rsps.calls[0].request.body)
        assert "voucherDelete" in sent["query"] and sent["variables"] == {"id": "Vm91Y2hlcjox"}

    def test_product_scoped_fixed_voucher_applies_once_not_per_unit(self) -> None:
        """Saleor takes a FIXED SPECIFIC_PRODUCT value off *each unit* of the product unless
        ``applyOncePerOrder`` is set: three units of a 15.00 offer would save 45.00."""
        from connectors.saleor.discounts import voucher_input

        scoped = DiscountSpec("SK-XYZ", "fixed", Decimal("15"), datetime(2025, 12, 1, tzinfo=UTC),
                              product_ids=("UHJvZHVjdDo3Mg==",))
        assert voucher_input(scoped)["applyOncePerOrder"] is True
        whole = DiscountSpec("SK-XYZ", "fixed", Decimal("15"), datetime(2025, 12, 1, tzinfo=UTC))
        assert voucher_input(whole).get("applyOncePerOrder", False) is False  # not cheapest item

    def test_free_shipping_voucher_saves_at_most_the_budgeted_shipping_cost(self) -> None:
        from connectors.saleor.discounts import channel_input, voucher_input

        spec = DiscountSpec("SK-XYZ", "free_shipping", Decimal("4.95"),
                            datetime(2025, 12, 1, tzinfo=UTC))
        assert voucher_input(spec)["type"] == "SHIPPING"
        assert voucher_input(spec)["discountValueType"] == "FIXED"
        assert channel_input(spec, "Q2hhbm5lbDox")["addChannels"][0]["discountValue"] == "4.95"
        uncapped = DiscountSpec("SK-XYZ", "free_shipping", Decimal("0"),
                                datetime(2025, 12, 1, tzinfo=UTC))
        assert voucher_input(uncapped)["discountValueType"] == "PERCENTAGE"
        assert channel_input(uncapped, "c")["addChannels"][0]["discountValue"] == "100"

    def test_voucher_errors_become_field_errors(self, delays) -> None:
        spec = DiscountSpec("SK-XYZ", "fixed", Decimal("5"), datetime(2025, 12, 1, tzinfo=UTC))
        with responses.RequestsMock() as rsps:
            rsps.post(API_URL, json={"data": {"voucherCreate": {"voucher": None, "errors": [
                {"field": "endDate", "code": "INVALID", "message": "Ends before it starts."}]}}})
            with pytest.raises(InvalidPayload) as info:
                self.make_connector(self._session(delays)).create_discount(spec)
        assert info.value.errors == {"endDate": ["Ends before it starts."]}

    def test_subscribe_webhooks_sends_manifest_definitions(self, delays) -> None:
        definitions = webhook_definitions(load_manifest(), "https://sk.example/webhooks/saleor/s1")
        with responses.RequestsMock() as rsps:
            rsps.post(API_URL, json={"data": {"webhookCreate": {"webhook": {"id": "V2ViaG9vazox"},
                                                                "errors": []}}})
            ids = self.make_connector(self._session(delays)).subscribe_webhooks(definitions)
            sent = [json.loads(c.request.body)["variables"]["input"] for c in rsps.calls]
        assert ids == ["V2ViaG9vazox"] * len(definitions)
        assert [d["name"] for d in sent] == list(SUBSCRIPTIONS)


    @pytest.mark.parametrize("answer", [
        {"webhookCreate": None}, {},
        # no errors and no webhook: no more a webhook made than a null answer is (it
        # returned an empty id and the install was stored without its events)
        {"webhookCreate": {"webhook": None, "errors": []}},
        {"webhookCreate": {"errors": []}},
        {"webhookCreate": {"webhook": {"id": None}, "errors": []}},
        {"webhookCreate": {"webhook": "V2ViaG9vazox", "errors": []}},
    ])
    def test_a_webhook_create_with_no_answer_is_transient(self, delays, answer) -> None:
        """Not a webhook made: the install says so and is tried again, not stored with
        webhooks Saleor may not have."""
        definitions = webhook_definitions(load_manifest(), "https://sk.example/webhooks/saleor/s1")
        with responses.RequestsMock() as rsps:
            rsps.post(API_URL, json={"data": answer})
            with pytest.raises(TransientError, match="webhookCreate answer"):
                self.make_connector(self._session(delays)).subscribe_webhooks(definitions)

    @pytest.mark.parametrize("answer", [
        {"voucherDelete": None}, {},
        # no errors and no voucher: Saleor names the voucher it deleted, so this is no
        # confirmation (it counted as deleted and the offer forgot the voucher)
        {"voucherDelete": {"voucher": None, "errors": []}},
        {"voucherDelete": {}},
        {"voucherDelete": {"voucher": {"id": ["Vm91Y2hlcjox"]}, "errors": []}},
    ])
    def test_a_voucher_delete_with_no_answer_is_transient(self, delays, answer) -> None:
        """Not a voucher deleted: the offer keeps its reference and the delete is retried."""
        from connectors.records import DiscountRef

        ref = DiscountRef("Vm91Y2hlcjox", "SK-XYZ", datetime(2025, 12, 1, tzinfo=UTC))
        with responses.RequestsMock() as rsps:
            rsps.post(API_URL, json={"data": answer})
            with pytest.raises(TransientError, match="voucherDelete answer"):
                self.make_connector(self._session(delays)).delete_discount(ref)


# -- app manifest ---------------------------------------------------------------------------
def test_app_manifest_renders_from_manifest_yaml() -> None:
    manifest = load_manifest()
    rendered = render_app_manifest(manifest, "https://sk.example/", shop_id="shp_abc")
    assert rendered["name"] == manifest["app"]["name"] == "Shopkeeper"
    assert rendered["tokenTargetUrl"] == "https://sk.example/api/register"
    assert rendered["appUrl"] == "https://sk.example/admin/"
    assert set(rendered["permissions"]) == set(SaleorConnector.meta.scopes)
    assert rendered["extensions"][0]["url"] == "https://sk.example/admin/"
    hooks = rendered["webhooks"]
    assert {h["targetUrl"] for h in hooks} == {"https://sk.example/webhooks/saleor/shp_abc"}
    for hook in hooks:
        for event in hook["asyncEvents"]:
            type_name = "".join(part.title() for part in event.split("_"))
            assert f"... on {type_name} " in hook["query"], (hook["name"], event)
    events = {e.lower() for h in hooks for e in h["asyncEvents"]}
    assert events == set(SaleorConnector.meta.webhook_topics)


def test_app_manifest_without_shop_lists_no_webhooks() -> None:
    rendered = render_app_manifest(load_manifest(), "https://sk.example")
    assert rendered["webhooks"] == []
    assert rendered["dataPrivacyUrl"] == "https://sk.example/privacy"


def test_shop_without_api_url_rejects_webhooks() -> None:
    body = fixture("product_deleted.json")
    conn = SaleorConnector(Credentials("demo.saleor.io", access_token="t"))
    with responses.RequestsMock(), pytest.raises(SignatureInvalid):
        conn.verify_webhook(saleor_headers("product_deleted", body), body)


def _dashboard_token(key=KEY, **claims) -> str:
    import time as _time

    base = {"iat": int(_time.time()), "exp": int(_time.time()) + 300, "app": "QXBwOjE0",
            "user_permissions": ["MANAGE_PRODUCTS", "MANAGE_ORDERS"], "type": "thirdparty",
            "email": "staff@example.com"}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, key, "RS256",
                      headers={"kid": "1"})


def _dashboard_connector() -> SaleorConnector:
    conn = SaleorConnector(Credentials("demo.saleor.io", access_token="t", api_url=API_URL,
                                       extra={"app_id": "QXBwOjE0"}))
    conn.jwks_cache = JWKSCache()
    return conn


def test_dashboard_token_valid() -> None:
    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, json={"keys": [jwk(KEY)]})
        claims = _dashboard_connector().verify_dashboard_token(_dashboard_token())
    assert claims["app"] == "QXBwOjE0"


@pytest.mark.parametrize(
    ("key", "claims"),
    [
        (OTHER_KEY, {}),
        (KEY, {"app": "QXBwOjk5"}),
        (KEY, {"exp": 1_000_000}),
        (KEY, {"exp": None}),
        (KEY, {"user_permissions": ["MANAGE_ORDERS"]}),
    ],
)
def test_dashboard_token_rejections(key, claims: dict) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(JWKS_URL, json={"keys": [jwk(KEY)]})
        with pytest.raises(SignatureInvalid):
            _dashboard_connector().verify_dashboard_token(_dashboard_token(key, **claims))


def test_dashboard_token_keys_are_not_fetched_through_redirects() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(JWKS_URL, status=301, headers={"Location": "http://10.0.0.1/jwks.json"})
        rsps.get("http://10.0.0.1/jwks.json", json={"keys": [jwk(KEY)]})
        with pytest.raises(TransientError):
            _dashboard_connector().verify_dashboard_token(_dashboard_token())
        assert [c.request.url for c in rsps.calls] == [JWKS_URL]
        assert rsps.calls[0].request.req_kwargs["timeout"] == (2.0, 5.0)


def test_app_info_asks_for_the_manifest_identifier() -> None:
    conn = SaleorConnector(Credentials("demo.saleor.io", access_token="t", api_url=API_URL))
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json={"data": {"app": {"id": "QXBwOjE0",
                                                  "identifier": "org.shopkeeper.personalization"}}})
        assert conn.app_info()["app"]["identifier"] == "org.shopkeeper.personalization"
        assert "identifier" in json.loads(rsps.calls[0].request.body)["query"]


@pytest.mark.parametrize("status", [200, 400])
def test_a_field_the_schema_lacks_is_reported_as_such(status: int) -> None:
    from connectors.saleor.client import SchemaLacksField

    conn = SaleorConnector(Credentials("demo.saleor.io", access_token="t", api_url=API_URL))
    old = {"errors": [{"message": 'Cannot query field "identifier" on type "App". '
                                  'Did you mean "id"?'}]}
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=old, status=status)
        with pytest.raises(SchemaLacksField) as caught:
            conn.app_info()
    assert caught.value.fields == {("App", "identifier")}


@pytest.mark.parametrize("token", [None, "", "abc", "a.b", "e30.e30.c2ln"])
def test_dashboard_token_malformed(token) -> None:
    with responses.RequestsMock(), pytest.raises(SignatureInvalid):
        _dashboard_connector().verify_dashboard_token(token)


# ----------------------------------------------------------------- relabelled deliveries
@pytest.mark.parametrize(("event", "body"), [
    # another app's signed product body re-sent with an unsigned "app_deleted" header
    ("app_deleted", fixture("product_updated.json")),
    ("customer_deleted", fixture("customer_created.json")),
    ("product_deleted", fixture("product_updated.json")),
    # a deletion body of the right shape but without its type (an older subscription)
    ("product_deleted", b'{"product": {"id": "UHJvZHVjdDo3Mg=="}}'),
])
def test_a_relabelled_body_cannot_delete_or_uninstall(event: str, body: bytes) -> None:
    """The instance signs every app's deliveries with one key and leaves Saleor-Event
    unsigned: a deletion or uninstall must be one in its signed body."""
    with pytest.raises(InvalidPayload, match="is not a"):
        _dashboard_connector().parse_webhook(saleor_headers(event, body), body)


def test_an_uninstall_of_another_app_does_not_uninstall_this_one() -> None:
    body = json.dumps({"__typename": "AppDeleted", "app": {"id": "QXBwOjk5"}}).encode()
    with pytest.raises(InvalidPayload, match="names another app"):
        _dashboard_connector().parse_webhook(saleor_headers("app_deleted", body), body)
    ours = fixture("app_deleted.json")
    event = _dashboard_connector().parse_webhook(saleor_headers("app_deleted", ours), ours)
    assert event.topic == "app/uninstalled"


def test_destructive_subscriptions_ask_for_the_event_type() -> None:
    for name in ("shopkeeper-product-deleted", "shopkeeper-customer-deleted",
                 "shopkeeper-app-deleted"):
        assert "__typename" in SUBSCRIPTIONS[name]


def test_upsert_events_are_stamped_no_older_than_their_issued_at() -> None:
    """A price or stock change leaves Product.updatedAt as it was; the event's issuedAt
    (docs.saleor.io Event interface: "Time of the event") is the record's floor."""
    data = json.loads(fixture("product_variant_updated.json"))
    data["issuedAt"] = "2025-11-21T08:00:00+00:00"
    body = json.dumps(data).encode()
    creds = Credentials("demo.saleor.io", access_token="t", api_url=API_URL,
                        extra={"channel": "default-channel"})
    event = SaleorConnector(creds).parse_webhook(saleor_headers("product_variant_updated", body),
                                                 body)
    assert event.record.updated_at == datetime(2025, 11, 21, 8, tzinfo=UTC)
    assert event.occurred_at == datetime(2025, 11, 21, 8, tzinfo=UTC)
    older = {**data, "issuedAt": "2025-11-01T00:00:00+00:00"}
    body = json.dumps(older).encode()
    event = SaleorConnector(creds).parse_webhook(saleor_headers("product_variant_updated", body),
                                                 body)
    assert event.record.updated_at == datetime(2025, 11, 20, 10, 15, 30, 123456, tzinfo=UTC)
    for name in ("shopkeeper-products", "shopkeeper-customers", "shopkeeper-orders",
                 "shopkeeper-checkouts"):
        cases = [line for line in SUBSCRIPTIONS[name].splitlines() if "... on " in line]
        assert cases and all("issuedAt" in line for line in cases), name


@pytest.mark.parametrize(("listing", "available"), [
    ({"isPublished": True, "isAvailableForPurchase": True}, True),
    ({"isPublished": False, "isAvailableForPurchase": True}, False),
    ({"isPublished": True, "isAvailableForPurchase": False}, False),
    (None, False),  # the product is not listed in our channel at all
])
def test_a_product_hidden_or_unbuyable_in_our_channel_is_unavailable(listing, available) -> None:
    """Saleor publishes per channel: ProductChannelListing.isPublished "Indicates if the
    product is published in the channel"; with isAvailableForPurchase false it "is still
    visible to customers, but it cannot be purchased" (docs.saleor.io ProductChannelListing,
    ProductChannelListingAddInput). Variant prices exist either way, so an unpublished
    product looked available and would be recommended, linking shoppers to a missing page."""
    data = json.loads(fixture("product_updated.json"))
    other = {"channel": {"slug": "channel-pln"}, "isPublished": True,
             "isAvailableForPurchase": True}
    ours = [] if listing is None else [{"channel": {"slug": "default-channel"}, **listing}]
    data["product"]["channelListings"] = [other, *ours]
    body = json.dumps(data).encode()
    creds = Credentials("demo.saleor.io", access_token="t", api_url=API_URL,
                        extra={"channel": "default-channel"})
    product = SaleorConnector(creds).parse_webhook(saleor_headers("product_updated", body),
                                                   body).record
    assert product.available is available
    assert product.available_from is None
    assert ("channelListings { channel { slug } isPublished publishedAt isAvailableForPurchase "
            "availableForPurchaseAt }") in " ".join(SUBSCRIPTIONS["shopkeeper-products"].split())


def test_a_saleor_product_scheduled_for_later_carries_its_launch_time() -> None:
    """ProductChannelListing.publishedAt / availableForPurchaseAt (docs.saleor.io): a
    product published (or sold) from a future date is not on sale before it, though
    isPublished is true; the later of the two dates is its launch."""
    data = json.loads(fixture("product_updated.json"))
    data["product"]["channelListings"] = [{
        "channel": {"slug": "default-channel"}, "isPublished": True,
        "publishedAt": "2031-05-01T09:00:00+02:00", "isAvailableForPurchase": False,
        "availableForPurchaseAt": "2031-05-01T08:00:00+00:00"}]
    body = json.dumps(data).encode()
    creds = Credentials("demo.saleor.io", access_token="t", api_url=API_URL,
                        extra={"channel": "default-channel"})
    product = SaleorConnector(creds).parse_webhook(saleor_headers("product_updated", body),
                                                   body).record
    assert product.available is True  # from the launch on: no webhook comes then
    assert product.available_from == datetime(2031, 5, 1, 8, tzinfo=UTC)


def test_orders_are_paged_in_last_modified_order() -> None:
    """The orders backfill ends by storing the newest updatedAt it saw as the watermark of
    the next incremental run (updatedAt >= watermark). Paged in Saleor's default order, an
    order modified mid-run behind the cursor is not seen, while a later-modified one ahead
    of it is: the watermark passes the first change and no later run reads it. Paged by
    LAST_MODIFIED_AT ascending (as Shopify's UPDATED_AT and Vendure's updatedAt pages are),
    a change mid-run moves the order ahead of the cursor, where this run still reads it."""
    node = json.loads(fixture("order_created.json"))["order"]
    page = {"data": {"orders": {"pageInfo": {"hasNextPage": False, "endCursor": "x"},
                                "edges": [{"node": node}]}}}
    creds = Credentials("demo.saleor.io", access_token="t", api_url=API_URL)
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=page)
        list(SaleorConnector(creds).iter_orders(since=datetime(2025, 11, 1, tzinfo=UTC)))
        body = json.loads(rsps.calls[0].request.body)
    assert body["variables"]["sortBy"] == {"field": "LAST_MODIFIED_AT", "direction": "ASC"}
    assert "sortBy: $sortBy" in body["query"] and "$sortBy: OrderSortingInput" in body["query"]


def test_an_orders_cursor_saved_before_the_sort_change_restarts_the_pass() -> None:
    """Saleor's cursors encode the values of the sort they were issued for, and it refuses
    one used with another sort ('Received cursor is invalid'): an orders backfill paused
    under the default order would fail on every run after the upgrade. Cursors of the
    last-modified pass are marked, and an unmarked one starts the pass again (upserts are
    monotonic, so records read twice change nothing)."""
    node = json.loads(fixture("order_created.json"))["order"]
    creds = Credentials("demo.saleor.io", access_token="t", api_url=API_URL)

    def page(more: bool) -> dict:
        return {"data": {"orders": {"pageInfo": {"hasNextPage": more, "endCursor": "YWJj"},
                                    "edges": [{"node": node}]}}}

    with responses.RequestsMock(registry=responses.registries.OrderedRegistry) as rsps:
        rsps.post(API_URL, json=page(True))
        first = next(iter(SaleorConnector(creds).iter_orders(cursor="b2xkLWN1cnNvcg==")))
        assert json.loads(rsps.calls[0].request.body)["variables"]["after"] is None
    assert first.next_cursor == "lm:YWJj"
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=page(False))
        rest = list(SaleorConnector(creds).iter_orders(cursor=first.next_cursor))
        assert json.loads(rsps.calls[0].request.body)["variables"]["after"] == "YWJj"
    assert rest[-1].next_cursor is None


@pytest.mark.parametrize(("track", "available"), [(False, True), (True, False), (None, False)])
def test_an_untracked_variant_out_of_stock_is_still_available(track, available) -> None:
    """ProductVariant.trackInventory false: "the quantity won't change when customers buy
    this item" (docs.saleor.io ProductVariantInput), and Saleor sells it with no stock (made
    to order, digital goods). Such a product was marked sold out and never recommended.
    A payload without the field (a subscription from before it was asked for) counts as
    tracked, as before."""
    data = json.loads(fixture("product_updated.json"))
    variant = {**data["product"]["variants"][1], "stocks": [{"quantity": 0}]}
    if track is not None:
        variant["trackInventory"] = track
    data["product"]["variants"] = [variant]
    body = json.dumps(data).encode()
    creds = Credentials("demo.saleor.io", access_token="t", api_url=API_URL,
                        extra={"channel": "default-channel"})
    product = SaleorConnector(creds).parse_webhook(saleor_headers("product_updated", body),
                                                   body).record
    assert product.variants[0].available is available and product.available is available
    assert product.variants[0].inventory_qty == 0
    assert "id name sku trackInventory" in " ".join(SUBSCRIPTIONS["shopkeeper-products"].split())
