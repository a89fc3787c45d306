"""Only the shop's Saleor channel's orders are mirrored.

The install picks one channel (prices, availability, vouchers); Saleor sends every
channel's orders to the app and lists them all. Another channel's order (another currency
and catalogue) is acknowledged and not ingested, by webhook and by sync alike. The payloads
are ``order_created.json`` (``default-channel``) and the same order placed in
``channel-pln``, the second channel of Saleor's demo catalogue.
"""

from __future__ import annotations

import json

import pytest
import responses

from connectors.base import Credentials
from connectors.records import Cart, Order
from connectors.saleor import SaleorConnector
from plugin import shops
from plugin.extensions import db
from tests.connectors.test_saleor import API_URL, JWKS_URL, KEY, fixture, jwk, saleor_headers

OURS = {"channel": "default-channel", "channel_id": "Q2hhbm5lbDox"}


def _order(slug: str | None, order_id: str = "T3JkZXI6MQ==") -> dict:
    node = json.loads(fixture("order_created.json"))["order"]
    node["id"] = order_id
    if slug is None:
        del node["channel"]  # a subscription registered before it asked for the channel
    else:
        node["channel"] = {"slug": slug}
    return node


def _body(node: dict) -> bytes:
    return json.dumps({"order": node}).encode()


def _parse(node: dict, extra: dict | None = OURS):
    creds = Credentials("demo.saleor.io", access_token="t", api_url=API_URL, extra=extra or {})
    body = _body(node)
    return SaleorConnector(creds).parse_webhook(saleor_headers("order_created", body), body)


def test_another_channels_order_webhook_is_parsed_to_nothing_to_ingest():
    ignored = _parse(_order("channel-pln"))
    assert ignored.topic == "orders/upsert" and ignored.record is None and ignored.delivery_id
    assert isinstance(_parse(_order("default-channel")).record, Order)


@pytest.mark.parametrize(("slug", "extra"), [(None, OURS), ("channel-pln", None)])
def test_an_order_is_ours_when_the_channel_cannot_be_told(slug, extra):
    """No channel in the payload (old subscription) or none chosen: mirrored as before."""
    assert isinstance(_parse(_order(slug), extra).record, Order)


def _orders_page(*nodes: dict) -> dict:
    return {"data": {"orders": {"pageInfo": {"hasNextPage": False, "endCursor": "x"},
                                "edges": [{"node": n} for n in nodes]}}}


def test_the_orders_sync_asks_for_and_keeps_only_the_shops_channel():
    creds = Credentials("demo.saleor.io", access_token="t", api_url=API_URL, extra=OURS)
    page = _orders_page(_order("default-channel", "T3JkZXI6MQ=="),
                        _order("channel-pln", "T3JkZXI6Mg=="))
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=page)
        pages = list(SaleorConnector(creds).iter_orders())
        sent = json.loads(rsps.calls[0].request.body)["variables"]
    assert sent["filter"] == {"channels": ["Q2hhbm5lbDox"]}
    assert [o.external_id for p in pages for o in p.items] == ["T3JkZXI6MQ=="]
    assert sum(p.ignored for p in pages) == 1


@pytest.fixture
def saleor_shop(app):
    SaleorConnector.jwks_cache.clear()
    creds = Credentials("demo.saleor.io", access_token="app-token", api_url=API_URL,
                        extra=OURS)
    shop = shops.create_shop("saleor", "demo.saleor.io", creds)
    db.session.commit()
    return shop


def _stored_orders(shop_id: str) -> list[str]:
    from plugin.models import Order as OrderRow

    return sorted(db.session.scalars(db.select(OrderRow.external_id).filter_by(shop_id=shop_id)))


def test_another_channels_order_webhook_is_acknowledged_not_ingested(client, saleor_shop):
    from plugin.webhooks.inbox import process_inbox

    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, json={"keys": [jwk(KEY)]})
        for node in (_order("channel-pln", "T3JkZXI6Mg=="), _order("default-channel")):
            body = _body(node)
            response = client.post(f"/webhooks/saleor/{saleor_shop.id}", data=body,
                                   headers=saleor_headers("order_created", body))
            assert response.status_code == 200, response.get_json()
    result = process_inbox()
    assert (result.done, result.failed) == (2, 0)
    assert _stored_orders(saleor_shop.id) == ["T3JkZXI6MQ=="]


def test_the_orders_sync_stores_only_the_shops_channel(saleor_shop):
    from plugin.ingestion.sync import run_sync

    page = _orders_page(_order("channel-pln", "T3JkZXI6Mg=="), _order("default-channel"))
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=page)
        result = run_sync(saleor_shop.id, "orders")
    assert result.finished and result.error is None
    assert (result.records, result.ignored) == (1, 1)
    assert _stored_orders(saleor_shop.id) == ["T3JkZXI6MQ=="]


