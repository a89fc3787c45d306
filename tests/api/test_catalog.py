"""The per-process snapshot of live products used by the serving path."""

from __future__ import annotations

from datetime import timedelta

import pytest

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


def _saleor_product(pid: str, listing: dict) -> dict:
    """A Saleor product node in channel ``c`` with one priced variant."""
    return {"id": pid, "name": "Launch", "updatedAt": utcnow().isoformat(),
            "variants": [{"id": f"v-{pid}", "channelListings": [
                {"channel": {"slug": "c"}, "price": {"amount": 5, "currency": "USD"}}]}],
            "channelListings": [{"channel": {"slug": "c"}, **listing}]}


@pytest.mark.parametrize("listing", [
    # published with a future date: isPublished is already true, Saleor hides it until then
    {"isPublished": True, "publishedAt": "LAUNCH", "isAvailableForPurchase": True,
     "availableForPurchaseAt": "2020-01-01T00:00:00+00:00"},
    # sold from a future date: Saleor answers isAvailableForPurchase false until then
    {"isPublished": True, "publishedAt": None, "isAvailableForPurchase": False,
     "availableForPurchaseAt": "LAUNCH"},
])
def test_a_saleor_product_launching_later_is_live_only_from_its_launch(app, store, monkeypatch,
                                                                       listing):
    """Saleor sends nothing when a scheduled date passes, so the flags read at sync time
    are wrong on one side of it. The launch is stored and compared with the clock on every
    read: left out of serving and training before it, served after it with no new sync."""
    from connectors.saleor.mapping import product_from_node
    from plugin import training
    from plugin.ingestion.mapping import upsert_product
    from plugin.offers import catalog as offer_catalog

    app.config["API_CATALOG_CACHE_SECONDS"] = 0
    launch = utcnow() + timedelta(days=2)
    listing = {k: launch.isoformat() if v == "LAUNCH" else v for k, v in listing.items()}
    assert upsert_product(store.id, product_from_node(_saleor_product("p11", listing),
                                                      channel="c"))
    db.session.commit()
    assert set(catalog.live_products(store.id, ["p1", "p11"])) == {"p1"}
    data = training.load_interactions(store.id)
    assert not data.catalog.available[data.item_index("p11")]
    assert data.catalog.available[data.item_index("p1")]
    assert set(offer_catalog._products(store.id, ["p11"])) == set()  # no add-on offer either
    for module in (catalog, offer_catalog):
        monkeypatch.setattr(module, "utcnow", lambda: launch + timedelta(seconds=1))
    assert set(catalog.live_products(store.id, ["p1", "p11"])) == {"p1", "p11"}
    assert set(offer_catalog._products(store.id, ["p11"])) == {"p11"}
    monkeypatch.setattr(training, "utcnow", lambda: launch + timedelta(seconds=1))
    data = training.load_interactions(store.id)
    assert data.catalog.available[data.item_index("p11")]
