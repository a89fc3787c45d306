"""Admin fixtures: a signed-in test client for a shop, and the page's CSRF token."""

from __future__ import annotations

import re

import pytest

from plugin.admin.auth import admin_link
from tests.factories import make_shop


def csrf_of(response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))[1]


def sign_in(app, client, shop) -> str:
    """Follow a signed admin link; returns a CSRF token for this session."""
    with app.test_request_context():
        link = admin_link(shop)
    r = client.get(link.split("://", 1)[1].split("/", 1)[1] and "/" + link.split("/", 3)[3])
    assert r.status_code == 302
    return csrf_of(client.get("/admin/settings"))


@pytest.fixture
def admin(app, client, shop):
    """(client, csrf token) signed in to ``shop``."""
    return client, sign_in(app, client, shop)


@pytest.fixture
def other_shop(app):
    return make_shop()
