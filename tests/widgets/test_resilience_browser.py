"""The widgets as a storefront embedding them lives with them: reserved space while loading,
bad answers, failed modules, retries and placeholders moved by a single-page storefront."""

from __future__ import annotations

import time

import pytest

from tests.widgets.helpers import API, FAILED, READY, assert_clean

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


def test_a_module_that_cannot_load_leaves_no_pending_slot(demo_shop, live, page):
    page.route("**/for-you.js", lambda route: route.abort("blockedbyclient"))
    page.goto(live.url + "/demo/")
    page.wait_for_selector(FAILED, state="attached", timeout=5_000)
    assert page.eval_on_selector(SLOT, "el => el.getBoundingClientRect().height") == 0
    # The other widgets' module loaded: their placeholders are not marked failed.
    page.wait_for_selector('[data-shopkeeper="shopping-for"][data-shopkeeper-state="off"]',
                           state="attached")
    assert_clean(page, ignore_network_to=live.url + "/widgets/")
