"""The widgets under the shop's policies: consent, rate limits, no JavaScript, nothing to show."""

from __future__ import annotations

import pytest

from tests.widgets.helpers import (
    API,
    FOR_YOU,
    assert_clean,
    interactions,
    open_page,
)

pytestmark = pytest.mark.browser


def _settings(shop, **changes) -> None:
    from plugin.api.access import forget_shops
    from plugin.extensions import db

    shop.settings = {**shop.settings, **changes}
    db.session.commit()
    forget_shops()


def _add_from_carousel(page, nth: int = 0) -> None:
    page.locator(f"{FOR_YOU} .sk-add").nth(nth).click()


def test_nothing_personal_is_sent_or_stored_before_consent(demo_shop, live, page):
    _settings(demo_shop, consent_required=True)
    sent = []
    page.on("request", lambda r: sent.append(r) if API in r.url else None)
    answer = open_page(page, live.url + "/demo/")
    assert answer["personalized"] is False  # served, but nothing personal
    shopper = page.evaluate("Shopkeeper.shopper")

    _add_from_carousel(page, 0)  # the shopper has not answered: the event is dropped
    page.evaluate("Shopkeeper.api.flush()")
    page.wait_for_timeout(300)
    assert [r.url for r in sent if f"{API}events" in r.url] == []
    assert all("x-shopkeeper-shopper" not in r.headers for r in sent)
    assert page.evaluate("localStorage.getItem('shopkeeper:shopper')") is None
    assert page.evaluate("sessionStorage.getItem('shopkeeper:recs')") is None

    with page.expect_response(lambda r: f"{API}consent" in r.url) as answered:
        page.evaluate("Shopkeeper.consent(true)")
    assert answered.value.json() == {"granted": True}
    assert answered.value.request.headers["x-shopkeeper-shopper"] == shopper
    assert page.evaluate("localStorage.getItem('shopkeeper:shopper')") == shopper
    with page.expect_response(lambda r: f"{API}events" in r.url) as stored:
        _add_from_carousel(page, 1)
    assert stored.value.json() == {"stored": 1}
    rows = interactions(demo_shop.id, shopper_id=shopper, kind="add_to_cart")
    assert [r.product_external_id for r in rows] == [answer["items"][1]["product_id"]]

    # The next visit remembers the answer; declining forgets the id again.
    open_page(page, live.url + "/demo/")
    assert page.evaluate("Shopkeeper.shopper") == shopper
    with page.expect_response(lambda r: f"{API}consent" in r.url) as declined:
        page.evaluate("Shopkeeper.consent(false)")
    assert declined.value.json() == {"granted": False}
    assert page.evaluate("localStorage.getItem('shopkeeper:shopper')") is None
    assert_clean(page)


def test_a_429_pauses_sending_and_keeps_the_events(demo_shop, live, page, app):
    app.config["API_RATE_LIMIT_PER_CLIENT"] = "2 per minute"  # per view: events get 2
    open_page(page, live.url + "/demo/")
    shopper = page.evaluate("Shopkeeper.shopper")
    posted = []
    page.on("response", lambda r: posted.append(r.status) if f"{API}events" in r.url else None)

    for nth in range(3):  # each carousel add-to-cart is sent at once
        with page.expect_response(lambda r: f"{API}events" in r.url):
            _add_from_carousel(page, nth)
    assert posted == [202, 202, 429]
    _add_from_carousel(page, 3)  # paused by Retry-After: queued, not sent
    page.wait_for_timeout(2500)
    assert posted == [202, 202, 429]
    assert page.evaluate("Shopkeeper.queue.length") == 2
    assert len(interactions(demo_shop.id, shopper_id=shopper, kind="add_to_cart")) == 2
    assert_clean(page, ignore_network_to=live.url + API)  # the browser logs the 429 itself


