"""Customer tokens: only a valid token of this shop reveals a customer's recommendations."""

from __future__ import annotations

import time

import jwt
import pytest

from plugin.api.identity import ShopperIdentity, mint_customer_token, resolve_identity
from plugin.extensions import db
from plugin.models import RecommendationCache
from tests.api.conftest import anon_id, customer_headers, ids, token_for
from tests.factories import make_shop

CACHED = [["p8", 1.0, "itemknn", "because you bought Product p1"],
          ["p10", 0.5, "itemknn", "because you bought Product p2"]]


@pytest.fixture
def c1_cached(trained):
    """Give c1 a cache row no anonymous answer can contain (p8, p10 are never bought)."""
    row = db.session.query(RecommendationCache).filter_by(shop_id=trained.id,
                                                          shopper_id="c1").one()
    row.items = CACHED
    db.session.commit()
    return trained


def _assert_anonymous(response) -> None:
    body = response.get_json()
    assert response.status_code == 200
    assert body["personalized"] is False
    assert body["items"], "anonymous shoppers still get popular items"
    assert not {"p8", "p10"} & set(ids(response))
    assert all(item["source"] == "popular" for item in body["items"])


def test_valid_token_serves_the_customers_own_list(api, c1_cached):
    response = api.recs(headers=customer_headers(c1_cached, "c1"), n=2)
    assert response.get_json()["personalized"] is True
    assert ids(response) == ["p8", "p10"]


def test_missing_token_is_anonymous(api, c1_cached):
    _assert_anonymous(api.recs(headers={"X-Shopkeeper-Shopper": anon_id()}))


def test_forged_token_is_anonymous(api, c1_cached):
    forged = mint_customer_token(c1_cached.id, "not-the-secret-but-long-enough-for-hs256!", "c1")
    _assert_anonymous(api.recs(headers={"X-Shopkeeper-Customer-Token": forged}))


def test_garbage_token_is_anonymous(api, c1_cached):
    _assert_anonymous(api.recs(headers={"X-Shopkeeper-Customer-Token": "a.b.c"}))


def test_expired_token_is_anonymous(api, c1_cached):
    old = int(time.time()) - 7200
    token = token_for(c1_cached, "c1", now=old, ttl_seconds=3600)
    _assert_anonymous(api.recs(headers={"X-Shopkeeper-Customer-Token": token}))


def test_token_living_longer_than_a_day_is_refused(api, c1_cached):
    token = token_for(c1_cached, "c1", ttl_seconds=3 * 24 * 3600)
    _assert_anonymous(api.recs(headers={"X-Shopkeeper-Customer-Token": token}))


def test_token_of_another_shop_is_anonymous(api, c1_cached):
    other = make_shop()
    token = token_for(other, "c1")  # valid for the other shop, signed with its secret
    _assert_anonymous(api.recs(headers={"X-Shopkeeper-Customer-Token": token}))


def test_token_signed_by_this_shop_for_another_shop_is_anonymous(api, c1_cached):
    from plugin.shops import credentials_for

    secret = credentials_for(c1_cached).webhook_secret
    token = mint_customer_token("shp_someoneelse", secret, "c1")
    _assert_anonymous(api.recs(headers={"X-Shopkeeper-Customer-Token": token}))


def test_token_without_required_claims_is_anonymous(api, c1_cached):
    from plugin.shops import credentials_for

    secret = credentials_for(c1_cached).webhook_secret
    token = jwt.encode({"sub": "c1", "shop": c1_cached.id}, secret, algorithm="HS256")  # no exp
    _assert_anonymous(api.recs(headers={"X-Shopkeeper-Customer-Token": token}))


def test_customer_id_in_the_shopper_header_reads_nothing(api, c1_cached):
    _assert_anonymous(api.recs(headers={"X-Shopkeeper-Shopper": "c1"}))


def test_customer_id_in_the_url_reads_nothing(api, c1_cached):
    _assert_anonymous(api.recs(customer_id="c1", shopper="c1", sub="c1"))


def test_resolve_identity_keeps_only_well_formed_anonymous_ids(app, c1_cached):
    good = anon_id()
    assert resolve_identity(c1_cached, {"X-Shopkeeper-Shopper": good}) == \
        ShopperIdentity(anonymous_id=good)
    for bad in ("anon_short", "anon_" + "x" * 40, "c1", "anon_" + "!" * 22):
        assert resolve_identity(c1_cached, {"X-Shopkeeper-Shopper": bad}).key is None
