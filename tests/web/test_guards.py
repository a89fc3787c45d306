"""NUL characters are refused at the edge (PostgreSQL text cannot hold them: it was a 500)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import WebhookDelivery
from tests.admin.conftest import sign_in
from tests.factories import post_webhook, product_body
from tests.offers.conftest import SHOPPER, cart_body, configure, headers, quote


def _refused(response, part: str) -> None:
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == 400 and part in body["errors"]


def test_nul_in_a_query_is_400_on_both_databases(client, shop):
    r = client.get("/api/v1/recommendations", headers=headers(),
                   query_string={"key": shop.widget_key, "product_id": "p\x001"})
    _refused(r, "query")


@pytest.mark.parametrize("body", [
    {"product_ids": ["p1\x00"]},
    {"product_ids": ["p1"], "order_id": "o\x00"},
    {"product_ids": ["p1"], "\x00": 1},  # keys too
])
def test_nul_anywhere_in_a_json_body_is_400(client, shop, body):
    r = client.post(f"/api/v1/subprofiles/prompt?key={shop.widget_key}", json=body,
                    headers=headers())
    _refused(r, "body")


def test_nul_in_a_beacon_body_sent_as_text_is_400(client, shop):
    r = client.post(f"/api/v1/events?key={shop.widget_key}&shopper={SHOPPER}",
                    data='{"events": [{"type": "view", "product_id": "p\\u0000"}]}',
                    content_type="text/plain")
    _refused(r, "body")


def test_nul_in_an_admin_form_is_400(app, client, shop):
    csrf = sign_in(app, client, shop)
    form = {"csrf_token": csrf, "customer": "c\x001"}
    page = client.post("/admin/privacy/erase", data=form)  # a browser: the admin page says so
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert "NUL character" in page.get_data(as_text=True)
    r = client.post("/admin/privacy/erase", data=form, headers={"Accept": "application/json"})
    _refused(r, "form")


def test_nul_in_a_webhook_path_is_400_and_the_body_is_left_to_processing(client, shop):
    _refused(client.post("/webhooks/generic/shp_\x00", data=b"{}"), "path")
    # a body with an escaped NUL still reaches signature verification (401 unsigned)
    r = client.post(f"/webhooks/generic/{shop.id}", data=b'{"id": "p\\u0000"}',
                    content_type="application/json")
    assert r.status_code == 401


def test_a_signed_delivery_with_a_nul_is_refused_before_it_is_stored(client, shop, shop_secret):
    """Acknowledged, it failed on apply on PostgreSQL until dead (tests/web/test_webhook_fuzz)."""
    r = post_webhook(client, shop.id, shop_secret, "products/upsert", product_body("p\x001"))
    assert r.status_code == 400 and "_body" in r.get_json()["errors"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 0


@pytest.mark.parametrize("field", ["id", "title", "vendor", "url"])
def test_a_signed_delivery_with_a_lone_surrogate_is_refused_before_it_is_stored(
        client, shop, shop_secret, field):
    """JSON's "\\ud800" decodes to a str no UTF-8 encodes: acknowledged, the delivery failed
    on apply on both databases until dead (UnicodeEncodeError)."""
    raw = b'{"%s": "x\\ud800", ' % field.encode() + \
        json.dumps({k: v for k, v in product_body().items() if k != field}).encode()[1:]
    r = post_webhook(client, shop.id, shop_secret, "products/upsert", None, raw=raw)
    assert r.status_code == 400 and "_body" in r.get_json()["errors"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 0


@pytest.mark.parametrize("path,body", [
    ("/api/v1/events", '{"events": [{"type": "view", "product_id": "p\\ud800"}]}'),
    ("/api/v1/subprofiles/prompt", '{"product_ids": ["p1"], "order_id": "o\\udfff"}'),
    ("/api/v1/subprofiles/prompt", '{"product_ids": ["p1"], "\\udc80": 1}'),
])
def test_a_lone_surrogate_in_a_json_body_is_400_not_500(client, shop, path, body):
    r = client.post(f"{path}?key={shop.widget_key}&shopper={SHOPPER}", data=body,
                    content_type="application/json", headers=headers())
    _refused(r, "body")


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/offers/quote", "/api/register",
                                  "/api/v1/subprofiles/prompt"])
def test_a_chunked_json_body_past_the_limit_is_413_not_a_malformed_body(app, client, shop,
                                                                          path):
    """Cut one byte past the limit, it was a 400 "must be a JSON object" (a 422 "auth_token
    missing" on /api/register): the client was told to fix what it only had to shorten."""
    import io

    limit = app.config["WEBHOOK_MAX_BYTES"]
    body = b'{"events": [{"type": "view", "product_id": "' + b"x" * limit + b'"}]}'
    r = client.post(f"{path}?key={shop.widget_key}&shopper={SHOPPER}",
                    input_stream=io.BytesIO(body), content_type="application/json",
                    headers={**headers(), "Transfer-Encoding": "chunked"},
                    environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""})
    assert r.status_code == 413
    assert r.get_json()["message"] == f"Request bodies are limited to {limit} bytes."


