"""<shopkeeper-cart-offer> in headless Chromium on the demo storefront's cart page."""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from plugin.api.access import forget_shops
from plugin.extensions import db
from plugin.models import Interaction, Offer, Product
from plugin.models.types import utcnow
from tests.widgets.helpers import DARK_PAGE, unreadable, wait_until, with_attributes

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
    assert page.evaluate("document.activeElement.shadowRoot.activeElement.textContent") == \
        announced  # keyboard focus did not fall back to the top of the page
    assert wait_until(lambda: ("accepted", code) in _offers())
    assert page.watch.errors() == [] and page.watch.page_errors == []


@pytest.mark.parametrize("failure", ["network", "502", "answer-lost"])
def test_an_accept_that_gets_no_answer_can_be_tried_again(offer_shop, live, page, failure):
    """A dropped connection or a failed create is no reason to lose the offer: it stays,
    says to try again, and the next press applies it. When the first attempt did make the
    discount and only its answer was lost, the second gets that same discount."""
    _idle_basket(page, live, offer_shop)
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    tries = []

    def fail(route):
        tries.append(route.request.url)
        if failure == "answer-lost":
            route.fetch()  # the server accepts and makes the discount...
            route.abort()  # ...and its answer never arrives
        elif failure == "network":
            route.abort()
        else:
            route.fulfill(status=502, json={"code": "platform_error", "status": 502,
                                            "message": "Try again.", "errors": {}})

    page.route("**/offers/accept**", fail)
    accept = page.get_by_role("button", name=re.compile(r"^Apply "))
    accept.focus()
    page.keyboard.press("Enter")
    note = page.locator("shopkeeper-cart-offer [role=status]")
    expect(note).to_have_text("That did not go through. Please try again.")
    assert len(tries) == 1
    expect(accept).to_be_enabled()
    assert page.get_attribute(SLOT, "data-shopkeeper-state") == "ready"
    assert page.evaluate("document.activeElement.shadowRoot.activeElement.textContent"
                         ).startswith("Apply ")  # focus stays on the button to press again
    page.unroute("**/offers/accept**")
    page.keyboard.press("Enter")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="accepted"]', state="attached")
    code = page.text_content("#cart-discount-code")
    assert re.fullmatch(r"SK-[0-9A-F]{10}", code)
    assert wait_until(lambda: ("accepted", code) in _offers())
    assert [s for s, _ in _offers()].count("accepted") == 1  # one discount, not two


def test_dismiss_hides_the_offer_for_this_basket(offer_shop, live, page):
    _idle_basket(page, live, offer_shop)
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    page.get_by_role("button", name="No thanks, dismiss this offer").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="dismissed"]', state="attached")
    # The focused button is gone: focus moves to the message, not to the top of the page.
    assert page.evaluate("document.activeElement.tagName") == "SHOPKEEPER-CART-OFFER"
    assert page.evaluate("document.activeElement.shadowRoot.activeElement.textContent") == \
        "Offer dismissed."
    assert wait_until(lambda: [s for s, _ in _offers()] == ["dismissed"])
    page.reload()
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="empty"]', state="attached")
    assert page.locator("shopkeeper-cart-offer section.sk-offer").count() == 0
    assert page.locator("#cart-discount").is_hidden()


def test_banner_buttons_are_named_by_what_they_show(offer_shop, live, page):
    """Label in name (WCAG 2.5.3): a voice-control user says what the button shows."""
    _idle_basket(page, live, offer_shop)
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    buttons = page.locator("shopkeeper-cart-offer section.sk-offer button")
    assert buttons.count() == 2
    for i in range(2):
        button = buttons.nth(i)
        shown = button.text_content().strip()
        expect(button).to_have_accessible_name(re.compile("^" + re.escape(shown)))


