"""The Saleor Dashboard handshake in real Chromium: framed by the Dashboard, not otherwise.

The Dashboard is stood in for by a page a second local server serves at its own origin
(Chromium will not let a page from nowhere frame the loopback): it frames the admin and
posts App Bridge's ``handshake`` message. admin.js must
then ask for a session with the token, and must ignore the same message from anyone
but the framing Dashboard. The Dashboard's ``theme`` (its iframe URL's ``?theme=``, then
its ``theme`` messages) decides the admin's colour scheme over the system's (theme.js).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import quote

import pytest

from connectors.base import Credentials
from plugin import shops
from plugin.extensions import db

pytestmark = pytest.mark.browser

HOST = "bridge-test.saleor.example"
API_URL = f"https://{HOST}/graphql/"
HANDSHAKE = {"type": "handshake", "payload": {"token": "dashboard-jwt", "version": 1}}


class _Dashboard:
    """A one-page server on the loopback: the stand-in Saleor Dashboard."""

    def __init__(self, page_html: str = "") -> None:
        self.html = page_html
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = owner.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        # "localhost", not 127.0.0.1: another origin than the admin's
        self.origin = f"http://localhost:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def dashboard():
    board = _Dashboard()
    try:
        yield board
    finally:
        board.server.shutdown()
        board.server.server_close()


@pytest.fixture
def saleor_shop(app, dashboard):
    shop = shops.create_shop("saleor", HOST, Credentials(
        shop_domain=HOST, access_token="app-token", api_url=API_URL,
        extra={"app_id": "QXBwOjE="}))
    shop.settings = {**(shop.settings or {}), "admin_origin": dashboard.origin}
    db.session.commit()
    return shop


def _session_requests(page) -> list:
    seen: list = []
    page.on("request", lambda r: seen.append(r) if r.url.endswith("/admin/session/saleor")
            else None)
    return seen


def test_the_framing_dashboards_handshake_asks_for_a_session(saleor_shop, dashboard, live,
                                                             page):
    admin = f"{live.url}/admin/?saleorApiUrl={quote(API_URL, safe='')}"
    parent = (f'<!doctype html><iframe id="app" src="{admin}"></iframe><script>'
              'document.getElementById("app").addEventListener("load", function () {'
              f' this.contentWindow.postMessage({json.dumps(HANDSHAKE)}, "*"); }});'
              "</script>")
    dashboard.html = parent
    seen = _session_requests(page)
    page.goto(f"{dashboard.origin}/apps/shopkeeper")
    frame = page.frame_locator("#app")
    frame.locator("h1:has-text('Sign in to Shopkeeper')").wait_for()  # framing allowed
    page.wait_for_timeout(500)
    assert len(seen) == 1
    assert seen[0].headers["authorization-bearer"] == "dashboard-jwt"
    assert seen[0].headers["saleor-api-url"] == API_URL


def test_the_same_message_from_anyone_else_is_ignored(saleor_shop, live, page):
    seen = _session_requests(page)
    page.goto(f"{live.url}/admin/?saleorApiUrl={quote(API_URL, safe='')}")
    page.wait_for_selector("h1:has-text('Sign in to Shopkeeper')")
    page.evaluate(f"window.postMessage({json.dumps(HANDSHAKE)}, '*')")  # not framed at all
    page.wait_for_timeout(500)
    assert seen == []


def test_a_refused_session_says_why_in_the_frame(saleor_shop, dashboard, live, page):
    """A staff member without "Manage apps" was left on a bare sign-in form with no word
    of why; the frame now shows the server's reason."""
    reason = 'Shopkeeper\'s settings need the Saleor permission "Manage apps".'
    page.route("**/admin/session/saleor", lambda route: route.fulfill(
        status=403, content_type="application/json",
        body=json.dumps({"code": 403, "status": "Forbidden", "message": reason,
                         "errors": {}})))
    admin = f"{live.url}/admin/?saleorApiUrl={quote(API_URL, safe='')}"
    dashboard.html = (f'<!doctype html><iframe id="app" src="{admin}"></iframe><script>'
                      'document.getElementById("app").addEventListener("load", function () {'
                      f' this.contentWindow.postMessage({json.dumps(HANDSHAKE)}, "*"); }});'
                      "</script>")
    page.goto(f"{dashboard.origin}/apps/shopkeeper")
    alert = page.frame_locator("#app").locator("#sk-saleor-refused[role=alert]")
    alert.wait_for()
    assert alert.inner_text() == reason


