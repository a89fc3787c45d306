"""Platform payloads with hostile values: parsing refuses them, or applying them works.

A delivery is acknowledged once parsed; if applying it then raised (a value the database
cannot hold), the inbox would retry it until dead. So for Shopify's and Saleor's documented
payloads, with any leaf anywhere replaced by a hostile value, ``parse_webhook`` either
raises ``InvalidPayload`` (a 400 at receipt) or gives an event that ``apply_event``
stores, on both databases. Signatures are not the point here (they have their own tests):
parsing takes a verified body. Derandomized: the same cases every run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import connectors
from connectors.base import Credentials
from connectors.errors import InvalidPayload
from plugin.extensions import db
from plugin.ingestion.apply import apply_event
from tests.factories import make_shop
from tests.web.test_webhook_fuzz import poison

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
#: platform -> (event, fixture, headers that name the event)
PAYLOADS = {
    "shopify": [(topic, f"shopify/{name}", {
        "X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": "fuzz.myshopify.com",
        "X-Shopify-Webhook-Id": "fuzz", "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Triggered-At": "2025-11-22T10:00:00.123Z"})
        for topic, name in (("products/update", "products_update.json"),
                            ("orders/create", "orders_create.json"),
                            ("customers/create", "customers_create.json"))],
    "saleor": [(event, f"saleor/{name}", {
        "Saleor-Event": event, "Saleor-Domain": "fuzz.saleor.cloud",
        "Saleor-Api-Url": "https://fuzz.saleor.cloud/graphql/"})
        for event, name in (("product_updated", "product_updated.json"),
                            ("product_variant_updated", "product_variant_updated.json"),
                            ("order_created", "order_created.json"),
                            ("customer_created", "customer_created.json"))],
}
EXAMPLES = int(os.environ.get("SHOPKEEPER_FUZZ_EXAMPLES", "150"))


@st.composite
def mutated(draw, platform: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A fixture with one to three leaves, at any depth, replaced by hostile values."""
    topic, name, headers = draw(st.sampled_from(PAYLOADS[platform]))
    body = json.loads((FIXTURES / name).read_text())
    for _ in range(draw(st.integers(1, 3))):
        poison(draw, body)
    return topic, headers, body


@pytest.mark.parametrize("platform", sorted(PAYLOADS))
def test_hostile_platform_payloads_are_refused_or_stored(app, platform):
    shop = make_shop(platform, f"fuzz.{platform}.example")
    connector = connectors.get(platform)(Credentials(shop.domain, webhook_secret="s"))
    outcomes = {"refused": 0, "stored": 0}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(mutated(platform))
    def check(delivery: tuple[str, dict[str, str], dict[str, Any]]) -> None:
        topic, headers, body = delivery
        raw = json.dumps(body).encode()
        try:
            event = connector.parse_webhook(headers, raw)
        except InvalidPayload:
            outcomes["refused"] += 1
            return
        try:
            apply_event(shop, event)
            db.session.commit()
        except Exception as exc:
            db.session.rollback()
            raise AssertionError(f"{topic} parsed but failed to apply: {exc!r}\n{body}") from None
        outcomes["stored"] += 1

    check()
    assert outcomes["refused"] >= 5 and outcomes["stored"] >= 5, outcomes  # both branches ran


#: Vendure's deliveries are thin (ids only): the record comes back from its Admin API, so
#: that answer is what is fuzzed. (thin delivery topic, captured fetch answer, its root)
VENDURE_FETCHES = [("product.updated", "admin_product.json", "product"),
                   ("order.placed", "admin_order.json", "order"),
                   ("customer.created", "admin_customer.json", "customer")]


@st.composite
def vendure_fetches(draw) -> tuple[str, dict[str, Any]]:
    """A captured Admin API answer with one to three leaves of its record made hostile."""
    topic, name, root = draw(st.sampled_from(VENDURE_FETCHES))
    answer = json.loads((FIXTURES / "vendure" / name).read_text())
    for _ in range(draw(st.integers(1, 3))):
        poison(draw, answer["data"][root])
    return topic, answer


def test_hostile_vendure_fetch_answers_are_refused_or_stored(app):
    """A thin delivery whose fetched record is hostile: a connector error (the inbox retries
    it, then keeps it as dead with the error, for the admin's retry button), or stored."""
    import responses

    from connectors.errors import ConnectorError
    from connectors.generic import sign_payload

    api = "https://fuzz.vendure.example/admin-api"
    shop = make_shop("vendure", "fuzz.vendure.example")
    connector = connectors.get("vendure")(Credentials(shop.domain, webhook_secret="s",
                                                      access_token="tok", api_url=api))
    deliveries = {d["topic"]: d["body"].encode()
                  for d in json.loads((FIXTURES / "vendure" / "webhooks.json").read_text())}
    outcomes = {"refused": 0, "stored": 0}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(vendure_fetches())
    def check(case: tuple[str, dict[str, Any]]) -> None:
        topic, answer = case
        body = deliveries[topic]
        headers = sign_payload("s", body, 1_800_000_000, topic=topic, delivery_id="fuzz")
        thin = connector.parse_webhook(headers, body)
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            rsps.post(api, json=answer)
            try:
                event = connector.fetch_event_record(thin)
            except ConnectorError:
                outcomes["refused"] += 1
                return
            try:
                apply_event(shop, event)
                db.session.commit()
            except ConnectorError:
                db.session.rollback()
                outcomes["refused"] += 1
                return
            except Exception as exc:
                db.session.rollback()
                raise AssertionError(f"{topic} fetched but failed to apply: {exc!r}\n"
                                     f"{answer}") from None
        outcomes["stored"] += 1

    check()
    assert outcomes["refused"] >= 5 and outcomes["stored"] >= 5, outcomes
