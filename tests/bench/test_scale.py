"""bench/scale.py: the traffic it sends is what a real generic store would send."""

from __future__ import annotations

import json

import pytest

from connectors.errors import SignatureInvalid
from connectors.generic.webhooks import parse_delivery, verify_signature


class FakeSession:
    """Records requests instead of sending them (no server needed)."""

    def __init__(self, status: int = 200) -> None:
        self.status, self.calls = status, []

    def post(self, url, data, headers, timeout):
        self.calls.append((url, data, headers))
        return type("R", (), {"status_code": self.status})()


def _shop(scale, shop_id="shp_a", secret="s3cret"):
    return scale.ShopLoad("d", shop_id, "pk_x", secret, ["c1", "c2"], ["i1", "i2", "i3"], 10)


def test_webhooks_are_signed_valid_deliveries_for_their_shop(scale):
    shops = [_shop(scale), _shop(scale, "shp_b", "other")]
    call, sent = scale.webhook_caller("http://h", shops, seed=1)
    session = FakeSession()
    for i in range(6):
        assert call(session, i) == 200
    topics = []
    for i, (url, raw, headers) in enumerate(session.calls):
        shop = shops[i % 2]
        assert url == f"http://h/webhooks/generic/{shop.shop_id}"
        verify_signature(shop.secret, headers, raw)  # raises when wrong
        with pytest.raises(SignatureInvalid):
            verify_signature(shops[(i + 1) % 2].secret, headers, raw)
        event = parse_delivery(headers, raw)
        topics.append(event.topic)
        body = json.loads(raw)
        if event.topic == "orders/upsert":
            assert body["customer_id"] in shop.customers
            assert {line["product_id"] for line in body["lines"]} <= set(shop.items)
    assert topics.count("orders/upsert") == 4 and topics.count("products/upsert") == 2
    assert len({d for _, d in sent}) == 6  # every delivery id unique


def test_only_accepted_deliveries_count_as_sent(scale):
    call, sent = scale.webhook_caller("http://h", [_shop(scale)], seed=1)
    assert call(FakeSession(status=503), 0) == 503
    assert sent == []
