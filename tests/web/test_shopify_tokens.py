"""Shopify's expiring offline access tokens: refreshed before they expire (once, however
many workers need one), stored with their rotated refresh token, re-auth asked for when
Shopify refuses the refresh, and non-expiring tokens migrated. Only Shopify's HTTP is
mocked; payloads as Shopify documents them (``expires_in`` 3600 s, a new refresh token
at every refresh, ``refresh_token_expires_in``)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import responses
from responses import matchers

from connectors.base import Credentials
from connectors.errors import AuthFailed
from connectors.shopify.client import API_VERSION
from plugin import jobs, shops
from plugin.extensions import db

DOMAIN = "tokens.myshopify.com"
API_KEY = "4b0f3c2e9d1a7f6e5c4b3a2918273645"
SECRET = "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"
TOKEN_URL = f"https://{DOMAIN}/admin/oauth/access_token"
GRAPHQL = f"https://{DOMAIN}/admin/api/{API_VERSION}/graphql.json"
SHOP_ANSWER = {"data": {"shop": {"id": "gid://shopify/Shop/1"}}}


def refreshed(access: str = "shpat_new", refresh: str = "shprt_new") -> dict[str, object]:
    return {"access_token": access, "scope": "read_products,write_discounts",
            "expires_in": 3600, "refresh_token": refresh, "refresh_token_expires_in": 7776000}


def refresh_request(refresh_token: str = "shprt_old") -> list:
    return [matchers.json_params_matcher({
        "client_id": API_KEY, "client_secret": SECRET, "grant_type": "refresh_token",
        "refresh_token": refresh_token})]


def with_token(token: str) -> list:
    return [matchers.header_matcher({"X-Shopify-Access-Token": token})]


def make_shop(app, *, expires_in: timedelta | None, refresh: str | None = "shprt_old",
              token: str = "shpat_old"):
    app.config.update(SHOPIFY_API_KEY=API_KEY, SHOPIFY_API_SECRET=SECRET)
    now = datetime.now(UTC)
    extra = {"api_key": API_KEY, "scope": "read_products,write_discounts"}
    if refresh is not None and expires_in is not None:
        extra.update(refresh_token=refresh, access_token_expires_at=(now + expires_in).isoformat(),
                     refresh_token_expires_at=(now + timedelta(days=80)).isoformat())
    shop = shops.create_shop("shopify", DOMAIN, Credentials(
        DOMAIN, access_token=token, webhook_secret=SECRET, extra=extra))
    db.session.commit()
    return shop


def stored(shop) -> Credentials:
    db.session.expire_all()
    return shops.credentials_for(shops.get_shop(shop.id))


def test_a_call_after_expiry_refreshes_first_and_uses_the_new_token(app) -> None:
    shop = make_shop(app, expires_in=timedelta(minutes=-1))
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=refreshed(), match=refresh_request())
        rsps.post(GRAPHQL, json=SHOP_ANSWER, match=with_token("shpat_new"))
        assert shops.connector_for(shop).still_installed() is True
        assert [c.request.url for c in rsps.calls] == [TOKEN_URL, GRAPHQL]
    creds = stored(shop)
    assert (creds.access_token, creds.extra["refresh_token"]) == ("shpat_new", "shprt_new")
    expires = datetime.fromisoformat(creds.extra["access_token_expires_at"])
    assert expires - datetime.now(UTC) > timedelta(minutes=59)
    with responses.RequestsMock() as rsps:  # good for an hour: no refresh now
        rsps.post(GRAPHQL, json=SHOP_ANSWER, match=with_token("shpat_new"))
        assert shops.connector_for(shop).still_installed() is True


def test_a_token_shortly_before_expiry_is_refreshed_too(app) -> None:
    shop = make_shop(app, expires_in=timedelta(minutes=2))
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=refreshed(), match=refresh_request())
        rsps.post(GRAPHQL, json=SHOP_ANSWER, match=with_token("shpat_new"))
        assert shops.connector_for(shop).still_installed() is True


def test_a_401_to_a_current_token_is_retried_once_with_a_refreshed_one(app) -> None:
    shop = make_shop(app, expires_in=timedelta(minutes=30))
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, status=401, json={"errors": "[API] Invalid API key or access token"},
                  match=with_token("shpat_old"))
        rsps.post(TOKEN_URL, json=refreshed(), match=refresh_request())
        rsps.post(GRAPHQL, json={"data": {"codeDiscountNodeByCode": None}},
                  match=with_token("shpat_new"))
        assert shops.connector_for(shop).find_discount("SK-1") is None
    assert stored(shop).access_token == "shpat_new"


def test_concurrent_workers_refresh_once_and_share_the_new_token(app, monkeypatch) -> None:
    """The interleaving is forced, not hoped for: whichever worker reaches Shopify first
    holds its refresh there until the other has entered the renewal (about to take the
    lock) and then, for up to 2 s, until the other has read the stored credentials. With
    the lock that read waits for the first worker's commit and sees the new pair; without
    it the second worker reads the old pair at once and spends the refresh token again."""
    from plugin import crypto, shopify_tokens

    shop = make_shop(app, expires_in=timedelta(minutes=-1))
    shop_id, refreshes, used, failures, overlapped = shop.id, [], [], [], []
    start = threading.Barrier(2)
    names = ("worker-0", "worker-1")
    entered = {name: threading.Event() for name in names}  # inside the renewal, pre-lock
    read = {name: threading.Event() for name in names}  # read the stored credentials there
    renew_locked, decrypt = shopify_tokens._renew_locked, crypto.decrypt_credentials

    def entering(*args, **kwargs):
        entered[threading.current_thread().name].set()
        return renew_locked(*args, **kwargs)

    def reading(*args, **kwargs):
        name = threading.current_thread().name
        if name in entered and entered[name].is_set():
            read[name].set()
        return decrypt(*args, **kwargs)

    monkeypatch.setattr(shopify_tokens, "_renew_locked", entering)
    monkeypatch.setattr(crypto, "decrypt_credentials", reading)

    def token_endpoint(request):
        refreshes.append(request.body)
        other = next(n for n in names if n != threading.current_thread().name)
        overlapped.append(entered[other].wait(30))  # the other is renewing meanwhile
        read[other].wait(2)  # unlocked, it reads now; locked, it waits for our commit
        return 200, {}, json.dumps(refreshed())

    def graphql(request):
        used.append(request.headers["X-Shopify-Access-Token"])
        return 200, {}, json.dumps(SHOP_ANSWER)

    def worker() -> None:
        with app.app_context():  # a session of its own, like another worker process
            try:
                connector = shops.connector_for(shops.get_shop(shop_id))
                start.wait(10)
                connector.still_installed()
            except Exception as err:  # reported below
                failures.append(err)
            finally:
                db.session.remove()

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, TOKEN_URL, callback=token_endpoint)
        rsps.add_callback(responses.POST, GRAPHQL, callback=graphql)
        threads = [threading.Thread(target=worker, name=name) for name in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert failures == []
    assert overlapped and all(overlapped)  # the race did happen
    assert len(refreshes) == 1  # the single-use refresh token was spent once
    assert used == ["shpat_new", "shpat_new"]
    assert stored(shop).extra["refresh_token"] == "shprt_new"


def test_a_refused_refresh_marks_the_installation_for_oauth_again(app) -> None:
    shop = make_shop(app, expires_in=timedelta(minutes=-1))
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, status=400, json={
            "error": "invalid_grant",
            "error_description": "The refresh token is invalid or expired"},
            match=refresh_request())
        with pytest.raises(AuthFailed):
            shops.connector_for(shop).find_discount("SK-1")
    db.session.expire_all()
    assert shops.get_shop(shop.id).installation.auth_failed is True
    assert stored(shop).extra["refresh_token"] == "shprt_old"  # nothing else changed


def test_an_expired_refresh_token_asks_for_oauth_without_calling_shopify(app) -> None:
    shop = make_shop(app, expires_in=timedelta(minutes=-1))
    creds = shops.credentials_for(shop)
    creds.extra["refresh_token_expires_at"] = (
        datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    shops.save_credentials(shop, creds)
    db.session.commit()
    with responses.RequestsMock(), pytest.raises(AuthFailed):
        shops.connector_for(shop).find_discount("SK-1")
    db.session.expire_all()
    assert shops.get_shop(shop.id).installation.auth_failed is True


def test_the_job_migrates_a_non_expiring_token_once(app) -> None:
    shop = make_shop(app, expires_in=None, refresh=None, token="shpat_legacy")
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=refreshed("shpat_expiring", "shprt_first"), match=[
            matchers.json_params_matcher({
                "client_id": API_KEY, "client_secret": SECRET,
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": "shpat_legacy",
                "subject_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
                "requested_token_type":
                    "urn:shopify:params:oauth:token-type:offline-access-token",
                "expiring": "1"})])
        assert jobs.migrate_shopify_tokens() == 1
    creds = stored(shop)
    assert creds.access_token == "shpat_expiring"
    assert creds.extra["refresh_token"] == "shprt_first"
    assert "access_token_expires_at" in creds.extra and "refresh_token_expires_at" in creds.extra
    assert creds.extra["api_key"] == API_KEY  # the rest is kept
    with responses.RequestsMock():  # idempotent: nothing left to migrate, no HTTP
        assert jobs.migrate_shopify_tokens() == 0
    with responses.RequestsMock() as rsps:  # and API calls use the expiring token
        rsps.post(GRAPHQL, json=SHOP_ANSWER, match=with_token("shpat_expiring"))
        assert shops.connector_for(shops.get_shop(shop.id)).still_installed() is True


def test_a_refused_migration_keeps_the_old_token_and_waits_a_day(app) -> None:
    shop = make_shop(app, expires_in=None, refresh=None, token="shpat_custom")
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, status=400, json={"error": "invalid_request"})
        assert jobs.migrate_shopify_tokens() == 0
    assert stored(shop).access_token == "shpat_custom"
    db.session.expire_all()
    assert shops.get_shop(shop.id).installation.auth_failed is False
    with responses.RequestsMock():  # asked again only after a day
        assert jobs.migrate_shopify_tokens() == 0


def _row_is_free(shop_id: str) -> bool:
    """Whether another connection can write the shop's installations row right now."""
    import sqlalchemy as sa

    from plugin.models import Installation

    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SET lock_timeout = '300ms'"))
        else:
            conn.exec_driver_sql("PRAGMA busy_timeout = 300")
        try:
            conn.execute(sa.update(Installation).where(Installation.shop_id == shop_id)
                         .values(updated_at=Installation.updated_at))
        except sa.exc.DBAPIError:
            return False
        finally:
            conn.rollback()
        return True


