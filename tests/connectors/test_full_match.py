"""Validators match the whole value: ``$`` also matches before a final newline.

``re.match(r"^x$", "x\n")`` succeeds, so every pattern-checked value (shop domains,
delivery ids, entity ids, currencies, anonymous ids) could carry a trailing newline into
headers, dedupe keys and stored rows.
"""

from __future__ import annotations

import json

import pytest
from marshmallow import ValidationError

from connectors.errors import InvalidPayload
from connectors.generic import webhooks as generic_webhooks
from connectors.generic.schemas import SCHEMAS
from connectors.shopify.install import SHOP_DOMAIN, validate_shop_domain
from connectors.vendure import webhooks as vendure_webhooks
from plugin.api.identity import ANON_ID
from plugin.offers.schemas import CartSchema


def test_shop_domain() -> None:
    assert validate_shop_domain("evil.myshopify.com") == "evil.myshopify.com"
    for bad in ("evil.myshopify.com\n", "evil.myshopify.com\r\n"):
        with pytest.raises(InvalidPayload):
            validate_shop_domain(bad)
        assert SHOP_DOMAIN.match(bad) is None  # safe even where someone uses .match


def test_anonymous_id() -> None:
    good = "anon_" + "a" * 22
    assert ANON_ID.fullmatch(good) and not ANON_ID.match(good + "\n")


def _generic_headers(delivery_id: str) -> dict[str, str]:
    return {generic_webhooks.TOPIC_HEADER: "products/delete",
            generic_webhooks.DELIVERY_ID_HEADER: delivery_id}


def test_generic_delivery_id() -> None:
    body = json.dumps({"id": "p1"}).encode()
    assert generic_webhooks.parse_delivery(_generic_headers("d-1"), body).delivery_id == "d-1"
    with pytest.raises(InvalidPayload):
        generic_webhooks.parse_delivery(_generic_headers("d-1\n"), body)


def test_generic_currency() -> None:
    body = {"id": "p1", "title": "Tea", "price": "1.00", "currency": "GBP",
            "updated_at": "2026-01-01T00:00:00Z"}
    SCHEMAS["products/upsert"]().load(body)
    with pytest.raises(ValidationError):
        SCHEMAS["products/upsert"]().load({**body, "currency": "GBP\n"})


def _vendure(topic: str, body: dict, delivery_id: str = "v-1"):
    headers = {vendure_webhooks.TOPIC_HEADER: topic,
               vendure_webhooks.DELIVERY_ID_HEADER: delivery_id}
    return vendure_webhooks.parse_delivery(headers, json.dumps(body).encode())


@pytest.mark.parametrize(("delivery_id", "body"), [
    ("v-1\n", {"id": "1", "state": "PaymentSettled", "currency": "GBP"}),
    ("v-1", {"id": "1\n", "state": "PaymentSettled", "currency": "GBP"}),
    ("v-1", {"id": "1", "state": "PaymentSettled", "currency": "GBP\n"}),
])
def test_vendure_delivery_id_entity_id_and_currency(delivery_id, body) -> None:
    _vendure("order.placed", {"id": "1", "state": "PaymentSettled", "currency": "GBP"})
    with pytest.raises(InvalidPayload):
        _vendure("order.placed", body, delivery_id)


def test_vendure_patterns_refuse_a_final_newline() -> None:
    for pattern, good in ((vendure_webhooks._CURRENCY, "GBP"), (vendure_webhooks._ID, "1"),
                          (vendure_webhooks._DELIVERY_ID, "v-1")):
        assert pattern.match(good) and not pattern.match(good + "\n")


def test_offer_cart_currency() -> None:
    cart = {"currency": "gbp", "lines": [{"product_id": "p1", "quantity": 1,
                                          "price": "5.00"}]}
    CartSchema().load(cart)
    with pytest.raises(ValidationError) as caught:
        CartSchema().load({**cart, "currency": "gbp\n"})
    assert "currency" in caught.value.messages


def test_the_openapi_pattern_stays_json_schema_friendly() -> None:
    """The published pattern keeps ``^...$`` (JSON Schema has no ``\\Z``)."""
    field = CartSchema().fields["currency"]
    assert [v.regex.pattern for v in field.validators] == ["^[A-Za-z]{3}$"]
