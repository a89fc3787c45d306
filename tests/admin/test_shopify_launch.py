"""Shopify opening the App URL: the App Store's "Install", a reinstall, the admin's link.

Shopify sends the App URL (``/admin/``) a query signed with the app secret (``shop``,
``timestamp``, ``host``, ``hmac``; ``embedded=1`` inside its admin), or, for an embedded
app, a session token as ``id_token``. A store that has not installed Shopkeeper must be
asked for access (OAuth) at once; an installed one must reach its own dashboard only.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from connectors.base import Credentials
from connectors.shopify.install import oauth_hmac
from plugin import shops
from plugin.extensions import db

API_KEY, API_SECRET = "shopify-client-id", "shopify-client-secret-0123456789abcdef"
NEW = "new-store.myshopify.com"
INSTALLED = "demo-store.myshopify.com"


@pytest.fixture
def configured(app):
    app.config.update(SHOPIFY_API_KEY=API_KEY, SHOPIFY_API_SECRET=API_SECRET,
                      PUBLIC_URL="https://sk.example")
    return app


@pytest.fixture
def installed(configured):
    shop = shops.create_shop("shopify", INSTALLED,
                             Credentials(shop_domain=INSTALLED, access_token="shpat_x",
                                         webhook_secret=API_SECRET))
    db.session.commit()
    return shop


def signed(shop: str, *, secret: str = API_SECRET, at: float | None = None,
           **extra: str) -> dict[str, str]:
    params = {"shop": shop, "timestamp": str(int(time.time() if at is None else at)),
              "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvZGVtbw", **extra}
    return {**params, "hmac": oauth_hmac(params, secret)}


def session_token(domain: str, *, secret: str = API_SECRET) -> str:
    now = int(time.time())
    return jwt.encode({"iss": f"https://{domain}/admin", "dest": f"https://{domain}",
                       "aud": API_KEY, "sub": "42", "exp": now + 60, "nbf": now - 5,
                       "iat": now - 5, "jti": "j1", "sid": "s1"}, secret, algorithm="HS256")


def test_app_store_install_of_a_new_store_starts_oauth(client, configured) -> None:
    r = client.get("/admin/", query_string=signed(NEW))
    assert r.status_code == 302
    assert r.headers["Location"] == f"https://sk.example/install/shopify?shop={NEW}"
    # ... which asks the store for the manifest's scopes with a fresh state nonce
    grant = client.get(urlsplit(r.headers["Location"]).path, query_string={"shop": NEW})
    location = urlsplit(grant.headers["Location"])
    assert (location.netloc, location.path) == (NEW, "/admin/oauth/authorize")
    assert parse_qs(location.query)["client_id"] == [API_KEY]


def test_embedded_install_leaves_the_iframe_through_app_bridge(client, configured) -> None:
    r = client.get("/admin/", query_string=signed(NEW, embedded="1"))
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    # App Bridge first, from Shopify's CDN, with this app's key; then our script
    assert html.index('src="https://cdn.shopify.com/shopifycloud/app-bridge.js"') \
        < html.index("admin/admin.js")
    assert f'<meta name="shopify-api-key" content="{API_KEY}">' in html
    assert 'data-mode="exit"' in html
    target = f"https://sk.example/install/shopify?shop={NEW}"
    assert f'data-target="{target}"' in html
    assert re.search(rf'<a href="{re.escape(target)}" target="_top"', html)  # by hand too
    csp = r.headers["Content-Security-Policy"]
    assert f"frame-ancestors https://{NEW} https://admin.shopify.com" in csp
    assert "script-src 'self' https://cdn.shopify.com;" in csp


def test_forged_or_tampered_launch_is_refused(client, configured, installed) -> None:
    forged = signed(NEW, secret="not-the-app-secret-0123456789abcdefgh")
    assert client.get("/admin/", query_string=forged).status_code == 401
    tampered = {**signed(NEW), "shop": INSTALLED}  # signed for one store, sent for another
    r = client.get("/admin/", query_string=tampered)
    assert r.status_code == 401
    assert "did not come from Shopify" in r.get_data(as_text=True)
    bad_domain = signed("evil.example.com")
    assert client.get("/admin/", query_string=bad_domain).status_code == 401
    stale = signed(INSTALLED, at=time.time() - 2 * 86400)  # a launch URL from days ago
    assert client.get("/admin/", query_string=stale).status_code == 401
    copied = signed(INSTALLED, at=time.time() - 10 * 60)  # e.g. from a log, minutes ago
    assert client.get("/admin/", query_string=copied).status_code == 401


def test_a_launch_alone_never_signs_anyone_in(client, installed) -> None:
    """A signed query names a store; it does not vouch for who holds the browser."""
    r = client.get("/admin/", query_string=signed(INSTALLED))
    assert r.status_code == 302
    assert r.headers["Location"] == f"https://{INSTALLED}/admin/apps/{API_KEY}"
    assert client.get("/admin/settings").status_code == 401  # still no session

    embedded = client.get("/admin/", query_string=signed(INSTALLED, embedded="1"))
    assert embedded.status_code == 200 and 'data-mode="token"' in embedded.get_data(as_text=True)
    assert client.get("/admin/settings").status_code == 401


def test_embedded_launch_with_a_session_token_opens_the_dashboard(client, installed) -> None:
    params = {**signed(INSTALLED, embedded="1"), "id_token": session_token(INSTALLED)}
    r = client.get("/admin/", query_string=params)
    assert r.status_code == 200 and INSTALLED.encode() in r.data
    assert b"Dashboard" in r.data
    # the session is now this store's, and a later signed launch keeps it
    assert client.get("/admin/", query_string=signed(INSTALLED, embedded="1")).status_code == 200
    assert client.get("/admin/settings").status_code == 200


def test_a_session_for_one_store_does_not_open_another(client, installed, app) -> None:
    other = shops.create_shop("shopify", "other-store.myshopify.com",
                              Credentials(shop_domain="other-store.myshopify.com",
                                          access_token="shpat_y", webhook_secret=API_SECRET))
    db.session.commit()
    client.get("/admin/", query_string={"id_token": session_token(INSTALLED)})
    r = client.get("/admin/", query_string=signed(other.domain))
    assert r.status_code == 302  # to the other store's admin, which vouches with a token
    assert r.headers["Location"] == f"https://{other.domain}/admin/apps/{API_KEY}"


def test_reinstall_after_uninstall_asks_for_access_again(client, installed) -> None:
    installed.status = "uninstalled"
    db.session.commit()
    # a session token of a store that uninstalled also leads to the grant, not a dead end
    _assert_sent_to_the_grant(client)


def _assert_sent_to_the_grant(client) -> None:
    """A signed launch redirects to OAuth; an embedded one leaves the iframe for it."""
    r = client.get("/admin/", query_string=signed(INSTALLED))
    assert r.status_code == 302
    assert r.headers["Location"] == f"https://sk.example/install/shopify?shop={INSTALLED}"
    r = client.get("/admin/", query_string={"id_token": session_token(INSTALLED),
                                            "embedded": "1"})
    assert r.status_code == 200 and 'data-mode="exit"' in r.get_data(as_text=True)


def test_launch_on_a_server_without_shopify_is_a_clear_401(client, app) -> None:
    app.config.update(SHOPIFY_API_KEY="", SHOPIFY_API_SECRET="")
    r = client.get("/admin/", query_string=signed(NEW), headers={"Accept": "application/json"})
    assert r.status_code == 401
    assert r.get_json()["message"] == "Shopify is not configured on this server."


def test_plain_visit_without_launch_still_asks_to_sign_in(client, configured) -> None:
    r = client.get("/admin/?shop=" + NEW)  # no hmac: not a launch, just a visitor
    assert r.status_code == 401 and b"Sign in to Shopkeeper" in r.data


def _granted(shop, scope: str) -> None:
    creds = shops.credentials_for(shop)
    creds.extra = {**creds.extra, "scope": scope}
    shops.save_credentials(shop, creds)
    db.session.commit()


def test_a_store_missing_a_scope_this_release_needs_is_asked_again(client, installed) -> None:
    """Installed before stock webhooks: its token lacks ``read_inventory``, so the next
    launch goes through OAuth, whose callback subscribes the new topics as well."""
    _granted(installed, "read_products,read_customers,read_orders,write_discounts")
    _assert_sent_to_the_grant(client)
    assert client.get("/admin/settings").status_code == 401  # no session on the way


@pytest.mark.parametrize("scope", [
    "read_products,read_customers,read_orders,read_inventory,write_discounts,read_publications,"
    "write_app_proxy",
    # Shopify lists write_x alone when both were asked for: it includes read_x
    "write_products, read_customers,read_orders,write_inventory,write_discounts,"
    "write_publications,write_app_proxy",
])
def test_a_store_with_every_scope_opens_as_before(client, installed, scope) -> None:
    _granted(installed, scope)
    r = client.get("/admin/", query_string={"id_token": session_token(INSTALLED),
                                            "embedded": "1"})
    assert r.status_code == 200 and b"Dashboard" in r.data


def test_a_store_whose_refresh_shopify_refused_is_asked_again(client, installed) -> None:
    """Shopify refused the refresh token (expired after 90 days unused, or revoked): the
    installation is marked ``auth_failed`` and the next launch goes through OAuth, whose
    callback stores a new token pair."""
    _granted(installed, "read_products,read_customers,read_orders,read_inventory,"
                        "write_discounts,read_publications,write_app_proxy")
    installed.installation.auth_failed = True
    db.session.commit()
    _assert_sent_to_the_grant(client)