def test_a_chunked_json_body_within_the_limit_is_read_whole(client, shop):
    import io

    body = b'{"events": [{"type": "view", "product_id": "p1"}]}'
    r = client.post(f"/api/v1/events?key={shop.widget_key}&shopper={SHOPPER}",
                    input_stream=io.BytesIO(body), content_type="application/json",
                    headers={**headers(), "Transfer-Encoding": "chunked"},
                    environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""})
    assert r.status_code < 300, r.get_json()


def test_clean_requests_pass(client, shop):
    configure(shop)
    assert quote(client, shop).status_code == 200


def test_a_cart_total_beyond_the_money_columns_is_422(client, shop):
    """Each line in range, the sum not: PostgreSQL raised on storing the offer (a 500)."""
    configure(shop)
    lines = [{"product_id": f"p{i}", "quantity": 10_000, "price": "1000000000"}
             for i in range(3)]
    r = quote(client, shop, {**cart_body(), "lines": lines})
    assert r.status_code == 422
    assert "lines" in r.get_json()["errors"]["cart"]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/offers/quote", "/api/register",
                                  "/demo/api/token"])
@pytest.mark.parametrize("depth", [65, 600, 50_000])
def test_json_nested_too_deep_is_400_not_500(client, shop, path, depth):
    body = '{"events": ' + _nested(depth) + "}"
    r = client.post(f"{path}?key={shop.widget_key}", data=body,
                    content_type="application/json", headers=headers())
    assert r.status_code == 400, r.get_data(as_text=True)[:200]
    assert r.get_json()["message"] == "The JSON body is nested too deeply."


def test_json_nested_to_the_limit_reaches_validation(client, shop):
    from connectors.parsing import MAX_JSON_DEPTH

    body = '{"events": ' + _nested(MAX_JSON_DEPTH - 1) + "}"
    r = client.post(f"/api/v1/events?key={shop.widget_key}", data=body,
                    content_type="application/json", headers=headers())
    assert r.status_code == 422  # the schema speaks: not an event


@pytest.mark.parametrize("depth", [600, 50_000])
def test_a_signed_delivery_nested_too_deep_is_400_and_not_stored(client, shop, shop_secret,
                                                                  depth):
    raw = ('{"id": ' + _nested(depth) + ', "title": "x"}').encode()
    r = post_webhook(client, shop.id, shop_secret, "products/upsert", None, raw=raw)
    assert r.status_code == 400 and "nested deeper" in r.get_json()["errors"]["_body"][0]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 0


def test_the_walks_are_iterative():
    from connectors.parsing import decode_json, holds_nul, too_deep

    deep: list = []
    node = deep
    for _ in range(100_000):  # far past the interpreter's recursion limit
        node.append([])
        node = node[0]
    node.append("a\x00b")
    assert holds_nul(deep) and too_deep(deep) and not too_deep([[["x"]]], limit=3)
    with pytest.raises(ValueError, match="nested deeper"):
        decode_json(_nested(100_000))


@pytest.mark.parametrize("price", ["1e30", "-1", "1000000000.01"])
def test_a_cart_price_out_of_range_says_the_range(client, shop, price):
    configure(shop)
    r = quote(client, shop, cart_body(price=price))
    assert r.status_code == 422
    assert r.get_json()["errors"]["cart"]["lines"]["0"]["price"] == [
        "Must be between 0 and 1000000000."]
