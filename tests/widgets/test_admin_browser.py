"""The admin in real Chromium: sign in, see charts, fail validation, save, screenshot; the
charts' contrast in the light and dark colour schemes."""

from __future__ import annotations

import pytest

from tests.widgets.conftest import ARTIFACTS, WATCH_SCRIPT
from tests.widgets.helpers import contrast, luminance

pytestmark = pytest.mark.browser

#: Every mark of every chart: its tag, class (and text), the colour painting it, the colour
#: of the first painted box behind the chart, and the contrast WCAG asks: 4.5:1 for text
#: (1.4.3), 3:1 for series lines, legend keys, intervals, estimates and the zero line
#: (1.4.11). Gridlines are left out: the tick labels carry the values.
CHART_MARKS = """() => [...document.querySelectorAll('svg.sk-chart')].flatMap(svg => {
    let b = svg;
    while (b && getComputedStyle(b).backgroundColor === 'rgba(0, 0, 0, 0)') b = b.parentElement;
    const behind = b ? getComputedStyle(b).backgroundColor : null;
    const marks = 'text, polyline, circle, line:not(.sk-grid)';
    return [...svg.querySelectorAll(marks)].map(el => {
        const cs = getComputedStyle(el), text = el.tagName === 'text';
        return {tag: el.tagName, mark: (el.getAttribute('class') || '')
                    + (text ? ' ' + el.textContent : ''),
                colour: text || el.tagName === 'circle' ? cs.fill : cs.stroke,
                behind, needs: text ? 4.5 : 3};
    });
})"""
#: The page's own text and background colours.
PAGE_COLOURS = """() => { const s = getComputedStyle(document.body);
    return [s.color, s.backgroundColor]; }"""


def _sign_in(app, shop, live, page) -> None:
    """Open the dashboard through the shop's sign-in link (confirmed on its page: opened
    from outside any page, it asks whose shop it opens first)."""
    from plugin.admin.auth import admin_link

    app.config["PUBLIC_URL"] = live.url
    with app.test_request_context():
        link = admin_link(shop)
    page.goto(link)
    page.click(f"button:has-text('Sign in to {shop.domain}')")
    page.wait_for_selector("h1:has-text('Dashboard')")


def test_admin_sign_in_change_guardrail_and_dashboard(app, demo_shop, live, page):
    _sign_in(app, demo_shop, live, page)
    assert page.locator("svg.sk-chart").count() >= 4
    orders = int(page.inner_text('[data-kpi="orders"]'))
    assert orders > 0  # the seeded shop's real orders fill the window
    assert page.locator("svg.sk-chart polyline").count() >= 5
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-dashboard.png"), full_page=True)

    page.click("nav >> text=Settings")
    page.wait_for_selector("h1:has-text('Settings')")
    page.fill("[name='offers.max_discount_pct']", "95")
    page.click("button:has-text('Save settings')")
    error = page.wait_for_selector("#err-offers-max_discount_pct")
    assert "Must be between 0 and 90." in error.inner_text()
    assert page.get_attribute("[name='offers.max_discount_pct']", "aria-invalid") == "true"
    assert page.input_value("[name='offers.max_discount_pct']") == "95"  # kept as typed

    page.fill("[name='offers.max_discount_pct']", "12")
    page.click("button:has-text('Save settings')")
    page.wait_for_selector("text=Settings saved.")
    assert page.input_value("[name='offers.max_discount_pct']") == "12.00"
    page.keyboard.press("Tab")  # focus is visible and keyboard reachable
    assert page.evaluate("document.activeElement !== document.body")
    violations = page.evaluate("window.__skViolations")
    assert violations == [] and page.watch.page_errors == []
    # The only console error is Chromium's own note of the deliberate 422 answer.
    assert [e for e in page.watch.errors() if "status of 422" not in e] == []


