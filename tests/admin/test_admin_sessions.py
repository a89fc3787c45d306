"""Admin sessions live on the server: sign-out ends every copy of the cookie, and a
sign-in link signs in once."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import g

from plugin.admin import auth
from plugin.extensions import db
from plugin.models import AdminLinkUse, AdminSession
from plugin.models.types import utcnow
from tests.admin.conftest import csrf_of, follow_link, sign_in


def _link(app, shop) -> str:
    with app.test_request_context():
        return "/admin/login?" + auth.admin_link(shop).split("?", 1)[1]


def _copy_of(app, client):
    """Another browser holding a copy of ``client``'s session cookie."""
    cookie = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    thief = app.test_client()
    thief.set_cookie(cookie.key, cookie.value, domain=cookie.domain)
    return thief


def test_a_sign_in_link_works_once(app, client, shop):
    link = _link(app, shop)
    assert follow_link(client, link).status_code == 302
    again = app.test_client().get(link)
    assert again.status_code == 401 and b"already used" in again.data
    as_json = app.test_client().get(link, headers={"Accept": "application/json"})
    assert as_json.status_code == 401
    assert "already used" in as_json.get_json()["message"]


def test_a_link_without_its_nonce_is_refused(app, client, shop):
    link = _link(app, shop)
    stripped = "&".join(p for p in link.split("&") if not p.startswith("nonce="))
    assert client.get(stripped).status_code == 401
    assert client.get("/admin/").status_code == 401


def test_signing_out_ends_copies_of_the_cookie(app, client, shop):
    token = sign_in(app, client, shop)
    thief = _copy_of(app, client)
    assert thief.get("/admin/").status_code == 200  # a copy works while signed in
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/admin/").status_code == 401
    r = thief.get("/admin/settings")
    assert r.status_code == 401 and b"sign in again" in r.data
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AdminSession)) == 0


def test_a_new_sign_in_replaces_the_old_session_server_side(app, client, shop):
    sign_in(app, client, shop)
    thief = _copy_of(app, client)
    sign_in(app, client, shop)
    assert client.get("/admin/").status_code == 200
    assert thief.get("/admin/").status_code == 401


def test_an_idle_session_ends_on_the_server(app, client, shop):
    sign_in(app, client, shop)
    db.session.execute(sa.update(AdminSession).values(
        last_seen_at=utcnow() - app.permanent_session_lifetime - timedelta(minutes=1)))
    db.session.commit()
    assert client.get("/admin/").status_code == 401


def test_old_sessions_and_used_links_are_purged_at_the_next_sign_in(app, client, shop):
    sign_in(app, client, shop)
    long_ago = utcnow() - timedelta(days=2)
    db.session.execute(sa.update(AdminSession).values(last_seen_at=long_ago))
    db.session.execute(sa.update(AdminLinkUse).values(expires_at=long_ago))
    db.session.commit()
    sign_in(app, app.test_client(), shop)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AdminSession)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AdminLinkUse)) == 1


def test_a_secret_sign_in_gets_a_server_side_session_too(app, client, shop, shop_secret):
    token = csrf_of(client.get("/admin/login"))
    r = client.post("/admin/login", data={"csrf_token": token, "shop_id": shop.id,
                                          "secret": shop_secret})
    assert r.status_code == 302
    thief = _copy_of(app, client)
    g.pop("csrf_token", None)  # the test's app context (and g) outlives each request
    token = csrf_of(client.get("/admin/settings"))
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    assert thief.get("/admin/").status_code == 401


def test_a_visit_is_recorded_at_most_once_a_minute(app, client, shop):
    sign_in(app, client, shop)
    earlier = utcnow() - timedelta(minutes=5)
    db.session.execute(sa.update(AdminSession).values(last_seen_at=earlier))
    db.session.commit()
    assert client.get("/admin/").status_code == 200
    seen = db.session.scalar(sa.select(AdminSession.last_seen_at))
    assert seen > earlier + timedelta(minutes=4)
    assert client.get("/admin/").status_code == 200
    assert db.session.scalar(sa.select(AdminSession.last_seen_at)) == seen
