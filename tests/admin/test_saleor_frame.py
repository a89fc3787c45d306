"""The Saleor Dashboard frames the admin before it is signed in, then posts its token."""

from __future__ import annotations

import pytest

from connectors.base import Credentials
from plugin import shops
from plugin.extensions import db

HOST = "frame-test.saleor.example"
API_URL = f"https://{HOST}/graphql/"


@pytest.fixture
def saleor_shop(app):
    shop = shops.create_shop("saleor", HOST, Credentials(
        shop_domain=HOST, access_token="app-token", api_url=API_URL,
        extra={"app_id": "QXBwOjE="}))
    db.session.commit()
    return shop


def _ancestors(response) -> str:
    csp = response.headers["Content-Security-Policy"]
    return csp.split("frame-ancestors", 1)[1].strip()


def test_the_dashboards_first_load_may_be_framed(client, saleor_shop):
    r = client.get("/admin/", query_string={"saleorApiUrl": API_URL, "id": "QXBwOjE="})
    assert r.status_code == 401 and b"Sign in to Shopkeeper" in r.data
    assert _ancestors(r) == "'self' https:"


def test_a_configured_dashboard_origin_is_the_only_one(client, saleor_shop):
    saleor_shop.settings = {**(saleor_shop.settings or {}),
                            "admin_origin": "https://dashboard.shop.example"}
    db.session.commit()
    r = client.get("/admin/", query_string={"saleorApiUrl": API_URL})
    assert _ancestors(r) == "'self' https://dashboard.shop.example"


def test_a_dashboard_origin_stored_before_strict_checks_is_not_framed_in(client,
                                                                         saleor_shop):
    """An origin saved before origins were checked strictly: a ";" in it would have
    added a directive to the header; it is ignored, as if none were set."""
    saleor_shop.settings = {**(saleor_shop.settings or {}),
                            "admin_origin": "https://dashboard.example; script-src *"}
    db.session.commit()
    r = client.get("/admin/", query_string={"saleorApiUrl": API_URL})
    assert _ancestors(r) == "'self' https:"
    assert "script-src *" not in r.headers["Content-Security-Policy"]


@pytest.mark.parametrize("args", [
    {},  # an ordinary visit
    {"saleorApiUrl": "https://not-installed.example/graphql/"},
    {"domain": "not-installed.example"},
])
def test_other_sign_in_pages_cannot_be_framed(client, saleor_shop, args):
    r = client.get("/admin/", query_string=args)
    assert r.status_code == 401 and _ancestors(r) == "'none'"


def test_an_uninstalled_saleor_is_not_framed(client, saleor_shop):
    shops.mark_uninstalled(saleor_shop)
    db.session.commit()
    r = client.get("/admin/", query_string={"saleorApiUrl": API_URL})
    assert _ancestors(r) == "'none'"


# ---------------------------------------------------------------- the Dashboard's theme
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_theme_on_the_dashboards_iframe_url_is_on_the_first_page(client, saleor_shop,
                                                                     theme):
    """The Dashboard names its theme on the iframe's URL: the page is drawn in it at once,
    not in the system's scheme until its ``theme`` message arrives."""
    r = client.get("/admin/", query_string={"saleorApiUrl": API_URL, "theme": theme})
    html = r.get_data(as_text=True)
    assert f'<html lang="en" data-sk-theme="{theme}">' in html
    # theme.js follows the later messages
    assert '<script src="/static/admin/theme.js" defer></script>' in html


@pytest.mark.parametrize("args", [
    {"saleorApiUrl": API_URL, "theme": "purple"},
    {"saleorApiUrl": API_URL, "theme": '"><script>'},
    {"theme": "dark"},  # not the Dashboard's load: the system's scheme
    {"saleorApiUrl": API_URL},
])
def test_no_other_theme_is_put_on_the_page(client, saleor_shop, args):
    html = client.get("/admin/", query_string=args).get_data(as_text=True)
    assert '<html lang="en">' in html and "data-sk-theme" not in html


def test_the_dashboards_last_theme_draws_the_next_page_in_its_frame(client, saleor_shop):
    """theme.js keeps the theme the Dashboard last posted in a cookie partitioned to its
    frame: a page opened there later, without the iframe URL's ``theme``, is drawn in it."""
    client.set_cookie("sk_saleor_theme", "dark")
    assert '<html lang="en" data-sk-theme="dark">' in client.get("/admin/login").text
    # the Dashboard's own iframe URL says what it shows now
    r = client.get("/admin/", query_string={"saleorApiUrl": API_URL, "theme": "light"})
    assert '<html lang="en" data-sk-theme="light">' in r.text
    client.set_cookie("sk_saleor_theme", "purple")
    assert '<html lang="en">' in client.get("/admin/login").text


def test_a_saleor_shops_pages_say_so_for_theme_js(app, client):
    """Pages after the first have no ``saleorApiUrl``: theme.js knows the Dashboard frames
    them by the signed-in shop's platform."""
    from tests.admin.conftest import sign_in

    shop = shops.create_shop("saleor", HOST, Credentials(
        shop_domain=HOST, access_token="app-token", api_url=API_URL,
        webhook_secret="whsec_frame", extra={"app_id": "QXBwOjE="}))
    db.session.commit()
    sign_in(app, client, shop)
    html = client.get("/admin/settings").get_data(as_text=True)
    assert '<html lang="en" data-sk-platform="saleor">' in html