def test_admin_charts_keep_their_contrast_in_both_colour_schemes(app, demo_shop, live, page):
    """The dashboard follows the browser's colour scheme (light on dark when dark), and in
    each the charts' text and marks keep their contrast with the page behind them; the
    series take the dark scheme's own colours rather than keeping the light ones."""
    _sign_in(app, demo_shop, live, page)
    series = {}
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        fg, bg = page.evaluate(PAGE_COLOURS)
        assert (luminance(bg) < luminance(fg)) == (scheme == "dark"), (scheme, fg, bg)
        marks = page.evaluate(CHART_MARKS)
        kinds = {m["tag"] for m in marks} | {m["mark"].split(" ")[0] for m in marks}
        assert {"sk-chart-title", "sk-axis", "sk-legend", "polyline", "line"} <= kinds, kinds
        assert all(m["behind"] for m in marks)
        ratios = [round(contrast(m["colour"], m["behind"]), 2) for m in marks]
        poor = [(m["tag"], m["mark"], m["colour"], m["behind"], ratio)
                for m, ratio in zip(marks, ratios, strict=True) if ratio < m["needs"]]
        assert poor == [], f"{scheme}: {poor}"
        series[scheme] = [m["colour"] for m in marks if m["tag"] == "polyline"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-dashboard-dark.png"), full_page=True)
    assert [light == dark for light, dark in zip(series["light"], series["dark"],
                                                  strict=True)] == [False] * len(series["light"])
    assert page.watch.page_errors == [] and page.evaluate("window.__skViolations") == []


def test_admin_two_tabs_the_second_saving_the_same_field_is_told_and_keeps_its_edits(
        app, demo_shop, live, page):
    _sign_in(app, demo_shop, live, page)
    first = page
    first.goto(f"{live.url}/admin/settings")
    second = page.context.new_page()  # another tab of the same browser (same session)
    second.add_init_script(WATCH_SCRIPT)
    second.goto(f"{live.url}/admin/settings")

    first.fill("[name='offers.max_discount_pct']", "12")
    first.click("button:has-text('Save settings')")
    first.wait_for_selector("text=Settings saved.")

    second.fill("[name='offers.max_discount_pct']", "10")
    second.fill("[name='privacy.retention_days']", "400")
    second.click("button:has-text('Save settings')")
    notice = second.wait_for_selector("#settings-conflict")
    assert "Max discount was changed to 12 % while you were editing" in notice.inner_text()
    assert second.input_value("[name='offers.max_discount_pct']") == "12.00"
    assert second.get_attribute("[name='offers.max_discount_pct']", "aria-invalid") == "true"
    assert second.input_value("[name='privacy.retention_days']") == "400"  # kept

    second.click("button:has-text('Save settings')")
    second.wait_for_selector("text=Settings saved.")
    assert second.input_value("[name='offers.max_discount_pct']") == "12.00"
    assert second.input_value("[name='privacy.retention_days']") == "400"
    assert first.evaluate("window.__skViolations") == [] and first.watch.page_errors == []
    assert second.evaluate("window.__skViolations") == []


#: What sticks out of the viewport's right edge (WCAG 1.4.10 reflow: nothing at 320 px).
STICKING_OUT = """() => [...document.querySelectorAll('main *')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
            && !e.closest('.sk-scroll'))
    .map(e => e.tagName + (e.id ? '#' + e.id : '')).slice(0, 5)"""


def test_admin_pages_fit_a_phone_and_their_tables_scroll_in_place(app, demo_shop, live, page):
    """At 320 px wide no page scrolls sideways: a table too wide for it (the data-health
    table's five columns did, pushing the whole dashboard 140 px past the edge) scrolls
    inside its own box, which the keyboard can focus to scroll it."""
    from plugin.extensions import db
    from plugin.shops import update_settings

    update_settings(demo_shop.id, lambda s: {**s, "offers": {**s.get("offers", {}), (
        "currency_guardrails"): {"EUR": {"daily_budget": "90", "monthly_budget": "900",
                                        "min_cart_value": "25"}}}})
    db.session.commit()  # the settings page's five-column "Other currencies" table too
    page.set_viewport_size({"width": 320, "height": 800})
    _sign_in(app, demo_shop, live, page)
    for path in ("/admin/", "/admin/settings", "/admin/privacy"):
        page.goto(f"{live.url}{path}")
        assert page.evaluate(STICKING_OUT) == [], path
        assert page.evaluate("document.documentElement.scrollWidth") <= 320, path
    page.goto(f"{live.url}/admin/settings")
    assert page.locator(".sk-scroll table.sk-currencies").count() == 1
    page.goto(f"{live.url}/admin/")
    box = page.locator(".sk-scroll:has(#sk-syncs)")
    assert box.evaluate("b => b.scrollWidth > b.clientWidth")  # it does scroll, in place
    assert box.get_attribute("tabindex") == "0" and box.get_attribute("aria-label")
    # each scrolling box is a region named apart from its section (axe: landmark-unique)
    names = page.evaluate("""() => [...document.querySelectorAll('[role=region], section')]
        .map(e => e.getAttribute('aria-label')
             || document.getElementById(e.getAttribute('aria-labelledby')).textContent)""")
    assert "Sync progress table" in names and len(names) == len(set(names))
    assert page.evaluate("window.__skViolations") == [] and page.watch.page_errors == []


def test_the_sync_table_refresh_moves_each_count_and_keeps_an_unknown_total_open(
        app, demo_shop, live, page):
    """While a sync is under way the page reads ``progress.json`` every 3 s: the count
    beside each bar moves with the bar (it stayed at the page's first figure), and a bar
    whose total is unknown stays indeterminate (a value without a max drew it full, as if
    that sync had finished)."""
    from plugin.extensions import db
    from plugin.models import SyncState
    from tests.factories import wait_until

    db.session.add_all([
        SyncState(shop_id=demo_shop.id, resource="orders", status="paused", done=5, total=100),
        SyncState(shop_id=demo_shop.id, resource="products", status="paused", done=10)])
    db.session.commit()
    _sign_in(app, demo_shop, live, page)
    orders, products = ("#sk-syncs tr[data-resource='orders']",
                        "#sk-syncs tr[data-resource='products']")
    assert page.inner_text(f"{orders} .sk-count") == "5/100"
    for state in db.session.scalars(db.select(SyncState).filter_by(shop_id=demo_shop.id)):
        state.done += 50
    db.session.commit()
    bar = page.locator(f"{orders} progress")
    assert wait_until(lambda: bar.evaluate("b => b.value") == 55, timeout=10)
    page.wait_for_timeout(200)  # the same refresh wrote the rest of both rows
    assert page.inner_text(f"{orders} .sk-count") == "55/100"
    assert page.inner_text(f"{products} .sk-count") == "60"
    assert page.locator(f"{products} progress").evaluate("b => b.position") == -1
    assert page.evaluate("window.__skViolations") == [] and page.watch.page_errors == []