def test_screen_readers_hear_when_the_offer_ends_once(offer_shop, live, page):
    """The seconds tick for the eyes only (no live region around them); a screen reader
    reads the end time, as one sentence (not "Ends in Offer ends at 14:30")."""
    _idle_basket(page, live, offer_shop)
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    tree = page.locator("shopkeeper-cart-offer section.sk-offer").aria_snapshot()
    reason = page.locator("shopkeeper-cart-offer .sk-reason").text_content()
    text = re.search(r"- paragraph: (.*)", tree).group(1)
    assert re.fullmatch(re.escape(reason) + r" Offer ends at \d\d:\d\d", text), tree
    assert page.locator("shopkeeper-cart-offer .sk-clock").evaluate(
        "el => !el.closest('[aria-live], [role=status], [role=alert], [role=timer]')")


@pytest.mark.parametrize("answer", [
    {"offer": {"reason": "Today only", "expires_at": "soon", "amount": "lots"},
     "free_shipping": {"threshold": "x", "remaining": None}},
    {"offer": "yes", "free_shipping": None},
    {"offer": {"token": "t", "expires_at": "2099-01-01T00:00:00Z", "amount": None,
               "discount_kind": "percent"}},
], ids=["bad-fields", "not-an-object", "no-amount"])
def test_a_malformed_quote_shows_no_broken_banner(offer_shop, live, page, answer):
    _idle_basket(page, live, offer_shop)
    page.route("**/api/v1/offers/quote**", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(answer)))
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="error"]', state="attached")
    assert page.locator("shopkeeper-cart-offer").is_hidden()
    assert page.locator("shopkeeper-cart-offer section.sk-offer").count() == 0
    assert page.watch.errors() == [] and page.watch.page_errors == []


def test_countdown_runs_out_and_the_offer_disappears(offer_shop, live, page):
    _idle_basket(page, live, offer_shop)
    page.clock.install()
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    page.clock.fast_forward("31:00")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="expired"]', state="attached")
    assert page.locator("shopkeeper-cart-offer section.sk-offer").count() == 0
    assert "expired" in page.locator("shopkeeper-cart-offer [role=status]").text_content()


def test_a_re_inserted_offer_keeps_counting_down(offer_shop, live, page):
    """A single-page storefront routes away from the basket and back, re-inserting the same
    placeholder (the widget keeps its state, no new quote): the clock must run again, and
    the offer still expire, not stay frozen with its Apply button after its end."""
    _idle_basket(page, live, offer_shop)
    page.clock.install()
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    clock = page.locator("shopkeeper-cart-offer .sk-clock")
    page.evaluate("""() => { const slot = document.querySelector('[data-shopkeeper="cart-offer"]');
        window.__away = [slot, slot.parentNode, slot.nextSibling]; slot.remove(); }""")
    page.clock.run_for("00:02")
    page.evaluate("() => { const [slot, parent, next] = window.__away; "
                  "parent.insertBefore(slot, next); }")
    before = clock.text_content()
    page.clock.run_for("01:05")
    assert clock.text_content() != before
    page.clock.fast_forward("31:00")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="expired"]', state="attached")
    assert page.locator("shopkeeper-cart-offer section.sk-offer").count() == 0


def test_countdown_ticks_once_a_minute_under_reduced_motion(offer_shop, live, page):
    """Seconds ticking next to the basket are the kind of motion a shopper who asked for
    less does not want: the clock shows whole minutes, and changes once a minute."""
    _idle_basket(page, live, offer_shop)
    page.emulate_media(reduced_motion="reduce")
    page.clock.install()
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    clock = page.locator("shopkeeper-cart-offer .sk-clock")
    assert re.fullmatch(r"\d+ min", clock.text_content())
    clock.evaluate("""el => { window.__ticks = 0;
        new MutationObserver(() => window.__ticks++)
            .observe(el, {childList: true, characterData: true, subtree: true}); }""")
    page.clock.run_for("00:10")
    assert page.evaluate("window.__ticks") <= 1  # a minute may turn over, not ten seconds
    page.clock.fast_forward("31:00")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="expired"]', state="attached")


