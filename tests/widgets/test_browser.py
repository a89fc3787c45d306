"""The widgets in real headless Chromium against the real API, on the demo storefront."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tests.widgets.conftest import ARTIFACTS, start_server
from tests.widgets.helpers import (
    API,
    FAILED,
    FOR_YOU,
    PAGE_EPOCH,
    READY,
    assert_clean,
    cards,
    focused,
    interactions,
    open_page,
    product_titles,
    wait_until,
)

pytestmark = pytest.mark.browser

POPULAR_REASON = "popular in this shop right now"


def _first_customer(page) -> str:
    return page.eval_on_selector("#shopper option:nth-child(2)", "o => o.value")


def test_for_you_renders_real_recommendations_with_reasons(demo_shop, live, page):
    anonymous = open_page(page, live.url + "/demo/")
    shown = cards(page)
    assert len(shown) == len(anonymous["items"]) >= 4
    catalog = product_titles(demo_shop.id, [i["product_id"] for i in anonymous["items"]])
    for card, item in zip(shown, anonymous["items"], strict=True):
        assert card["title"] == catalog[item["product_id"]] == item["title"]
        assert card["reason"] == item["reason"] != ""
        assert card["price"].startswith("£")
        assert card["href"].endswith(f"/demo/product/{item['product_id']}")
    # Tabbing to a product announces why it is there (the reason describes the link).
    for i, item in enumerate(anonymous["items"]):
        expect(page.locator(f"{FOR_YOU} a.sk-link").nth(i)).to_have_accessible_description(
            item["reason"])
    assert anonymous["personalized"] is False
    assert page.get_attribute(FOR_YOU, "data-personalized") == "false"

    # Switch to a real customer with the storefront's switcher: the server renders a
    # signed token into the placeholder and the carousel becomes personal.
    customer = _first_customer(page)
    with page.expect_response(lambda r: f"{API}recommendations" in r.url) as answer:
        page.select_option("#shopper", customer)
    page.wait_for_selector(READY)
    personal = answer.value.json()
    assert personal["personalized"] is True
    assert page.get_attribute(FOR_YOU, "data-personalized") == "true"
    reasons = [c["reason"] for c in cards(page)]
    assert any(r != POPULAR_REASON for r in reasons), reasons
    assert [i["product_id"] for i in personal["items"]] != \
        [i["product_id"] for i in anonymous["items"]]
    assert_clean(page)


def test_clicks_and_add_to_cart_are_stored_with_attribution(demo_shop, live, page):
    answer = open_page(page, live.url + "/demo/")
    shopper = page.evaluate("localStorage.getItem('shopkeeper:shopper')")
    assert shopper.startswith("anon_") and len(shopper) == 27
    first, second = answer["items"][0], answer["items"][1]

    # "Add to cart" inside the carousel: the host basket updates and the event is stored.
    page.locator(f"{FOR_YOU} .sk-add").first.click()
    page.wait_for_selector("#cart-count:text('1')")
    added = wait_until(lambda: interactions(demo_shop.id, shopper_id=shopper,
                                            kind="add_to_cart"))
    assert added[0].product_external_id == first["product_id"]
    assert added[0].context["rec_id"] == first["rec_id"]

    # A click on a recommendation navigates; the click survives the navigation (keepalive)
    # and the product page's own add-to-basket is attributed to that recommendation.
    with page.expect_navigation():
        page.locator(f"{FOR_YOU} a.sk-link").nth(1).click()
    assert page.url.endswith(f"/demo/product/{second['product_id']}")
    click = wait_until(lambda: interactions(demo_shop.id, shopper_id=shopper, kind="click"))
    assert click[0].product_external_id == second["product_id"]
    assert click[0].context["rec_id"] == second["rec_id"]
    page.click("main .add.primary")
    attributed = wait_until(lambda: [r for r in interactions(
        demo_shop.id, shopper_id=shopper, kind="add_to_cart")
        if r.product_external_id == second["product_id"]])
    assert attributed[0].context["rec_id"] == second["rec_id"]
    views = wait_until(lambda: interactions(demo_shop.id, shopper_id=shopper, kind="view"))
    assert views[0].product_external_id == second["product_id"]
    assert_clean(page)


def test_keyboard_reaches_and_moves_through_the_carousel(demo_shop, live, page):
    answer = open_page(page, live.url + "/demo/")
    for _ in range(30):  # Tab from the top of the page until a product link has focus
        page.keyboard.press("Tab")
        now = focused(page)
        if now and "sk-link" in now["cls"]:
            break
    else:
        pytest.fail("Tab never reached a product in the carousel")
    assert now["i"] == "0"
    assert now["outline"] == "solid" and now["outlineWidth"] == "3px"  # focus is visible

    page.keyboard.press("ArrowRight")
    assert focused(page)["i"] == "1"
    page.keyboard.press("End")
    assert focused(page)["i"] == str(len(answer["items"]) - 1)
    page.keyboard.press("Home")
    assert focused(page)["i"] == "0"
    page.keyboard.press("Tab")  # the card's own button comes next
    assert "sk-add" in focused(page)["cls"]
    page.keyboard.press("Shift+Tab")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(f"/demo/product/{answer['items'][0]['product_id']}")
    assert_clean(page)


def test_next_button_scrolls_without_animation_under_reduced_motion(demo_shop, live, browser):
    context = browser.new_context(viewport={"width": 900, "height": 900},
                                  reduced_motion="reduce")
    page = context.new_page()
    try:
        page.goto(live.url + "/demo/")
        page.wait_for_selector(READY)
        assert page.get_attribute(f"{FOR_YOU} .sk-prev", "aria-disabled") == "true"
        page.locator(f"{FOR_YOU} .sk-next").click()
        # Instant scroll: no smooth animation to wait for.
        left = page.eval_on_selector(FOR_YOU, "el => el.shadowRoot.querySelector('.sk-track')"
                                              ".scrollLeft")
        assert left > 0
        # the buttons' state follows the scroll event, which fires a frame later
        expect(page.locator(f"{FOR_YOU} .sk-prev")).to_have_attribute("aria-disabled", "false")
    finally:
        context.close()


def _api_down(route):
    route.abort("connectionrefused")


def _api_error(route):
    route.fulfill(status=500, content_type="application/json", body=json.dumps(
        {"code": 500, "status": "Internal Server Error", "message": "x", "errors": {}}))


def _api_hangs(route):
    pass  # never answered: the widget's own timeout (3 s) must give up


@pytest.mark.widget_default_timeout
@pytest.mark.parametrize("failure,gives_up_ms", [(_api_down, 0), (_api_error, 0),
                                                 (_api_hangs, 3000)],
                         ids=["down", "erroring", "slow"])
def test_page_keeps_working_when_the_api_fails(demo_shop, live, page, failure, gives_up_ms):
    """The widget gives up at once on a refusal or an error, and after its own 3 s timeout
    on a hung call: timed on the page's clock, held still and moved by the test (a
    stopwatch around the page load, < 8 s, was overrun by a loaded CI machine)."""
    page.route(f"**{API}**", failure)
    page.clock.install(time=PAGE_EPOCH)
    page.clock.pause_at(PAGE_EPOCH + 1000)  # no page timer fires unless the test says so
    with page.expect_request(lambda r: API in r.url):
        page.goto(live.url + "/demo/")
    if gives_up_ms:
        page.clock.run_for(gives_up_ms - 100)
        assert page.locator(FAILED).count() == 0  # not before its time
        page.clock.run_for(200)
    page.wait_for_selector(FAILED, state="attached")
    page.clock.resume()
    assert page.locator(FOR_YOU).is_hidden()
    # The host page is untouched: its own basket still works, and tracking is harmless.
    page.click(".grid .add >> nth=0")
    page.wait_for_selector("#cart-count:text('1')")
    page.evaluate("Shopkeeper.track('view', {product_id: 'x'}); Shopkeeper.api.flush()")
    page.wait_for_timeout(300)
    assert_clean(page, ignore_network_to=live.url + API)


def _foreign_page(live_url: str, key: str) -> bytes:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Another site</title><link rel="icon" href="data:,">
<script async src="{live_url}/widgets/loader.js" data-key="{key}"></script></head>
<body><h1>Not the shop</h1><div data-shopkeeper="for-you"></div></body></html>""".encode()


