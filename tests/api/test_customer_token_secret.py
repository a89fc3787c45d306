"""The per-shop customer-token secret: every platform's storefront can identify customers
with it, and no app-wide or platform secret (nor another shop's) can."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa

from connectors.base import Credentials
from plugin import crypto, shops
from plugin.api.access import ApiShop
from plugin.api.identity import mint_customer_token, resolve_identity
from plugin.extensions import db
from plugin.models import Installation, RecommendationCache
from plugin.training import train_shop
from tests.api.conftest import PRODUCTS, Api, anon_id, ids, load_history
from tests.api.conftest import add_products as add_products_
from tests.factories import make_shop

APP_SECRET = "shpss_app_wide_client_secret_0000000000"
PLATFORM_SECRET = "whsec_platform_0123456789abcdefghijklmn"
CACHED = [["p8", 1.0, "itemknn", "because you bought Product p1"],
          ["p10", 0.5, "itemknn", "because you bought Product p2"]]


def own_secret(shop) -> str:
    return shops.credentials_for(shop).extra[shops.CUSTOMER_TOKEN_SECRET]


def _personalize_c1(shop) -> None:
    """A trained history with a c1 cache row no anonymous answer can contain."""
    add_products_(shop.id, PRODUCTS)
    load_history(shop.id)
    train_shop(shop.id)
    row = db.session.query(RecommendationCache).filter_by(shop_id=shop.id,
                                                          shopper_id="c1").one()
    row.items = CACHED
    db.session.commit()


@pytest.fixture
def shopify_store(app):
    app.config.update(SHOPIFY_API_KEY="app-key", SHOPIFY_API_SECRET=APP_SECRET)
    domain = "tokens.myshopify.com"
    shop = shops.create_shop("shopify", domain, Credentials(
        domain, access_token="shpat_x", webhook_secret=APP_SECRET))
    shop.settings = {"allowed_origins": ["https://store.example"], "holdout_share": 0}
    db.session.commit()
    _personalize_c1(shop)
    return shop


def _headers(token: str) -> dict[str, str]:
    return {"X-Shopkeeper-Customer-Token": token, "X-Shopkeeper-Shopper": anon_id()}


def _assert_personalized(response) -> None:
    assert response.status_code == 200
    assert response.get_json()["personalized"] is True
    assert ids(response) == ["p8", "p10"]


def _assert_anonymous(response) -> None:
    assert response.status_code == 200
    assert response.get_json()["personalized"] is False
    assert not {"p8", "p10"} & set(ids(response))


def test_a_shopify_storefront_identifies_customers_with_its_own_secret(client, shopify_store):
    secret = own_secret(shopify_store)
    assert secret != APP_SECRET and len(secret) >= 43  # token_urlsafe(32)
    token = mint_customer_token(shopify_store.id, secret, "c1")
    _assert_personalized(Api(client, shopify_store).recs(headers=_headers(token), n=2))
    assert resolve_identity(ApiShop.of(shopify_store),
                            _headers(token)).customer_id == "c1"


def test_a_token_signed_with_the_shopify_app_secret_is_anonymous(client, shopify_store):
    """The app secret is every Shopify shop's: whoever knew it could be any customer."""
    api = Api(client, shopify_store)
    for secret in (APP_SECRET, shops.credentials_for(shopify_store).webhook_secret):
        token = mint_customer_token(shopify_store.id, secret, "c1")
        _assert_anonymous(api.recs(headers=_headers(token), n=2))
        assert resolve_identity(ApiShop.of(shopify_store), _headers(token)).customer_id is None


def test_saleors_webhook_secret_does_not_sign_customer_tokens(app):
    platform = "saleor"
    shop = shops.create_shop(platform, f"{platform}.example", Credentials(
        f"{platform}.example", access_token="tok", webhook_secret=PLATFORM_SECRET,
        api_url=f"https://{platform}.example/api"))
    db.session.commit()
    api_shop = ApiShop.of(shop)
    by_webhook = mint_customer_token(shop.id, PLATFORM_SECRET, "c1")
    assert resolve_identity(api_shop, _headers(by_webhook)).customer_id is None
    by_own = mint_customer_token(shop.id, own_secret(shop), "c1")
    assert resolve_identity(api_shop, _headers(by_own)).customer_id == "c1"


