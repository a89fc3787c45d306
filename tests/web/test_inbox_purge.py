"""Applied inbox rows are deleted after the retention window, in batches; nothing else is,
and a redelivery of a purged id is applied again without undoing newer data."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from plugin.config import Config
from plugin.extensions import db
from plugin.models import Interaction, Product, WebhookDelivery
from plugin.models.types import utcnow
from plugin.webhooks import inbox
from plugin.webhooks.purge import purge_done
from tests.factories import make_shop, order_body, post_webhook, product_body


def _row(shop_id: str, delivery_id: str, status: str, *, age_days: float,
         last_error: str | None = None) -> None:
    at = utcnow() - timedelta(days=age_days)
    body = b"" if status == "done" else b'{"id": "p1"}'
    db.session.add(WebhookDelivery(
        shop_id=shop_id, connector="generic", topic="products/upsert", delivery_id=delivery_id,
        headers={}, body=body, status=status, received_at=at, next_attempt_at=at,
        processed_at=at if status == "done" else None, last_error=last_error))


def _left() -> dict[str, str]:
    db.session.expire_all()
    return {r.delivery_id: r.status for r in db.session.scalars(sa.select(WebhookDelivery))}


def test_only_done_rows_past_the_cutoff_go_and_in_bounded_batches(app):
    shop = make_shop()
    for i in range(5):
        _row(shop.id, f"old-done-{i}", "done", age_days=20)
    _row(shop.id, "closed-unapplied", "done", age_days=20, last_error=inbox.EXPIRED_NOT_APPLIED)
    _row(shop.id, "recent-done", "done", age_days=1)
    for status in ("pending", "processing", "failed", "dead"):  # in flight or kept for retry
        _row(shop.id, f"old-{status}", status, age_days=400)
    db.session.commit()
    deletes: list[int] = []

    def count(conn, cursor, statement, *_):
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append(cursor.rowcount)

    sa.event.listen(db.engine, "after_cursor_execute", count)
    try:
        assert purge_done(utcnow() - timedelta(days=14), batch_size=2) == 6
    finally:
        sa.event.remove(db.engine, "after_cursor_execute", count)
    assert deletes == [2, 2, 2, 0]  # one short transaction per batch, none holding them all
    assert _left() == {"recent-done": "done", "old-pending": "pending",
                       "old-processing": "processing", "old-failed": "failed",
                       "old-dead": "dead"}
    assert inbox.inbox_counts(shop.id) == {"done": 1, "pending": 1, "processing": 1,
                                           "failed": 1, "dead": 1}


def test_the_hourly_job_reads_the_retention_from_the_config(app):
    from plugin.jobs import SCHEDULED_JOBS, purge_inbox

    assert SCHEDULED_JOBS["inbox_purge"] == (purge_inbox, 3600)
    assert Config.INBOX_DONE_RETENTION_DAYS == 14
    shop = make_shop()
    _row(shop.id, "four-days", "done", age_days=4)
    _row(shop.id, "two-days", "done", age_days=2)
    db.session.commit()
    assert purge_inbox() == 0  # both within the default 14 days
    app.config["INBOX_DONE_RETENTION_DAYS"] = 3
    assert purge_inbox() == 1
    assert _left() == {"two-days": "done"}


def _product() -> Product:
    db.session.expire_all()
    return db.session.scalar(sa.select(Product).filter_by(external_id="p1"))


def test_a_redelivery_of_a_purged_id_cannot_overwrite_newer_data(app, client, shop,
                                                                 shop_secret):
    """Once its row is purged a redelivery is no longer a duplicate: it is stored and
    applied again, and only the record's own updated_at keeps it from undoing newer data."""
    from plugin.jobs import purge_inbox

    old = product_body(title="Old", price="10.00", updated_at="2026-01-01T00:00:00Z")
    new = product_body(title="New", price="8.00", updated_at="2026-01-05T00:00:00Z")
    post_webhook(client, shop.id, shop_secret, "products/upsert", old, delivery_id="d-old")
    post_webhook(client, shop.id, shop_secret, "products/upsert", new, delivery_id="d-new")
    post_webhook(client, shop.id, shop_secret, "orders/upsert", order_body(),
                 delivery_id="d-order")
    assert inbox.process_inbox().done == 3
    assert purge_inbox(now=utcnow() + timedelta(days=15)) == 3
    assert inbox.inbox_counts(shop.id) == {}

    for delivery_id, topic, body in (("d-old", "products/upsert", old),
                                     ("d-order", "orders/upsert", order_body())):
        r = post_webhook(client, shop.id, shop_secret, topic, body, delivery_id=delivery_id)
        assert r.get_json()["status"] == "accepted"  # not recognised any more
    assert inbox.process_inbox().done == 2
    p = _product()
    assert (p.title, str(p.price)) == ("New", "8.0000")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Interaction)) == 1
