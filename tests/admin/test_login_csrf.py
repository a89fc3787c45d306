"""Login CSRF: a GET that signs in (a Shopify session token in the query, a sign-in link)
must not let another site sign a victim's browser in to the sender's shop.

Anyone holding a token or link of their own shop can aim it at a victim: a link in a mail,
or a page that sends the browser there unseen. The victim, signed in to the sender's shop,
may then type their data into it. Browsers say who started a request (``Sec-Fetch-Site``)
and where it goes (``Sec-Fetch-Dest``), and pages cannot set those headers; the requests
below carry them as Chromium does.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from connectors.base import Credentials
from plugin import shops
from plugin.extensions import db
from plugin.models import AuditLog
from tests.admin.conftest import confirm_sign_in, follow_link, link_path, sign_in
from tests.admin.test_shopify_launch import (
    API_KEY,
    API_SECRET,
    INSTALLED,
    session_token,
    signed,
)

ATTACKER = "attacker-store.myshopify.com"

#: a top-level navigation another site started: a link clicked there, a redirect, a
#: script's ``location = …``
FROM_ANOTHER_SITE = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
                     "Sec-Fetch-Dest": "document", "Sec-Fetch-User": "?1"}
#: Shopify's admin (admin.shopify.com) loading the App URL in its iframe
SHOPIFY_IFRAME = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
                  "Sec-Fetch-Dest": "iframe"}


@pytest.fixture
def two_stores(app):
    """The merchant's store and an attacker's, both with Shopkeeper installed."""
    app.config.update(SHOPIFY_API_KEY=API_KEY, SHOPIFY_API_SECRET=API_SECRET,
                      PUBLIC_URL="https://sk.example")
    stores = tuple(shops.create_shop("shopify", domain, Credentials(
        shop_domain=domain, access_token="shpat_x", webhook_secret=API_SECRET))
        for domain in (INSTALLED, ATTACKER))
    db.session.commit()
    return stores


def _signed_in_store(client) -> int | bytes:
    """The shop domain the session's settings page shows, or its status when none."""
    r = client.get("/admin/settings")
    return r.status_code if r.status_code != 200 else r.data


def _logins(shop_id: str) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditLog).filter_by(
        shop_id=shop_id, action="admin.login"))


# ---------------------------------------------------------------- Shopify session tokens
@pytest.mark.parametrize("headers", [
    FROM_ANOTHER_SITE,
    {**FROM_ANOTHER_SITE, "Sec-Fetch-Site": "same-site"},  # a sibling subdomain
    {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "empty"},
], ids=["cross-site link", "same-site link", "hidden fetch"])
def test_another_sites_shopify_token_does_not_switch_the_session(client, two_stores,
                                                                 headers) -> None:
    _, attacker = two_stores
    client.get("/admin/", query_string={"id_token": session_token(INSTALLED)},
               headers=SHOPIFY_IFRAME)
    assert INSTALLED.encode() in _signed_in_store(client)
    aimed = {**signed(ATTACKER, embedded="1"), "id_token": session_token(ATTACKER)}
    r = client.get("/admin/", query_string=aimed, headers=headers)
    assert r.status_code == 403 and b"open it from there" in r.data
    page = _signed_in_store(client)
    assert INSTALLED.encode() in page and ATTACKER.encode() not in page
    assert _logins(attacker.id) == 0


def test_another_sites_shopify_token_signs_no_one_in(client, two_stores) -> None:
    """No session yet: the classic login CSRF, the victim's next visit in the sender's shop."""
    r = client.get("/admin/", query_string={"id_token": session_token(ATTACKER)},
                   headers=FROM_ANOTHER_SITE)
    assert r.status_code == 403
    assert _signed_in_store(client) == 401


@pytest.mark.parametrize("headers", [
    SHOPIFY_IFRAME,
    {**SHOPIFY_IFRAME, "Sec-Fetch-Site": "same-origin"},  # admin.js reloading the frame
    {**FROM_ANOTHER_SITE, "Sec-Fetch-Site": "same-origin"},  # ...outside a frame
    {**FROM_ANOTHER_SITE, "Sec-Fetch-Site": "none"},  # Shopify Mobile's web view
    {},  # a browser that sends no Sec-Fetch headers
], ids=["shopify iframe", "own reload framed", "own reload", "web view", "no headers"])
def test_shopifys_own_launches_still_sign_in(client, two_stores, headers) -> None:
    params = {**signed(INSTALLED, embedded="1"), "id_token": session_token(INSTALLED)}
    r = client.get("/admin/", query_string=params, headers=headers)
    assert r.status_code == 200 and b"Dashboard" in r.data
    assert INSTALLED.encode() in _signed_in_store(client)


def test_a_merchant_with_two_stores_switches_inside_shopifys_admin(client, two_stores) -> None:
    """Framed, a token of another store replaces the session: Shopify's admin loads the
    app of whichever store the merchant opened (the cookie is partitioned by the framing
    site, so another site framing the app reaches only its own partition)."""
    client.get("/admin/", query_string={"id_token": session_token(INSTALLED)},
               headers=SHOPIFY_IFRAME)
    r = client.get("/admin/", query_string={"id_token": session_token(ATTACKER)},
                   headers=SHOPIFY_IFRAME)
    assert r.status_code == 200
    assert ATTACKER.encode() in _signed_in_store(client)


def test_a_bearer_token_is_not_a_query_and_still_signs_in(client, two_stores) -> None:
    """App Bridge's fetches send the token in a header, which no other site can make the
    browser send (it needs a CORS preflight this app never grants)."""
    r = client.get("/admin/", headers={"Authorization": f"Bearer {session_token(INSTALLED)}",
                                       "Sec-Fetch-Site": "same-origin",
                                       "Sec-Fetch-Dest": "empty"})
    assert r.status_code == 200
    assert INSTALLED.encode() in _signed_in_store(client)


