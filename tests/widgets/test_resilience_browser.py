"""The widgets as a storefront embedding them lives with them: reserved space while loading,
bad answers, failed modules, retries and placeholders moved by a single-page storefront."""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import expect

from tests.widgets.helpers import (
    API,
    FAILED,
    FOR_YOU,
    PAGE_EPOCH,
    READY,
    assert_clean,
    cards,
    wait_until,
)

pytestmark = pytest.mark.browser

SLOT = '[data-shopkeeper="for-you"]'
#: Sums the page's layout shifts the way CLS does (shifts right after input do not count).
LAYOUT_SHIFTS = """
window.__skShift = 0;
new PerformanceObserver(function (list) {
  list.getEntries().forEach(function (e) { if (!e.hadRecentInput) window.__skShift += e.value; });
}).observe({type: 'layout-shift', buffered: true});
"""


def _slow(seconds: float):
    def handler(route):
        time.sleep(seconds)
        route.continue_()
    return handler


def test_placeholder_is_pending_and_keeps_its_space_until_the_list_arrives(demo_shop, live,
                                                                          page):
    page.add_init_script(LAYOUT_SHIFTS)
    page.route(f"**{API}recommendations**", _slow(1.0))
    page.goto(live.url + "/demo/", wait_until="domcontentloaded")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="pending"]', state="attached")
    reserved = page.eval_on_selector(SLOT, "el => el.getBoundingClientRect().height")
    assert reserved > 200  # the storefront's CSS reserves the carousel's space meanwhile
    page.wait_for_selector(READY)
    page.wait_for_timeout(300)  # layout-shift entries are reported after the frame
    shown = page.eval_on_selector(SLOT, "el => el.getBoundingClientRect().height")
    assert abs(shown - reserved) < 0.15 * shown, (reserved, shown)
    shift = page.evaluate("window.__skShift")
    assert shift < 0.05, f"the carousel's arrival moved the page (CLS {shift:.3f})"
    assert_clean(page)


def _hold_the_clock(page) -> None:
    """No page timer fires from here on: a slot marked failed was marked at once, not by the
    loader's 9 s fallback timer. Asserted so instead of a short real-time wait (5 s), which
    a loaded CI machine's page load overran."""
    page.clock.install(time=PAGE_EPOCH)
    page.clock.pause_at(PAGE_EPOCH + 1000)


def test_a_module_that_cannot_load_leaves_no_pending_slot(demo_shop, live, page):
    page.route("**/for-you.js", lambda route: route.abort("blockedbyclient"))
    _hold_the_clock(page)
    page.goto(live.url + "/demo/")
    page.wait_for_selector(FAILED, state="attached")
    assert page.eval_on_selector(SLOT, "el => el.getBoundingClientRect().height") == 0
    # The other widgets' module loaded: their placeholders are not marked failed.
    page.wait_for_selector('[data-shopkeeper="shopping-for"][data-shopkeeper-state="off"]',
                           state="attached")
    assert_clean(page, ignore_network_to=live.url + "/widgets/")


def test_a_failed_carousel_is_tried_again_on_the_next_build(demo_shop, live, page):
    """A single-page storefront calls build() on each route change: a carousel that failed
    (5xx, timeout, 429) asks again then, with the same placeholder, instead of staying gone."""
    failures = []

    def first_fails(route):
        if not failures:
            failures.append(route.request.url)
            return route.fulfill(status=503, content_type="application/json", body="{}")
        return route.continue_()

    page.route(f"**{API}recommendations**", first_fails)
    page.goto(live.url + "/demo/")
    page.wait_for_selector(FAILED, state="attached")
    with page.expect_response(lambda r: f"{API}recommendations" in r.url):
        page.evaluate("Shopkeeper.build()")
    page.wait_for_selector(READY)
    assert len(failures) == 1 and len(cards(page)) >= 4
    # A good answer is kept: the next build() with nothing changed asks nothing.
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "recommendations" in r.url else None)
    page.evaluate("Shopkeeper.build()")
    page.wait_for_timeout(300)
    assert asked == []
    assert_clean(page, ignore_network_to=live.url + API)


def _answer(body: str):
    def handler(route):
        route.fulfill(status=200, content_type="application/json", body=body)
    return handler


GOOD = {"product_id": "22086", "rec_id": "r1", "title": "Paper chain kit", "price": "2.95",
        "currency": "GBP", "reason": "popular"}