def test_cors_refuses_a_foreign_origin(demo_shop, live, page):
    from plugin.api.access import forget_shops
    from plugin.extensions import db

    html = _foreign_page(live.url, demo_shop.widget_key)

    def site(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [html]

    foreign = start_server(site)
    try:
        refused = []
        page.on("requestfailed", lambda r: refused.append(r.url) if API in r.url else None)
        page.goto(foreign.url + "/")
        page.wait_for_selector(FAILED, state="attached", timeout=10_000)
        assert page.locator(FOR_YOU).is_hidden()
        assert any("/config" in u for u in refused)
        before = len(interactions(demo_shop.id))
        page.evaluate("Shopkeeper.track('view', {product_id: '22086'}); Shopkeeper.api.flush()")
        page.wait_for_timeout(500)
        assert len(interactions(demo_shop.id)) == before  # a foreign page writes nothing
        assert page.watch.page_errors == []

        # Control: the same page renders once the shop allows that origin.
        demo_shop.settings = {**demo_shop.settings,
                              "allowed_origins": [live.url, foreign.url]}
        db.session.commit()
        forget_shops()
        page.goto(foreign.url + "/")
        page.wait_for_selector(READY)
    finally:
        foreign.stop()


def test_strict_csp_pages_render_without_violations(demo_shop, live, page):
    answer = open_page(page, live.url + "/demo/")
    csp = page.evaluate("fetch(location.href).then(r => r.headers.get('content-security-policy'))")
    assert "script-src 'self'" in csp and "unsafe" not in csp
    product = answer["items"][0]["product_id"]
    open_page(page, f"{live.url}/demo/product/{product}")
    page.click("main .add.primary")
    open_page(page, live.url + "/demo/cart")
    in_cart = page.get_attribute('[data-placement="cart"]', "data-cart")
    assert in_cart == product
    shown = page.eval_on_selector(FOR_YOU, "el => [...el.shadowRoot.querySelectorAll('a')]"
                                           ".map(a => a.href)")
    assert not any(h.endswith(f"/demo/product/{product}") for h in shown)  # not the cart's
    assert_clean(page)


def test_features_the_shop_has_not_enabled_stay_hidden(demo_shop, live, page):
    """Sub-profiles and cart offers are off by default (config says so): nothing shows."""
    open_page(page, live.url + "/demo/")
    slot = page.locator('[data-shopkeeper="shopping-for"]')
    wait_until(lambda: slot.get_attribute("data-shopkeeper-state") == "off", timeout=5)
    assert page.locator("shopkeeper-shopping-for").is_hidden()
    page.click(".grid .add >> nth=0")  # a non-empty basket, so only the config says "off"
    page.goto(live.url + "/demo/cart")
    offer = page.locator('[data-shopkeeper="cart-offer"]')
    wait_until(lambda: offer.get_attribute("data-shopkeeper-state") == "off", timeout=5)
    assert page.locator("shopkeeper-cart-offer").is_hidden()
    assert_clean(page)


def test_a_failed_config_is_an_error_not_off_and_is_asked_again(demo_shop, live, page):
    """/config failing (503) said "off" on the who-for and cart-offer placeholders, as if
    the shop had them off, and they never asked again: the switcher stayed away for the
    page's life. It is "error", and the next build() asks again."""
    from plugin.api.access import forget_shops
    from plugin.extensions import db

    demo_shop.settings = {**demo_shop.settings, "subprofiles_enabled": True,
                          "offers_enabled": True}
    db.session.commit()
    forget_shops()
    down = [True]
    page.route(f"**{API}config**", lambda route: route.fulfill(
        status=503, content_type="application/json", body="{}") if down[0]
        else route.continue_())
    for path, kind, back in (("/demo/", "shopping-for", {"idle", "ready"}),
                             ("/demo/cart", "cart-offer", {"empty", "ready"})):
        down[0] = True
        page.goto(live.url + path)
        def state(kind=kind) -> str | None:
            return page.get_attribute(f'[data-shopkeeper="{kind}"]', "data-shopkeeper-state")
        wait_until(lambda: state() == "error", timeout=5)
        down[0] = False
        page.evaluate("Shopkeeper.build()")
        wait_until(lambda back=back: state() in back, timeout=5)
    assert_clean(page, ignore_network_to=live.url + API)


def test_lazy_until_scrolled_into_view(demo_shop, live, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 300})
    page = context.new_page()
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "recommendations" in r.url else None)
    try:
        page.goto(live.url + "/demo/product/22086")
        page.wait_for_function("() => window.Shopkeeper && window.Shopkeeper.api")
        page.wait_for_timeout(500)
        assert asked == []
        page.locator('[data-shopkeeper="for-you"]').scroll_into_view_if_needed()
        page.wait_for_selector(READY)
        assert len(asked) == 1 and "placement=product" in asked[0]
    finally:
        context.close()


