"""A purchase the shopper gave to a sub-profile stays there when the platform updates the
order (paid, fulfilled, edited): every such update replaces the order's purchase rows."""

from __future__ import annotations

from datetime import timedelta

from plugin.models.types import utcnow
from plugin.shops import credentials_for
from plugin.webhooks import inbox
from tests.factories import order_body, post_webhook
from tests.subprofiles.conftest import customer

LINES = [{"product_id": "baby1", "quantity": 1, "price": "4.00"},
         {"product_id": "coffee1", "quantity": 1, "price": "4.00"}]


def _at(hours_ago: int) -> str:
    return (utcnow() - timedelta(hours=hours_ago)).isoformat()


def _order(client, shop, updated_at: str, lines=LINES) -> None:
    r = post_webhook(client, shop.id, credentials_for(shop).webhook_secret, "orders/upsert",
                     order_body("o-77", customer_id="c9", updated_at=updated_at, lines=lines,
                                created_at=_at(48)))
    assert r.status_code == 200
    inbox.process_inbox()


def _for(sub, order_id: str = "o-77") -> dict:
    orders = sub.get("/orders").get_json()["orders"]
    return next(o for o in orders if o["order_id"] == order_id)


def test_an_order_update_keeps_the_purchases_given_to_a_subprofile(client, shop):
    _order(client, shop, _at(47))
    sub = customer(client, shop, "c9")
    maya = sub.create("Maya")
    moved = sub.post("/reassign", {"subprofile_id": maya, "order_id": "o-77"})
    assert moved.get_json()["moved"] == 2
    assert _for(sub)["subprofile_id"] == maya

    _order(client, shop, _at(1))  # e.g. orders/paid, orders/fulfilled
    assert _for(sub)["subprofile_id"] == maya
    # still out of the buyer's own history, and still the sub-profile's
    from plugin.subprofiles import detection, recs
    assert detection.own_history(shop.id, "c9") == []
    assert sorted(recs.seeds(shop.id, maya)) == ["baby1", "coffee1"]


def test_a_line_the_shopper_gave_away_stays_given_when_lines_change(client, shop):
    _order(client, shop, _at(47))
    sub = customer(client, shop, "c9")
    maya = sub.create("Maya")
    moved = sub.post("/reassign", {"subprofile_id": maya, "order_id": "o-77",
                                   "product_ids": ["baby1"]})
    assert moved.get_json()["moved"] == 1 and _for(sub)["mixed"] is True
    # the order gains a line: the given-away line stays Maya's, the new one is the buyer's
    _order(client, shop, _at(1), lines=[
        *LINES, {"product_id": "wine1", "quantity": 1, "price": "4.00"}])
    order = _for(sub)
    assert order["mixed"] is True
    from plugin.subprofiles import recs
    assert recs.seeds(shop.id, maya) == ["baby1"]


def test_a_deleted_subprofiles_purchases_do_not_come_back_with_an_order_update(client, shop):
    """Deleting Maya takes her purchases out of every profile, and the next orders/updated
    (fulfilment, days later) must not hand them back to the parent as their own."""
    from plugin.privacy import export_customer
    from plugin.subprofiles import detection

    _order(client, shop, _at(47))
    sub = customer(client, shop, "c9")
    maya = sub.create("Maya")
    sub.post("/reassign", {"subprofile_id": maya, "order_id": "o-77",
                           "product_ids": ["baby1"]})
    assert sub.delete(f"/{maya}").status_code == 204
    assert detection.own_history(shop.id, "c9") == ["coffee1"]

    _order(client, shop, _at(1))  # orders/fulfilled
    assert detection.own_history(shop.id, "c9") == ["coffee1"]
    # the order list offers the remaining line only, and reassigning the order to the
    # shopper ("for me") cannot pull the forgotten line back either
    assert [i["product_id"] for i in _for(sub)["items"]] == ["coffee1"]
    sub.post("/reassign", {"subprofile_id": None, "order_id": "o-77"})
    assert detection.own_history(shop.id, "c9") == ["coffee1"]
    lines = {i["product_id"]: i["subprofile_id"]
             for i in export_customer(shop.id, "c9")["interactions"] if i["kind"] == "purchase"}
    assert lines == {"baby1": "deleted", "coffee1": None}
