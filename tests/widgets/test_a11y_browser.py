"""Keyboard and screen-reader use of the carousel beyond the basics in test_browser.py."""

from __future__ import annotations

import json

import pytest

from tests.widgets.helpers import (
    API,
    DARK_PAGE,
    DARK_THEME,
    FOR_YOU,
    READY,
    focused,
    open_page,
    unreadable,
    with_attributes,
)

pytestmark = pytest.mark.browser

INNER_FOCUS = """() => { const host = document.activeElement;
    const el = host && host.shadowRoot && host.shadowRoot.activeElement;
    return el ? el.className : (host ? host.tagName : null); }"""


def test_focus_stays_on_the_arrow_button_at_the_end_of_the_carousel(demo_shop, live, browser):
    """Pressing "Next products" until the last page must not drop keyboard focus to the top
    of the page: the button says it is unavailable (aria-disabled) and keeps focus."""
    context = browser.new_context(viewport={"width": 700, "height": 900},
                                  reduced_motion="reduce")
    page = context.new_page()
    try:
        page.goto(live.url + "/demo/")
        page.wait_for_selector(READY)
        nxt = page.locator(f"{FOR_YOU} .sk-next")
        prev = page.locator(f"{FOR_YOU} .sk-prev")
        assert prev.get_attribute("aria-disabled") == "true"  # at the start
        nxt.focus()
        for _ in range(30):
            if nxt.get_attribute("aria-disabled") == "true":
                break
            page.keyboard.press("Enter")
            page.wait_for_timeout(100)
        else:
            pytest.fail("the carousel never reached its end")
        assert page.evaluate(INNER_FOCUS) == "sk-next"
        left = page.eval_on_selector(FOR_YOU, "el => el.shadowRoot.querySelector('.sk-track')"
                                              ".scrollLeft")
        page.keyboard.press("Enter")  # unavailable: nothing happens
        page.wait_for_timeout(100)
        assert page.eval_on_selector(FOR_YOU, "el => el.shadowRoot.querySelector('.sk-track')"
                                              ".scrollLeft") == left
        assert prev.get_attribute("aria-disabled") == "false"
        page.keyboard.press("Shift+Tab")
        assert page.evaluate(INNER_FOCUS) == "sk-prev"
        page.keyboard.press("Enter")
        page.wait_for_timeout(100)
        assert nxt.get_attribute("aria-disabled") == "false"
    finally:
        context.close()


def test_a_re_render_keeps_keyboard_focus_in_the_carousel(demo_shop, live, page):
    """On the basket page the carousel's "Add to basket" changes the basket, and the
    carousel re-renders without that product: focus stays on the button at the same place
    (the next product's) instead of falling back to the top of the page."""
    page.goto(live.url + "/demo/")
    page.click(".grid .add >> nth=0")
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(READY)
    page.eval_on_selector(FOR_YOU, "el => { window.__old = el.shadowRoot.firstChild; }")
    page.locator(f"{FOR_YOU} .sk-add").nth(1).focus()
    with page.expect_response(lambda r: f"{API}recommendations" in r.url):
        page.keyboard.press("Enter")
    page.wait_for_function(f"() => document.querySelector('{FOR_YOU}').shadowRoot.firstChild "
                           "!== window.__old")
    page.wait_for_selector(READY)
    assert page.text_content("#cart-count") == "2"
    now = focused(page)
    assert now is not None, page.evaluate("document.activeElement.tagName")
    assert (now["cls"], now["i"]) == ("sk-add", "1")
    assert now["outline"] == "solid"


def test_a_host_pages_root_font_size_reset_does_not_shrink_the_carousel(demo_shop, live,
                                                                         page):
    """Many storefronts set html{font-size:62.5%} and body{font-size:1.6rem}: the heading
    stays larger than the product text, and the arrow buttons at least 24 px (WCAG 2.5.8)."""
    page.goto(live.url + "/demo/")
    page.wait_for_selector(READY)
    page.evaluate("""() => { document.documentElement.style.fontSize = '62.5%';
                             document.body.style.fontSize = '1.6rem'; }""")
    sizes = page.eval_on_selector(FOR_YOU, """el => {
        const px = s => parseFloat(getComputedStyle(el.shadowRoot.querySelector(s)).fontSize);
        const box = el.shadowRoot.querySelector('.sk-next').getBoundingClientRect();
        return {heading: px('h2'), text: px('.sk-title'), w: box.width, h: box.height}; }""")
    assert sizes["text"] == 16
    assert sizes["heading"] > sizes["text"], sizes
    assert sizes["w"] >= 24 and sizes["h"] >= 24, sizes


def test_the_carousel_stays_readable_on_a_dark_host_page(demo_shop, live, page):
    """On a dark theme the white cards and arrow buttons must not inherit the page's light
    text; the heading, on the page's own background, still does."""
    page.goto(live.url + "/demo/")
    page.wait_for_selector(READY)
    page.evaluate(DARK_PAGE)
    assert unreadable(page, FOR_YOU, ["h2", ".sk-next", ".sk-title", ".sk-price",
                                      ".sk-add"]) == []


