"""The admin in real Chromium: sign in, see charts, fail validation, save, screenshot."""

from __future__ import annotations

import pytest

from tests.widgets.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def test_admin_sign_in_change_guardrail_and_dashboard(app, demo_shop, live, page):
    from plugin.admin.auth import admin_link

    app.config["PUBLIC_URL"] = live.url
    with app.test_request_context():
        link = admin_link(demo_shop)
    page.goto(link)
    page.wait_for_selector("h1:has-text('Dashboard')")
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
