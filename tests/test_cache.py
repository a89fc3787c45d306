"""Redis is optional: a hit is used, and Redis down never breaks a request."""

from __future__ import annotations

import socket
import time

import pytest

from plugin import cache
from tests.factories import FakeRedis


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.reset()
    yield
    cache.reset()



def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when we return


def test_without_redis_everything_is_a_miss(app):
    app.config["REDIS_URL"] = ""
    cache.set_json("k", {"a": 1}, 60)
    assert cache.get_json("k") is None


def test_round_trip_through_a_client(app):
    app.config["REDIS_URL"] = "redis://fake"
    cache._clients["redis://fake"] = FakeRedis()
    cache.set_json("k", {"items": [1, 2]}, 60)
    assert cache.get_json("k") == {"items": [1, 2]}
    cache.delete("k")
    assert cache.get_json("k") is None


def test_redis_down_fails_fast_and_opens_the_breaker(app):
    """Fast by construction (short socket timeouts), then not asked again while the
    breaker is open; asserted without a stopwatch, which a loaded CI machine defeats."""
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    app.config["REDIS_URL"] = url
    assert cache.get_json("k") is None  # the one real attempt: refused
    client = cache._clients[url]
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] <= 0.1 and kwargs["socket_connect_timeout"] <= 0.1
    calls = []
    client.get = lambda *a, **k: calls.append("get")
    client.setex = lambda *a, **k: calls.append("setex")
    cache.set_json("k", {"a": 1}, 60)  # skipped: breaker open
    assert cache.get_json("k") is None
    assert calls == []
    assert cache._open_until[url] > time.monotonic() + 10  # open for a while


def test_redis_down_still_serves_the_cached_list(app, client, shop, shop_secret):
    """The personal list is read through Redis; with Redis down it comes from the table."""
    from decimal import Decimal

    import jwt

    from plugin.api.access import forget_shops
    from plugin.extensions import db
    from plugin.models import ModelVersion, Product, RecommendationCache
    from plugin.models.types import utcnow

    app.config["REDIS_URL"] = f"redis://127.0.0.1:{_closed_port()}/0"
    now = utcnow()
    db.session.add(Product(shop_id=shop.id, external_id="p1", title="Tea", currency="GBP",
                           price=Decimal("3.00"), available=True, source_updated_at=now))
    version = ModelVersion(shop_id=shop.id, version="v1", status="ready", finished_at=now)
    db.session.add(version)
    db.session.flush()
    db.session.add(RecommendationCache(shop_id=shop.id, shopper_id="c1",
                                       model_version_id=version.id,
                                       items=[["p1", 1.0, "itemknn", "because you bought X"]]))
    shop.settings = {"holdout_share": 0}
    db.session.commit()
    forget_shops()
    token = jwt.encode({"sub": "c1", "shop": shop.id, "iat": int(time.time()),
                        "exp": int(time.time()) + 600}, shop_secret, algorithm="HS256")
    r = client.get(f"/api/v1/recommendations?key={shop.widget_key}&placement=for_you",
                   headers={"X-Shopkeeper-Customer-Token": token})
    assert r.status_code == 200
    first = r.get_json()["items"][0]
    assert first["product_id"] == "p1" and first["reason"] == "because you bought X"
    assert cache._open_until  # Redis was tried, failed fast, breaker open
