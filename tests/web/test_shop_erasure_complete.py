"""A shop's erasure (uninstall + grace, ``shop/redact``, admin) leaves nothing of it: no
row in any table, no file, no Redis copy; another shop keeps all of its own."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from plugin import cache
from plugin.api.sources import cache_key
from plugin.extensions import db
from plugin.models import (
    AdminLinkUse,
    AdminSession,
    AnonymousLink,
    AuditLog,
    Cart,
    ClickAttribution,
    Customer,
    ErasedExport,
    Impression,
    Interaction,
    ModelVersion,
    Nudge,
    Offer,
    OfferKey,
    OfferLedgerEntry,
    Order,
    OrderLine,
    Product,
    PromptState,
    RecommendationCache,
    RedactedOrder,
    Redemption,
    ShopperConsent,
    SubProfile,
    SyncState,
    Variant,
    WebhookDelivery,
)
from plugin.models.types import utcnow
from plugin.privacy import record_data_request
from plugin.shops import erase_shop, mark_uninstalled, purge_uninstalled
from tests.factories import FakeRedis, make_shop


def _fill(shop_id: str, tag: str) -> None:
    """One row in every table that holds a shop's data."""
    now = utcnow()
    product = Product(shop_id=shop_id, external_id="p1", source_updated_at=now)
    order = Order(shop_id=shop_id, external_id="o1", customer_external_id="c1", currency="GBP",
                  created_at=now, source_updated_at=now)
    order.lines = [OrderLine(product_external_id="p1", quantity=1, price=Decimal(1))]
    version = ModelVersion(shop_id=shop_id, version="v1", status="ready")
    offer = Offer(shop_id=shop_id, public_id=f"of-{tag}", shopper_id="c1", cart_hash="h",
                  stage="idle_cart", status="accepted")
    subprofile = SubProfile(shop_id=shop_id, owner_id="c1", name="Maya")
    db.session.add_all([product, order, version, offer, subprofile])
    db.session.flush()
    db.session.add_all([
        Variant(shop_id=shop_id, product_id=product.id, external_id="v1"),
        AdminSession(id=f"sess-{tag}", shop_id=shop_id, via="link"),
        AdminLinkUse(nonce=f"nonce-{tag}", shop_id=shop_id, expires_at=now),
        AuditLog(shop_id=shop_id, action="test"),
        Interaction(shop_id=shop_id, shopper_id="c1", product_external_id="p1", kind="view",
                    occurred_at=now),
        WebhookDelivery(shop_id=shop_id, connector="generic", topic="orders/upsert",
                        delivery_id="d1", body=b'{"customer_id": "c1"}'),
        Redemption(shop_id=shop_id, offer_id=offer.id, order_external_id="o1"),
        RedactedOrder(shop_id=shop_id, order_external_id="o2"),
        ErasedExport(shop_id=shop_id, name="customer-0000000000000000-1.json"),
        OfferLedgerEntry(shop_id=shop_id, offer_id=offer.id, entry="reserve",
                         amount=Decimal(1)),
        OfferKey(shop_id=shop_id, kid=f"k-{tag}", salt="s"),
        Nudge(shop_id=shop_id, shopper_id="c1", stage="idle_cart", delivery_id=f"nd-{tag}"),
        ClickAttribution(shop_id=shop_id, order_external_id="o1", product_external_id="p1",
                         rec_id="r.0", revenue=Decimal(1), clicked_at=now),
        Cart(shop_id=shop_id, external_id="cart1", customer_external_id="c1", lines=[],
             source_updated_at=now),
        RecommendationCache(shop_id=shop_id, shopper_id="c1", model_version_id=version.id,
                            items=[["p1", 1.0, "itemknn", "because"]]),
        Impression(shop_id=shop_id, rec_id=f"r-{tag}", shopper_id="c1", placement="for_you"),
        ShopperConsent(shop_id=shop_id, shopper_id="c1", granted=True),
        Customer(shop_id=shop_id, external_id="c1", email_hash="x" * 64, source_updated_at=now),
        AnonymousLink(shop_id=shop_id, anonymous_id="anon_1", customer_id="c1"),
        PromptState(shop_id=shop_id, shopper_id="c1", active_subprofile_id=subprofile.id),
        SyncState(shop_id=shop_id, resource="orders"),
    ])
    db.session.commit()


def _rows(shop_id: str) -> dict[str, int]:
    """Rows per table that belong to the shop (order lines through their order)."""
    out = {}
    for table in db.metadata.sorted_tables:
        if table.name == "order_lines":
            where = table.c.order_id.in_(sa.select(Order.id).where(Order.shop_id == shop_id))
        elif "shop_id" in table.c:
            where = table.c.shop_id == shop_id
        elif table.name == "shops":
            where = table.c.id == shop_id
        else:
            continue  # the scheduler's lease and job runs belong to no shop
        out[table.name] = db.session.scalar(sa.select(sa.func.count()).select_from(table)
                                            .where(where))
    return out


def test_erasing_a_shop_leaves_no_row_file_or_redis_copy_of_it(app):
    fake = FakeRedis()
    cache.reset()
    app.config["REDIS_URL"] = "redis://fake"
    cache._clients["redis://fake"] = fake
    try:
        a, b = make_shop(), make_shop()
        a_id, b_id = a.id, b.id
        for tag, shop in (("a", a), ("b", b)):
            _fill(shop.id, tag)
            record_data_request(shop.id, "c1")
            (Path(current_app.config["MODEL_DIR"]) / shop.id / "v1").mkdir(parents=True)
            cache.set_json(cache_key(shop.id, "c1"), {"v": 1, "items": []}, 60)
        db.session.commit()
        before_b = _rows(b_id)
        empty = sorted(name for name, n in _rows(a_id).items() if n == 0)
        assert empty == [], f"the test leaves these tables empty: fill them in _fill: {empty}"

        mark_uninstalled(a, at=utcnow() - timedelta(days=3))  # past the grace period
        db.session.commit()
        assert purge_uninstalled() == [a_id]

        assert {name: n for name, n in _rows(a_id).items() if n} == {}
        assert _rows(b_id) == before_b
        assert not (Path(current_app.config["MODEL_DIR"]) / a_id).exists()
        assert (Path(current_app.config["MODEL_DIR"]) / b_id / "v1").is_dir()
        assert cache_key(a_id, "c1") not in fake.data
        assert cache_key(b_id, "c1") in fake.data
    finally:
        cache.reset()


def test_shop_erasure_runs_again_harmlessly(app):
    shop = make_shop()
    shop_id = shop.id
    _fill(shop_id, "x")
    erase_shop(shop_id)
    db.session.commit()
    erase_shop(shop_id)  # shop/redact after the grace-period purge already ran
    db.session.commit()
    assert {name: n for name, n in _rows(shop_id).items() if n} == {}
