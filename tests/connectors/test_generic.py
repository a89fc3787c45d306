"""Generic protocol v2: the contract plus the protocol's own edge cases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jwt
import pytest

from connectors.base import Credentials
from connectors.errors import InvalidPayload, NotSupported, SignatureInvalid
from connectors.generic import GenericConnector, sign_payload, verify_discount
from connectors.records import Cart, Customer, Deletion, DiscountSpec, Order, Product
from tests.connectors.contract import ConnectorContract, WebhookSample

FIXTURES = Path(__file__).parents[1] / "fixtures" / "generic"
SECRET = "whsec_3a9bfc1e5d7240c68e0b2f4a61d8c7e9"
OTHER_SECRET = "whsec_another_shop_7c1e5d72a40c68e0b2f4"
VECTOR_BODY = (
    b'{"id":"42","title":"Tea","price":"12.50","currency":"GBP",'
    b'"updated_at":"2025-11-23T00:00:00Z"}'
)
VECTOR_SIG = "v2=d67fcd3bb8babf92a8e90b961899869c442a063b65b796bf1238f5aece68ea2b"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def headers_for(topic: str, body: bytes, *, now: float, secret: str = SECRET) -> dict[str, str]:
    return sign_payload(secret, body, int(now), topic=topic, delivery_id=f"dlv-{topic}-1")


class TestGenericConnector(ConnectorContract):
    connector_cls = GenericConnector
    SIGNATURE_HEADERS = ("X-Shopkeeper-Signature",)

    def make_connector(self, session=None, *, wrong_secret=False):
        creds = Credentials(
            "store.example",
            access_token=self.ACCESS_TOKEN,
            webhook_secret=OTHER_SECRET if wrong_secret else SECRET,
        )
        return GenericConnector(creds, session=session)

    def webhook_samples(self):
        return [
            WebhookSample("products/upsert", fixture("products_upsert.json"),
                          "products/upsert", Product),
            WebhookSample("customers/upsert", fixture("customers_upsert.json"),
                          "customers/upsert", Customer),
            WebhookSample("orders/upsert", fixture("orders_upsert.json"), "orders/upsert", Order),
            WebhookSample("carts/upsert", fixture("carts_upsert.json"), "carts/upsert", Cart),
            WebhookSample("products/delete", fixture("products_delete.json"),
                          "products/delete", Deletion),
            WebhookSample("customers/delete", fixture("customers_delete.json"),
                          "customers/delete", Deletion),
            WebhookSample("app/uninstalled", fixture("app_uninstalled.json"),
                          "app/uninstalled", None),
        ]

    def signed_delivery(self, topic, body, *, now, wrong_key=False):
        return headers_for(topic, body, now=now, secret=OTHER_SECRET if wrong_key else SECRET)

    def documented_vectors(self):
        headers = {
            "X-Shopkeeper-Topic": "products/upsert",
            "X-Shopkeeper-Delivery-Id": "vector-1",
            "X-Shopkeeper-Timestamp": "1763856000",
            "X-Shopkeeper-Signature": VECTOR_SIG,
        }
        return [(headers, VECTOR_BODY, 1763856000.0)]

    # -- protocol specifics -----------------------------------------------------------------
    def test_sign_payload_matches_protocol_vector(self) -> None:
        assert sign_payload(SECRET, VECTOR_BODY, 1763856000, topic="products/upsert",
                            delivery_id="vector-1") == {
            "X-Shopkeeper-Topic": "products/upsert",
            "X-Shopkeeper-Delivery-Id": "vector-1",
            "X-Shopkeeper-Timestamp": "1763856000",
            "X-Shopkeeper-Signature": VECTOR_SIG,
        }

    @pytest.mark.parametrize("field,value", [
        ("X-Shopkeeper-Topic", "app/uninstalled"),  # a signed upsert re-sent as an uninstall
        ("X-Shopkeeper-Delivery-Id", "dlv-other"),
    ])
    def test_topic_and_delivery_id_are_signed(self, field: str, value: str) -> None:
        headers = headers_for("products/upsert", VECTOR_BODY, now=self.NOW)
        with pytest.raises(SignatureInvalid, match="mismatch"):
            self.make_connector().verify_webhook({**headers, field: value}, VECTOR_BODY,
                                                 now=self.NOW)

    def test_version_1_signatures_are_refused_with_a_reason(self) -> None:
        import hashlib
        import hmac as hmac_

        headers = headers_for("products/upsert", VECTOR_BODY, now=self.NOW)
        ts = headers["X-Shopkeeper-Timestamp"]
        v1 = hmac_.new(SECRET.encode(), ts.encode() + b"." + VECTOR_BODY,
                       hashlib.sha256).hexdigest()
        with pytest.raises(SignatureInvalid, match="v1 signatures are no longer accepted"):
            self.make_connector().verify_webhook(
                {**headers, "X-Shopkeeper-Signature": f"v1={v1}"}, VECTOR_BODY, now=self.NOW)

    @pytest.mark.parametrize("skew", [-301, 301, -10_000])
    def test_timestamp_outside_window_rejected(self, skew: int) -> None:
        headers = headers_for("products/upsert", VECTOR_BODY, now=self.NOW + skew)
        with pytest.raises(SignatureInvalid, match="window"):
            self.make_connector().verify_webhook(headers, VECTOR_BODY, now=self.NOW)

    @pytest.mark.parametrize("skew", [-300, 300])
    def test_timestamp_at_window_edge_accepted(self, skew: int) -> None:
        headers = headers_for("products/upsert", VECTOR_BODY, now=self.NOW + skew)
        self.make_connector().verify_webhook(headers, VECTOR_BODY, now=self.NOW)

    @pytest.mark.parametrize("value", ["", "abc", "1763856000.5", "-1763856000"])
    def test_malformed_timestamp_rejected(self, value: str) -> None:
        headers = headers_for("products/upsert", VECTOR_BODY, now=self.NOW)
        headers["X-Shopkeeper-Timestamp"] = value
        with pytest.raises(SignatureInvalid):
            self.make_connector().verify_webhook(headers, VECTOR_BODY, now=self.NOW)

    def test_timestamp_is_signed(self) -> None:
        headers = headers_for("products/upsert", VECTOR_BODY, now=self.NOW)
        headers["X-Shopkeeper-Timestamp"] = str(int(self.NOW) + 1)
        with pytest.raises(SignatureInvalid, match="mismatch"):
            self.make_connector().verify_webhook(headers, VECTOR_BODY, now=self.NOW)

    def test_uppercase_or_unversioned_signature_rejected(self) -> None:
        headers = headers_for("products/upsert", VECTOR_BODY, now=self.NOW)
        digest = headers["X-Shopkeeper-Signature"].removeprefix("v2=")
        for bad in (digest, "v0=" + digest):
            with pytest.raises(SignatureInvalid):
                self.make_connector().verify_webhook(
                    {**headers, "X-Shopkeeper-Signature": bad}, VECTOR_BODY, now=self.NOW
                )

    def test_rotation_accepts_any_listed_signature(self) -> None:
        old = headers_for("products/upsert", VECTOR_BODY, now=self.NOW, secret=OTHER_SECRET)
        new = headers_for("products/upsert", VECTOR_BODY, now=self.NOW)
        both = f'{old["X-Shopkeeper-Signature"]}, {new["X-Shopkeeper-Signature"]}'
        self.make_connector().verify_webhook(
            {**new, "X-Shopkeeper-Signature": both}, VECTOR_BODY, now=self.NOW
        )

    def test_shop_without_secret_rejects_everything(self) -> None:
        connector = GenericConnector(Credentials("store.example"))
        with pytest.raises(SignatureInvalid):
            connector.verify_webhook(
                headers_for("products/upsert", VECTOR_BODY, now=self.NOW), VECTOR_BODY,
                now=self.NOW,
            )

    def test_product_fields_are_normalized(self) -> None:
        body = fixture("products_upsert.json")
        event = self.make_connector().parse_webhook(
            headers_for("products/upsert", body, now=self.NOW), body
        )
        product = event.record
        assert product == Product(
            external_id="sku-tea-01",
            title="Assam Breakfast Tea 250g",
            updated_at=datetime(2025, 11, 22, 9, 15, tzinfo=UTC),
            description="Malty loose-leaf black tea.",
            url="https://shop.example/products/assam-250",
            image_url="https://shop.example/img/assam-250.jpg",
            categories=("Tea", "Black tea"),
            tags=("consumable", "breakfast"),
            vendor="Leaf & Co",
            price=Decimal("12.50"),
            currency="GBP",
        )
        assert event.delivery_id == "dlv-products/upsert-1"
        assert event.occurred_at == datetime.fromtimestamp(self.NOW, UTC)

    def test_offsets_converted_to_utc_and_int_ids_stringified(self) -> None:
        body = fixture("customers_upsert.json")
        record = self.make_connector().parse_webhook(
            headers_for("customers/upsert", body, now=self.NOW), body
        ).record
        assert record.external_id == "1017"
        assert record.created_at == datetime(2024, 3, 1, 9, 0, tzinfo=UTC)

    def test_order_lines_and_codes(self) -> None:
        body = fixture("orders_upsert.json")
        order = self.make_connector().parse_webhook(
            headers_for("orders/upsert", body, now=self.NOW), body
        ).record
        assert order.discount_codes == ("SK-7QX2",)
        assert [(li.product_id, li.variant_id, li.quantity, li.price) for li in order.lines] == [
            ("sku-tea-01", "sku-tea-01-250", 2, Decimal("12.50")),
            ("sku-mug-03", None, 1, Decimal("8.00")),
        ]

    def test_delete_defaults_deleted_at_to_signed_timestamp(self) -> None:
        body = fixture("products_delete.json")
        record = self.make_connector().parse_webhook(
            headers_for("products/delete", body, now=self.NOW), body
        ).record
        assert record == Deletion("product", "sku-tea-01", datetime.fromtimestamp(self.NOW, UTC))

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"price": 12.5}, "price"),
            ({"price": "twelve"}, "price"),
            ({"price": "1000000000.01"}, "price"),  # beyond what the money columns hold
            ({"currency": "gbp"}, "currency"),
            ({"updated_at": "yesterday"}, "updated_at"),
            ({"updated_at": "0001-01-01T00:00:00+01:00"}, "updated_at"),  # no UTC time: 500
            ({"title": None}, "title"),
            ({"id": True}, "id"),
        ],
    )
    def test_product_schema_errors_name_the_field(self, change: dict, field: str) -> None:
        data = {**json.loads(fixture("products_upsert.json")), **change}
        body = json.dumps(data).encode()
        with pytest.raises(InvalidPayload) as info:
            self.make_connector().parse_webhook(
                headers_for("products/upsert", body, now=self.NOW), body
            )
        assert list(info.value.errors) == [field]

    def test_absurd_quantities_and_line_prices_are_refused(self) -> None:
        """PostgreSQL raised on them when the delivery was applied (never-ending retries)."""
        data = json.loads(fixture("orders_upsert.json"))
        data["lines"][0]["quantity"] = 10**7
        data["lines"][1]["price"] = "1e12"
        body = json.dumps(data).encode()
        with pytest.raises(InvalidPayload) as info:
            self.make_connector().parse_webhook(
                headers_for("orders/upsert", body, now=self.NOW), body
            )
        assert set(info.value.errors) == {"lines.0.quantity", "lines.1.price"}

    def test_nested_line_errors_are_flattened(self) -> None:
        data = json.loads(fixture("orders_upsert.json"))
        data["lines"][1]["quantity"] = 0
        del data["currency"]
        body = json.dumps(data).encode()
        with pytest.raises(InvalidPayload) as info:
            self.make_connector().parse_webhook(
                headers_for("orders/upsert", body, now=self.NOW), body
            )
        assert set(info.value.errors) == {"lines.1.quantity", "currency"}

    @pytest.mark.parametrize("body", [b"[]", b'"x"', b"\xff\xfe"])
    def test_non_object_body_rejected(self, body: bytes) -> None:
        with pytest.raises(InvalidPayload):
            self.make_connector().parse_webhook(
                headers_for("products/upsert", body, now=self.NOW), body
            )

    @pytest.mark.parametrize("delivery_id", ["", "x" * 129, "caf\u00e9", "tab\there"])
    def test_bad_delivery_id_rejected(self, delivery_id: str) -> None:
        body = fixture("products_delete.json")
        headers = headers_for("products/delete", body, now=self.NOW)
        headers["X-Shopkeeper-Delivery-Id"] = delivery_id
        with pytest.raises(InvalidPayload):
            self.make_connector().parse_webhook(headers, body)

    def test_delivery_id_of_128_printable_chars_accepted(self) -> None:
        body = fixture("products_delete.json")
        headers = headers_for("products/delete", body, now=self.NOW)
        headers["X-Shopkeeper-Delivery-Id"] = "~ !" * 42 + "ab"
        assert len(self.make_connector().parse_webhook(headers, body).delivery_id) == 128

    def test_no_backfill_api(self) -> None:
        with pytest.raises(NotSupported):
            next(iter(self.make_connector().iter_orders()))

    # -- discounts --------------------------------------------------------------------------
    def _spec(self, **kw) -> DiscountSpec:
        base = dict(code="SK-7QX2", kind="percent", value=Decimal("10"),
                    expires_at=datetime.now(UTC) + timedelta(hours=1), customer_id="1017",
                    product_ids=("sku-tea-01",), min_subtotal=Decimal("20.00"))
        return DiscountSpec(**{**base, **kw})

    def test_discount_token_round_trips(self) -> None:
        spec = self._spec()
        ref = self.make_connector().create_discount(spec)
        assert ref.code == "SK-7QX2" and ref.expires_at == spec.expires_at
        back = verify_discount(SECRET, ref.platform_id)
        assert back == DiscountSpec(**{**_fields(spec), "expires_at": back.expires_at})
        assert abs((back.expires_at - spec.expires_at).total_seconds()) < 1

    def test_discount_token_rejects_other_secret_expiry_and_alg_none(self) -> None:
        ref = self.make_connector().create_discount(self._spec())
        with pytest.raises(SignatureInvalid):
            verify_discount(OTHER_SECRET, ref.platform_id)
        expired = self.make_connector().create_discount(
            self._spec(expires_at=datetime.now(UTC) - timedelta(seconds=5))
        )
        with pytest.raises(SignatureInvalid):
            verify_discount(SECRET, expired.platform_id)
        claims = jwt.decode(ref.platform_id, options={"verify_signature": False})
        forged = jwt.encode({**claims, "value": "90"}, None, algorithm="none")
        with pytest.raises(SignatureInvalid):
            verify_discount(SECRET, forged)

    def test_protocol_tells_storefronts_to_check_every_limiting_claim(self) -> None:
        # a storefront implements from PROTOCOL.md: an unchecked claim is an unenforced limit
        text = (Path(__file__).parents[2] / "connectors/generic/PROTOCOL.md").read_text()
        steps = text.split("Before you apply a code", 1)[1]
        for claim in ("aud", "iss", "exp", "code", "currency", "customer_id", "product_ids",
                      "min_subtotal", "usage_limit"):
            assert f"`{claim}`" in steps or f"`{claim} ==" in steps, claim


def _fields(spec: DiscountSpec) -> dict:
    return {name: getattr(spec, name) for name in spec.__dataclass_fields__}
