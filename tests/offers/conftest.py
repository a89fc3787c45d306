"""Fixtures for offers: an offers-enabled shop, a shopper id and an idle cart."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Interaction
from plugin.models.types import utcnow

#: A public address the fake resolver gives the test hosts (``fake_dns``).
PUBLIC_ADDRESS = "93.184.215.14"

SHOPPER = "anon_" + "A" * 22
OTHER_SHOPPER = "anon_" + "B" * 22

OFFER_SETTINGS: dict[str, Any] = {"max_discount_pct": 15, "margin_floor_pct": 20,
                                  "default_margin_pct": 40, "daily_budget": 100,
                                  "monthly_budget": 1000, "min_cart_value": 20}


def cart_body(price: str = "50.00", quantity: int = 2, product: str = "p1",
              **extra: Any) -> dict[str, Any]:
    return {"currency": "GBP", "lines": [{"product_id": product, "quantity": quantity,
                                          "price": price}], **extra}


def make_idle(shop_id: str, shopper: str = SHOPPER, minutes: int = 120) -> None:
    """A cart event long enough ago that the shopper's cart is idle."""
    db.session.add(Interaction(shop_id=shop_id, shopper_id=shopper, product_external_id="p1",
                               kind="add_to_cart", occurred_at=utcnow() - timedelta(
                                   minutes=minutes), context={}))
    db.session.commit()


#: Products the test carts name, listed above any price a test reports: offers value a
#: line at the lower of the reported and the catalogue price (plugin/offers/pricing.py).
LISTED = ("p1", "p2", "p3", "a", "b")


def stock(shop_id: str, ids: tuple[str, ...] = LISTED, *, price: str = "10000.00",
          currency: str = "GBP") -> None:
    """Put ``ids`` in the shop's mirrored catalogue (skipping those already there)."""
    from plugin.models import Product

    known = set(db.session.scalars(sa.select(Product.external_id).where(
        Product.shop_id == shop_id, Product.external_id.in_(ids))))
    db.session.add_all(Product(shop_id=shop_id, external_id=pid, title=f"Product {pid}",
                               price=Decimal(price), currency=currency, categories=[], tags=[],
                               source_updated_at=utcnow())
                       for pid in ids if pid not in known)
    db.session.commit()


def configure(shop, **offers: Any) -> None:
    shop.settings = {**(shop.settings or {}), "offers_enabled": True, "holdout_share": 0.0,
                     "offers": {**OFFER_SETTINGS, **offers}}
    db.session.commit()
    stock(shop.id)


def sells(shop, *currencies: str, pinned: bool = False) -> None:
    """The shop's platform was just read selling ``currencies`` (``plugin.offers.platform``):
    where its amounts follow the order's currency (Vendure), offers need one, or a platform
    that limits each discount to its currency (``pinned``)."""
    from plugin.offers import platform

    shop.settings = {**(shop.settings or {}), platform.KEY: {
        "sold": list(currencies), "pinned": pinned, "read_at": utcnow().isoformat()}}
    db.session.commit()


@pytest.fixture
def offer_shop(shop):
    configure(shop)
    return shop


def headers(shopper: str = SHOPPER) -> dict[str, str]:
    return {"X-Shopkeeper-Shopper": shopper}


def quote(client, shop, cart: dict[str, Any] | None = None, shopper: str = SHOPPER):
    return client.post(f"/api/v1/offers/quote?key={shop.widget_key}",
                       json={"cart": cart or cart_body()}, headers=headers(shopper))


def accept(client, shop, token: str, cart: dict[str, Any] | None = None,
           shopper: str = SHOPPER):
    return client.post(f"/api/v1/offers/accept?key={shop.widget_key}",
                       json={"token": token, "cart": cart or cart_body()},
                       headers=headers(shopper))


D = Decimal


def fake_dns(monkeypatch, *answers: list[str]) -> list[str]:
    """``socket.getaddrinfo`` giving the first answer to the first lookup and so on, the
    last one thereafter (none: the name does not resolve); returns the names asked."""
    import socket

    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        addresses = answers[min(len(asked), len(answers)) - 1] if answers else []
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.fixture
def public_dns(monkeypatch) -> list[str]:
    """Every host name resolves to ``PUBLIC_ADDRESS`` (nudges post only to public ones)."""
    return fake_dns(monkeypatch, [PUBLIC_ADDRESS])