@pytest.mark.parametrize("body", [
    '{"items": [',                                         # cut off
    "<html>gateway</html>",                                # not JSON at all
    json.dumps({"items": [None, 7, "x", []]}),             # not products
    json.dumps({"items": [{"title": "no id"}]}),
], ids=["truncated", "html", "junk-items", "no-product-id"])
def test_a_malformed_answer_hides_the_carousel_as_failed(demo_shop, live, page, body):
    page.route(f"**{API}recommendations**", _answer(body))
    _hold_the_clock(page)
    page.goto(live.url + "/demo/")
    page.wait_for_selector(FAILED, state="attached")
    assert page.locator(FOR_YOU).is_hidden()
    assert page.eval_on_selector(SLOT, "el => el.getBoundingClientRect().height") == 0
    assert_clean(page)


def test_junk_next_to_products_is_skipped(demo_shop, live, page):
    body = json.dumps({"personalized": False, "items": [None, GOOD, {"title": "no id"}]})
    page.route(f"**{API}recommendations**", _answer(body))
    page.goto(live.url + "/demo/")
    page.wait_for_selector(READY)
    shown = cards(page)
    assert [c["title"] for c in shown] == ["Paper chain kit"]
    assert page.locator(f"{FOR_YOU} .sk-card").get_attribute("aria-label") == "1 of 1"
    assert_clean(page)


def test_a_long_unbroken_title_or_reason_stays_inside_its_card(demo_shop, live, page):
    """Catalog titles like SKU strings or URLs have no space to wrap at: they must wrap
    inside the card, not run over the next card's text."""
    long_title = {**GOOD, "title": "Paperchainkit" * 8}
    long_reason = {**GOOD, "product_id": "22087", "rec_id": "r2",
                   "reason": "becauseyouboughtit" * 8}
    body = json.dumps({"personalized": False, "items": [long_title, long_reason, GOOD]})
    page.route(f"**{API}recommendations**", _answer(body))
    page.goto(live.url + "/demo/")
    page.wait_for_selector(READY)
    spill = page.eval_on_selector(FOR_YOU, """el => [...el.shadowRoot.querySelectorAll(
        '.sk-card')].flatMap((card, i) => {
            const edge = card.getBoundingClientRect().right;
            return [...card.querySelectorAll('.sk-title, .sk-reason')]
                .filter(t => { const r = document.createRange(); r.selectNodeContents(t);
                               return r.getBoundingClientRect().right > edge + 0.5; })
                .map(t => `card ${i + 1} ${t.className}`);
        })""")
    assert spill == []
    assert_clean(page)


def test_an_image_that_does_not_load_shows_the_initials_instead(demo_shop, live, page):
    """A product image the shop deleted (404) showed the browser's broken-image icon in
    an empty tile; it gets the initials tile products without an image have."""
    gone = {**GOOD, "image_url": live.url + "/widgets/demo/no-such-image.png"}
    page.route(f"**{API}recommendations**", _answer(json.dumps({"items": [gone]})))
    page.goto(live.url + "/demo/")
    page.wait_for_selector(READY)
    card = page.locator(f"{FOR_YOU} .sk-card").first
    expect(card.locator(".sk-ph")).to_have_text("PC")
    assert card.locator("img").count() == 0
    assert "sk-t" in card.locator(".sk-img").get_attribute("class")
    assert_clean(page, ignore_network_to=live.url + "/widgets/demo/no-such-image.png")


def test_a_placeholder_moved_before_it_was_seen_still_loads(demo_shop, live, browser):
    """Frameworks move DOM nodes (keyed lists, portals, layout swaps): a carousel moved
    while still off-screen must load once it is scrolled into view."""
    context = browser.new_context(viewport={"width": 1280, "height": 300})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(e))
    try:
        page.goto(live.url + "/demo/product/22086")
        page.wait_for_function("() => window.Shopkeeper && window.Shopkeeper.api")
        page.wait_for_function("() => !!customElements.get('shopkeeper-for-you')")
        page.evaluate("""() => {
            const slot = document.querySelector('[data-shopkeeper="for-you"]');
            document.querySelector('footer').before(slot);
        }""")
        page.wait_for_timeout(300)
        page.locator(SLOT).scroll_into_view_if_needed()
        page.wait_for_selector(READY, timeout=5_000)
        assert errors == []
    finally:
        context.close()


