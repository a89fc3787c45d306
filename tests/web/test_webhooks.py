"""The webhook door: verify over raw bytes, store durably before 200, reject bad input."""

from __future__ import annotations

import json
import time

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Product, WebhookDelivery
from tests.factories import make_shop, post_webhook, product_body


def _count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery))


def test_valid_delivery_is_stored_before_200_and_not_processed(client, shop, shop_secret):
    r = post_webhook(client, shop.id, shop_secret, "products/upsert", product_body())
    assert r.status_code == 200
    assert r.json == {"status": "accepted"}
    row = db.session.scalar(sa.select(WebhookDelivery))
    assert row.status == "pending" and row.topic == "products/upsert"
    assert json.loads(row.body)["id"] == "p1"
    assert db.session.scalar(sa.select(Product)) is None  # processing happens in the worker


def test_forged_signature_is_rejected_and_nothing_stored(client, shop, shop_secret):
    body = json.dumps(product_body()).encode()
    headers = {"X-Shopkeeper-Topic": "products/upsert", "X-Shopkeeper-Delivery-Id": "forged",
               "X-Shopkeeper-Timestamp": str(int(time.time())),
               "X-Shopkeeper-Signature": "v2=" + "0" * 64}
    r = client.post(f"/webhooks/generic/{shop.id}", data=body, headers=headers)
    assert r.status_code == 401
    assert r.json["code"] == 401 and r.json["status"] == "Unauthorized"
    assert db.session.scalar(sa.select(WebhookDelivery).filter_by(delivery_id="forged")) is None


def test_missing_signature_is_rejected(client, shop):
    r = client.post(f"/webhooks/generic/{shop.id}", data=b"{}",
                    headers={"X-Shopkeeper-Topic": "products/upsert",
                             "X-Shopkeeper-Delivery-Id": "x"})
    assert r.status_code == 401
    assert _count() == 0


def test_body_changed_after_signing_is_rejected(client, shop, shop_secret):
    from connectors.generic.webhooks import sign_payload

    body = json.dumps(product_body()).encode()
    headers = sign_payload(shop_secret, body, topic="products/upsert", delivery_id="d")
    r = client.post(f"/webhooks/generic/{shop.id}", data=body.replace(b"Tea", b"Tee"),
                    headers=headers)
    assert r.status_code == 401
    assert _count() == 0


def test_another_shops_secret_is_rejected(client, shop):
    other = make_shop()
    from plugin.shops import credentials_for

    r = post_webhook(client, shop.id, credentials_for(other).webhook_secret, "products/upsert",
                     product_body())
    assert r.status_code == 401
    assert _count() == 0


def test_stale_timestamp_is_rejected(client, shop, shop_secret):
    # The exact 300/301 s edge is tested with a fixed clock in test_generic.py; a live clock
    # ticks between signing and checking, so this end-to-end test stays clear of the edge.
    r = post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(),
                     timestamp=int(time.time()) - 400)
    assert r.status_code == 401
    assert _count() == 0


def test_future_timestamp_is_rejected(client, shop, shop_secret):
    r = post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(),
                     timestamp=int(time.time()) + 400)
    assert r.status_code == 401
    assert _count() == 0


def test_timestamp_inside_window_is_accepted(client, shop, shop_secret):
    r = post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(),
                     timestamp=int(time.time()) - 250)
    assert r.status_code == 200


def test_replayed_delivery_id_is_a_duplicate_with_no_second_row(client, shop, shop_secret):
    first = post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(),
                         delivery_id="same")
    again = post_webhook(client, shop.id, shop_secret, "products/upsert",
                         product_body(title="Changed"), delivery_id="same")
    assert first.json == {"status": "accepted"}
    assert again.status_code == 200 and again.json == {"status": "duplicate"}
    assert _count() == 1


def test_an_applied_delivery_keeps_no_payload_and_its_redelivery_is_still_a_duplicate(
        client, shop, shop_secret):
    from plugin.webhooks.inbox import process_inbox

    body = {"id": "c1", "email": "ada@example.com", "updated_at": "2026-01-01T00:00:00Z"}
    post_webhook(client, shop.id, shop_secret, "customers/upsert", body, delivery_id="once")
    assert process_inbox().done == 1
    row = db.session.scalar(sa.select(WebhookDelivery))
    assert (row.status, row.delivery_id, row.topic) == ("done", "once", "customers/upsert")
    assert row.body == b"" and row.headers == {}  # no email, no signature left to replay
    assert row.received_at and row.processed_at
    again = post_webhook(client, shop.id, shop_secret, "customers/upsert",
                         {**body, "email": "changed@example.com"}, delivery_id="once")
    assert again.status_code == 200 and again.json == {"status": "duplicate"}
    assert _count() == 1 and process_inbox().total == 0
    db.session.expire_all()
    assert db.session.scalar(sa.select(WebhookDelivery.body)) == b""


def test_same_delivery_id_in_two_shops_is_two_deliveries(client, shop, shop_secret):
    other = make_shop()
    from plugin.shops import credentials_for

    post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(),
                 delivery_id="shared")
    r = post_webhook(client, other.id, credentials_for(other).webhook_secret, "products/upsert",
                     product_body(), delivery_id="shared")
    assert r.json == {"status": "accepted"}
    assert _count() == 2


def test_oversized_body_gets_413(client, shop, shop_secret, app):
    big = product_body(description="x" * (app.config["WEBHOOK_MAX_BYTES"] + 10))
    r = post_webhook(client, shop.id, shop_secret, "products/upsert", big)
    assert r.status_code == 413
    assert r.json["code"] == 413
    assert _count() == 0


