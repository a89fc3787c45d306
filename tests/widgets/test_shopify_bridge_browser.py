"""The Shopify App Bridge pages in real Chromium, with App Bridge stubbed at the CDN edge.

App Bridge itself can only come from cdn.shopify.com (not reachable here), so the route
answers that URL with a stand-in exposing the two calls admin.js makes: ``window.open``
with ``_top`` and ``shopify.idToken()``. Everything on our side runs for real.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from connectors.base import Credentials
from plugin import shops
from plugin.extensions import db
from tests.admin.test_shopify_launch import (
    API_KEY,
    API_SECRET,
    INSTALLED,
    NEW,
    session_token,
    signed,
)

pytestmark = pytest.mark.browser

STUB = """
window.__opened = [];
window.open = function (url, target) { window.__opened.push([url, target]); return null; };
window.shopify = { idToken: function () { return Promise.resolve(%s); } };
"""


def _stub_app_bridge(page, token: str = "") -> None:
    page.route("https://cdn.shopify.com/shopifycloud/app-bridge.js",
               lambda route: route.fulfill(status=200, content_type="text/javascript",
                                           body=STUB % json.dumps(token)))


@pytest.fixture
def shopify_app(app, live):
    app.config.update(SHOPIFY_API_KEY=API_KEY, SHOPIFY_API_SECRET=API_SECRET,
                      PUBLIC_URL=live.url)
    return app


def test_embedded_install_leaves_the_iframe_for_the_grant(shopify_app, live, page) -> None:
    _stub_app_bridge(page)
    page.goto(f"{live.url}/admin/?{urlencode(signed(NEW, embedded='1'))}")
    page.wait_for_function("() => window.__opened.length > 0")
    assert page.evaluate("window.__opened") == [
        [f"{live.url}/install/shopify?shop={NEW}", "_top"]]
    assert page.evaluate("window.__skViolations") == []
    assert page.watch.page_errors == []


def test_embedded_launch_fetches_a_session_token_and_opens_the_dashboard(
        shopify_app, live, page) -> None:
    shops.create_shop("shopify", INSTALLED, Credentials(
        shop_domain=INSTALLED, access_token="shpat_x", webhook_secret=API_SECRET))
    db.session.commit()
    _stub_app_bridge(page, session_token(INSTALLED))
    page.goto(f"{live.url}/admin/?{urlencode(signed(INSTALLED, embedded='1'))}")
    page.wait_for_selector("h1:has-text('Dashboard')")
    assert INSTALLED in page.inner_text("header")
    assert "id_token=" in page.url
    assert page.evaluate("window.__skViolations") == []
    assert page.watch.page_errors == []