def test_a_vendure_shops_own_webhook_secret_still_signs_customer_tokens(app):
    """The merchant set it in their Vendure plugin, and the docs said to sign tokens with
    it: storefronts doing so keep their customers (as generic shops do)."""
    shop = shops.create_shop("vendure", "vendure.example", Credentials(
        "vendure.example", access_token="tok", webhook_secret=PLATFORM_SECRET,
        api_url="https://vendure.example/api"))
    db.session.commit()
    api_shop = ApiShop.of(shop)
    for secret in (PLATFORM_SECRET, own_secret(shop)):
        token = mint_customer_token(shop.id, secret, "c1")
        assert resolve_identity(api_shop, _headers(token)).customer_id == "c1"


def test_a_token_of_shop_a_secret_is_not_accepted_by_shop_b(client, shopify_store):
    """Shop A's merchant knows A's secret: it must not make them a customer of B."""
    for other in (make_shop(), make_shop("shopify", "other.myshopify.com")):
        forged = mint_customer_token(shopify_store.id, own_secret(other), "c1")
        _assert_anonymous(Api(client, shopify_store).recs(headers=_headers(forged), n=2))


def test_a_generic_shop_accepts_its_webhook_secret_and_its_customer_token_secret(
        api, trained, shop_secret):
    row = db.session.query(RecommendationCache).filter_by(shop_id=trained.id,
                                                          shopper_id="c1").one()
    row.items = CACHED
    db.session.commit()
    for secret in (shop_secret, own_secret(trained)):  # old storefronts, new ones
        token = mint_customer_token(trained.id, secret, "c1")
        _assert_personalized(api.recs(headers=_headers(token), n=2))
    # an expired token signed with the second secret is still refused (not tried as forged)
    old = mint_customer_token(trained.id, own_secret(trained), "c1", now=1, ttl_seconds=60)
    _assert_anonymous(api.recs(headers=_headers(old), n=2))


def test_an_uninstalled_shop_verifies_no_one(app):
    shop = make_shop("shopify", "gone.myshopify.com")
    secret = own_secret(shop)
    shops.mark_uninstalled(shop)
    db.session.commit()
    token = mint_customer_token(shop.id, secret, "c1")
    assert ApiShop.of(shop).token_secrets == ()
    assert resolve_identity(ApiShop.of(shop), _headers(token)).customer_id is None


def test_a_reinstall_keeps_the_customer_token_secret(app, shopify_store):
    """A platform's re-authorisation brings new credentials without our secret: customers
    stay signed in."""
    from plugin.install.records import upsert_installation

    before = own_secret(shopify_store)
    upsert_installation("shopify", shopify_store.domain, Credentials(
        shopify_store.domain, access_token="shpat_new", webhook_secret=APP_SECRET))
    db.session.commit()
    creds = shops.credentials_for(shopify_store)
    assert creds.access_token == "shpat_new" and own_secret(shopify_store) == before


def test_the_secret_is_not_in_the_api_shop_repr(app, shopify_store):
    assert own_secret(shopify_store) not in repr(ApiShop.of(shopify_store))


def _strip_secret(shop) -> None:
    """What a shop installed before the customer-token secret existed looks like."""
    creds = shops.credentials_for(shop)
    extra = {k: v for k, v in creds.extra.items() if k != shops.CUSTOMER_TOKEN_SECRET}
    shop.installation.credentials_encrypted = crypto.encrypt_credentials(
        replace(creds, extra=extra))
    db.session.commit()


def test_an_existing_shop_gets_its_secret_once_and_keeps_it(app):
    shop = make_shop("shopify", "old.myshopify.com")
    _strip_secret(shop)
    assert ApiShop.of(shop).token_secrets == ()  # verifying never creates one
    secret, created = shops.ensure_customer_token_secret(shop)
    db.session.commit()
    assert created and secret
    db.session.expire_all()
    assert shops.ensure_customer_token_secret(shop) == (secret, False)
    assert ApiShop.of(shop).token_secrets == (secret,)


def test_two_processes_creating_the_secret_at_once_agree_on_one(app):
    """The loser of the race reads the winner's secret back instead of overwriting it."""
    shop = make_shop("vendure", "race.example")
    _strip_secret(shop)
    stale = shops.credentials_for(shop)  # this process read the row: no secret yet
    assert shops.CUSTOMER_TOKEN_SECRET not in stale.extra
    winner = replace(stale, extra={**stale.extra, shops.CUSTOMER_TOKEN_SECRET: "winner"})
    db.session.execute(  # another process creates it meanwhile (this session not told)
        sa.update(Installation).where(Installation.shop_id == shop.id)
        .values(credentials_encrypted=crypto.encrypt_credentials(winner))
        .execution_options(synchronize_session=False))
    assert shops.ensure_customer_token_secret(shop) == ("winner", False)
    assert own_secret(shop) == "winner"