def test_a_sync_renewing_its_lease_while_a_refresh_is_retried_keeps_the_row_locked(app):
    """A sync renews its lease at each retry wait (``RetrySession.on_wait``), and the
    renewal commits: run for a retried token refresh, it committed the refresh's own
    transaction, freeing the installations row while the refresh token was being spent,
    so a second worker could refresh with it too."""
    from connectors.http import make_session
    from plugin.ingestion.sync import run_sync

    shop = make_shop(app, expires_in=timedelta(minutes=-1))
    free_while_waiting: list[bool] = []

    def wait(delay: float) -> None:
        free_while_waiting.append(_row_is_free(shop.id))

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(TOKEN_URL, status=503)
        rsps.post(TOKEN_URL, json=refreshed(), match=refresh_request())
        rsps.post(GRAPHQL, json={"data": {
            "shop": {"ianaTimezone": "Europe/Paris"},
            "products": {"pageInfo": {"hasNextPage": False, "endCursor": None},
                         "nodes": []}}})
        run_sync(shop.id, "products", session=make_session(sleep=wait))
    assert free_while_waiting == [False]
    creds = stored(shop)
    assert (creds.access_token, creds.extra["refresh_token"]) == ("shpat_new", "shprt_new")


def test_a_stale_credentials_write_keeps_the_pair_rotated_meanwhile(app) -> None:
    """A writer that read the credentials before another worker's refresh (a secret
    rotation, the zone a sync reads) saved the old pair back over the rotated one."""
    from dataclasses import replace

    shop = make_shop(app, expires_in=timedelta(minutes=2))
    read_before = stored(shop)
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=refreshed(), match=refresh_request())
        rsps.post(GRAPHQL, json=SHOP_ANSWER, match=with_token("shpat_new"))
        assert shops.connector_for(shops.get_shop(shop.id)).still_installed() is True
    shop = shops.get_shop(shop.id)
    shops.save_credentials(shop, replace(read_before, webhook_secret="rotated-secret"))
    db.session.commit()
    now = stored(shop)
    assert now.webhook_secret == "rotated-secret"  # the writer's change is kept...
    assert (now.access_token, now.extra["refresh_token"]) == ("shpat_new", "shprt_new")
    # ...and a newer token (a reinstall) still replaces the stored one
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    shops.save_credentials(shop, replace(now, access_token="shpat_reinstall", extra={
        **now.extra, "refresh_token": "shprt_reinstall", "access_token_expires_at": later}))
    db.session.commit()
    assert stored(shop).access_token == "shpat_reinstall"
