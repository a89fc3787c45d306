"""Automated accessibility audit: axe-core in real Chromium over the widgets and the admin.

axe.min.js comes from the ``axe-playwright-python`` package (bundled: no network at test
time). The widgets render in open shadow roots, which axe-core walks: the first tests
prove it by planting a known violation inside a widget and seeing axe report it there.
Any serious or critical violation fails; minor and moderate ones are left to the
hand-written tests (test_a11y_browser.py and the widgets' own browser tests).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from plugin.api.access import forget_shops
from plugin.extensions import db
from plugin.models import SubProfile
from tests.widgets.helpers import (
    DARK_PAGE,
    DARK_THEME,
    FOR_YOU,
    READY,
    axe_report,
    axe_violations,
)
from tests.widgets.test_cart_offer_browser import _idle_basket, offer_shop  # noqa: F401
from tests.widgets.test_who_for_browser import _asked_about_a_foreign_product

pytestmark = pytest.mark.browser

#: The widgets alone: their placeholders, each with its element and shadow tree inside.
WIDGETS = "[data-shopkeeper]"
#: Each theme after the one before (the page is set up once): "light", the demo storefront
#: as it ships, audited whole; then the host page painted dark, with the widgets' light
#: defaults ("dark-page") and with README's --sk-* dark theme ("dark-theme"). The demo's
#: own store.css has no dark theme, so there only the widgets are audited.
THEMES = [("light", None, None), ("dark-page", DARK_PAGE, WIDGETS),
          ("dark-theme", DARK_THEME, WIDGETS)]
#: A planted violation: an image with no text alternative (axe rule image-alt, critical).
NO_ALT = """el => { const img = document.createElement('img');
    img.src = 'data:image/gif;base64,R0lGODlhAQABAAAAACw=';
    el.shadowRoot.querySelector('.sk-card').prepend(img); }"""


def _audit_themes(page) -> None:
    """Audit the page in each theme; fail with every serious or critical violation."""
    report = []
    for theme, script, scope in THEMES:
        if script:
            page.evaluate(script)
        found = axe_violations(page, scope)
        if found:
            report.append(f"{theme}:\n{axe_report(found)}")
    assert report == [], "\n".join(report)


@pytest.mark.parametrize("scope", [None, WIDGETS], ids=["page", "widgets"])
def test_axe_sees_inside_the_widgets_shadow_roots(demo_shop, live, page, scope):
    """The audit is real: an <img> without alt planted in the carousel's shadow root is
    reported, with the target path going through the shadow host."""
    page.goto(live.url + "/demo/")
    page.wait_for_selector(READY)
    assert axe_violations(page, scope) == []
    page.eval_on_selector(FOR_YOU, NO_ALT)
    found = axe_violations(page, scope)
    assert [v["id"] for v in found] == ["image-alt"], axe_report(found)
    assert [n["target"] for n in found[0]["nodes"]] == [[[FOR_YOU, "img"]]]


def test_storefront_with_the_carousel_and_the_switcher(demo_shop, live, page):
    """/demo/ for a signed-in customer with someone to shop for: the carousel, the
    "Shopping for" switcher and the "Past orders" panel, opened."""
    page.goto(live.url + "/demo/")
    customer = page.eval_on_selector("#shopper option:nth-child(2)", "o => o.value")
    demo_shop.settings = {**demo_shop.settings, "subprofiles_enabled": True}
    db.session.add(SubProfile(shop_id=demo_shop.id, owner_id=customer, name="Maya"))
    db.session.commit()
    forget_shops()
    page.select_option("#shopper", customer)  # signs in: the page reloads
    page.wait_for_selector('[data-shopkeeper="shopping-for"][data-shopkeeper-state="ready"]',
                           state="attached")
    page.wait_for_selector(READY)
    page.locator("shopkeeper-shopping-for summary").click()
    expect(page.locator("shopkeeper-shopping-for .sk-orders select").first).to_be_visible()
    _audit_themes(page)


def test_storefront_asking_who_the_basket_is_for(demo_shop, live, page):
    """The "Who are you shopping for?" dialog, with "Someone new" picked and saved with no
    name: its name fields and its error are shown."""
    _asked_about_a_foreign_product(demo_shop, live, page)
    page.get_by_label("Someone new").check()
    page.get_by_role("button", name="Save").click()
    page.get_by_role("alert").wait_for(state="visible")
    _audit_themes(page)


def test_cart_with_the_offer_and_the_carousel(offer_shop, live, page):  # noqa: F811
    """The basket page: the cart offer banner with its free-shipping bar, and the
    "Goes well with your basket" carousel."""
    _idle_basket(page, live, offer_shop)
    page.goto(live.url + "/demo/cart")
    page.wait_for_selector('[data-shopkeeper="cart-offer"][data-shopkeeper-state="ready"]',
                           state="attached")
    page.wait_for_selector(READY)
    _audit_themes(page)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_admin_dashboard_and_settings(app, demo_shop, live, page, scheme):
    """The admin's sign-in confirmation, its dashboard (charts, KPIs), its settings page,
    the settings page showing a validation error and then saved, and the privacy page, in
    the browser's light and dark colour schemes (axe leaves the charts' SVG text to
    test_admin_browser.py)."""
    from plugin.admin.auth import admin_link
    from plugin.offers import platform

    page.emulate_media(color_scheme=scheme)
    app.config["PUBLIC_URL"] = live.url
    # the offers section's table of other currencies, one of them configured; a stored
    # rule and a cart URL the page refuses (flagged in their box and in the offers section)
    demo_shop.settings = {**demo_shop.settings, platform.KEY: {
        "sold": ["EUR", "GBP", "JPY", "USD"], "pinned": True, "read_at": "2026-11-25T00:00:00"},
        "merchandising": [*(demo_shop.settings.get("merchandising") or []),
                          {"action": "boost", "field": "tag", "value": "sale", "weight": 50}],
        "offers": {**(demo_shop.settings.get("offers") or {}), "currency_guardrails": {
            "EUR": {"daily_budget": 90, "monthly_budget": 1300, "min_cart_value": 18}},
            "cart_url": "javascript:alert(1)"}}
    db.session.commit()
    with app.test_request_context():
        link = admin_link(demo_shop)
    page.goto(link)  # from outside any page: it asks whose shop it opens first
    page.wait_for_selector(f"h1:has-text('Sign in to {demo_shop.domain}?')")
    found = axe_violations(page)
    page.click(f"button:has-text('Sign in to {demo_shop.domain}')")
    page.wait_for_selector("h1:has-text('Dashboard')")
    found += axe_violations(page)
    page.click("nav >> text=Settings")
    page.wait_for_selector("h1:has-text('Settings')")
    page.wait_for_selector("#err-merchandising")
    page.wait_for_selector("#stored-offers-cart_url #err-offers-cart_url")
    found += axe_violations(page)
    page.fill("[name='offers.max_discount_pct']", "95")
    page.fill("[name='offers.currency_guardrails.JPY.daily_budget']", "-1")
    page.click("button:has-text('Save settings')")
    page.wait_for_selector("#err-offers-max_discount_pct")
    page.wait_for_selector("#err-offers-currency_guardrails-JPY-min_cart_value")
    found += axe_violations(page)
    page.fill("[name='offers.max_discount_pct']", "12")
    page.fill("[name='offers.currency_guardrails.JPY.daily_budget']", "")
    page.click("button:has-text('Save settings')")
    page.wait_for_selector("text=Settings saved.")
    found += axe_violations(page)
    page.click("nav >> text=Privacy")
    page.wait_for_selector("h1:has-text('Privacy tools')")
    found += axe_violations(page)
    assert found == [], axe_report(found)
