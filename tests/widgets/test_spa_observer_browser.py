"""Placeholders a single-page storefront inserts after load render without build()."""

from __future__ import annotations

import pytest

from tests.widgets.helpers import API, READY, assert_clean, wait_until

pytestmark = pytest.mark.browser

#: A client-side route adds a product carousel half a second after the page loaded.
INSERT_LATER = """() => new Promise(done => setTimeout(() => {
    const div = document.createElement('div');
    div.id = 'late';
    div.dataset.shopkeeper = 'for-you';
    div.dataset.placement = 'product';
    div.dataset.productId = '22086';
    document.querySelector('main').prepend(div);
    done();
}, 500))"""


def _asked(page) -> list[str]:
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url)
            if f"{API}recommendations" in r.url and "placement=product" in r.url else None)
    return asked


def test_a_placeholder_inserted_after_load_renders(demo_shop, live, page):
    asked = _asked(page)
    page.goto(live.url + "/demo/")
    page.wait_for_selector(READY)
    page.evaluate(INSERT_LATER)
    page.wait_for_selector('#late[data-shopkeeper-state="ready"]', timeout=5_000)
    assert page.locator("#late shopkeeper-for-you .sk-card").count() >= 1
    assert len(asked) == 1, asked
    assert_clean(page)


def test_a_re_inserted_placeholder_renders_once(demo_shop, live, page):
    asked = _asked(page)
    page.goto(live.url + "/demo/")
    page.wait_for_selector(READY)
    page.evaluate(INSERT_LATER)
    page.wait_for_selector('#late[data-shopkeeper-state="ready"]', timeout=5_000)
    # A route away and back: the same placeholder leaves, is forgotten, and comes back.
    page.evaluate("window.__late = document.getElementById('late'); window.__late.remove()")
    wait_until(lambda: page.evaluate(
        "Shopkeeper.elements.every(el => el.isConnected)"), timeout=5)
    page.evaluate("""() => {
        window.__renders = 0;
        const el = window.__late.querySelector('shopkeeper-for-you');
        new MutationObserver(() => window.__renders++)
            .observe(el.shadowRoot, {childList: true});
        document.querySelector('main').prepend(window.__late);
    }""")
    wait_until(lambda: page.evaluate(
        "Shopkeeper.elements.includes(window.__late.querySelector('shopkeeper-for-you'))"),
        timeout=5)
    page.wait_for_timeout(500)
    assert len(asked) == 1, asked
    assert page.evaluate("window.__renders") == 0
    assert page.locator("#late shopkeeper-for-you").count() == 1
    assert page.get_attribute("#late", "data-shopkeeper-state") == "ready"
    assert page.evaluate("Shopkeeper.elements.length") == page.locator(
        "[data-shopkeeper] > :not(noscript)").count()
    assert_clean(page)
