"""Rotating the customer-token secret keeps the old one valid for a grace period, so the
storefront's already-issued tokens (and its backend, until updated) keep working."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from connectors.base import Credentials
from plugin import shops
from plugin.admin.settings import _forget_api_caches
from plugin.api.identity import mint_customer_token
from plugin.extensions import db
from plugin.models.types import utcnow
from tests.admin.conftest import sign_in
from tests.admin.test_customer_token_secret import customer_of, own_secret


def _rotate(client, csrf, **form):
    return client.post("/admin/keys/customer-token", data={"csrf_token": csrf, **form},
                       follow_redirects=True)


def _end_grace_in_the_past(shop) -> None:
    """As if the grace period had run out."""
    creds = shops.credentials_for(shops.get_shop(shop.id))
    past = (utcnow() - timedelta(seconds=1)).isoformat()
    shops.save_credentials(shop, replace(creds, extra={
        **creds.extra, shops.PREVIOUS_CUSTOMER_TOKEN_UNTIL: past}))
    db.session.commit()
    _forget_api_caches()


def test_old_tokens_keep_working_during_the_grace_period_then_stop(app, client, shop):
    csrf = sign_in(app, client, shop)
    old = own_secret(shop)
    issued = mint_customer_token(shop.id, old, "c1")
    r = _rotate(client, csrf)
    assert r.status_code == 200
    new = own_secret(shop)
    assert new != old
    assert customer_of(shop, issued) == "c1"  # the storefront's tokens survive the rotation
    assert customer_of(shop, mint_customer_token(shop.id, old, "c2")) == "c2"  # old backend
    assert customer_of(shop, mint_customer_token(shop.id, new, "c3")) == "c3"
    page = r.get_data(as_text=True)
    assert "accepted until" in page and "Stop accepting the previous secret now" in page
    assert old not in page  # the old secret is not shown again
    _end_grace_in_the_past(shop)
    assert customer_of(shop, issued) is None
    assert customer_of(shop, mint_customer_token(shop.id, new, "c3")) == "c3"
    assert "Stop accepting the previous" not in client.get("/admin/settings").get_data(
        as_text=True)


def test_the_grace_period_follows_the_setting_and_ends_on_request(app, client, shop):
    app.config["CUSTOMER_TOKEN_SECRET_GRACE_HOURS"] = 2
    csrf = sign_in(app, client, shop)
    old = own_secret(shop)
    before = utcnow()
    _rotate(client, csrf)
    creds = shops.credentials_for(shops.get_shop(shop.id))
    _, until = shops.previous_customer_token_secret(creds)
    assert timedelta(hours=2) <= until - before < timedelta(hours=2, minutes=1)
    issued = mint_customer_token(shop.id, old, "c1")
    assert customer_of(shop, issued) == "c1"
    r = client.post("/admin/keys/customer-token-grace", data={"csrf_token": csrf})
    assert r.status_code == 302
    assert customer_of(shop, issued) is None


def test_a_second_rotation_drops_the_secret_two_rotations_old(app, client, shop):
    csrf = sign_in(app, client, shop)
    first = own_secret(shop)
    _rotate(client, csrf)
    second = own_secret(shop)
    _rotate(client, csrf)
    assert customer_of(shop, mint_customer_token(shop.id, second, "c1")) == "c1"
    assert customer_of(shop, mint_customer_token(shop.id, first, "c1")) is None


def test_a_malformed_rotation_form_is_a_400_with_the_field(app, client, shop):
    csrf = sign_in(app, client, shop)
    old = own_secret(shop)
    r = client.post("/admin/keys/customer-token", data={"csrf_token": csrf,
                                                         "revoke_old": "maybe"},
                    headers={"Accept": "application/json"})
    assert r.status_code == 400 and "revoke_old" in r.get_json()["errors"]
    assert own_secret(shop) == old


def test_a_reinstall_during_the_grace_period_keeps_the_previous_secret(app, client, shop):
    csrf = sign_in(app, client, shop)
    old = own_secret(shop)
    _rotate(client, csrf)
    shop = shops.get_shop(shop.id)
    shops.save_credentials(shop, Credentials(shop_domain=shop.domain, webhook_secret="whsec_n"))
    db.session.commit()
    _forget_api_caches()
    assert customer_of(shop, mint_customer_token(shop.id, old, "c1")) == "c1"
