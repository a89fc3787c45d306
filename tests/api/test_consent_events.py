"""Consent gates storage and personalisation; events are stored per shop with attribution."""

from __future__ import annotations

import pytest

from plugin.extensions import db
from plugin.models import Impression, Interaction, RecommendationCache, ShopperConsent
from tests.api.conftest import anon_id, customer_headers, ids


def _widget_events(shop_id: str) -> list[Interaction]:
    return db.session.query(Interaction).filter(Interaction.shop_id == shop_id,
                                                Interaction.kind != "purchase").all()


@pytest.fixture
def consent_shop(trained):
    trained.settings = {**trained.settings, "consent_required": True}
    db.session.commit()
    return trained


def test_events_are_stored_for_the_shopper(api):
    shopper = anon_id()
    response = api.events([{"type": "view", "product_id": "p1"},
                           {"type": "add_to_cart", "product_id": "p2", "quantity": 3},
                           {"type": "purchase", "product_id": "p2"}],
                          headers={"X-Shopkeeper-Shopper": shopper})
    assert response.status_code == 202
    assert response.get_json() == {"stored": 3}
    rows = sorted(_widget_events(api.shop.id), key=lambda r: r.id)
    assert [(r.kind, r.product_external_id, r.quantity) for r in rows] == [
        ("view", "p1", 1), ("add_to_cart", "p2", 3), ("widget_purchase", "p2", 1)]
    assert {r.shopper_id for r in rows} == {shopper}


def test_event_times_are_kept_within_a_window(api):
    """Found by tests/test_api_fuzz.py: year 1 at +01:00 overflowed on the way to UTC."""
    from datetime import UTC, datetime, timedelta

    from plugin.api.events import MAX_FUTURE, MAX_PAST

    recent = datetime.now(UTC) - timedelta(days=2)
    events = [{"type": "view", "product_id": f"p{i}", "at": at} for i, at in enumerate([
        recent.isoformat(), "0001-01-01T00:00:00+01:00", "1900-01-01T00:00:00Z",
        "9999-12-31T23:59:59-05:00"])]
    response = api.events(events, headers={"X-Shopkeeper-Shopper": anon_id()})
    assert response.status_code == 202
    when = {r.product_external_id: r.occurred_at for r in _widget_events(api.shop.id)}
    now = datetime.now(UTC)
    assert abs(when["p0"] - recent) < timedelta(seconds=1)  # replayed, kept as sent
    for old in ("p1", "p2"):
        assert abs(when[old] - (now - MAX_PAST)) < timedelta(minutes=1)
    assert abs(when["p3"] - (now + MAX_FUTURE)) < timedelta(minutes=1)


def test_widget_purchases_do_not_train_the_model(api):
    from plugin.training import load_interactions

    before = len(load_interactions(api.shop.id))
    api.events([{"type": "purchase", "product_id": "p1"}],
               headers={"X-Shopkeeper-Shopper": anon_id()})
    assert len(load_interactions(api.shop.id)) == before


def test_verified_customer_events_are_keyed_by_customer(api):
    headers = customer_headers(api.shop, "c2")
    api.events([{"type": "click", "product_id": "p4"}], headers=headers)
    (row,) = _widget_events(api.shop.id)
    assert row.shopper_id == "c2"
    assert row.context["anonymous_id"] == headers["X-Shopkeeper-Shopper"]


def test_consent_required_and_not_given_stores_nothing(api, consent_shop):
    response = api.events([{"type": "view", "product_id": "p1"}],
                          headers=customer_headers(consent_shop, "c1"))
    assert response.status_code == 202
    assert response.get_json() == {"stored": 0}
    assert _widget_events(consent_shop.id) == []


def test_consent_required_and_not_given_serves_non_personal(api, consent_shop):
    body = api.recs(headers=customer_headers(consent_shop, "c1"), n=4).get_json()
    assert body["personalized"] is False
    assert body["items"] and {i["source"] for i in body["items"]} == {"popular"}
    impression = db.session.query(Impression).one()
    assert impression.shopper_id is None  # nothing personal logged either


