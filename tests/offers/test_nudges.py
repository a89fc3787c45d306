"""Nudges: idle carts and wishlists -> one signed webhook per shopper per period."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import responses

from connectors.generic.webhooks import verify_signature
from plugin.extensions import db
from plugin.models import Cart, Interaction, Nudge
from plugin.models.types import utcnow
from plugin.offers.nudges import run_nudges
from tests.offers.conftest import configure

HOOK = "https://crm.example/hooks/shopkeeper"

pytestmark = pytest.mark.usefixtures("public_dns")


def _idle_cart(shop_id, customer="c1", minutes=90):
    db.session.add(Cart(shop_id=shop_id, external_id=f"cart-{customer}",
                        customer_external_id=customer, currency="GBP",
                        lines=[{"product_id": "p1", "variant_id": None, "quantity": 2,
                                "price": "50.00"}],
                        source_updated_at=utcnow() - timedelta(minutes=minutes)))
    db.session.commit()


@responses.activate
def test_idle_cart_nudge_is_signed_and_carries_an_offer_link(app, shop, shop_secret):
    configure(shop, nudge_webhook_url=HOOK, cart_url="https://store.example/cart")
    _idle_cart(shop.id)
    responses.post(HOOK, status=202)
    assert run_nudges(shop) == {"sent": 1, "failed": 0, "skipped": 0}
    call = responses.calls[0].request
    verify_signature(shop_secret, call.headers, call.body)  # raises when wrong
    assert call.headers["X-Shopkeeper-Topic"] == "nudges/create"
    body = json.loads(call.body)
    assert body["stage"] == "idle_cart" and body["shopper_id"] == "c1"
    assert body["offer"]["token"] and body["offer_link"].startswith(
        "https://store.example/cart?sk_offer=")


@responses.activate
def test_at_most_one_nudge_per_period_and_failures_retry(app, shop):
    configure(shop, nudge_webhook_url=HOOK)
    _idle_cart(shop.id)
    responses.post(HOOK, status=500)
    assert run_nudges(shop)["failed"] == 1
    responses.replace(responses.POST, HOOK, status=200)
    assert run_nudges(shop)["sent"] == 1
    assert run_nudges(shop) == {"sent": 0, "failed": 0, "skipped": 1}
    later = utcnow() + timedelta(days=8)
    db.session.execute(db.update(Cart).values(source_updated_at=later - timedelta(hours=1)))
    db.session.commit()
    assert run_nudges(shop, now=later)["sent"] == 1
    assert db.session.query(Nudge).filter_by(status="sent").count() == 2


@responses.activate
def test_wishlist_holders_and_holdout(app, shop):
    configure(shop, nudge_webhook_url=HOOK)
    for who in ("c7", "anon_" + "Z" * 22):
        db.session.add(Interaction(shop_id=shop.id, shopper_id=who, product_external_id="p1",
                                   kind="wishlist", occurred_at=utcnow() - timedelta(days=1),
                                   context={}))
    db.session.commit()
    responses.post(HOOK, status=200)
    assert run_nudges(shop)["sent"] == 1  # anonymous ids cannot be messaged
    assert json.loads(responses.calls[0].request.body)["stage"] == "wishlist_holder"
    shop.settings = {**shop.settings, "holdout_share": 1.0}
    db.session.commit()
    _idle_cart(shop.id, "c8")
    assert run_nudges(shop)["sent"] == 0


def test_no_webhook_url_sends_nothing(app, shop):
    configure(shop)
    _idle_cart(shop.id)
    assert run_nudges(shop) == {"sent": 0, "failed": 0, "skipped": 0}


@responses.activate
def test_a_shop_that_requires_consent_nudges_only_customers_who_gave_it(app, shop):
    from sqlalchemy import func, select

    from plugin.models import Offer, ShopperConsent

    configure(shop, nudge_webhook_url=HOOK)
    shop.settings = {**shop.settings, "consent_required": True}
    db.session.add_all([ShopperConsent(shop_id=shop.id, shopper_id="c2", granted=True),
                        ShopperConsent(shop_id=shop.id, shopper_id="c3", granted=False)])
    db.session.commit()
    for customer in ("c1", "c2", "c3"):  # c1 never answered, c3 said no
        _idle_cart(shop.id, customer)
    responses.post(HOOK, status=200)
    assert run_nudges(shop) == {"sent": 1, "failed": 0, "skipped": 2}
    assert [json.loads(c.request.body)["shopper_id"] for c in responses.calls] == ["c2"]
    # nor is a quote (a profile of their cart) stored for those without consent
    quoted = db.session.scalars(select(Offer.shopper_id)).all()
    assert set(quoted) <= {"c2"}
    assert db.session.scalar(select(func.count()).select_from(Nudge)) == 1


@responses.activate
def test_idle_carts_in_the_holdout_are_quoted_as_control_observations(app, shop):
    from plugin.api.service import in_holdout
    from plugin.offers import attribution, service

    configure(shop, nudge_webhook_url=HOOK)
    shop.settings = {**shop.settings, "holdout_share": 0.5}
    db.session.commit()
    treated = next(f"t{k}" for k in range(1000) if not in_holdout(shop, f"t{k}", "offers"))
    control = next(f"h{k}" for k in range(1000) if in_holdout(shop, f"h{k}", "offers"))
    for customer in (treated, control):
        _idle_cart(shop.id, customer)
    responses.post(HOOK, status=200)
    assert run_nudges(shop)["sent"] == 1
    now = utcnow()
    report = attribution.uplift_report(shop.id, service.guardrails_for(shop),
                                       now - timedelta(days=1), now + timedelta(minutes=1))
    # the treated idle cart was quoted (and nudged); its control twin must be observed too
    assert (report["arms"]["treatment"]["shoppers"], report["arms"]["control"]["shoppers"]) \
        == (1, 1)
    assert run_nudges(shop)["sent"] == 0  # once per period, in both arms
    assert db.session.query(Nudge).filter_by(shopper_id=control).count() == 1
