"""Admin fixtures: a signed-in test client for a shop, and the page's CSRF token."""

from __future__ import annotations

import re
from html import unescape

import pytest
from flask import g

from plugin.admin.auth import admin_link
from tests.factories import make_shop


def csrf_of(response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))[1]


def link_path(app, shop) -> str:
    """A fresh sign-in link for ``shop``, as a path on this app."""
    with app.test_request_context():
        link = admin_link(shop)
    return "/" + link.split("/", 3)[3]


def sign_in(app, client, shop) -> str:
    """Follow a signed admin link, pressing its confirmation button when it asks (it does
    unless it renews this browser's session of the shop); returns a CSRF token."""
    r = follow_link(client, link_path(app, shop))
    assert r.status_code == 302
    return csrf_of(client.get("/admin/settings"))


def follow_link(client, link: str, **kwargs):
    """Open a sign-in link as a merchant does: confirm on its page if it asks."""
    g.pop("csrf_token", None)  # this client's own token on the page, not another's
    r = client.get(link, **kwargs)
    return confirm_sign_in(client, r) if r.status_code == 200 else r


def confirm_sign_in(client, page):
    """Press the button of a sign-in confirmation page (its form, as the browser posts it)."""
    html = page.get_data(as_text=True)
    action = re.search(r'<form method="post" action="([^"]+)"', html)[1]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    answer = client.post(action, data={k: unescape(v) for k, v in fields.items()})
    # a sign-in starts a new session without the page's CSRF token, and the test's app
    # context (so ``g``, where Flask-WTF keeps it) outlives each request
    g.pop("csrf_token", None)
    return answer


@pytest.fixture
def admin(app, client, shop):
    """(client, csrf token) signed in to ``shop``."""
    return client, sign_in(app, client, shop)


@pytest.fixture
def other_shop(app):
    return make_shop()