def test_identify_and_build_for_single_page_storefronts(demo_shop, live, page):
    from plugin.api.identity import mint_customer_token
    from plugin.demo import demo_shoppers
    from plugin.shops import credentials_for

    open_page(page, live.url + "/demo/")
    assert page.get_attribute(FOR_YOU, "data-personalized") == "false"
    customer = demo_shoppers(demo_shop.id)[0]["id"]
    token = mint_customer_token(demo_shop.id, credentials_for(demo_shop).webhook_secret,
                                customer)
    with page.expect_response(lambda r: f"{API}recommendations" in r.url) as answer:
        page.evaluate("t => Shopkeeper.identify(t)", token)
    assert answer.value.json()["personalized"] is True
    page.wait_for_selector(f'{FOR_YOU}[data-personalized="true"]')

    # A client-side route change adds a placeholder; build() mounts it.
    page.evaluate("""() => {
        const div = document.createElement('div');
        div.id = 'spa-slot';
        div.dataset.shopkeeper = 'for-you';
        div.dataset.placement = 'product';
        div.dataset.productId = '22086';
        document.querySelector('main').prepend(div);
        Shopkeeper.build();
    }""")
    page.wait_for_selector('#spa-slot[data-shopkeeper-state="ready"]')
    assert_clean(page)