@pytest.fixture
def bundle_shop(demo_shop):
    """Only bundle offers ("Add X: N% off the pair"), in every funnel stage."""
    from plugin.offers.settings import DEFAULT_STAGES

    demo_shop.settings = {**demo_shop.settings, "offers_enabled": True,
                          "offers": {"stages": {s: ["bundle"] for s in DEFAULT_STAGES}}}
    db.session.commit()
    forget_shops()
    return demo_shop


def test_a_bundle_discount_counts_once_the_suggested_item_is_in_the_basket(
        bundle_shop, live, page):
    """The code of an add-on offer is refused below its minimum subtotal (the pair): the
    demo basket shows it only after the shopper follows the offer, and keeps it then."""
    top = _read(lambda: db.session.execute(
        sa.select(Product.external_id, Product.title, Product.price)
        .join(Interaction, sa.and_(Interaction.shop_id == Product.shop_id,
                                   Interaction.product_external_id == Product.external_id))
        .where(Product.shop_id == bundle_shop.id, Interaction.kind == "purchase",
               Product.price > 1)
        .group_by(Product.external_id, Product.title, Product.price)
        .order_by(sa.func.count().desc(), Product.external_id)).first())
    qty = math.ceil(25 / float(top.price))  # over the default minimum cart value
    page.goto(live.url + "/demo/")
    page.evaluate("([id, title, price, qty]) => localStorage.setItem('demo:cart', "
                  "JSON.stringify([{id, title, price, qty}]))",
                  [top.external_id, top.title, float(top.price), qty])
    detail = []
    page.expose_function("skAccepted", lambda d: detail.append(d))
    page.add_init_script("document.addEventListener('shopkeeper:offer-accepted', "
                         "e => window.skAccepted(e.detail))")
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    reason = page.locator("shopkeeper-cart-offer .sk-reason").text_content()
    assert re.fullmatch(r"Add .+: \d+% off the pair", reason)
    page.get_by_role("button", name=re.compile(r"^Apply ")).click()
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="accepted"]', state="attached")
    wait_until(lambda: detail)
    minimum = float(detail[0]["min_subtotal"])
    subtotal = _money(page.text_content("#cart-total"))
    assert minimum > subtotal  # the pair needs the suggested item
    announced = page.locator("shopkeeper-cart-offer [role=status]").text_content()
    assert "applies once your basket reaches" in announced
    assert page.locator("#cart-discount").is_hidden()  # not applied to the basket as it is
    assert "applies once your basket reaches" in page.text_content("#status")

    # follow the offer: the suggested product goes into the basket
    quoted = _read(lambda: db.session.scalars(sa.select(Offer)).one())
    added = next(p for p in quoted.product_ids if p != top.external_id)
    product = _read(lambda: db.session.scalars(sa.select(Product).filter_by(
        shop_id=bundle_shop.id, external_id=added)).one())
    page.goto(f"{live.url}/demo/product/{added}")
    page.click("button.add.primary")
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector("#cart-discount:not([hidden])")
    amount = _money(page.text_content("#cart-discount-amount"))
    assert amount == pytest.approx(float(detail[0]["amount"]), abs=0.001)
    assert _money(page.text_content("#cart-total")) == pytest.approx(
        subtotal + float(product.price) - amount, abs=0.01)
    assert page.watch.errors() == [] and page.watch.page_errors == []


def test_the_offer_stays_readable_on_a_dark_host_page(offer_shop, live, page):
    """The banner's light background comes with a dark default text colour; the shipping
    note, on the page's own background, keeps the page's text colour."""
    _idle_basket(page, live, offer_shop)
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    page.evaluate(DARK_PAGE)
    assert unreadable(page, "shopkeeper-cart-offer",
                      [".sk-reason", ".sk-ends", ".sk-dismiss", ".sk-accept", ".sk-ship p"]) == []


