"""<shopkeeper-cart-offer> in headless Chromium on the demo storefront's cart page."""

from __future__ import annotations

import math
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from plugin.api.access import forget_shops
from plugin.extensions import db
from plugin.models import Interaction, Offer, Product
from plugin.models.types import utcnow
from tests.widgets.helpers import wait_until

pytestmark = pytest.mark.browser

SLOT = '[data-shopkeeper="cart-offer"]'


def _read(fn):
    """Query the live server's database and release the SQLite read lock at once."""
    try:
        return fn()
    finally:
        db.session.rollback()


@pytest.fixture
def offer_shop(demo_shop):
    demo_shop.settings = {**demo_shop.settings, "offers_enabled": True,
                          "offers": {"free_shipping_threshold": 500,
                                     "stages": {"idle_cart": ["percent_cart"]}}}
    db.session.commit()
    forget_shops()
    return demo_shop


def _idle_basket(page, live, shop) -> float:
    """A basket over the minimum value whose last change was two hours ago (idle cart)."""
    page.goto(live.url + "/demo/")
    shopper = page.wait_for_function("() => window.Shopkeeper && window.Shopkeeper.shopper"
                                     ).json_value()
    product = _read(lambda: db.session.scalars(sa.select(Product).where(
        Product.shop_id == shop.id, Product.price > 1).order_by(Product.external_id)).first())
    qty = math.ceil(40 / float(product.price))
    db.session.add(Interaction(shop_id=shop.id, shopper_id=shopper,
                               product_external_id=product.external_id, kind="add_to_cart",
                               occurred_at=utcnow() - timedelta(hours=2), context={}))
    db.session.commit()
    price = float(product.price)
    page.evaluate("([id, title, price, qty]) => localStorage.setItem('demo:cart', "
                  "JSON.stringify([{id, title, price, qty}]))",
                  [product.external_id, product.title, price, qty])
    return round(price * qty, 2)


def _offers():
    return _read(lambda: [(o.status, o.code) for o in db.session.scalars(sa.select(Offer))])


def _money(text: str) -> float:
    return float(re.sub(r"[^0-9.]", "", text))


def test_accept_applies_the_discount_in_the_cart(offer_shop, live, page):
    subtotal = _idle_basket(page, live, offer_shop)
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    banner = page.locator("shopkeeper-cart-offer section.sk-offer")
    assert banner.get_attribute("aria-labelledby")
    assert re.fullmatch(r"\d+:\d\d", page.locator("shopkeeper-cart-offer .sk-clock")
                        .text_content())
    bar = page.get_by_role("progressbar")
    assert "more for free shipping" in bar.get_attribute("aria-valuetext")
    accept = page.get_by_role("button", name=re.compile(r"^Apply "))
    accept.focus()
    page.keyboard.press("Enter")  # keyboard operable
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="accepted"]', state="attached")
    page.wait_for_selector("#cart-discount:not([hidden])")
    code = page.text_content("#cart-discount-code")
    assert re.fullmatch(r"SK-[0-9A-F]{10}", code)
    amount = _money(page.text_content("#cart-discount-amount"))
    assert 0 < amount <= subtotal * 0.15 + 0.01  # the default max discount
    assert _money(page.text_content("#cart-total")) == pytest.approx(subtotal - amount, abs=0.01)
    announced = page.locator("shopkeeper-cart-offer [role=status]").text_content()
    assert code in announced  # screen readers hear the result
    assert wait_until(lambda: ("accepted", code) in _offers())
    assert page.watch.errors() == [] and page.watch.page_errors == []


def test_dismiss_hides_the_offer_for_this_basket(offer_shop, live, page):
    _idle_basket(page, live, offer_shop)
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    page.get_by_role("button", name="Dismiss this offer").click()
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="dismissed"]', state="attached")
    assert wait_until(lambda: [s for s, _ in _offers()] == ["dismissed"])
    page.reload()
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="empty"]', state="attached")
    assert page.locator("shopkeeper-cart-offer section.sk-offer").count() == 0
    assert page.locator("#cart-discount").is_hidden()


def test_countdown_runs_out_and_the_offer_disappears(offer_shop, live, page):
    _idle_basket(page, live, offer_shop)
    page.clock.install()
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    page.clock.fast_forward("31:00")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="expired"]', state="attached")
    assert page.locator("shopkeeper-cart-offer section.sk-offer").count() == 0
    assert "expired" in page.locator("shopkeeper-cart-offer [role=status]").text_content()