def test_storefront_works_without_javascript(demo_shop, live, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(live.url + "/demo/")
        assert page.locator(FOR_YOU).count() == 0
        assert page.locator(".grid .card").count() > 0  # the catalog is server-rendered
        with page.expect_navigation():  # the shopper switcher is a plain form
            page.select_option("#shopper", index=1)
            page.click(".switcher button")
        assert page.locator('[data-shopkeeper="for-you"][data-customer-token]').count() == 1
    finally:
        context.close()


def test_nothing_to_show_keeps_the_widget_hidden(demo_shop, live, page):
    open_page(page, live.url + "/demo/")
    # An anonymous shopper has no "the usual?" items: a valid, empty answer.
    with page.expect_response(lambda r: "placement=reorder" in r.url) as answer:
        page.evaluate("""() => {
            const div = document.createElement('div');
            div.id = 'reorder';
            div.dataset.shopkeeper = 'for-you';
            div.dataset.placement = 'reorder';
            document.querySelector('main').prepend(div);
            Shopkeeper.build();
        }""")
    assert answer.value.json()["items"] == []
    page.wait_for_selector('#reorder[data-shopkeeper-state="empty"]', state="attached")
    assert page.locator(f"#reorder {FOR_YOU}").is_hidden()
    assert_clean(page)


def test_tracked_events_are_batched_into_one_request(demo_shop, live, page):
    open_page(page, live.url + "/demo/")
    shopper = page.evaluate("Shopkeeper.shopper")
    with page.expect_request(lambda r: f"{API}events" in r.url) as sent:
        page.evaluate("""() => {
            Shopkeeper.track('view', {product_id: '22086'});
            Shopkeeper.track('wishlist', {product_id: '22086'});
            Shopkeeper.track('view', {product_id: '85123A'});
        }""")
    batch = sent.value.post_data_json["events"]
    assert [e["type"] for e in batch] == ["view", "wishlist", "view"]
    assert sent.value.headers["x-shopkeeper-shopper"] == shopper
    response = sent.value.response()
    assert response.status == 202 and response.json() == {"stored": 3}
    kinds = [r.kind for r in interactions(demo_shop.id, shopper_id=shopper)]
    assert kinds == ["view", "wishlist", "view"]


def test_logging_out_with_identify_null_ignores_the_page_token(demo_shop, live, page):
    page.goto(live.url + "/demo/")
    customer = page.eval_on_selector("#shopper option:nth-child(2)", "o => o.value")
    with page.expect_response(lambda r: f"{API}recommendations" in r.url):
        page.select_option("#shopper", customer)
    page.wait_for_selector(f'{FOR_YOU}[data-personalized="true"]')
    with page.expect_request(lambda r: f"{API}recommendations" in r.url) as asked:
        page.evaluate("Shopkeeper.identify(null)")
    assert "x-shopkeeper-customer-token" not in asked.value.headers
    page.wait_for_selector(f'{FOR_YOU}[data-personalized="false"]')
    assert_clean(page)


@pytest.mark.parametrize("names", ["", "; trusted-types shopkeeper"], ids=["any", "named"])
def test_pages_that_enforce_trusted_types_still_load_the_widgets(demo_shop, live, page, names):
    """A strict CSP may add require-trusted-types-for 'script': a plain string assigned to a
    script's src is then refused, so the loader hands over its module URLs through its own
    "shopkeeper" policy (which only passes its own modules)."""
    def enforce(route):
        response = route.fetch()
        headers = dict(response.headers)
        headers["content-security-policy"] += "; require-trusted-types-for 'script'" + names
        route.fulfill(response=response, headers=headers)

    page.route(f"{live.url}/demo/", enforce)
    open_page(page, live.url + "/demo/")
    assert page.evaluate("() => typeof trustedTypes") == "object"
    assert_clean(page)  # no 'TrustedScriptURL' violation, the carousel rendered


def test_a_nonce_and_strict_dynamic_csp_loads_the_widgets(demo_shop, live, page):
    """The other common strict CSP: only nonced scripts, and what they add (the modules)."""
    def nonced(route):
        response = route.fetch()
        headers = dict(response.headers)
        headers["content-security-policy"] = headers["content-security-policy"].replace(
            "script-src 'self'", "script-src 'nonce-sk123' 'strict-dynamic'")
        body = response.text().replace("<script ", '<script nonce="sk123" ')
        route.fulfill(response=response, headers=headers, body=body)

    page.route(f"{live.url}/demo/", nonced)
    open_page(page, live.url + "/demo/")
    assert "strict-dynamic" in page.evaluate(
        "fetch(location.href).then(r => r.headers.get('content-security-policy'))")
    assert_clean(page)


def _events_route(page, statuses: list[int]):
    """Answer the next event posts with ``statuses`` (0: connection refused), then pass."""
    seen = []

    def handler(route):
        seen.append(route.request.post_data_json["events"])
        if len(seen) <= len(statuses):
            status = statuses[len(seen) - 1]
            if status == 0:
                return route.abort("connectionrefused")
            return route.fulfill(status=status, content_type="application/json",
                                 body='{"error": "unavailable"}')
        return route.continue_()

    page.route(f"**{API}events**", handler)
    return seen


def test_events_the_api_did_not_store_are_sent_again(demo_shop, live, page):
    """A 503 and a refused connection store nothing: the batch waits and is sent again
    (2 s, then 4 s later) instead of being lost."""
    open_page(page, live.url + "/demo/")
    shopper = page.evaluate("Shopkeeper.shopper")
    seen = _events_route(page, [503, 0])
    with page.expect_response(lambda r: f"{API}events" in r.url and r.status == 202,
                              timeout=15_000):
        _add_from_carousel(page, 0)
    assert len(seen) == 3 and seen[0] == seen[1] == seen[2]  # the same event, three times
    rows = interactions(demo_shop.id, shopper_id=shopper, kind="add_to_cart")
    assert len(rows) == 1  # stored once
    assert page.evaluate("Shopkeeper.queue.length") == 0
    assert_clean(page, ignore_network_to=live.url + API)


def test_a_rejected_batch_is_not_retried_and_retries_are_bounded(demo_shop, live, page):
    open_page(page, live.url + "/demo/")
    seen = _events_route(page, [400])
    _add_from_carousel(page, 0)
    page.wait_for_timeout(2800)
    assert len(seen) == 1  # a 4xx is the API's answer to that batch: final
    page.unroute(f"**{API}events**")
    seen = _events_route(page, [500] * 10)
    _add_from_carousel(page, 1)
    page.wait_for_timeout(2000 + 4000 + 8000 + 1500)
    assert len(seen) == 4  # the first try and three retries, then it gives up
    assert_clean(page, ignore_network_to=live.url + API)


def test_retry_after_as_an_http_date_pauses_until_then(demo_shop, live, page):
    """RFC 9110 allows an HTTP date; read as a number it was NaN, so every 429 paused the
    widgets 30 s. A date already past pauses nothing."""
    open_page(page, live.url + "/demo/")
    asked = page.evaluate("""async () => {
        const until = new Date(Date.now() - 5000).toUTCString();
        const real = window.fetch;
        window.fetch = () => Promise.resolve(new Response('{}', {status: 429,
            headers: {'Retry-After': until, 'Content-Type': 'application/json'}}));
        await Shopkeeper.api.request('GET', '/config', null, {cache: 'x'});
        window.fetch = real;
        let asked = 0;
        window.fetch = (...a) => { asked += 1; return real(...a); };
        await Shopkeeper.api.request('GET', '/config', null, {cache: 'y'});
        window.fetch = real;
        return asked;
    }""")
    assert asked == 1  # not paused: the date has passed (the old reading paused 30 s)
