"""``personalized`` (answer and impression) means the list used the shopper's own data."""

from __future__ import annotations

from plugin.extensions import db
from plugin.models import Impression
from plugin.models.types import utcnow
from tests.api.conftest import add_order, anon_id, customer_headers


def _last_impression() -> Impression:
    return db.session.query(Impression).order_by(Impression.id.desc()).first()


def test_customer_the_shop_never_saw_is_not_counted_personalized(api, trained):
    body = api.recs(headers=customer_headers(trained, "c404"), n=8).get_json()
    assert len(body["items"]) == 8  # the model's cold-start list, then popular items
    assert body["personalized"] is False
    assert _last_impression().personalized is False
    assert api.recs(headers=customer_headers(trained, "c1"), n=8).get_json()[
        "personalized"] is True
    assert _last_impression().personalized is True


def test_new_customer_whose_purchase_the_list_leaves_out_is_personalized(api, trained):
    """Unknown to the model, but their order since the fit shaped the list."""
    add_order(trained.id, "c405", "o-405", ["p9"], utcnow())
    body = api.recs(headers=customer_headers(trained, "c405"), n=8).get_json()
    model_part = [i["product_id"] for i in body["items"] if i["source"] != "popular"]
    assert model_part and "p9" not in model_part
    assert body["personalized"] is True


def test_a_merchants_pin_is_not_personalization(api, trained):
    trained.settings = {**trained.settings, "merchandising": [
        {"action": "pin", "field": "product", "value": "p7", "weight": 1.0}]}
    db.session.commit()
    body = api.recs(headers={"X-Shopkeeper-Shopper": anon_id()}, n=4).get_json()
    assert "merchandising" in {i["source"] for i in body["items"]}
    assert body["personalized"] is False
    assert _last_impression().personalized is False
    assert api.recs(headers=customer_headers(trained, "c1"), n=4).get_json()[
        "personalized"] is True
