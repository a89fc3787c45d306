"""A grocery-like shop: adults buying adult categories, some parents buying baby food."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from plugin.api import model_store, sources
from plugin.extensions import db
from plugin.models import Interaction, Product, Shop
from plugin.subprofiles import detection, recs
from tests.api.conftest import anon_id, token_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ADULT = ["Coffee", "Wine", "Cheese", "Bread", "Olives", "Beer"]
CATEGORIES = [*ADULT, "Baby Foods", "Dog Foods"]
HOST = "host"


def items_of(category: str) -> list[str]:
    return [f"{category.split()[0].lower()}{k}" for k in range(4)]


BABY = items_of("Baby Foods")
HOST_ITEMS = items_of("Coffee") + items_of("Wine") + items_of("Cheese")


def add_order(shop_id: str, shopper: str, order_id: str, items: list[str], at: datetime,
              *, commit: bool = True, **extra) -> None:
    for item in items:
        db.session.add(Interaction(shop_id=shop_id, shopper_id=shopper, kind="purchase",
                                   product_external_id=item, order_external_id=order_id,
                                   quantity=1, occurred_at=at, context={}, **extra))
    if commit:
        db.session.commit()


def _history(shop_id: str) -> None:
    """30 shoppers; c0..c9 are parents who add baby food; the host buys coffee/wine/cheese."""
    for u in range(30):
        favourite = [ADULT[(u + k) % len(ADULT)] for k in range(3)]
        for b in range(5):
            items = [items_of(favourite[(b + j) % 3])[(u + b + j) % 4] for j in range(3)]
            if u < 10:
                items.append(BABY[(u + b) % 4])
            add_order(shop_id, f"c{u}", f"c{u}-{b}", sorted(set(items)),
                      T0 + timedelta(days=7 * b, minutes=u), commit=False)
    for b in range(4):
        add_order(shop_id, HOST, f"h-{b}", HOST_ITEMS[3 * b:3 * b + 3],
                  T0 + timedelta(days=7 * b, hours=5), commit=False)
    db.session.commit()


@pytest.fixture(autouse=True)
def _fresh_process_state():
    model_store.LOADED.clear()
    sources.forget_popular()
    detection.forget()
    for shop_id, sub in recs.cached_keys():
        recs.forget(shop_id, sub)
    yield
    model_store.LOADED.clear()
    detection.forget()


@pytest.fixture
def store(shop) -> Shop:
    shop.settings = {"allowed_origins": ["https://store.example"], "holdout_share": 0}
    for category in CATEGORIES:
        for pid in items_of(category):
            db.session.add(Product(shop_id=shop.id, external_id=pid, title=f"{category} {pid}",
                                   url=f"https://shop.example/{pid}", price=Decimal("4.00"),
                                   currency="GBP", categories=[category], tags=[],
                                   source_updated_at=T0))
    db.session.commit()
    _history(shop.id)
    return shop


@pytest.fixture
def trained(store) -> Shop:
    from plugin.training import train_shop

    train_shop(store.id)
    return store


class Sub:
    """Calls ``/api/v1/subprofiles`` as the widget of one shop would."""

    def __init__(self, client, shop: Shop, headers: dict[str, str]):
        self.client, self.shop, self.headers = client, shop, headers

    def _q(self) -> dict[str, str]:
        return {"key": self.shop.widget_key}

    def get(self, path: str = "", **params):
        return self.client.get(f"/api/v1/subprofiles{path}",
                               query_string={**self._q(), **params}, headers=self.headers)

    def post(self, path: str, body: dict):
        return self.client.post(f"/api/v1/subprofiles{path}", query_string=self._q(),
                                json=body, headers=self.headers)

    def patch(self, path: str, body: dict):
        return self.client.patch(f"/api/v1/subprofiles{path}", query_string=self._q(),
                                 json=body, headers=self.headers)

    def delete(self, path: str):
        return self.client.delete(f"/api/v1/subprofiles{path}", query_string=self._q(),
                                  headers=self.headers)

    def create(self, name: str, age_band: str | None = None) -> int:
        response = self.post("", {"name": name, "age_band": age_band})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]


def customer(client, shop: Shop, customer_id: str = HOST, anonymous: str | None = None) -> Sub:
    headers = {"X-Shopkeeper-Customer-Token": token_for(shop, customer_id)}
    if anonymous:
        headers["X-Shopkeeper-Shopper"] = anonymous
    return Sub(client, shop, headers)


def anonymous(client, shop: Shop, anon: str | None = None) -> Sub:
    return Sub(client, shop, {"X-Shopkeeper-Shopper": anon or anon_id()})


@pytest.fixture
def host(client, store) -> Sub:
    return customer(client, store)
