"""An offer quoted for a product the shop stops selling (unpublished from the storefront,
sold out, deleted) stops standing: the products change withdraws it, and accepting or
showing it again checks the catalogue again.

The offer is scoped to p2 and p3 (p1 is excluded from offers, so the policy keeps the
code to the eligible items: ``test_discounts``); the generic connector makes the discount.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

import connectors
from connectors.base import Connector, ConnectorMeta, Credentials
from connectors.records import Deletion, Page, WebhookEvent
from connectors.records import Product as ProductRecord
from plugin import shops
from plugin.extensions import db
from plugin.ingestion.apply import apply_event
from plugin.ingestion.sync import run_sync
from plugin.models import Offer, Product
from plugin.models.types import utcnow
from tests.offers.conftest import accept, configure, make_idle, quote

CART = {"currency": "GBP", "lines": [
    {"product_id": "p1", "quantity": 1, "price": "100.00"},
    {"product_id": "p2", "quantity": 1, "price": "50.00"},
    {"product_id": "p3", "quantity": 1, "price": "50.00"}]}


def _quoted(client, shop) -> dict:
    configure(shop, excluded_products=["p1"])
    make_idle(shop.id)
    offer = quote(client, shop, CART).get_json()["offer"]
    assert offer is not None and offer["product_ids"] == ["p2", "p3"]
    return offer


def _status(offer: dict) -> str:
    db.session.expire_all()
    return db.session.scalar(sa.select(Offer.status).where(Offer.public_id == offer["id"]))


def _take_off_sale(shop_id: str, pid: str, **change) -> None:
    """The mirrored product changed by a path that withdraws nothing (an admin fix-up)."""
    db.session.execute(sa.update(Product).where(Product.shop_id == shop_id,
                                                Product.external_id == pid).values(**change))
    db.session.commit()


@pytest.mark.parametrize("change", [
    {"available": False},
    {"deleted_at": utcnow()},
    {"available_from": utcnow() + timedelta(days=3)},
], ids=["unavailable", "deleted", "not-launched"])
def test_an_offer_for_a_product_no_longer_on_sale_is_refused_at_accept(
        client, shop, shop_secret, change):
    offer = _quoted(client, shop)
    _take_off_sale(shop.id, "p3", **change)
    res = accept(client, shop, offer["token"], CART)
    assert res.status_code == 409, res.get_json()
    assert "withdrawn" in res.get_json()["message"]
    assert _status(offer) == "superseded"


def test_the_same_cart_is_not_shown_an_offer_for_a_product_no_longer_on_sale(
        client, shop, shop_secret):
    offer = _quoted(client, shop)
    assert quote(client, shop, CART).get_json()["offer"]["id"] == offer["id"]  # same answer
    _take_off_sale(shop.id, "p3", available=False)
    again = quote(client, shop, CART).get_json()["offer"]
    assert again is None or again["id"] != offer["id"]
    assert _status(offer) == "superseded"


def test_an_offer_for_an_unrelated_product_change_stands(client, shop, shop_secret):
    offer = _quoted(client, shop)
    _take_off_sale(shop.id, "p1", available=False)  # in the cart, but not the offer's scope
    apply_event(shop, WebhookEvent("products/upsert", "d1", _record("p1", available=False)))
    db.session.commit()
    assert _status(offer) == "offered"
    assert accept(client, shop, offer["token"], CART).status_code == 200


def _record(pid: str, *, available: bool) -> ProductRecord:
    return ProductRecord(external_id=pid, title=f"Product {pid}", price=Decimal("10000.00"),
                         currency="GBP", available=available,
                         updated_at=utcnow() + timedelta(seconds=1))


@pytest.mark.parametrize("topic", ["products/upsert", "products/delete"])
def test_a_products_delivery_taking_the_product_off_sale_withdraws_the_offer(
        client, shop, shop_secret, topic):
    offer = _quoted(client, shop)
    record = _record("p3", available=False) if topic == "products/upsert" else \
        Deletion("product", "p3", utcnow() + timedelta(seconds=1))
    apply_event(shop, WebhookEvent(topic, "d1", record))
    db.session.commit()
    assert _status(offer) == "superseded"
    assert accept(client, shop, offer["token"], CART).status_code == 409


class _Catalogue(Connector):
    """A platform listing p1..p3, p3 as ``listed`` says (None: not listed at all)."""

    meta = ConnectorMeta(key="offsalefake", name="Off-sale fake", webhook_topics=(),
                         scopes=(), capabilities=frozenset({"backfill"}))
    listed: bool | None = True

    def verify_webhook(self, headers, raw_body, *, now=None):
        raise AssertionError("not used")

    def parse_webhook(self, headers, raw_body):
        raise AssertionError("not used")

    def iter_products(self, cursor=None):
        items = [_record(pid, available=True) for pid in ("p1", "p2")]
        if self.listed is not None:
            items.append(_record("p3", available=self.listed))
        yield Page(items=items, next_cursor=None)


@pytest.mark.parametrize("listed", [False, None], ids=["unpublished", "no-longer-listed"])
def test_a_products_sync_taking_the_product_off_sale_withdraws_the_offer(
        client, app, monkeypatch, listed):
    connectors.available()
    monkeypatch.setitem(connectors._registry, "offsalefake", _Catalogue)
    shop = shops.create_shop("offsalefake", "offsale.example",
                             Credentials("offsale.example", webhook_secret="s"))
    db.session.commit()
    offer = _quoted(client, shop)
    # mirrored before the pass began: a sweep spares what changed since it started
    db.session.execute(sa.update(Product).where(Product.shop_id == shop.id).values(
        source_updated_at=utcnow() - timedelta(days=1)))
    db.session.commit()
    _Catalogue.listed = listed
    assert run_sync(shop.id, "products").finished
    assert _status(offer) == "superseded"
