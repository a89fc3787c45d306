"""Every platform's sign-in, and a session can never reach another shop."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
import sqlalchemy as sa
from flask import g

from connectors.base import Credentials
from plugin import shops
from plugin.admin import auth
from plugin.extensions import db
from plugin.models import AuditLog
from tests.admin.conftest import confirm_sign_in, csrf_of, follow_link, link_path, sign_in

API_KEY, API_SECRET = "shopify-client-id", "shopify-client-secret-0123456789abcdef"


def test_without_a_session_the_admin_asks_to_sign_in(client):
    r = client.get("/admin/")
    assert r.status_code == 401 and b"Sign in" in r.data
    assert client.get("/admin/progress.json", headers={"Accept": "application/json"}
                      ).status_code == 401


def test_signed_link_signs_in_and_is_audited(app, client, shop):
    sign_in(app, client, shop)
    assert client.get("/admin/").status_code == 200
    actions = db.session.scalars(sa.select(AuditLog.action).filter_by(shop_id=shop.id)).all()
    assert "admin.login" in actions


def test_expired_link_is_refused(app, client, shop):
    with app.test_request_context():
        link = auth.admin_link(shop, now=time.time() - 3600)
    r = client.get("/admin/login?" + link.split("?", 1)[1])
    assert r.status_code == 401 and b"expired" in r.data


def test_tampered_link_is_refused(app, client, shop, other_shop):
    with app.test_request_context():
        link = auth.admin_link(shop)
    query = link.split("?", 1)[1].replace(shop.id, other_shop.id)  # same sig, other shop
    assert client.get("/admin/login?" + query).status_code == 401
    assert client.get("/admin/").status_code == 401


def test_secret_login_and_wrong_secret(app, client, shop, shop_secret):
    token = csrf_of(client.get("/admin/login"))
    bad = client.post("/admin/login", data={"csrf_token": token, "shop_id": shop.id,
                                            "secret": "whsec_wrong"})
    assert bad.status_code == 401
    ok = client.post("/admin/login", data={"csrf_token": token, "shop_id": shop.id,
                                           "secret": shop_secret})
    assert ok.status_code == 302 and client.get("/admin/").status_code == 200


def _shopify_token(domain: str, *, secret: str = API_SECRET, exp_in: int = 60) -> str:
    now = int(time.time())
    return jwt.encode({"iss": f"https://{domain}/admin", "dest": f"https://{domain}",
                       "aud": API_KEY, "sub": "42", "exp": now + exp_in, "nbf": now - 5,
                       "iat": now - 5, "jti": "j1", "sid": "s1"}, secret, algorithm="HS256")


@pytest.fixture
def shopify_shop(app):
    app.config.update(SHOPIFY_API_KEY=API_KEY, SHOPIFY_API_SECRET=API_SECRET)
    shop = shops.create_shop("shopify", "demo-store.myshopify.com",
                             Credentials(shop_domain="demo-store.myshopify.com",
                                         access_token="shpat_x", webhook_secret=API_SECRET))
    db.session.commit()
    return shop


def test_shopify_session_token_signs_in(client, shopify_shop):
    r = client.get("/admin/?id_token=" + _shopify_token(shopify_shop.domain))
    assert r.status_code == 200 and b"demo-store.myshopify.com" in r.data
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://demo-store.myshopify.com https://admin.shopify.com" \
        in csp


def test_shopify_expired_token_is_refused(client, shopify_shop):
    r = client.get("/admin/?id_token=" + _shopify_token(shopify_shop.domain, exp_in=-60))
    assert r.status_code == 401


def test_shopify_token_signed_with_wrong_secret_is_refused(client, shopify_shop):
    forged = _shopify_token(shopify_shop.domain, secret="another-secret-0123456789abcdefghij")
    r = client.get("/admin/?id_token=" + forged)
    assert r.status_code == 401


def test_shopify_token_for_a_store_that_did_not_install_is_asked_to_install(client,
                                                                           shopify_shop):
    r = client.get("/admin/?id_token=" + _shopify_token("someone-else.myshopify.com"))
    assert r.status_code == 302  # to the grant, never into another store's dashboard
    assert r.headers["Location"].endswith("/install/shopify?shop=someone-else.myshopify.com")
    assert client.get("/admin/settings").status_code == 401


def test_saleor_dashboard_token_signs_in(app, client):
    import json

    import responses
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="1", use="sig")
    host = f"saleor-{uuid.uuid4().hex[:8]}.example"  # JWKS are cached per instance
    api_url = f"https://{host}/graphql/"
    shop = shops.create_shop("saleor", host,
                             Credentials(shop_domain=host, access_token="app-token",
                                         api_url=api_url, extra={"app_id": "QXBwOjE="}))
    db.session.commit()

    def token(app_id: str, perms: list[str]) -> str:
        return jwt.encode({"app": app_id, "user_permissions": perms,
                           "exp": int(time.time()) + 300}, key, algorithm="RS256",
                          headers={"kid": "1"})

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"https://{host}/.well-known/jwks.json", json={"keys": [jwk]})
        wrong_app = client.post("/admin/session/saleor", headers={
            "saleor-api-url": api_url, "authorization-bearer": token("other", ["MANAGE_APPS"])})
        assert wrong_app.status_code == 401
        no_perm = client.post("/admin/session/saleor", headers={
            "saleor-api-url": api_url, "authorization-bearer": token("QXBwOjE=", [])})
        # a real staff member without the permission: told what they lack, not "sign in"
        assert no_perm.status_code == 403
        assert '"Manage apps"' in no_perm.get_json()["message"]
        ok = client.post("/admin/session/saleor", headers={
            "saleor-api-url": api_url,
            "authorization-bearer": token("QXBwOjE=", ["MANAGE_APPS"])})
    assert ok.status_code == 200, ok.get_json()
    page = client.get("/admin/")
    assert page.status_code == 200 and shop.domain.encode() in page.data


def test_saleor_sign_in_needs_a_finished_install(app, client):
    """A shop added from the CLI has no stored API URL yet: no key is fetched from the
    request's URL, whatever it says."""
    import responses

    host = f"saleor-{uuid.uuid4().hex[:8]}.example"
    shops.create_shop("saleor", host)
    db.session.commit()
    with responses.RequestsMock():  # any fetch fails the test
        r = client.post("/admin/session/saleor", headers={
            "saleor-api-url": f"https://{host}:8443/evil/", "authorization-bearer": "a.b.c"})
    assert r.status_code == 401 and "finished installing" in r.get_json()["message"]