# ---------------------------------------------------------------- sign-in links
def test_a_link_does_not_replace_another_shops_session_by_get(app, client, shop,
                                                              other_shop) -> None:
    sign_in(app, client, shop)
    link = link_path(app, other_shop)
    page = client.get(link)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"Sign in to {other_shop.domain}?" in html
    assert f"You are signed in to <strong>{shop.domain}</strong>" in html
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert shop.domain.encode() in _signed_in_store(client)  # unchanged
    assert _logins(other_shop.id) == 0
    # the page spent nothing: its button still signs in
    assert confirm_sign_in(client, page).status_code == 302
    assert other_shop.domain.encode() in _signed_in_store(client)
    assert _logins(other_shop.id) == 1


def test_a_link_another_site_sent_asks_before_signing_in(app, client, shop) -> None:
    """Without a session too: a page can send the browser to a link unseen."""
    page = client.get(link_path(app, shop), headers=FROM_ANOTHER_SITE)
    assert page.status_code == 200 and b"Sign in to" in page.data
    assert b"You are signed in" not in page.data
    assert _signed_in_store(client) == 401
    assert confirm_sign_in(client, page).status_code == 302
    assert shop.domain.encode() in _signed_in_store(client)


#: a link opened from a mail app (or pasted in the address bar): no site started it
FROM_A_MAIL_APP = {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate",
                   "Sec-Fetch-Dest": "document", "Sec-Fetch-User": "?1"}


@pytest.mark.parametrize("headers", [FROM_A_MAIL_APP, {}], ids=["mail app", "no headers"])
def test_a_link_mailed_to_a_browser_without_a_session_asks_whose_shop(app, client, shop,
                                                                      headers) -> None:
    """Login CSRF by mail: anyone with a shop here can mail their own link to a merchant;
    opened from the mail app (``none``, as the address bar) it signed the merchant in to
    the sender's shop at once. Now the page names the shop, and only its button signs in."""
    page = client.get(link_path(app, shop), headers=headers)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"Sign in to {shop.domain}?" in html and f"<code>{shop.id}</code>" in html
    assert "You are signed in" not in html
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert _signed_in_store(client) == 401 and _logins(shop.id) == 0
    assert confirm_sign_in(client, page).status_code == 302
    assert shop.domain.encode() in _signed_in_store(client)


@pytest.mark.parametrize("headers", [
    FROM_A_MAIL_APP, {**FROM_A_MAIL_APP, "Sec-Fetch-Site": "same-origin"}, {},
], ids=["mail app", "same-origin", "no headers"])
def test_a_new_link_renewing_this_browsers_session_signs_in_at_once(app, client, shop,
                                                                   headers) -> None:
    sign_in(app, client, shop)
    r = client.get(link_path(app, shop), headers=headers)
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/")
    assert shop.domain.encode() in _signed_in_store(client)
    assert _logins(shop.id) == 2


#: a navigation a page of this app started (a link clicked there, a script's redirect)
FROM_THIS_APP = {**FROM_A_MAIL_APP, "Sec-Fetch-Site": "same-origin"}


def test_a_link_one_of_this_apps_pages_led_to_asks_like_any_other(app, client, shop,
                                                                  other_shop) -> None:
    """No page of this app links to a sign-in link: one that sends the browser to one is
    something injected into it (a stored link or script), as able as another site to sign
    a victim in to the sender's shop. So ``same-origin`` asks too, session or none."""
    page = client.get(link_path(app, shop), headers=FROM_THIS_APP)
    assert page.status_code == 200 and f"Sign in to {shop.domain}?" in page.text
    assert _signed_in_store(client) == 401 and _logins(shop.id) == 0
    sign_in(app, client, other_shop)
    page = client.get(link_path(app, shop), headers=FROM_THIS_APP)
    assert page.status_code == 200 and "You are signed in" in page.text
    assert other_shop.domain.encode() in _signed_in_store(client)
    assert confirm_sign_in(client, page).status_code == 302
    assert shop.domain.encode() in _signed_in_store(client)


def test_the_confirmation_needs_the_pages_csrf_token(app, client, shop, other_shop) -> None:
    token = sign_in(app, client, shop)
    page = client.get(link_path(app, other_shop))
    link = dict(p.split("=", 1) for p in link_path(app, other_shop).split("?", 1)[1].split("&"))
    forged = client.post("/admin/login/link", data=link)  # another site's auto-submitted form
    assert forged.status_code == 400
    cross = client.post("/admin/login/link", data={**link, "csrf_token": token},
                        headers={"Origin": "https://attacker.example"})
    assert cross.status_code == 403
    assert shop.domain.encode() in _signed_in_store(client)
    assert confirm_sign_in(client, page).status_code == 302


def test_a_used_or_forged_link_gets_no_confirmation_page(app, client, shop,
                                                         other_shop) -> None:
    sign_in(app, client, shop)
    link = link_path(app, other_shop)
    page = client.get(link)
    assert page.status_code == 200
    # another browser uses the link meanwhile: the page kept open signs no one in
    assert follow_link(app.test_client(), link).status_code == 302
    late = confirm_sign_in(client, page)
    assert late.status_code == 401 and b"already used" in late.data
    again = client.get(link, headers=FROM_ANOTHER_SITE)
    assert again.status_code == 401 and b"already used" in again.data
    tampered = link_path(app, other_shop).replace(other_shop.id, shop.id)
    assert client.get(tampered, headers=FROM_ANOTHER_SITE).status_code == 401