# -- checkouts follow the same rule: the payload is ``checkout_updated.json``
def _checkout(slug: str | None, token: str = "b470e2c3-364f-4f34-a969-73f894eb274c") -> dict:
    node = json.loads(fixture("checkout_updated.json"))["checkout"]
    node["token"] = token
    if slug is None:
        del node["channel"]  # a subscription registered before it asked for the channel
    else:
        node["channel"] = {"slug": slug}
    return node


def _parse_checkout(node: dict, extra: dict | None = OURS):
    creds = Credentials("demo.saleor.io", access_token="t", api_url=API_URL, extra=extra or {})
    body = json.dumps({"checkout": node}).encode()
    return SaleorConnector(creds).parse_webhook(saleor_headers("checkout_updated", body), body)


def test_another_channels_checkout_webhook_is_parsed_to_nothing_to_ingest():
    ignored = _parse_checkout(_checkout("channel-pln"))
    assert ignored.topic == "carts/upsert" and ignored.record is None and ignored.delivery_id
    assert isinstance(_parse_checkout(_checkout("default-channel")).record, Cart)


@pytest.mark.parametrize(("slug", "extra"), [(None, OURS), ("channel-pln", None)])
def test_a_checkout_is_ours_when_the_channel_cannot_be_told(slug, extra):
    assert isinstance(_parse_checkout(_checkout(slug), extra).record, Cart)


def test_the_checkout_subscription_asks_for_the_channel():
    from connectors.saleor.queries import SUBSCRIPTIONS

    assert "channel { slug }" in SUBSCRIPTIONS["shopkeeper-checkouts"]


def test_another_channels_checkout_webhook_is_acknowledged_not_ingested(client, saleor_shop):
    from plugin.models import Cart as CartRow
    from plugin.webhooks.inbox import process_inbox

    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, json={"keys": [jwk(KEY)]})
        for node in (_checkout("channel-pln", "pln-token"), _checkout("default-channel")):
            body = json.dumps({"checkout": node}).encode()
            response = client.post(f"/webhooks/saleor/{saleor_shop.id}", data=body,
                                   headers=saleor_headers("checkout_updated", body))
            assert response.status_code == 200, response.get_json()
    result = process_inbox()
    assert (result.done, result.failed) == (2, 0)
    stored = db.session.scalars(db.select(CartRow.external_id).filter_by(
        shop_id=saleor_shop.id)).all()
    assert stored == ["b470e2c3-364f-4f34-a969-73f894eb274c"]


# -- a shop stored with the channel's slug only gets its id looked up once, then stored
CHANNELS = {"data": {"channels": [
    {"id": "Q2hhbm5lbDoy", "slug": "channel-pln", "name": "Channel-PLN",
     "currencyCode": "PLN", "isActive": True},
    {"id": "Q2hhbm5lbDox", "slug": "default-channel", "name": "Default channel",
     "currencyCode": "USD", "isActive": True}]}}


def test_a_channel_known_by_slug_only_has_its_id_resolved_and_stored_once(app):
    from plugin.ingestion.sync import run_sync

    SaleorConnector.jwks_cache.clear()
    shop = shops.create_shop("saleor", "demo.saleor.io", Credentials(
        "demo.saleor.io", access_token="app-token", api_url=API_URL,
        extra={"channel": "default-channel"}))
    db.session.commit()
    sent = []
    # the first run reads the channel's currency (``plugin.offers.platform``: not again
    # within the hour), which finds the id too: one channels query, not a second lookup
    for answers in ([CHANNELS, _orders_page(_order("default-channel"))],
                    [_orders_page(_order("default-channel"))]):  # an incremental one
        with responses.RequestsMock() as rsps:
            for answer in answers:
                rsps.post(API_URL, json=answer)
            result = run_sync(shop.id, "orders")
            sent.append([json.loads(c.request.body) for c in rsps.calls])
        assert result.finished and result.error is None and result.ignored == 0
    first, second = sent
    assert ["channels" in body["query"] for body in first] == [True, False]
    assert first[1]["variables"]["filter"] == {"channels": ["Q2hhbm5lbDox"]}
    db.session.expire_all()
    assert shops.credentials_for(shop).extra["channel_id"] == "Q2hhbm5lbDox"
    assert len(second) == 1  # no second channels lookup
    assert second[0]["variables"]["filter"]["channels"] == ["Q2hhbm5lbDox"]
    assert "updatedAt" in second[0]["variables"]["filter"]


def test_a_slug_saleor_no_longer_has_filters_locally_as_before():
    creds = Credentials("demo.saleor.io", access_token="t", api_url=API_URL,
                        extra={"channel": "channel-gone"})
    connector = SaleorConnector(creds)
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=CHANNELS)
        rsps.post(API_URL, json=_orders_page(_order("default-channel")))
        pages = list(connector.iter_orders())
        sent = json.loads(rsps.calls[1].request.body)["variables"]
    assert "channels" not in sent.get("filter", {}) and connector.learned == {}
    assert sum(p.ignored for p in pages) == 1