def test_saleor_sign_in_with_unreachable_keys_is_503(app, client, monkeypatch):
    import responses

    from connectors import saleor

    monkeypatch.setitem(saleor.JWKS_HTTP, "sleep", lambda s: None)  # the one retry
    host = f"saleor-{uuid.uuid4().hex[:8]}.example"
    shops.create_shop("saleor", host, Credentials(shop_domain=host, access_token="t",
                                                  api_url=f"https://{host}/graphql/",
                                                  extra={"app_id": "QXBwOjE="}))
    db.session.commit()
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"app": "QXBwOjE=", "user_permissions": ["MANAGE_APPS"],
                        "exp": int(time.time()) + 300}, key, algorithm="RS256",
                       headers={"kid": "1"})
    with responses.RequestsMock() as mock:
        mock.get(f"https://{host}/.well-known/jwks.json", status=502)
        r = client.post("/admin/session/saleor", headers={
            "saleor-api-url": f"https://{host}/graphql/", "authorization-bearer": token})
        assert len(mock.calls) == 2  # one retry, bounded
    assert r.status_code == 503


def test_a_session_for_one_shop_cannot_touch_another(app, client, shop, other_shop):
    token = sign_in(app, client, shop)
    r = client.post("/admin/settings", data={"csrf_token": token, "_section": "privacy",
                                             "privacy.retention_days": "90",
                                             "shop_id": other_shop.id})
    assert r.status_code == 302
    db.session.expire_all()
    assert shops.get_shop(shop.id).settings["retention_days"] == 90
    assert "retention_days" not in (shops.get_shop(other_shop.id).settings or {})
    # signing in to the other shop replaces the session instead of adding to it (once
    # confirmed on the link's page: a GET alone never replaces another shop's session)
    page = client.get(link_path(app, other_shop))
    assert page.status_code == 200 and shop.domain.encode() in client.get("/admin/").data
    assert confirm_sign_in(client, page).status_code == 302
    assert other_shop.domain.encode() in client.get("/admin/").data
    assert shop.domain.encode() not in client.get("/admin/").data


def test_uninstalled_shop_session_ends(app, client, shop):
    sign_in(app, client, shop)
    shops.mark_uninstalled(shop)
    db.session.commit()
    assert client.get("/admin/").status_code == 401


