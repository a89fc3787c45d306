"""A small shop with a known purchase history, trained, plus helpers to call the API."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from plugin import merchandising
from plugin.api import access, catalog, model_store, sources
from plugin.api.identity import mint_customer_token
from plugin.extensions import db
from plugin.models import Interaction, Product, Shop
from plugin.shops import credentials_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PRODUCTS = [f"p{i}" for i in range(1, 11)]
# Who bought what, order by order: p1/p2/p3 go together, p4/p5 too; p9 is everyone's staple.
ORDERS = {
    "c1": [["p1", "p2", "p9"], ["p1", "p3", "p9"]],
    "c2": [["p1", "p2", "p3"], ["p9"]],
    "c3": [["p4", "p5", "p9"], ["p4", "p6"]],
    "c4": [["p4", "p5"], ["p5", "p6", "p9"]],
    "c5": [["p2", "p3"], ["p9", "p7"]],
}


def anon_id() -> str:
    return "anon_" + secrets.token_urlsafe(16)[:22]


def add_products(shop_id: str, ids: list[str], *, prefix: str = "") -> None:
    for pid in ids:
        db.session.add(Product(shop_id=shop_id, external_id=pid, title=f"{prefix}Product {pid}",
                               url=f"https://shop.example/{pid}", image_url=None,
                               price=Decimal("9.50"), currency="GBP", categories=[], tags=[],
                               source_updated_at=T0))
    db.session.commit()


def add_order(shop_id: str, customer: str, order_id: str, items: list[str], at: datetime,
              **extra) -> None:
    for item in items:
        db.session.add(Interaction(shop_id=shop_id, shopper_id=customer, kind="purchase",
                                   product_external_id=item, order_external_id=order_id,
                                   quantity=1, occurred_at=at, context={}, **extra))
    db.session.commit()


def load_history(shop_id: str, orders: dict[str, list[list[str]]] = ORDERS) -> None:
    for customer, baskets in orders.items():
        for k, items in enumerate(baskets):
            add_order(shop_id, customer, f"{shop_id}-{customer}-{k}", items,
                      T0 + timedelta(days=7 * k + len(customer)))


def weekly_grocer(shop: Shop, *, seat: bool = False,
                  categories: dict[str, str] | None = None) -> None:
    """The grocer the repurchase-rule tests share, before its fit: thirty shoppers (``c00``
    to ``c29``) buy milk (``p1``), bread (``p2``) and ``p3`` or ``p4`` every week for four
    weeks, so milk is a consumable due every seven days and tops the popular list; with
    ``seat``, each also buys a toilet seat once, in the second week (a durable).
    ``categories`` sets one category on a product. No holdout, one allowed origin."""
    shop.settings = {"allowed_origins": ["https://store.example"], "holdout_share": 0}
    db.session.commit()
    add_products(shop.id, [*PRODUCTS, "seat"] if seat else PRODUCTS)
    for pid, category in (categories or {}).items():
        db.session.query(Product).filter_by(shop_id=shop.id, external_id=pid).update(
            {"categories": [category]})
    db.session.commit()
    for c in range(30):
        for week in range(4):
            items = ["p1", "p2", "p3" if week % 2 else "p4"]
            if seat and week == 1:
                items.append("seat")
            add_order(shop.id, f"c{c:02d}", f"o{c}-{week}", items,
                      T0 + timedelta(days=7 * week, hours=c))


def fitted_recommender(shop: Shop) -> Any:
    """Trains the shop and returns the recommender the API now serves from (a shopkeeper
    model), for a fixture to check what it learned before its tests rely on it."""
    from plugin.training import train_shop

    train_shop(shop.id)
    version = sources.active_version(shop.id)
    return model_store.get_model(shop.id, version.id, version.artifact_dir).recommender


def token_for(shop: Shop, customer: str, **kwargs) -> str:
    return mint_customer_token(shop.id, credentials_for(shop).webhook_secret, customer, **kwargs)


@pytest.fixture(autouse=True)
def _fresh_process_state(app):
    """Per-process caches must not leak between tests; impressions are written at once and
    products read per request (the buffered and snapshot modes have their own tests)."""
    app.config["API_IMPRESSION_FLUSH_SECONDS"] = 0
    app.config["API_CATALOG_CACHE_SECONDS"] = 0  # test_catalog.py covers the snapshot
    catalog.forget_catalogs()
    model_store.LOADED.clear()
    sources.forget_versions()
    access.forget_shops()
    merchandising.forget_rules()
    yield
    model_store.LOADED.clear()


@pytest.fixture
def store(shop):
    """The ``shop`` with products, a purchase history, an allowed origin and no holdout."""
    shop.settings = {"allowed_origins": ["https://store.example"], "holdout_share": 0}
    db.session.commit()
    add_products(shop.id, PRODUCTS)
    load_history(shop.id)
    return shop


@pytest.fixture
def trained(store):
    from plugin.training import train_shop

    train_shop(store.id)
    return store


class Api:
    """Calls ``/api/v1`` as a widget of one shop would."""

    def __init__(self, client, shop: Shop):
        self.client = client
        self.shop = shop

    def recs(self, placement: str = "for_you", *, headers: dict | None = None, **params):
        params = {"key": self.shop.widget_key, "placement": placement, **params}
        return self.client.get("/api/v1/recommendations", query_string=params,
                               headers=headers or {})

    def events(self, events: list[dict], *, headers: dict | None = None):
        return self.client.post("/api/v1/events", query_string={"key": self.shop.widget_key},
                                json={"events": events}, headers=headers or {})

    def consent(self, granted, *, headers: dict | None = None):
        return self.client.post("/api/v1/consent", query_string={"key": self.shop.widget_key},
                                json={"granted": granted}, headers=headers or {})


@pytest.fixture
def api(client, store) -> Api:
    return Api(client, store)


def customer_headers(shop: Shop, customer: str, **kwargs) -> dict[str, str]:
    return {"X-Shopkeeper-Customer-Token": token_for(shop, customer, **kwargs),
            "X-Shopkeeper-Shopper": anon_id()}


def ids(response) -> list[str]:
    return [i["product_id"] for i in response.get_json()["items"]]
