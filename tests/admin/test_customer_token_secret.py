"""The customer-token secret on the settings page: shown to that shop's admin only,
rotated by a CSRF-protected POST, audited, never logged."""

from __future__ import annotations

import logging
from dataclasses import replace

import sqlalchemy as sa

from connectors.base import Credentials
from plugin import crypto, shops
from plugin.api.access import ApiShop
from plugin.api.identity import mint_customer_token, resolve_identity
from plugin.extensions import db
from plugin.models import AuditLog
from tests.admin.conftest import sign_in
from tests.factories import make_shop

APP_SECRET = "shpss_app_wide_client_secret_0000000000"
TOKEN = "X-Shopkeeper-Customer-Token"


def own_secret(shop) -> str:
    db.session.expire_all()
    return shops.credentials_for(shops.get_shop(shop.id)).extra[shops.CUSTOMER_TOKEN_SECRET]


def customer_of(shop, token: str) -> str | None:
    """Who the API, reading the shop afresh, takes the token's bearer for."""
    return resolve_identity(ApiShop.of(shops.get_shop(shop.id)), {TOKEN: token}).customer_id


def actions(shop) -> list[str]:
    return list(db.session.scalars(sa.select(AuditLog.action).filter_by(shop_id=shop.id)))


def _everything_logged(caplog) -> str:
    return caplog.text + "".join(repr(vars(r)) for r in caplog.records)


def test_the_page_shows_the_secret_to_that_shops_admin_only(app, client, shop, other_shop):
    mine, theirs = own_secret(shop), own_secret(other_shop)
    assert mine not in client.get("/admin/settings").get_data(as_text=True)  # signed out
    sign_in(app, client, shop)
    page = client.get("/admin/settings").get_data(as_text=True)
    assert mine in page and theirs not in page
    assert "Rotate customer-token secret" in page
    other = app.test_client()
    sign_in(app, other, other_shop)
    page = other.get("/admin/settings").get_data(as_text=True)
    assert theirs in page and mine not in page


def test_a_shopify_merchant_sees_its_own_secret_not_the_app_secret(app, client):
    app.config.update(SHOPIFY_API_KEY="app-key", SHOPIFY_API_SECRET=APP_SECRET)
    shop = shops.create_shop("shopify", "page.myshopify.com", Credentials(
        "page.myshopify.com", access_token="shpat_x", webhook_secret=APP_SECRET))
    db.session.commit()
    sign_in(app, client, shop)
    page = client.get("/admin/settings").get_data(as_text=True)
    assert own_secret(shop) in page and APP_SECRET not in page
    assert "webhook secret are accepted too" not in page  # generic shops only


def test_rotation_of_a_leaked_secret_makes_old_tokens_anonymous_and_is_audited(
        app, client, shop, shop_secret, caplog):
    csrf = sign_in(app, client, shop)
    old = own_secret(shop)
    before = mint_customer_token(shop.id, old, "c1")
    assert customer_of(shop, before) == "c1"
    with caplog.at_level(logging.DEBUG):
        r = client.post("/admin/keys/customer-token",
                        data={"csrf_token": csrf, "revoke_old": "on"}, follow_redirects=True)
        assert r.status_code == 200
        new = own_secret(shop)
        assert new != old and new in r.get_data(as_text=True)
        assert customer_of(shop, before) is None  # old tokens: anonymous at once
        assert client.get(f"/api/v1/config?key={shop.widget_key}",
                          headers={TOKEN: before}).status_code == 200
        assert customer_of(shop, mint_customer_token(shop.id, new, "c1")) == "c1"
    assert "keys.customer_token_secret_rotated" in actions(shop)
    logged = _everything_logged(caplog)
    assert old not in logged and new not in logged
    details = repr(list(db.session.scalars(sa.select(AuditLog.detail))))
    assert old not in details and new not in details
    # the generic shop's webhook secret still signs (the storefronts set up before)
    assert customer_of(shop, mint_customer_token(shop.id, shop_secret, "c1")) == "c1"
    # the session survives: the admin secret did not change
    assert client.get("/admin/settings").status_code == 200


def test_rotation_needs_the_csrf_token_and_a_session(app, client, shop):
    old = own_secret(shop)
    assert client.post("/admin/keys/customer-token").status_code in (400, 401)
    sign_in(app, client, shop)
    assert client.post("/admin/keys/customer-token", data={}).status_code == 400
    assert client.post("/admin/keys/customer-token", data={"csrf_token": "forged"}
                       ).status_code == 400
    assert own_secret(shop) == old


def test_an_existing_shop_gets_its_secret_when_the_page_first_shows_it(app, client, caplog):
    """Installed before the secret existed: created once, stored encrypted, audited."""
    shop = make_shop("saleor", "before.example")  # its webhook secret signs webhooks only
    creds = shops.credentials_for(shop)
    extra = {k: v for k, v in creds.extra.items() if k != shops.CUSTOMER_TOKEN_SECRET}
    shop.installation.credentials_encrypted = crypto.encrypt_credentials(
        replace(creds, extra=extra))
    db.session.commit()
    assert ApiShop.of(shop).token_secrets == ()  # the webhook secret is no stand-in
    sign_in(app, client, shop)
    with caplog.at_level(logging.DEBUG):
        first = client.get("/admin/settings").get_data(as_text=True)
    secret = own_secret(shop)
    assert secret in first and secret in client.get("/admin/settings").get_data(as_text=True)
    assert secret not in _everything_logged(caplog)
    assert actions(shop).count("keys.customer_token_secret_created") == 1
    assert secret.encode() not in shops.get_shop(shop.id).installation.credentials_encrypted
    assert customer_of(shop, mint_customer_token(shop.id, secret, "c9")) == "c9"
    assert customer_of(shop, mint_customer_token(shop.id, creds.webhook_secret, "c9")) is None
