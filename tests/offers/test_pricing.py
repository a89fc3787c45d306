"""A cart's reported prices never raise what it is worth for an offer."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Offer, Product, Variant
from plugin.models.types import utcnow
from plugin.offers import service
from plugin.offers.pricing import trusted_cart
from tests.offers.conftest import cart_body, make_idle, quote, stock


def _quote(client, shop, cart) -> dict:
    make_idle(shop.id)
    return quote(client, shop, cart).get_json()


def test_an_inflated_price_counts_at_the_catalogue_price(client, offer_shop):
    stock(offer_shop.id, ("mug",), price="12.75")
    body = _quote(client, offer_shop, cart_body(price="600.00", quantity=1, product="mug"))
    assert body["offer"] is None and body["reason_code"] == "below_min_cart_value"
    # the same mug, two of them, claimed at 600 each: the offer is sized on 25.50
    body = _quote(client, offer_shop, cart_body(price="600.00", quantity=2, product="mug"))
    row = db.session.scalar(sa.select(Offer).order_by(Offer.id.desc()).limit(1))
    assert row.cart_value == Decimal("25.50")
    if body["offer"] is not None:
        assert Decimal(body["offer"]["amount"]) <= Decimal("25.50") * Decimal("0.15")


def test_a_lower_reported_price_counts_as_reported(client, offer_shop):
    stock(offer_shop.id, ("coat",), price="200.00")  # on sale in the cart at 80
    _quote(client, offer_shop, cart_body(price="80.00", quantity=1, product="coat"))
    row = db.session.scalar(sa.select(Offer).order_by(Offer.id.desc()).limit(1))
    assert row.cart_value == Decimal("80.00")


def test_a_cart_in_another_currency_gets_no_offer(client, offer_shop):
    body = _quote(client, offer_shop, cart_body(currency="USD"))  # the catalogue is in GBP
    assert body["offer"] is None and body["reason_code"] == "currency_mismatch"


def test_a_cart_of_unknown_products_gets_no_offer(client, offer_shop):
    body = _quote(client, offer_shop, cart_body(product="not-in-the-catalogue"))
    assert body["offer"] is None and body["reason_code"] == "unpriced_cart"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Offer)) == 0


def test_unknown_and_deleted_lines_count_as_nothing(app, offer_shop):
    stock(offer_shop.id, ("gone",), price="30.00")
    db.session.execute(sa.update(Product).where(Product.external_id == "gone")
                       .values(deleted_at=utcnow()))
    cart = service.CartIn("GBP", [
        {"product_id": "p1", "quantity": 1, "price": Decimal("40.00")},
        {"product_id": "ghost", "quantity": 3, "price": Decimal("999.00")},
        {"product_id": "gone", "quantity": 1, "price": Decimal("30.00")}])
    valued, refused = trusted_cart(offer_shop.id, cart)
    assert refused is None and valued.subtotal == Decimal("40.00")
    assert cart.subtotal == Decimal("3067.00")  # the reported cart is left as it was


def test_a_known_variant_is_priced_by_the_variant(app, offer_shop):
    stock(offer_shop.id, ("shirt",), price="20.00")
    shirt = db.session.scalar(sa.select(Product).where(Product.external_id == "shirt"))
    db.session.add(Variant(shop_id=offer_shop.id, product_id=shirt.id, external_id="shirt-xl",
                           title="XL", price=Decimal("25.00")))
    db.session.commit()
    line = {"product_id": "shirt", "quantity": 1, "price": Decimal("90.00")}
    as_variant, _ = trusted_cart(offer_shop.id, service.CartIn("GBP", [
        {**line, "variant_id": "shirt-xl"}]))
    as_product, _ = trusted_cart(offer_shop.id, service.CartIn("GBP", [line]))
    assert (as_variant.subtotal, as_product.subtotal) == (Decimal("25.00"), Decimal("20.00"))


def test_forged_carts_cannot_drain_the_daily_budget(client, offer_shop):
    """The reviewer's attack: anonymous carts claiming huge prices, one after another."""
    stock(offer_shop.id, ("mug",), price="12.75")
    for n in range(5):
        shopper = "anon_" + chr(ord("C") + n) * 22
        make_idle(offer_shop.id, shopper)
        quote(client, offer_shop, cart_body(price="600.00", quantity=2, product="mug"),
              shopper=shopper)
    offered = list(db.session.scalars(sa.select(Offer.amount).where(Offer.status == "offered")))
    assert offered and all(amount <= Decimal("3.83") for amount in offered)  # 15 % of 25.50