def test_rotating_the_webhook_secret_ends_sessions_signed_in_with_the_old_one(app, shop,
                                                                              shop_secret):
    """A leaked admin secret is answered by rotating it: whoever signed in with the old one
    must lose the admin (else they could rotate again and read the new secret), while the
    merchant who rotated it stays signed in."""
    attacker, merchant = app.test_client(), app.test_client()
    token = csrf_of(attacker.get("/admin/login"))
    assert attacker.post("/admin/login", data={"csrf_token": token, "shop_id": shop.id,
                                               "secret": shop_secret}).status_code == 302
    assert attacker.get("/admin/settings").status_code == 200
    g.pop("csrf_token", None)  # the test's app context is shared: no token reuse across clients
    merchant_token = sign_in(app, merchant, shop)
    assert merchant.post("/admin/keys/webhook",
                         data={"csrf_token": merchant_token}).status_code == 302
    assert attacker.get("/admin/settings").status_code == 401
    assert attacker.get("/admin/progress.json").status_code == 401
    assert merchant.get("/admin/settings").status_code == 200


def test_a_rotated_shopify_app_secret_no_longer_opens_any_shopify_shop(app, client):
    """Every Shopify shop's stored "webhook secret" is a copy of the app's client secret
    taken at install. After the operator rotates a leaked one (SHOPIFY_API_SECRET), the old
    copy must stop signing in to those shops' admins and minting their customer tokens
    (which no app secret mints any more)."""
    from plugin.api.identity import mint_customer_token

    leaked, rotated = "shpss_leaked_0000000000000000000000", "shpss_rotated_111111111111111111111"
    app.config.update(SHOPIFY_API_KEY=API_KEY, SHOPIFY_API_SECRET=rotated)
    shop = shops.create_shop("shopify", "rotated.myshopify.com", Credentials(
        shop_domain="rotated.myshopify.com", access_token="shpat_x", webhook_secret=leaked))
    shop.settings = {"subprofiles_enabled": True}
    db.session.commit()
    token = csrf_of(client.get("/admin/login"))
    old = client.post("/admin/login", data={"csrf_token": token, "shop_id": shop.id,
                                            "secret": leaked})
    assert old.status_code == 401 and client.get("/admin/").status_code == 401
    exp = int(time.time()) + 600
    nonce = "n" * 22
    forged = (f"/admin/login?shop={shop.id}&exp={exp}&nonce={nonce}"
              f"&sig={auth._link_sig(leaked, shop.id, exp, nonce)}")
    assert client.get(forged).status_code == 401
    customer = mint_customer_token(shop.id, leaked, "c1")
    r = client.get(f"/api/v1/subprofiles?key={shop.widget_key}",
                   headers={"X-Shopkeeper-Customer-Token": customer})
    assert r.status_code == 401  # the token proves no one: no identity at all
    # nor does the current app secret: it is every Shopify shop's, so customer tokens are
    # signed with the shop's own customer-token secret
    app_signed = mint_customer_token(shop.id, rotated, "c1")
    assert client.get(f"/api/v1/subprofiles?key={shop.widget_key}",
                      headers={"X-Shopkeeper-Customer-Token": app_signed}).status_code == 401
    own = shops.credentials_for(shop).extra[shops.CUSTOMER_TOKEN_SECRET]
    fresh = mint_customer_token(shop.id, own, "c1")
    assert client.get(f"/api/v1/subprofiles?key={shop.widget_key}",
                      headers={"X-Shopkeeper-Customer-Token": fresh}).status_code == 200


def test_an_admin_session_cookie_lasts_an_hour_not_flasks_31_days(app, client, shop):
    """``setdefault`` on PERMANENT_SESSION_LIFETIME was a no-op (Flask always sets it, to
    31 days): a copied admin cookie kept working for a month."""
    from datetime import UTC, datetime, timedelta

    from plugin import create_app

    assert create_app().permanent_session_lifetime == timedelta(hours=1)
    with app.test_request_context():
        link = auth.admin_link(shop)
    r = follow_link(client, "/admin/login?" + link.split("?", 1)[1])
    cookie = next(v for k, v in r.headers.items()
                  if k == "Set-Cookie" and v.startswith("session="))
    expires = datetime.strptime(cookie.split("Expires=", 1)[1].split(";")[0],
                                "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    assert expires - datetime.now(UTC) < timedelta(hours=1, minutes=1)
