"""Login CSRF in real Chromium: the ``Sec-Fetch-*`` headers the browser itself sends decide.

Another site is stood in for by a page a second local server serves at
``http://localhost:PORT``, another site than the admin's ``127.0.0.1``: it either frames the
app (as Shopify's admin does) or sends the whole tab to it with a script (as an attacker's
page would, unseen). A link injected into one of the app's own pages is added to its
sign-in page by the test (the browser then sends ``same-origin``).
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from connectors.base import Credentials
from plugin import shops
from plugin.extensions import db
from tests.admin.test_shopify_launch import API_KEY, API_SECRET, INSTALLED, session_token, signed
from tests.widgets.test_saleor_bridge_browser import _Dashboard

pytestmark = pytest.mark.browser

ATTACKER = "attacker-store.myshopify.com"


@pytest.fixture
def site():
    other = _Dashboard()
    try:
        yield other
    finally:
        other.server.shutdown()
        other.server.server_close()


@pytest.fixture
def stores(app, live, site):
    app.config.update(SHOPIFY_API_KEY=API_KEY, SHOPIFY_API_SECRET=API_SECRET,
                      PUBLIC_URL=live.url)
    made = []
    for domain in (INSTALLED, ATTACKER):
        shop = shops.create_shop("shopify", domain, Credentials(
            shop_domain=domain, access_token="shpat_x", webhook_secret=API_SECRET))
        # the stand-in admin may frame the app (Shopify's is admin.shopify.com)
        shop.settings = {**(shop.settings or {}), "admin_origin": site.origin}
        made.append(shop)
    db.session.commit()
    return made


def _sends_the_tab_to(url: str) -> str:
    return f"<!doctype html><script>location.href = {json.dumps(url)};</script>"


def test_the_framing_admin_signs_in_with_its_token(stores, site, live, page) -> None:
    launch = {**signed(INSTALLED, embedded="1"), "id_token": session_token(INSTALLED)}
    site.html = f'<!doctype html><iframe id="app" src="{live.url}/admin/?{urlencode(launch)}">'
    page.goto(f"{site.origin}/store/demo/apps/shopkeeper")
    frame = page.frame_locator("#app")
    frame.locator("h1:has-text('Dashboard')").wait_for()
    assert INSTALLED in frame.locator("header").inner_text()


def test_another_sites_page_cannot_sign_the_tab_in_with_its_token(stores, site, live,
                                                                  page) -> None:
    aimed = {"id_token": session_token(ATTACKER)}
    site.html = _sends_the_tab_to(f"{live.url}/admin/?{urlencode(aimed)}")
    page.goto(f"{site.origin}/free-gift")
    page.wait_for_selector("text=open it from there")
    assert page.url.startswith(f"{live.url}/admin/")
    page.goto(f"{live.url}/admin/settings")
    page.wait_for_selector("h1:has-text('Sign in to Shopkeeper')")  # still no session


def test_a_link_another_site_sends_the_tab_to_asks_first(app, demo_shop, site, live,
                                                         page) -> None:
    from plugin.admin.auth import admin_link

    app.config["PUBLIC_URL"] = live.url
    with app.test_request_context():
        link = admin_link(demo_shop)
    site.html = _sends_the_tab_to(link)
    page.goto(f"{site.origin}/free-gift")
    page.wait_for_selector(f"h1:has-text('Sign in to {demo_shop.domain}?')")
    assert page.request.get(f"{live.url}/admin/settings").status == 401  # not yet
    page.click(f"button:has-text('Sign in to {demo_shop.domain}')")
    page.wait_for_selector("h1:has-text('Dashboard')")
    assert demo_shop.domain in page.inner_text("header")
    assert page.evaluate("window.__skViolations") == []


def test_a_link_opened_from_a_mail_app_asks_whose_shop_first(app, demo_shop, live,
                                                             page) -> None:
    """A link opened from outside any page (a mail app, the address bar: Chromium sends
    ``Sec-Fetch-Site: none``) may be one someone else mailed: it names the shop and signs
    in only by its button; a second link of that shop then renews the session at once."""
    from plugin.admin.auth import admin_link

    app.config["PUBLIC_URL"] = live.url
    with app.test_request_context():
        first, second = admin_link(demo_shop), admin_link(demo_shop)
    page.goto(first)
    page.wait_for_selector(f"h1:has-text('Sign in to {demo_shop.domain}?')")
    assert demo_shop.id in page.inner_text("main")
    assert page.request.get(f"{live.url}/admin/settings").status == 401  # not yet
    page.click(f"button:has-text('Sign in to {demo_shop.domain}')")
    page.wait_for_selector("h1:has-text('Dashboard')")
    page.goto(second)
    page.wait_for_selector("h1:has-text('Dashboard')")
    assert page.evaluate("window.__skViolations") == []


def test_a_link_clicked_on_one_of_the_apps_own_pages_asks_first(app, demo_shop, live,
                                                                  page) -> None:
    """No page of the app links to a sign-in link: one clicked there (Chromium sends
    ``Sec-Fetch-Site: same-origin``) was injected, and names the shop before signing in."""
    from plugin.admin.auth import admin_link

    app.config["PUBLIC_URL"] = live.url
    with app.test_request_context():
        link = admin_link(demo_shop)
    page.goto(f"{live.url}/admin/login")
    page.evaluate("""url => {
        const a = document.createElement("a");
        a.id = "injected"; a.href = url; a.textContent = "Open";
        document.body.append(a);
    }""", link)
    page.click("#injected")
    page.wait_for_selector(f"h1:has-text('Sign in to {demo_shop.domain}?')")
    assert page.request.get(f"{live.url}/admin/settings").status == 401  # not yet
    page.click(f"button:has-text('Sign in to {demo_shop.domain}')")
    page.wait_for_selector("h1:has-text('Dashboard')")
    assert page.evaluate("window.__skViolations") == []