def _route_to_new_carousel(page, i: int) -> None:
    """A client-side route change: the old page's placeholder goes, a new one comes."""
    page.evaluate("""i => {
        document.querySelectorAll('[data-shopkeeper="for-you"]').forEach(d => d.remove());
        const div = document.createElement('div');
        div.id = 'route-' + i;
        div.dataset.shopkeeper = 'for-you';
        div.dataset.placement = 'product';
        div.dataset.productId = '22086';
        document.querySelector('main').prepend(div);
        Shopkeeper.build();
    }""", i)
    page.wait_for_selector(f'#route-{i}[data-shopkeeper-state="ready"]', state="attached")


def test_carousels_of_pages_left_behind_are_not_refreshed(demo_shop, live, page):
    """identify() after some route changes re-renders what is on the page, not every
    carousel the single-page storefront ever showed (and does not keep those alive)."""
    page.goto(live.url + "/demo/")
    page.wait_for_selector(READY)
    for i in range(3):
        _route_to_new_carousel(page, i)
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "recommendations" in r.url else None)
    with page.expect_response(lambda r: f"{API}recommendations" in r.url):
        page.evaluate("Shopkeeper.identify(null)")
    page.wait_for_timeout(500)
    assert len(asked) == 1, asked
    assert page.evaluate("Shopkeeper.elements.every(el => el.isConnected)")
    assert page.evaluate("Shopkeeper.elements.length") == page.locator(
        "[data-shopkeeper] > *").count()
    assert_clean(page)


@pytest.mark.widget_default_timeout
def test_a_module_that_hangs_does_not_keep_the_slot_pending(demo_shop, live, page):
    """Marked failed by the loader's own timer, 9 s (three API timeouts) on the page's clock,
    held still and moved by the test: a stopwatch around the page load (< 12 s) was
    overrun by a loaded CI machine."""
    hung = []
    page.route("**/for-you.js", lambda route: hung.append(route))  # never answered
    page.clock.install(time=PAGE_EPOCH)
    page.clock.pause_at(PAGE_EPOCH + 1000)  # no page timer fires unless the test says so
    page.goto(live.url + "/demo/", wait_until="domcontentloaded")
    page.wait_for_selector(f'{SLOT}[data-shopkeeper-state="pending"]', state="attached")
    wait_until(lambda: hung)
    page.clock.run_for(8_900)
    assert page.locator(FAILED).count() == 0  # not before its time
    page.clock.run_for(200)
    page.wait_for_selector(FAILED, state="attached")
    assert page.eval_on_selector(SLOT, "el => el.getBoundingClientRect().height") == 0
    # The module arrives after all: the carousel still renders.
    page.clock.resume()
    hung[0].continue_()
    page.wait_for_selector(READY)
    assert_clean(page)


def test_loader_included_twice_and_two_carousels_share_one_instance(demo_shop, live, page):
    """A theme and an app block may both embed the loader: the second copy keeps the first
    instance (no second set of modules, no duplicate carousels); two carousels of the same
    kind on one page each render, with their own ids."""
    page.goto(live.url + "/demo/")
    page.wait_for_selector(READY)
    page.evaluate("window.Shopkeeper.__first = true")
    page.evaluate("""key => new Promise(done => {
        const s = document.createElement('script');
        s.src = '/widgets/loader.js';
        s.dataset.key = key;
        s.onload = done;
        document.head.append(s);
    })""", demo_shop.widget_key)
    assert page.evaluate("window.Shopkeeper.__first") is True
    page.evaluate("""() => {
        const div = document.createElement('div');
        div.id = 'second';
        div.dataset.shopkeeper = 'for-you';
        div.dataset.placement = 'product';
        div.dataset.productId = '22086';
        document.querySelector('main').append(div);
        Shopkeeper.build();
    }""")
    page.locator("#second").scroll_into_view_if_needed()
    page.wait_for_selector('#second[data-shopkeeper-state="ready"]', state="attached")
    assert page.locator(FOR_YOU).count() == 2
    assert page.evaluate("document.querySelectorAll('script[src*=\"for-you.js\"]').length") == 1
    ids = page.eval_on_selector_all(FOR_YOU, "els => els.map(el => el.shadowRoot"
                                             ".querySelector('h2').id)")
    assert len(set(ids)) == 2
    assert_clean(page)