def test_malformed_json_gets_400(client, shop, shop_secret):
    r = post_webhook(client, shop.id, shop_secret, "products/upsert", None, raw=b'{"id": ')
    assert r.status_code == 400
    assert r.json["code"] == 400
    assert _count() == 0


def test_schema_invalid_body_gets_400_with_field_errors(client, shop, shop_secret):
    body = product_body()
    del body["title"]
    body["price"] = "not-a-price"
    r = post_webhook(client, shop.id, shop_secret, "products/upsert", body)
    assert r.status_code == 400
    assert "title" in r.json["errors"] and "price" in r.json["errors"]
    assert _count() == 0


def test_order_line_with_zero_quantity_is_rejected(client, shop, shop_secret):
    from tests.factories import order_body

    body = order_body(lines=[{"product_id": "p1", "quantity": 0, "price": "1.00"}])
    r = post_webhook(client, shop.id, shop_secret, "orders/upsert", body)
    assert r.status_code == 400
    assert any(k.startswith("lines") for k in r.json["errors"])


def test_unknown_topic_gets_400(client, shop, shop_secret):
    r = post_webhook(client, shop.id, shop_secret, "products/explode", product_body())
    assert r.status_code == 400
    assert r.get_json()["message"] == "Unknown topic 'products/explode'."
    assert _count() == 0


def test_unknown_shop_gets_404(client, shop_secret):
    r = post_webhook(client, "shp_doesnotexist", shop_secret, "products/upsert", product_body())
    assert r.status_code == 404
    assert r.json["message"]


def test_unknown_connector_gets_404(client, shop, shop_secret):
    r = post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(),
                     connector="nope")
    assert r.status_code == 404


def test_connector_that_is_not_the_shops_platform_gets_404(client, shop, shop_secret):
    r = post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(),
                     connector="shopify")
    assert r.status_code == 404


def test_verification_backend_down_answers_503_and_stores_nothing(client, shop, shop_secret,
                                                                  monkeypatch):
    from connectors.errors import TransientError
    from connectors.generic import GenericConnector

    def unavailable(self, headers, raw_body, *, now=None):
        raise TransientError("key set unreachable")

    monkeypatch.setattr(GenericConnector, "verify_webhook", unavailable)
    r = post_webhook(client, shop.id, shop_secret, "products/upsert", product_body())
    assert r.status_code == 503 and r.json["code"] == 503
    assert _count() == 0


def test_an_oversized_chunked_body_gets_413_not_a_signature_error(client, shop, shop_secret,
                                                                   app):
    """Without a Content-Length, Werkzeug cuts the stream at MAX_CONTENT_LENGTH: the cut
    body failed its signature (401, and a false "bad secret" warning) instead of 413."""
    import io

    from connectors.generic import sign_payload

    limit = app.config["WEBHOOK_MAX_BYTES"]
    body = b'{"id": "p1", "pad": "' + b"x" * (limit + 10) + b'"}'
    headers = {**sign_payload(shop_secret, body, topic="products/upsert", delivery_id="big-1"),
               "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    # as gunicorn hands it over: no Content-Length, the stream ends where the body does
    r = client.post(f"/webhooks/generic/{shop.id}", input_stream=io.BytesIO(body),
                    headers=headers, environ_overrides={"wsgi.input_terminated": True,
                                                        "CONTENT_LENGTH": ""})
    assert r.status_code == 413
    assert _count() == 0


def _lose_the_database() -> None:
    """The database goes away under the request: PostgreSQL ends this session's backend (a
    restart, a failover); SQLite, which has no server to lose, is made to fail as a locked
    or unreadable file does."""
    if db.engine.dialect.name == "postgresql":
        pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        killer = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
        with killer.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        killer.dispose()
        return
    import sqlite3

    raise sa.exc.OperationalError("INSERT INTO webhook_deliveries ...", {},
                                  sqlite3.OperationalError("database is locked"))


def test_the_database_lost_mid_store_answers_503_and_the_redelivery_is_stored(
        client, shop, shop_secret, monkeypatch):
    """Not a 200 without the row (the platform would not send it again), and not a bare
    500: a 503 with Retry-After says the sender's retry will do; it then lands."""
    from plugin.webhooks import receive

    stored = receive.store_delivery

    def dying(**values):
        _lose_the_database()
        return stored(**values)

    shop_id = shop.id
    monkeypatch.setattr(receive, "store_delivery", dying)
    body = product_body()
    r = post_webhook(client, shop_id, shop_secret, "products/upsert", body, delivery_id="d1")
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert r.get_json()["message"] == "The database is unavailable; retry later."
    monkeypatch.undo()
    db.session.remove()
    assert _count() == 0
    r = post_webhook(client, shop_id, shop_secret, "products/upsert", body, delivery_id="d1")
    assert r.status_code == 200 and r.get_json()["status"] == "accepted" and _count() == 1


def test_a_failing_statement_is_still_a_500(client, shop, shop_secret, monkeypatch):
    """Only the database being unreachable is a 503: a statement it refuses is our bug."""
    from plugin.webhooks import receive

    def refused(**values):
        raise sa.exc.IntegrityError("INSERT ...", {}, Exception("violates a constraint"))

    monkeypatch.setattr(receive, "store_delivery", refused)
    r = post_webhook(client, shop.id, shop_secret, "products/upsert", product_body())
    assert r.status_code == 500 and "Retry-After" not in r.headers
