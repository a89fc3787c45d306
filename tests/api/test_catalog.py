"""The per-process snapshot of live products used by the serving path."""

from __future__ import annotations

from plugin.api import catalog
from plugin.extensions import db
from plugin.models import Product
from plugin.models.types import utcnow
from tests.api.conftest import PRODUCTS


def _delete(shop_id: str, pid: str) -> None:
    product = db.session.query(Product).filter_by(shop_id=shop_id, external_id=pid).one()
    product.deleted_at = utcnow()
    db.session.commit()


def test_snapshot_and_query_agree(app, store):
    ids = [*PRODUCTS, "nope"]
    _delete(store.id, "p3")
    direct = catalog.live_products(store.id, ids)
    app.config["API_CATALOG_CACHE_SECONDS"] = 60
    assert catalog.live_products(store.id, ids) == direct
    assert set(direct) == set(PRODUCTS) - {"p3"}
    assert direct["p1"].title == "Product p1"


def test_snapshot_is_reread_after_its_ttl(app, store, monkeypatch):
    app.config["API_CATALOG_CACHE_SECONDS"] = 5
    clock = [1000.0]
    monkeypatch.setattr(catalog.time, "monotonic", lambda: clock[0])
    assert "p2" in catalog.live_products(store.id, ["p2"])
    _delete(store.id, "p2")
    clock[0] += 4.9
    assert "p2" in catalog.live_products(store.id, ["p2"])  # within the documented delay
    clock[0] += 0.2
    assert catalog.live_products(store.id, ["p2"]) == {}


def test_big_catalogs_are_queried_per_request(app, store, monkeypatch):
    app.config["API_CATALOG_CACHE_SECONDS"] = 60
    monkeypatch.setattr(catalog, "MAX_SNAPSHOT", 3)
    assert set(catalog.live_products(store.id, ["p1", "p2"])) == {"p1", "p2"}
    _delete(store.id, "p2")  # no snapshot held: the next call sees it at once
    assert set(catalog.live_products(store.id, ["p1", "p2"])) == {"p1"}


def test_snapshots_are_per_shop(app, store):
    from tests.api.conftest import add_products
    from tests.factories import make_shop

    app.config["API_CATALOG_CACHE_SECONDS"] = 60
    other = make_shop()
    add_products(other.id, ["b1"])
    assert set(catalog.live_products(store.id, ["p1", "b1"])) == {"p1"}
    assert set(catalog.live_products(other.id, ["p1", "b1"])) == {"b1"}