def test_screenshot_of_the_demo_storefront(demo_shop, live, page):
    open_page(page, live.url + "/demo/")
    page.select_option("#shopper", _first_customer(page))
    page.wait_for_selector(f'{FOR_YOU}[data-personalized="true"]')
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "demo-storefront.png"
    page.screenshot(path=str(target), full_page=False)
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert_clean(page)


@pytest.mark.parametrize("width", [320, 360, 390])
def test_the_storefront_fits_a_phone_without_sideways_scrolling(demo_shop, live, browser,
                                                                width):
    context = browser.new_context(viewport={"width": width, "height": 800})
    try:
        phone = context.new_page()
        for path in ("/demo/", "/demo/cart"):
            phone.goto(live.url + path)
            phone.wait_for_load_state("networkidle")
            overflow = phone.evaluate(
                "document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is {overflow}px wider than a {width}px screen"
            box = phone.locator(".switcher button").bounding_box()
            assert box is not None and box["x"] + box["width"] <= width
    finally:
        context.close()


@pytest.mark.parametrize("width", [320, 360])
def test_a_basket_with_products_fits_a_phone(demo_shop, live, browser, width):
    """The basket table (product, quantity, price, remove) once it has lines, and a discount
    row, stays within a phone's width: its Remove buttons were off screen to the right."""
    context = browser.new_context(viewport={"width": width, "height": 800})
    try:
        phone = context.new_page()
        phone.goto(live.url + "/demo/")
        phone.evaluate("""() => {
            localStorage.setItem('demo:cart', JSON.stringify([
                {id: '85123A', title: 'White Hanging Heart T-Light Holder', price: 2.95, qty: 12},
                {id: '85099B', title: 'Jumbo Bag Red Retrospot', price: 2.08, qty: 3}]));
            localStorage.setItem('demo:discount', JSON.stringify({code: 'SK-7QX2', amount: 1.5,
                min_subtotal: '1', expires_at: null, cart: ''}));
        }""")
        phone.goto(live.url + "/demo/cart")
        phone.wait_for_selector("#cart-discount:not([hidden])")
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the basket is {overflow}px wider than a {width}px screen"
        for remove in phone.get_by_role("button", name=re.compile("^Remove ")).all():
            box = remove.bounding_box()
            assert box is not None and box["x"] + box["width"] <= width
    finally:
        context.close()


def test_a_basket_open_in_another_tab_follows_what_this_tab_adds(demo_shop, live, page):
    """Two tabs of the shop: the basket tab showed "Basket (0)", no lines, and quoted the
    cart offer for the old basket until reloaded; its Place order then bought lines it
    never showed."""
    basket = page.context.new_page()
    basket.goto(live.url + "/demo/cart")
    expect(basket.locator("#cart-empty")).to_be_visible()
    open_page(page, live.url + "/demo/")
    first = page.locator("main .grid [data-add-to-cart-id]").first
    product = first.get_attribute("data-add-to-cart-id")
    first.click()
    expect(basket.locator("#cart-count")).to_have_text("1")
    expect(basket.locator("#cart-lines tr")).to_have_count(1)
    expect(basket.locator("#cart-empty")).to_be_hidden()
    assert product in basket.locator('[data-shopkeeper="cart-offer"]').get_attribute("data-cart")
    assert_clean(page)


def test_removing_a_line_with_the_keyboard_keeps_focus_in_the_basket(demo_shop, live, page):
    """Remove and Place order take their own button away: keyboard focus fell to the page,
    and the next Tab started again from the top. It goes to the next line's Remove, then
    to the basket's "empty" note."""
    def active() -> str:
        return page.evaluate("() => (document.activeElement.getAttribute('aria-label') || "
                             "document.activeElement.id || document.activeElement.tagName)")
    page.goto(live.url + "/demo/")
    page.evaluate("""() => localStorage.setItem('demo:cart', JSON.stringify([
        {id: '85123A', title: 'White Hanging Heart', price: 2.95, qty: 1},
        {id: '85099B', title: 'Jumbo Bag Red Retrospot', price: 2.08, qty: 3}]))""")
    page.goto(live.url + "/demo/cart")
    page.get_by_role("button", name="Remove White Hanging Heart").focus()
    page.keyboard.press("Enter")
    assert active() == "Remove Jumbo Bag Red Retrospot"
    page.keyboard.press("Enter")
    assert active() == "cart-empty"
    page.evaluate("""() => { localStorage.setItem('demo:cart', JSON.stringify([
        {id: '85123A', title: 'White Hanging Heart', price: 2.95, qty: 1}]));
        dispatchEvent(new StorageEvent('storage', {key: 'demo:cart'})); }""")
    page.get_by_role("button", name="Place order").focus()
    page.keyboard.press("Enter")
    assert active() == "cart-empty"
    assert_clean(page)


def test_re_rendering_does_not_pile_up_window_listeners(demo_shop, live, page):
    open_page(page, live.url + "/demo/")
    cdp = page.context.new_cdp_session(page)

    def resize_listeners() -> int:
        window = cdp.send("Runtime.evaluate", {"expression": "window"})["result"]["objectId"]
        found = cdp.send("DOMDebugger.getEventListeners", {"objectId": window})["listeners"]
        return sum(1 for listener in found if listener["type"] == "resize")

    before = resize_listeners()
    for _ in range(3):  # a single-page storefront logging in and out re-renders the carousel
        with page.expect_response(lambda r: f"{API}recommendations" in r.url):
            page.evaluate("Shopkeeper.identify(null)")
        page.wait_for_selector(READY)
    assert resize_listeners() == before
    assert_clean(page)


def test_a_failed_config_is_asked_again_on_the_next_render(demo_shop, live, page):
    # /config fails until the carousel has given up: the who-for and cart-offer modules ask
    # for it too, often first, and a single failure could land on one of them alone
    failures, down = [], [True]

    def config_fails_while_down(route):
        if down[0]:
            failures.append(route.request.url)
            return route.fulfill(status=503, content_type="application/json", body="{}")
        return route.continue_()

    page.route(f"**{API}config**", config_fails_while_down)
    page.goto(live.url + "/demo/")
    page.wait_for_selector(FAILED, state="attached")
    down[0] = False
    # The API is back: a single-page storefront's next identify() or build() shows it.
    with page.expect_response(lambda r: f"{API}recommendations" in r.url):
        page.evaluate("Shopkeeper.identify(null)")
    page.wait_for_selector(READY)
    assert failures
    assert_clean(page, ignore_network_to=live.url + API)