def test_the_initials_of_products_with_no_image_stay_readable_in_a_dark_theme(demo_shop,
                                                                               live, page):
    """The initials sit on a light tint whatever the theme: README's dark theme, whose
    --sk-muted is a light grey, must not colour them (it did: 1.5:1)."""
    page.goto(live.url + "/demo/")
    page.wait_for_selector(READY)
    page.evaluate(DARK_PAGE)
    page.evaluate(DARK_THEME)
    assert unreadable(page, FOR_YOU, [".sk-ph", ".sk-title", ".sk-price", ".sk-add"]) == []


def test_the_carousels_labels_can_be_replaced(demo_shop, live, page):
    """Like data-title and data-add-to-cart: the arrow buttons' and slides' labels, with
    {n} and {total} in the slide's."""
    with_attributes(page, "/demo/", "for-you", {
        "prev-label": "Produits pr\u00e9c\u00e9dents", "next-label": "Produits suivants",
        "slide-label": "Produit {n} sur {total}"})
    answer = open_page(page, live.url + "/demo/")
    prev = page.get_attribute(f"{FOR_YOU} .sk-prev", "aria-label")
    assert prev == "Produits pr\u00e9c\u00e9dents"
    assert page.get_attribute(f"{FOR_YOU} .sk-next", "aria-label") == "Produits suivants"
    total = len(answer["items"])
    assert page.eval_on_selector(FOR_YOU, "el => [...el.shadowRoot.querySelectorAll('.sk-card')]"
                                          ".map(c => c.getAttribute('aria-label'))") == \
        [f"Produit {n} sur {total}" for n in range(1, total + 1)]


def test_focus_in_a_carousel_a_re_render_hides_goes_to_its_placeholder(demo_shop, live,
                                                                       page):
    """The carousel's "Add to basket" changes the basket and the new basket gets nothing
    to recommend: the hidden carousel cannot keep focus, so its placeholder takes it
    instead of the top of the page."""
    page.goto(live.url + "/demo/")
    page.click(".grid .add >> nth=0")
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector(READY)
    page.route(f"**{API}recommendations**", lambda route: route.fulfill(
        status=200, content_type="application/json",
        body=json.dumps({"personalized": False, "items": []})))
    page.locator(f"{FOR_YOU} .sk-add").nth(1).focus()
    page.keyboard.press("Enter")
    page.wait_for_selector('[data-shopkeeper="for-you"][data-shopkeeper-state="empty"]',
                           state="attached")
    assert page.evaluate("document.activeElement.dataset.shopkeeper") == "for-you"
    assert page.evaluate("document.activeElement.dataset.placement") == "cart"
    page.keyboard.press("Shift+Tab")  # the page's own controls go on from there
    slot = page.locator('[data-shopkeeper="for-you"][data-placement="cart"]')
    assert slot.get_attribute("tabindex") is None  # lent only while it had focus
    assert slot.evaluate("el => document.activeElement !== document.body && !!("
                         "el.compareDocumentPosition(document.activeElement) & "
                         "Node.DOCUMENT_POSITION_PRECEDING)")


def test_a_product_without_a_url_is_not_a_tab_stop(demo_shop, live, page):
    """A product the shop gives no page for is text, not a focusable dead end: Tab goes
    from one card's button to the next card's, and the arrow keys land on that button."""
    def one_without_url(route):
        response = route.fetch()
        answer = response.json()
        for i, it in enumerate(answer["items"]):
            it["url"] = None if i == 1 else f"/demo/product/{it['product_id']}"
        route.fulfill(response=response, json=answer)
    page.route(f"**{API}recommendations**", one_without_url)
    page.route("**/demo/", lambda route: route.fulfill(
        response=(r := route.fetch()),
        body=r.text().replace(' data-product-url="/demo/product/{id}"', "")))
    open_page(page, live.url + "/demo/")
    plain = page.locator(f"{FOR_YOU} .sk-link[data-i='1']")
    assert plain.evaluate("el => [el.tagName, el.tabIndex]") == ["SPAN", -1]
    page.locator(f"{FOR_YOU} .sk-link[data-i='0']").focus()
    page.keyboard.press("Tab")
    assert (focused(page)["cls"], focused(page)["i"]) == ("sk-add", "0")
    page.keyboard.press("Tab")
    assert (focused(page)["cls"], focused(page)["i"]) == ("sk-add", "1")
    page.keyboard.press("ArrowRight")
    assert (focused(page)["cls"], focused(page)["i"]) == ("sk-link", "2")
    page.keyboard.press("ArrowLeft")
    assert (focused(page)["cls"], focused(page)["i"]) == ("sk-add", "1")
    page.keyboard.press("ArrowLeft")
    assert (focused(page)["cls"], focused(page)["i"]) == ("sk-link", "0")
