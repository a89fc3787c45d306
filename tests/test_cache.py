"""Redis is optional: a hit is used, and Redis down never breaks a request."""

from __future__ import annotations

import socket
import time

import pytest

from plugin import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.reset()
    yield
    cache.reset()


class FakeRedis:
    def __init__(self):
        self.data = {}

    def get(self, key):
        return self.data.get(key)

    def setex(self, key, ttl, value):
        self.data[key] = value.encode()

    def delete(self, *keys):
        for k in keys:
            self.data.pop(k, None)


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
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{_closed_port()}/0"
    start = time.perf_counter()
    assert cache.get_json("k") is None
    cache.set_json("k", {"a": 1}, 60)  # skipped: breaker open
    assert cache.get_json("k") is None
    assert time.perf_counter() - start < 1.0
    assert cache._open_until  # breaker recorded


def test_redis_down_still_serves_recommendations(app, client, shop):
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{_closed_port()}/0"
    r = client.get(f"/api/v1/recommendations?key={shop.widget_key}&placement=for_you",
                   headers={"X-Shopkeeper-Shopper": "anon_" + "a" * 22})
    assert r.status_code == 200
    assert "items" in r.get_json()