def test_declined_consent_keeps_everything_off(api, consent_shop):
    headers = customer_headers(consent_shop, "c1")
    assert api.consent(False, headers=headers).get_json() == {"granted": False}
    assert api.events([{"type": "view", "product_id": "p1"}],
                      headers=headers).get_json() == {"stored": 0}
    assert api.recs(headers=headers).get_json()["personalized"] is False


def test_granted_consent_turns_personalisation_on(api, consent_shop):
    headers = customer_headers(consent_shop, "c1")
    assert api.consent(True, headers=headers).get_json() == {"granted": True}
    stored = {r.shopper_id for r in db.session.query(ShopperConsent).filter_by(granted=True)}
    assert stored == {"c1", headers["X-Shopkeeper-Shopper"]}
    assert api.events([{"type": "view", "product_id": "p1"}],
                      headers=headers).get_json() == {"stored": 1}
    assert api.recs(headers=headers).get_json()["personalized"] is True


def test_withdrawn_consent_stops_storage_again(api, consent_shop):
    headers = {"X-Shopkeeper-Shopper": anon_id()}
    api.consent(True, headers=headers)
    api.consent(False, headers=headers)
    assert api.events([{"type": "view", "product_id": "p1"}],
                      headers=headers).get_json() == {"stored": 0}


def test_click_keeps_the_rec_id_of_a_served_item(api, trained):
    shopper = {"X-Shopkeeper-Shopper": anon_id()}
    served = api.recs(headers=shopper, n=2).get_json()["items"][0]
    api.events([{"type": "click", "product_id": served["product_id"],
                 "rec_id": served["rec_id"]}], headers=shopper)
    (row,) = _widget_events(trained.id)
    assert row.context["rec_id"] == served["rec_id"]


def test_unknown_rec_id_is_dropped_not_trusted(api, trained):
    api.events([{"type": "click", "product_id": "p1", "rec_id": "rforged.0"}],
               headers={"X-Shopkeeper-Shopper": anon_id()})
    (row,) = _widget_events(trained.id)
    assert "rec_id" not in row.context


def test_tenant_isolation(client, trained):
    """Shop B's key never returns shop A's products, cache or events, and vice versa."""
    from plugin.training import train_shop
    from tests.api.conftest import Api, add_products, load_history
    from tests.factories import make_shop

    other = make_shop()
    other.settings = {"holdout_share": 0}
    db.session.commit()
    add_products(other.id, ["b1", "b2", "b3"], prefix="B ")
    load_history(other.id, {"c1": [["b1", "b2"], ["b1", "b3"]], "c2": [["b2", "b3"]]})
    train_shop(other.id)
    a, b = Api(client, trained), Api(client, other)

    # the same customer id exists in both shops: each key sees only its own shop's world
    a_items = ids(a.recs(headers=customer_headers(trained, "c1"), n=10))
    b_items = ids(b.recs(headers=customer_headers(other, "c1"), n=10))
    assert a_items and b_items
    assert set(a_items) <= {f"p{i}" for i in range(1, 11)}
    assert set(b_items) <= {"b1", "b2", "b3"}
    # a product of shop A asked through shop B's key yields nothing of A
    assert not set(ids(b.recs("product", product_id="p4"))) & set(a_items)
    assert set(ids(b.recs("cart", cart="p4,p5"))) <= {"b1", "b2", "b3"}
    # shop A's token is not a customer of shop B
    cross = b.recs(headers=customer_headers(trained, "c1")).get_json()
    assert cross["personalized"] is False
    # events through B's key land in B only; A's rec ids mean nothing there
    served = a.recs(headers={"X-Shopkeeper-Shopper": anon_id()}).get_json()["items"][0]
    b.events([{"type": "click", "product_id": "p1", "rec_id": served["rec_id"]}],
             headers={"X-Shopkeeper-Shopper": anon_id()})
    assert _widget_events(trained.id) == []
    (row,) = _widget_events(other.id)
    assert "rec_id" not in row.context
    caches = {r.shop_id for r in db.session.query(RecommendationCache).filter_by(
        shopper_id="c1")}
    assert caches == {trained.id, other.id}