def test_the_offers_texts_can_be_replaced(offer_shop, live, page):
    """A shop in another language sets every text on the placeholder, with {amount},
    {time} and {code} where a value goes; the defaults are tested above."""
    _idle_basket(page, live, offer_shop)
    with_attributes(page, "/demo/cart", "cart-offer", {
        "apply": "Appliquer {amount} de remise", "dismiss": "Non merci",
        "dismiss-label": "Non merci, ignorer l'offre", "ends-in": "Fin dans {time}",
        "ends-at": "L'offre se termine \u00e0 {time}", "applied": "Code {code} appliqu\u00e9.",
        "shipping-more": "Encore {amount} pour la livraison offerte."})
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    accept = page.locator("shopkeeper-cart-offer .sk-accept")
    assert re.fullmatch(r"Appliquer \S.* de remise", accept.text_content())
    dismiss = page.locator("shopkeeper-cart-offer .sk-dismiss")
    assert dismiss.text_content() == "Non merci"
    expect(dismiss).to_have_accessible_name("Non merci, ignorer l'offre")
    shown = page.locator("shopkeeper-cart-offer .sk-ends [aria-hidden=true]").text_content()
    assert re.fullmatch(r"Fin dans \d+:\d\d", shown)
    said = page.locator("shopkeeper-cart-offer .sk-ends .sk-sr").text_content()
    assert re.fullmatch(r"L'offre se termine \u00e0 \d\d:\d\d", said)
    assert re.fullmatch(r"Encore \S.* pour la livraison offerte\.",
                        page.get_by_role("progressbar").get_attribute("aria-valuetext"))
    accept.click()
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="accepted"]', state="attached")
    announced = page.locator("shopkeeper-cart-offer [role=status]").text_content()
    assert re.fullmatch(r"Code SK-[0-9A-F]{10} appliqu\u00e9\.", announced)
    assert page.watch.errors() == [] and page.watch.page_errors == []


#: The storefront changes the basket (one more of its first line) and calls build().
MORE_OF_THE_FIRST_LINE = """() => {
    const slot = document.querySelector('[data-shopkeeper="cart-offer"]');
    const cart = JSON.parse(slot.dataset.cart);
    cart.lines[0].quantity += 1;
    slot.dataset.cart = JSON.stringify(cart);
    window.__old = document.querySelector('shopkeeper-cart-offer').shadowRoot.firstChild;
    Shopkeeper.build();
}"""
RE_RENDERED = ("() => document.querySelector('shopkeeper-cart-offer').shadowRoot.firstChild "
               "!== window.__old")
INNER_FOCUS = """() => { const host = document.activeElement;
    const el = host && host.shadowRoot && host.shadowRoot.activeElement;
    return el ? el.className : (host ? host.tagName : null); }"""


@pytest.mark.parametrize("button", ["sk-accept", "sk-dismiss"])
def test_a_re_render_keeps_keyboard_focus_on_the_offers_button(offer_shop, live, page,
                                                              button):
    """The basket changes (build()) while a keyboard user is on the offer: the new banner
    replaces the old, and focus stays on the same button instead of falling to the page."""
    _idle_basket(page, live, offer_shop)
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    page.locator(f"shopkeeper-cart-offer .{button}").focus()
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/offers/quote")):
        page.evaluate(MORE_OF_THE_FIRST_LINE)
    page.wait_for_function(RE_RENDERED)
    assert page.get_attribute(SLOT, "data-shopkeeper-state") == "ready"
    assert page.evaluate(INNER_FOCUS) == button


def test_focus_on_an_offer_a_re_render_hides_goes_to_its_placeholder(offer_shop, live,
                                                                     page):
    """Nothing to show for the new basket: the hidden widget cannot keep focus, so its
    placeholder takes it (the next Tab goes on from there, not from the top)."""
    _idle_basket(page, live, offer_shop)
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="ready"]', state="attached")
    page.route("**/api/v1/offers/quote**", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps({})))
    page.locator("shopkeeper-cart-offer .sk-dismiss").focus()
    page.evaluate(MORE_OF_THE_FIRST_LINE)
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="empty"]', state="attached")
    assert page.locator("shopkeeper-cart-offer").is_hidden()
    assert page.evaluate("document.activeElement.dataset.shopkeeper") == "cart-offer"
