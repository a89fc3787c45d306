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