THEME_DARK = {"type": "theme", "payload": {"theme": "dark"}}
THEME_LIGHT = {"type": "theme", "payload": {"theme": "light"}}
#: the admin page's background in each scheme (admin.css ``--sk-bg``)
BACKGROUND = {"light": "rgb(255, 255, 255)", "dark": "rgb(13, 17, 23)"}


def _admin_url(live, **extra: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in extra.items())
    return f"{live.url}/admin/?saleorApiUrl={quote(API_URL, safe='')}" \
        + (f"&{query}" if query else "")


def _frames_the_admin(src: str) -> str:
    """The stand-in Dashboard: frames ``src``; ``post(message)`` and ``go(url)`` let the
    test send App Bridge messages and move the frame, as the Dashboard does."""
    return (f'<!doctype html><iframe id="app" src="{src}"></iframe><script>'
            'var app = document.getElementById("app");'
            'function post(m) { app.contentWindow.postMessage(m, "*"); }'
            "function go(url) { app.src = url; }</script>")


def _framed_background(page) -> str:
    page.frame_locator("#app").locator("h1:has-text('Sign in to Shopkeeper')").wait_for()
    frame = page.locator("#app").element_handle().content_frame()
    return frame.evaluate("getComputedStyle(document.body).backgroundColor")


@pytest.mark.parametrize(("system", "theme"), [("light", "dark"), ("dark", "light")])
def test_the_first_page_is_drawn_in_the_dashboards_theme(saleor_shop, dashboard, live, page,
                                                         system, theme):
    """The iframe URL's ``theme`` decides before any message (none is posted here)."""
    page.emulate_media(color_scheme=system)
    dashboard.html = _frames_the_admin(_admin_url(live, theme=theme))
    page.goto(f"{dashboard.origin}/apps/shopkeeper")
    assert _framed_background(page) == BACKGROUND[theme]


def test_the_admin_follows_the_dashboards_theme_messages(saleor_shop, dashboard, live, page):
    page.emulate_media(color_scheme="light")
    dashboard.html = _frames_the_admin(_admin_url(live))
    page.goto(f"{dashboard.origin}/apps/shopkeeper")
    assert _framed_background(page) == BACKGROUND["light"]  # the system's, until told
    page.evaluate(f"post({json.dumps(THEME_DARK)})")
    frame = page.locator("#app").element_handle().content_frame()
    frame.wait_for_function("() => document.documentElement.dataset.skTheme === 'dark'")
    assert _framed_background(page) == BACKGROUND["dark"]
    # the next page in the frame is drawn dark at once (the server reads the frame's
    # partitioned cookie), before the Dashboard's message on its load, which this stand-in
    # does not even send
    with page.expect_event("framenavigated", predicate=lambda f: "id=" in f.url):
        page.evaluate(f"go({json.dumps(_admin_url(live, id='QXBwOjE='))})")
    assert _framed_background(page) == BACKGROUND["dark"]
    page.evaluate(f"post({json.dumps(THEME_LIGHT)})")
    frame = page.locator("#app").element_handle().content_frame()
    frame.wait_for_function("() => document.documentElement.dataset.skTheme === 'light'")
    assert _framed_background(page) == BACKGROUND["light"]
    page.evaluate(f"post({json.dumps(THEME_DARK)})")
    frame.wait_for_function("() => document.documentElement.dataset.skTheme === 'dark'")
    # the admin opened on its own, outside the Dashboard, keeps the system's scheme
    page.goto(f"{live.url}/admin/login")
    page.wait_for_selector("h1:has-text('Sign in to Shopkeeper')")
    assert page.evaluate("document.documentElement.hasAttribute('data-sk-theme')") is False
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") \
        == BACKGROUND["light"]


def test_a_theme_message_from_anyone_but_the_dashboard_is_ignored(saleor_shop, dashboard,
                                                                  live, page):
    page.emulate_media(color_scheme="light")
    page.goto(_admin_url(live))  # not framed at all
    page.wait_for_selector("h1:has-text('Sign in to Shopkeeper')")
    page.evaluate(f"window.postMessage({json.dumps(THEME_DARK)}, '*')")
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.hasAttribute('data-sk-theme')") is False
    dashboard.html = _frames_the_admin(_admin_url(live))
    page.goto(f"{dashboard.origin}/apps/shopkeeper")
    _framed_background(page)
    frame = page.locator("#app").element_handle().content_frame()
    frame.evaluate(f"window.postMessage({json.dumps(THEME_DARK)}, '*')")  # from itself
    page.wait_for_timeout(300)
    assert _framed_background(page) == BACKGROUND["light"]
