"""Spent discounts are deleted from the platform: expired unused ones only, each once."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import responses
import sqlalchemy as sa

from connectors.base import Credentials
from connectors.shopify.client import API_VERSION
from plugin import shops
from plugin.extensions import db
from plugin.models import Offer
from plugin.models.types import utcnow
from plugin.offers.cleanup import GIVE_UP_AFTER, delete_spent_discounts
from tests.factories import make_shop

DOMAIN = "sk-cleanup.myshopify.com"
GRAPHQL = f"https://{DOMAIN}/admin/api/{API_VERSION}/graphql.json"
DELETED = {"data": {"discountCodeDelete": {"deletedCodeDiscountId": "x", "userErrors": []}}}


def _shopify_shop():
    shop = make_shop("shopify", DOMAIN)
    shops.save_credentials(shop, Credentials(DOMAIN, access_token="shpat_x",
                                             webhook_secret="s" * 32))
    db.session.commit()
    return shop


def _offer(shop, n: int, status: str, *, expired_days: float = 1, ref: str | None = "auto"):
    at = utcnow() - timedelta(days=expired_days)
    row = Offer(public_id=f"of_{n}", shop_id=shop.id, shopper_id="c1", cart_hash="h",
                stage="idle_cart", status=status, currency="GBP", cart_value=Decimal("50"),
                kind="discount", amount=Decimal("5"), code=f"SK-{n}", created_at=at,
                expires_at=at, platform_ref=(f"gid://shopify/DiscountCodeNode/{n}"
                                             if ref == "auto" else ref))
    db.session.add(row)
    return row


def test_expired_unused_discounts_are_deleted_once_and_others_stay(app):
    shop = _shopify_shop()
    _offer(shop, 1, "expired")
    _offer(shop, 2, "redeemed")  # used: part of an order's history
    _offer(shop, 3, "accepted", expired_days=-0.01)  # still usable at checkout
    _offer(shop, 4, "expired", expired_days=GIVE_UP_AFTER.days + 1)  # given up on
    _offer(shop, 5, "expired", ref=None)  # generic shops keep no platform object
    db.session.commit()
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=DELETED)
        assert delete_spent_discounts(shop) == 1
        sent = json.loads(rsps.calls[0].request.body)["variables"]
    assert sent == {"id": "gid://shopify/DiscountCodeNode/1"}
    refs = {o.public_id: o.platform_ref for o in db.session.scalars(sa.select(Offer))}
    assert refs["of_1"] is None and refs["of_2"] and refs["of_3"] and refs["of_4"]
    with responses.RequestsMock():  # nothing left to delete: no call at all
        assert delete_spent_discounts(shop) == 0


def test_a_refused_delete_is_retried_next_run_and_does_not_stop_the_others(app):
    shop = _shopify_shop()
    _offer(shop, 1, "expired", expired_days=2)
    _offer(shop, 2, "expired", expired_days=1)
    db.session.commit()
    refused = {"data": {"discountCodeDelete": {"deletedCodeDiscountId": None, "userErrors": [
        {"field": ["id"], "code": "INTERNAL_ERROR", "message": "Try again later"}]}}}
    with responses.RequestsMock(registry=responses.registries.OrderedRegistry) as rsps:
        rsps.post(GRAPHQL, json=refused)
        rsps.post(GRAPHQL, json=DELETED)
        assert delete_spent_discounts(shop) == 1
    # newest first: of_2 was asked first (refused), of_1 second (deleted)
    left = db.session.scalars(sa.select(Offer.public_id).where(
        Offer.platform_ref.is_not(None))).all()
    assert left == ["of_2"]
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=DELETED)
        assert delete_spent_discounts(shop) == 1
    assert db.session.scalar(sa.select(sa.func.count(Offer.id)).where(
        Offer.platform_ref.is_not(None))) == 0


def test_another_shops_discounts_are_not_touched(app):
    shop, other = _shopify_shop(), make_shop("shopify", "other-cleanup.myshopify.com")
    _offer(other, 9, "expired")
    db.session.commit()
    with responses.RequestsMock():
        assert delete_spent_discounts(shop) == 0
    assert db.session.scalar(sa.select(Offer.platform_ref)) is not None


def test_discounts_the_platform_keeps_refusing_do_not_block_newer_ones(app, monkeypatch):
    from plugin.offers import cleanup

    monkeypatch.setattr(cleanup, "BATCH", 2)
    shop = _shopify_shop()
    for n in (1, 2):  # old ones Shopify refuses on every run
        _offer(shop, n, "expired", expired_days=5 - n)
    _offer(shop, 3, "expired", expired_days=1)
    db.session.commit()
    refused = {"data": {"discountCodeDelete": {"deletedCodeDiscountId": None, "userErrors": [
        {"field": ["id"], "code": "INTERNAL_ERROR", "message": "Try again later"}]}}}

    def answer(request):
        gid = json.loads(request.body)["variables"]["id"]
        body = DELETED if gid.endswith("/3") else refused
        return 200, {}, json.dumps(body)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, GRAPHQL, callback=answer)
        assert delete_spent_discounts(shop) == 1
    assert db.session.scalar(sa.select(Offer.platform_ref).where(
        Offer.public_id == "of_3")) is None


@pytest.mark.parametrize("answer", [None, {"voucher": None, "errors": []}])
def test_a_saleor_voucher_delete_with_no_answer_keeps_the_reference(app, answer):
    """A null ``voucherDelete``, or one naming no voucher, is not a voucher deleted: read
    as one, the offer forgot its voucher, which stayed on Saleor for good. It is asked
    again next run."""
    from connectors.http import make_session

    url = "https://cleanup.saleor.example/graphql/"
    shop = make_shop("saleor", "cleanup.saleor.example")
    shops.save_credentials(shop, Credentials("cleanup.saleor.example", access_token="tok",
                                             api_url=url, extra={"public_only": False}))
    _offer(shop, 1, "expired", ref="Vm91Y2hlcjox")
    db.session.commit()
    with responses.RequestsMock() as rsps:
        rsps.post(url, json={"data": {"voucherDelete": answer}})
        assert delete_spent_discounts(shop, session=make_session(retries=0)) == 0
    assert db.session.scalar(sa.select(Offer.platform_ref)) == "Vm91Y2hlcjox"
    with responses.RequestsMock() as rsps:
        rsps.post(url, json={"data": {"voucherDelete": {"voucher": {"id": "Vm91Y2hlcjox"},
                                                        "errors": []}}})
        assert delete_spent_discounts(shop, session=make_session(retries=0)) == 1
    assert db.session.scalar(sa.select(Offer.platform_ref)) is None


def test_a_shopify_discount_delete_nobody_confirmed_keeps_the_reference(app):
    """A null ``discountCodeDelete`` is not a discount deleted: read as one, the offer
    forgot its discount, which stayed on Shopify for good. It is asked again next run."""
    from connectors.http import make_session

    shop = _shopify_shop()
    _offer(shop, 1, "expired")
    db.session.commit()
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json={"data": {"discountCodeDelete": None}})
        assert delete_spent_discounts(shop, session=make_session(retries=0)) == 0
    assert db.session.scalar(sa.select(Offer.platform_ref)) == "gid://shopify/DiscountCodeNode/1"
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=DELETED)
        assert delete_spent_discounts(shop, session=make_session(retries=0)) == 1
    assert db.session.scalar(sa.select(Offer.platform_ref)) is None
