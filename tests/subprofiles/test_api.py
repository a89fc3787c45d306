"""Create, rename, delete, switch and reassign through ``/api/v1/subprofiles``."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Interaction
from plugin.models.types import utcnow
from tests.subprofiles.conftest import BABY, T0, add_order, anonymous, customer


def test_create_list_rename_delete(host):
    maya = host.create("Maya", "3-5")
    listing = host.get().get_json()
    assert listing["subprofiles"] == [{"id": maya, "name": "Maya", "age_band": "3-5",
                                       "kind": "person"}]
    assert listing["active_subprofile_id"] is None
    renamed = host.patch(f"/{maya}", {"name": "My daughter", "age_band": None})
    assert renamed.status_code == 200
    assert renamed.get_json()["name"] == "My daughter"
    assert renamed.get_json()["age_band"] is None
    assert host.delete(f"/{maya}").status_code == 204
    assert host.get().get_json()["subprofiles"] == []


def test_creating_the_same_name_twice_returns_the_same_subprofile(host):
    assert host.create("Maya") == host.create("Maya")


def test_renaming_onto_a_name_in_use_is_409_and_changes_nothing(host):
    """Found by tests/test_api_fuzz.py: the unique name constraint raised (a 500)."""
    maya, leo = host.create("Maya"), host.create("Leo")
    response = host.patch(f"/{leo}", {"name": " Maya "})
    assert response.status_code == 409
    assert "name" in response.get_json()["errors"]
    assert [p["name"] for p in host.get().get_json()["subprofiles"]] == ["Maya", "Leo"]
    assert host.patch(f"/{maya}", {"name": "Maya", "age_band": "3-5"}).status_code == 200


def test_no_shopper_identity_is_401(client, store):
    response = client.get("/api/v1/subprofiles", query_string={"key": store.widget_key})
    assert response.status_code == 401
    assert response.get_json()["code"] == 401


def test_forged_token_falls_back_to_the_anonymous_owner(client, store):
    """A bad token never names the customer: the call acts for the anonymous id only."""
    owner = customer(client, store)
    owner.create("Maya")
    forged = anonymous(client, store)
    forged.headers["X-Shopkeeper-Customer-Token"] = "not.a.token"
    assert forged.get().get_json()["subprofiles"] == []


def test_other_shoppers_subprofile_is_404(client, store, host):
    maya = host.create("Maya")
    other = customer(client, store, "c1")
    assert other.patch(f"/{maya}", {"name": "Mine"}).status_code == 404
    assert other.delete(f"/{maya}").status_code == 404
    assert other.get(f"/{maya}/recommendations").status_code == 404
    assert other.post("/active", {"subprofile_id": maya}).status_code == 404
    assert host.get().get_json()["subprofiles"][0]["name"] == "Maya"


def test_ids_no_row_can_have_are_404_or_422_not_a_database_error(host):
    """Found by tests/test_api_fuzz.py: a 2**70 id overflowed the driver (500)."""
    maya = host.create("Maya")
    for bad in (2**31, 2**70, 0):
        assert host.patch(f"/{bad}", {"name": "Mine"}).status_code == 404
        assert host.delete(f"/{bad}").status_code == 404
        assert host.get(f"/{bad}/recommendations").status_code == 404
    for bad in (2**31, 2**70, 0, -1):
        for path, body in (("/active", {"subprofile_id": bad}),
                           ("/reassign", {"subprofile_id": bad, "order_id": "o1"}),
                           ("/prompt/answer", {"choice": "existing", "subprofile_id": bad,
                                               "product_ids": ["p1"]})):
            response = host.post(path, body)
            assert response.status_code == 422, (path, bad)
            assert "subprofile_id" in response.get_json()["errors"]
    assert host.post("/active", {"subprofile_id": maya}).status_code == 200


def test_contact_details_and_unknown_fields_are_refused(host):
    assert host.post("", {"name": "maya@example.com"}).status_code == 422
    assert host.post("", {"name": "Maya", "age_band": "4"}).status_code == 422
    response = host.post("", {"name": "Maya", "birthday": "2020-01-01"})
    assert response.status_code == 422
    assert "birthday" in response.get_json()["errors"]


def test_switch_active_profile_and_back(host):
    maya = host.create("Maya")
    assert host.post("/active", {"subprofile_id": maya}).get_json() == {
        "active_subprofile_id": maya}
    assert host.get().get_json()["active_subprofile_id"] == maya
    assert host.post("/active", {"subprofile_id": None}).get_json() == {
        "active_subprofile_id": None}


def test_reassign_an_order_and_give_it_back(host, store):
    maya = host.create("Maya")
    add_order(store.id, "host", "o-baby", BABY[:2], T0)
    moved = host.post("/reassign", {"subprofile_id": maya, "order_id": "o-baby"})
    assert moved.get_json() == {"moved": 2}
    tagged = db.session.scalars(sa.select(Interaction.subprofile_id).where(
        Interaction.order_external_id == "o-baby")).all()
    assert tagged == [maya, maya]
    assert host.post("/reassign", {"subprofile_id": None, "order_id": "o-baby"}).get_json() \
        == {"moved": 2}
    assert db.session.scalars(sa.select(Interaction.subprofile_id).where(
        Interaction.order_external_id == "o-baby")).all() == [None, None]


def _events(shop_id: str, product: str, kinds: list[str], at) -> None:
    for kind in kinds:
        db.session.add(Interaction(shop_id=shop_id, shopper_id="host", kind=kind,
                                   product_external_id=product, quantity=1, occurred_at=at,
                                   context={"via": "widget"}))
    db.session.commit()


def test_reassign_by_products_moves_purchases_and_carts_not_browsing(host, store):
    """"Those were for Maya": the lines bought and the add-to-carts of the products move;
    the shopper's own browsing of them (views, clicks, wishlist) and a removal from the
    cart stay theirs, as does anything outside the window or of another product."""
    from plugin.models.events import SET_ASIDE

    maya = host.create("Maya")
    now = utcnow()
    add_order(store.id, "host", "o-baby", BABY[:2], now)
    _events(store.id, BABY[0], ["view", "click", "wishlist", "add_to_cart",
                                "remove_from_cart", "widget_purchase"], now)
    _events(store.id, BABY[0], [SET_ASIDE], now)  # an old channel's line
    _events(store.id, BABY[0], ["add_to_cart"], now - timedelta(days=40))
    moved = host.post("/reassign", {"subprofile_id": maya, "product_ids": [BABY[0]]})
    assert moved.get_json() == {"moved": 4}
    rows = db.session.execute(sa.select(Interaction.kind, Interaction.product_external_id,
                                         Interaction.occurred_at, Interaction.subprofile_id)
                              .where(Interaction.shop_id == store.id,
                                     Interaction.shopper_id == "host",
                                     Interaction.product_external_id.in_(BABY))).all()
    given = sorted(r.kind for r in rows if r.subprofile_id == maya)
    assert given == sorted(["purchase", SET_ASIDE, "widget_purchase", "add_to_cart"])
    assert all(r.product_external_id == BABY[0] for r in rows if r.subprofile_id)
    kept = sorted(r.kind for r in rows if r.subprofile_id is None and r.product_external_id
                  == BABY[0])
    assert kept == sorted(["view", "click", "wishlist", "remove_from_cart", "add_to_cart"])
    # given back: the same rows return, and nothing else moves
    back = host.post("/reassign", {"subprofile_id": None, "product_ids": [BABY[0]]})
    assert back.get_json() == {"moved": 4}


def test_reassign_needs_an_order_or_products(host):
    maya = host.create("Maya")
    assert host.post("/reassign", {"subprofile_id": maya}).status_code == 422


def test_preflight_allows_patch_and_delete(client, store):
    response = client.options("/api/v1/subprofiles/1", query_string={"key": store.widget_key},
                              headers={"Origin": "https://store.example",
                                       "Access-Control-Request-Method": "DELETE"})
    assert response.status_code == 204
    assert "DELETE" in response.headers["Access-Control-Allow-Methods"]
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Origin"] == "https://store.example"


def test_foreign_origin_is_refused(client, store):
    response = client.get("/api/v1/subprofiles", query_string={"key": store.widget_key},
                          headers={"Origin": "https://evil.example",
                                   "X-Shopkeeper-Shopper": "anon_" + "a" * 22})
    assert response.status_code == 403


def test_recent_orders_list_who_each_is_for(host, store):
    maya = host.create("Maya")
    add_order(store.id, "host", "o-baby", BABY[:2], utcnow())
    host.post("/reassign", {"subprofile_id": maya, "order_id": "o-baby"})
    orders = host.get("/orders").get_json()["orders"]
    assert [o["order_id"] for o in orders[:2]] == ["o-baby", "h-3"]
    first = orders[0]
    assert (first["subprofile_id"], first["mixed"]) == (maya, False)
    assert [i["product_id"] for i in first["items"]] == BABY[:2]
    assert first["items"][0]["title"] == f"Baby Foods {BABY[0]}"
    assert orders[1]["subprofile_id"] is None
    assert len(orders) == 5  # the host's four orders and this one


def test_orders_a_channel_switch_set_aside_are_still_listed_for_whom_they_were(host, store):
    """A Saleor channel switch sets the stored orders aside (they teach the model nothing
    now): the shopper's "Past orders" still lists them, each with whom it was for, and
    saying it was for someone else still works."""
    from plugin.admin.channel import _read_orders_again
    from plugin.models import Order

    maya = host.create("Maya")
    add_order(store.id, "host", "o-baby", BABY[:2], utcnow() - timedelta(hours=1))
    add_order(store.id, "host", "o-mine", BABY[2:3], utcnow())
    for order_id in ("o-baby", "o-mine"):
        db.session.add(Order(shop_id=store.id, external_id=order_id, customer_external_id="host",
                             currency="GBP", created_at=utcnow(), source_updated_at=utcnow()))
    db.session.commit()
    host.post("/reassign", {"subprofile_id": maya, "order_id": "o-baby"})
    assert _read_orders_again(store) == 3  # the old channel's
    db.session.commit()

    def listed() -> dict[str, tuple[int | None, list[str]]]:
        orders = host.get("/orders").get_json()["orders"]
        return {o["order_id"]: (o["subprofile_id"], [i["product_id"] for i in o["items"]])
                for o in orders}

    orders = listed()
    assert orders["o-baby"] == (maya, BABY[:2])
    assert orders["o-mine"] == (None, BABY[2:3])
    assert host.post("/reassign", {"subprofile_id": maya, "order_id": "o-mine"}).get_json() \
        == {"moved": 1}
    assert listed()["o-mine"] == (maya, BABY[2:3])


def test_an_order_given_to_the_one_off_gift_is_listed_as_a_gift(host, store):
    """The one-off gift sub-profile is not among the people listed: its order says
    ``gift``, else the widget showed it as the shopper's own ("Me")."""
    maya = host.create("Maya")
    add_order(store.id, "host", "o-gift", BABY[:2], utcnow())
    add_order(store.id, "host", "o-maya", BABY[2:], utcnow() - timedelta(hours=1))
    host.post("/reassign", {"subprofile_id": maya, "order_id": "o-maya"})
    answer = host.post("/prompt/answer", {"choice": "gift", "order_id": "o-gift"}).get_json()
    orders = {o["order_id"]: o for o in host.get("/orders").get_json()["orders"]}
    assert (orders["o-gift"]["subprofile_id"], orders["o-gift"]["gift"]) == (
        answer["subprofile_id"], True)
    assert (orders["o-maya"]["subprofile_id"], orders["o-maya"]["gift"]) == (maya, False)
    assert orders["h-3"]["gift"] is False


def test_recent_orders_are_the_callers_only(client, store):
    assert customer(client, store, "nobody").get("/orders").get_json() == {"orders": []}


def test_the_same_name_created_twice_at_once_returns_the_winner(store, monkeypatch):
    """Two answers racing: the loser's insert hits the unique name and returns the winner's
    row (it was a 500)."""
    from plugin.models import SubProfile
    from plugin.subprofiles import service

    winner = SubProfile(shop_id=store.id, owner_id="c9", name="Maya", kind="person")
    looked = []

    def late(shop, owner, name):  # the first lookup misses: the other request commits now
        looked.append(name)
        if len(looked) == 1:
            db.session.add(winner)
            db.session.commit()
            return None
        return db.session.scalar(sa.select(SubProfile).filter_by(
            shop_id=shop.id, owner_id=owner, name=name))

    monkeypatch.setattr(service, "_named", late)
    row = service.create_subprofile(store, "c9", "Maya")
    assert row.id == winner.id and looked == ["Maya", "Maya"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SubProfile)) == 1
