"""Anonymous sub-profiles merge into the customer on identify; export and erasure."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Interaction, PromptState, SubProfile
from plugin.models.types import utcnow
from plugin.privacy import erase_customer, export_customer
from tests.api.conftest import anon_id
from tests.subprofiles.conftest import BABY, HOST, add_order, anonymous, customer


def test_anonymous_subprofiles_move_to_the_customer_on_identify(client, store):
    anon = anon_id()
    before = anonymous(client, store, anon)
    maya = before.create("Maya", "3-5")
    add_order(store.id, anon, "o-anon", BABY[:2], utcnow())
    before.post("/reassign", {"subprofile_id": maya, "order_id": "o-anon"})
    before.post("/prompt/answer", {"choice": "dismiss", "dont_ask_again": True})

    after = customer(client, store, HOST, anonymous=anon)
    listing = after.get().get_json()["subprofiles"]
    assert [(s["id"], s["name"], s["age_band"]) for s in listing] == [(maya, "Maya", "3-5")]
    assert anonymous(client, store, anon).get().get_json()["subprofiles"] == []
    rows = db.session.execute(sa.select(Interaction.shopper_id, Interaction.subprofile_id)
                              .where(Interaction.order_external_id == "o-anon")).all()
    assert set(rows) == {(HOST, maya)}
    state = db.session.scalar(sa.select(PromptState).filter_by(shop_id=store.id,
                                                               shopper_id=HOST))
    assert state.never_ask is True
    assert db.session.scalar(sa.select(PromptState).filter_by(shopper_id=anon)) is None


def test_same_name_on_both_sides_merges_into_one(client, store):
    anon = anon_id()
    anon_maya = anonymous(client, store, anon).create("Maya")
    mine = customer(client, store, HOST)
    customer_maya = mine.create("Maya")
    add_order(store.id, anon, "o-anon", BABY[:1], utcnow() - timedelta(days=1),
              subprofile_id=anon_maya)
    merged = customer(client, store, HOST, anonymous=anon).get().get_json()["subprofiles"]
    assert [s["id"] for s in merged] == [customer_maya]
    assert db.session.get(SubProfile, anon_maya) is None
    assert db.session.scalar(sa.select(Interaction.subprofile_id).where(
        Interaction.order_external_id == "o-anon")) == customer_maya


def test_export_includes_subprofiles(client, store):
    mine = customer(client, store, HOST)
    maya = mine.create("Maya", "0-2")
    exported = export_customer(store.id, HOST)
    assert [(s["id"], s["name"], s["age_band"], s["kind"]) for s in exported["subprofiles"]] \
        == [(maya, "Maya", "0-2", "person")]


def test_erasure_removes_subprofiles_and_prompt_state(client, store):
    mine = customer(client, store, HOST)
    mine.create("Maya")
    mine.post("/prompt/answer", {"choice": "dismiss", "dont_ask_again": True})
    erase_customer(store.id, HOST)
    db.session.commit()
    assert db.session.scalars(sa.select(SubProfile).filter_by(owner_id=HOST)).all() == []
    assert db.session.scalars(sa.select(PromptState).filter_by(shopper_id=HOST)).all() == []


def test_a_second_customer_on_the_browser_does_not_take_its_subprofiles(client, store):
    """A shared computer (plugin/api/linking.py): the browser id belongs to the customer
    who signed in with it first; a sub-profile created there signed out goes to nobody."""
    anon = anon_id()
    maya = anonymous(client, store, anon).create("Maya")
    first = customer(client, store, HOST, anonymous=anon)
    assert [s["id"] for s in first.get().get_json()["subprofiles"]] == [maya]
    leo = anonymous(client, store, anon).create("Leo")
    second = customer(client, store, "c1", anonymous=anon)
    assert second.get().get_json()["subprofiles"] == []
    assert [s["id"] for s in anonymous(client, store, anon).get().get_json()["subprofiles"]] \
        == [leo]
