"""Serving honours merchant rules, new orders, sub-profiles, Redis and sendBeacon."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from plugin import cache
from plugin.api.access import forget_shops
from plugin.extensions import db
from plugin.models import Interaction, Product, RecommendationCache
from plugin.models.types import utcnow
from plugin.webhooks import inbox
from tests.factories import FakeRedis, order_body, post_webhook

ANON = "anon_" + "b" * 22


@pytest.fixture
def stocked(shop):
    now = utcnow()
    for k in range(12):
        db.session.add(Product(shop_id=shop.id, external_id=f"p{k}", title=f"Item {k}",
                               price=Decimal("2.00"), currency="GBP", available=True,
                               categories=["Mugs" if k % 2 else "Bags"],
                               tags=["gift"] if k == 7 else [], vendor="Acme",
                               source_updated_at=now))
    for k in range(40):  # popularity: lower ids more popular
        item = f"p{k % 6}"
        db.session.add(Interaction(shop_id=shop.id, shopper_id=f"c{k}", kind="purchase",
                                   product_external_id=item, quantity=1,
                                   occurred_at=now - timedelta(days=1), context={}))
    shop.settings = {"holdout_share": 0}
    db.session.commit()
    forget_shops()
    return shop


def _recs(client, shop, **params):
    r = client.get("/api/v1/recommendations", query_string={"key": shop.widget_key,
                                                            "placement": "for_you", **params},
                   headers={"X-Shopkeeper-Shopper": ANON})
    assert r.status_code == 200, r.get_json()
    return [i["product_id"] for i in r.get_json()["items"]]


def _rules(shop, rules):
    shop.settings = {**shop.settings, "merchandising": rules}
    db.session.commit()
    forget_shops()


def test_excluded_category_never_appears_and_pinned_product_always_does(client, stocked):
    assert any(p in _recs(client, stocked) for p in ("p0", "p2", "p4"))  # Bags present
    _rules(stocked, [{"action": "exclude", "field": "category", "value": "Bags"},
                     {"action": "pin", "field": "product", "value": "p11"}])
    shown = _recs(client, stocked)
    assert shown[0] == "p11"
    assert not {"p0", "p2", "p4"} & set(shown)


def test_pinned_unavailable_product_is_still_filtered(client, stocked):
    db.session.execute(sa.update(Product).where(Product.external_id == "p11")
                       .values(available=False))
    _rules(stocked, [{"action": "pin", "field": "product", "value": "p11"}])
    assert "p11" not in _recs(client, stocked)


def _version(shop_id: str) -> int:
    from plugin.models import ModelVersion

    mv = ModelVersion(shop_id=shop_id, version="v1", status="ready")
    db.session.add(mv)
    db.session.flush()
    return mv.id


def test_a_new_order_drops_the_shoppers_cached_list(app, client, shop, shop_secret):
    db.session.add(RecommendationCache(shop_id=shop.id, shopper_id="c1",
                                       model_version_id=_version(shop.id),
                                       items=[["p1", 1.0, "itemknn", "because"]]))
    db.session.commit()
    post_webhook(client, shop.id, shop_secret, "orders/upsert", order_body())
    inbox.process_inbox()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RecommendationCache)) == 0


def test_sendbeacon_may_carry_the_anonymous_id_in_the_query(client, stocked):
    r = client.post(f"/api/v1/events?key={stocked.widget_key}&shopper={ANON}",
                    data='{"events": [{"type": "view", "product_id": "p1"}]}',
                    content_type="text/plain")
    assert r.status_code == 202 and r.get_json() == {"stored": 1}
    bad = client.post(f"/api/v1/events?key={stocked.widget_key}&shopper=c1",
                      data='{"events": [{"type": "view", "product_id": "p1"}]}',
                      content_type="text/plain")
    assert bad.status_code == 422  # a customer id is never an identity



def test_redis_serves_the_cached_list_and_is_invalidated_by_an_order(app):
    from plugin.api import sources
    from plugin.api.sources import ServedVersion, cached

    cache.reset()
    app.config["REDIS_URL"] = "redis://fake"
    fake = FakeRedis()
    cache._clients["redis://fake"] = fake
    from tests.factories import make_shop

    shop = make_shop()
    vid = _version(shop.id)
    db.session.add(RecommendationCache(shop_id=shop.id, shopper_id="c1", model_version_id=vid,
                                       items=[["p1", 1.0, "itemknn", "because"]]))
    db.session.commit()
    version = ServedVersion(id=vid, artifact_dir="", trained_until=None, popular=())
    assert [r.item for r in cached(shop.id, "c1", version)] == ["p1"]  # table, then Redis
    db.session.execute(sa.delete(RecommendationCache))
    db.session.commit()
    assert [r.item for r in cached(shop.id, "c1", version)] == ["p1"]  # from Redis
    from plugin.ingestion.mapping import forget_cached_recommendations

    forget_cached_recommendations(shop.id, "c1")
    assert cached(shop.id, "c1", version) is None
    assert sources.cache_key(shop.id, "c1") not in fake.data
    cache.reset()
