"""When the prompt asks (score, cooldown, don't-ask-again, settings) and what answers do."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Interaction, SubProfile
from plugin.models.types import utcnow
from plugin.subprofiles import prompt
from tests.subprofiles.conftest import BABY, HOST, HOST_ITEMS, add_order, anonymous


def _ask(host, items, **extra):
    response = host.post("/prompt", {"product_ids": items, **extra})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_out_of_profile_cart_asks_and_own_cart_does_not(host):
    own = _ask(host, HOST_ITEMS[:2])
    assert own["ask"] is False
    assert own["reason"] == "fits_profile"
    foreign = _ask(host, BABY[:2])
    assert foreign["ask"] is True
    assert foreign["reason"] == "out_of_profile"
    assert foreign["score"] > own["score"]


def test_asked_once_then_cooldown_then_asks_again(store):
    first = prompt.should_prompt(store, HOST, BABY[:2])
    assert first["ask"] is True
    again = prompt.should_prompt(store, HOST, BABY[:2])
    assert (again["ask"], again["reason"]) == (False, "cooldown")
    later = prompt.should_prompt(store, HOST, BABY[:2], now=utcnow() + timedelta(days=15))
    assert later["ask"] is True


def test_cooldown_follows_the_shop_setting(store):
    store.settings = {**store.settings, "subprofiles": {"cooldown_days": 2}}
    db.session.commit()
    assert prompt.should_prompt(store, HOST, BABY[:2])["ask"] is True
    assert prompt.should_prompt(store, HOST, BABY[:2],
                                now=utcnow() + timedelta(days=1))["reason"] == "cooldown"
    assert prompt.should_prompt(store, HOST, BABY[:2],
                                now=utcnow() + timedelta(days=3))["ask"] is True


def test_dont_ask_again_is_final(host, store):
    assert _ask(host, BABY[:2])["ask"] is True
    answer = host.post("/prompt/answer", {"choice": "dismiss", "dont_ask_again": True})
    assert answer.get_json()["never_ask"] is True
    later = prompt.should_prompt(store, HOST, BABY[:2], now=utcnow() + timedelta(days=400))
    assert (later["ask"], later["reason"]) == (False, "never_ask")


def test_shop_can_turn_the_prompt_off(host, store):
    store.settings = {**store.settings, "subprofiles": {"prompt_enabled": False}}
    db.session.commit()
    assert _ask(host, BABY[:2]) == {"ask": False, "reason": "disabled", "score": None,
                                    "suggested_subprofile_id": None}


def test_shop_threshold_decides(host, store):
    score = _ask(host, BABY[:1])["score"]
    store.settings = {**store.settings, "subprofiles": {"threshold": min(score + 0.05, 1.0),
                                                        "cooldown_days": 0}}
    db.session.commit()
    assert _ask(host, BABY[:1])["reason"] == "fits_profile"


def test_no_consent_no_prompt(host, store):
    store.settings = {**store.settings, "consent_required": True}
    db.session.commit()
    assert _ask(host, BABY[:2])["reason"] == "no_consent"


def test_shopping_for_someone_already_means_no_question_and_the_items_go_there(host, store):
    maya = host.create("Maya")
    host.post("/active", {"subprofile_id": maya})
    answer = _ask(host, BABY[:2])
    assert (answer["ask"], answer["reason"]) == (False, "shopping_for_subprofile")
    assert answer["suggested_subprofile_id"] == maya
    add_order(store.id, HOST, "o-later", BABY[:2], utcnow())  # the order webhook
    assert prompt.apply_pending(store.id) == 2


def test_new_shopper_without_history_is_not_asked(client, store):
    assert _ask(anonymous(client, store), BABY[:2])["reason"] == "fits_profile"


def test_answer_new_subprofile_moves_the_order(host, store):
    add_order(store.id, HOST, "o-baby", BABY[:2], utcnow())
    assert _ask(host, BABY[:2], order_id="o-baby")["ask"] is True
    answer = host.post("/prompt/answer", {"choice": "new", "name": "Maya", "age_band": "0-2",
                                          "order_id": "o-baby"}).get_json()
    assert answer["moved"] == 2
    maya = db.session.get(SubProfile, answer["subprofile_id"])
    assert (maya.name, maya.age_band, maya.owner_id) == ("Maya", "0-2", HOST)


def test_existing_subprofile_is_suggested(host, store):
    maya = host.create("Maya")
    host.create("Rex")
    add_order(store.id, HOST, "o-baby", BABY[:2], utcnow())
    host.post("/reassign", {"subprofile_id": maya, "order_id": "o-baby"})
    assert _ask(host, BABY[2:])["suggested_subprofile_id"] == maya


def test_lines_set_aside_by_a_channel_switch_still_say_whom_they_were_for(host, store):
    """A Saleor channel switch sets aside the order lines the shopper gave to Maya: out of
    training and of Maya's recommendations (the old channel's orders teach nothing now),
    but still bought for her, so a baby basket afterwards suggests her, as before."""
    from plugin.admin.channel import _read_orders_again
    from plugin.models import Order
    from plugin.models.events import SET_ASIDE
    from plugin.subprofiles import recs

    maya = host.create("Maya")
    host.create("Rex")
    add_order(store.id, HOST, "o-baby", BABY[:2], utcnow())
    db.session.add(Order(shop_id=store.id, external_id="o-baby", customer_external_id=HOST,
                         currency="GBP", created_at=utcnow(), source_updated_at=utcnow()))
    db.session.commit()
    host.post("/reassign", {"subprofile_id": maya, "order_id": "o-baby"})
    assert _read_orders_again(store) == 2  # the switch: o-baby is the old channel's
    db.session.commit()
    kinds = set(db.session.scalars(sa.select(Interaction.kind).where(
        Interaction.order_external_id == "o-baby")))
    assert kinds == {SET_ASIDE}
    assert recs.seeds(store.id, maya) == []  # not for recommendations
    assert _ask(host, BABY[2:])["suggested_subprofile_id"] == maya  # but for who-for


def test_answer_at_add_to_cart_claims_the_order_that_arrives_later(host, store):
    maya = host.create("Maya")
    answer = host.post("/prompt/answer", {"choice": "existing", "subprofile_id": maya,
                                          "product_ids": BABY[:2]}).get_json()
    assert answer["subprofile_id"] == maya
    add_order(store.id, HOST, "o-late", [*BABY[:2], HOST_ITEMS[0]], utcnow())  # webhook
    assert prompt.apply_pending(store.id) == 2
    rows = dict(db.session.execute(sa.select(Interaction.product_external_id,
                                             Interaction.subprofile_id).where(
        Interaction.order_external_id == "o-late")).all())
    assert rows == {BABY[0]: maya, BABY[1]: maya, HOST_ITEMS[0]: None}


def test_a_pending_answer_never_tags_another_shoppers_subprofile(host, store):
    """Maya is deleted after the add-to-cart answer and her id comes back for another
    shopper's new sub-profile (SQLite reuses the highest id): the order that arrives must
    not be filed under that stranger's profile."""
    maya = host.create("Maya")
    host.post("/prompt/answer", {"choice": "existing", "subprofile_id": maya,
                                 "product_ids": BABY[:2]})
    db.session.execute(sa.update(Interaction).where(Interaction.subprofile_id == maya)
                       .values(subprofile_id=None))
    db.session.delete(db.session.get(SubProfile, maya))
    db.session.flush()
    db.session.add(SubProfile(id=maya, shop_id=store.id, owner_id="someone-else", name="Kim",
                              kind="person"))
    db.session.commit()
    add_order(store.id, HOST, "o-late", BABY[:2], utcnow())
    assert prompt.apply_pending(store.id) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Interaction).where(
        Interaction.subprofile_id == maya)) == 0


def test_answer_existing_needs_an_id_and_new_needs_a_name(host):
    assert host.post("/prompt/answer", {"choice": "existing"}).status_code == 422
    assert host.post("/prompt/answer", {"choice": "new"}).status_code == 422
    assert host.post("/prompt/answer", {"choice": "maybe"}).status_code == 422


def test_a_prompt_row_created_meanwhile_by_another_request_is_reused(store, monkeypatch):
    """Two widgets (or tabs) asking at once: both read "no row yet", and the later insert
    hit the unique key, a 500. Here the other request's row lands between our read and
    our insert."""
    import sqlalchemy as sa

    from plugin.extensions import db
    from plugin.models import PromptState
    from plugin.subprofiles import service

    real_scalar = db.session.scalar
    raced = []

    def stale_first_read(statement, *args, **kwargs):
        if not raced:  # the other request commits its row just after our read
            raced.append(True)
            with db.engine.begin() as other:
                other.execute(sa.insert(PromptState).values(
                    shop_id=store.id, shopper_id="c-race", never_ask=True, pending={}))
            return None
        return real_scalar(statement, *args, **kwargs)

    monkeypatch.setattr(db.session, "scalar", stale_first_read)
    row = service.prompt_state(store, "c-race", create=True)
    monkeypatch.undo()
    db.session.commit()
    assert row.never_ask is True  # the other request's row, not a clashing second one
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PromptState)
                             .where(PromptState.shopper_id == "c-race")) == 1


def test_dont_ask_again_still_sends_the_items_to_the_person_being_shopped_for(host, store):
    """"Don't ask again" is about the question; choosing "shopping for Maya" in the bar
    afterwards still gives her the cart (else her items land in the shopper's own list)."""
    assert _ask(host, BABY[:2])["ask"] is True
    host.post("/prompt/answer", {"choice": "dismiss", "dont_ask_again": True})
    maya = host.create("Maya")
    host.post("/active", {"subprofile_id": maya})
    answer = _ask(host, BABY[:2])
    assert (answer["ask"], answer["reason"]) == (False, "shopping_for_subprofile")
    add_order(store.id, HOST, "o-later", BABY[:2], utcnow())  # the order webhook
    assert prompt.apply_pending(store.id) == 2


def test_a_shop_without_the_prompt_still_honours_the_person_being_shopped_for(host, store):
    store.settings = {**store.settings, "subprofiles": {"prompt_enabled": False}}
    db.session.commit()
    maya = host.create("Maya")
    host.post("/active", {"subprofile_id": maya})
    assert _ask(host, BABY[:2])["ask"] is False
    add_order(store.id, HOST, "o-later", BABY[:2], utcnow())
    assert prompt.apply_pending(store.id) == 2



@pytest.mark.parametrize("kind", ["remove_from_cart", "add_to_cart"])
def test_items_removed_from_a_subprofiles_cart_do_not_pull_the_suggestion(host, store, kind):
    """A cart answered "for Rex" and then emptied of its baby food: the removals went to
    Rex with the rest of the cart, but they say he did not want it. A baby basket later
    does not suggest Rex, whose only purchase is dog food; had the baby food stayed in
    his cart (the control), it would."""
    from tests.subprofiles.conftest import items_of

    rex = host.create("Rex")
    add_order(store.id, HOST, "o-dog", items_of("Dog Foods")[:2], utcnow(), subprofile_id=rex)
    for item in BABY[:2]:
        db.session.add(Interaction(shop_id=store.id, shopper_id=HOST, subprofile_id=rex,
                                   product_external_id=item, kind=kind,
                                   occurred_at=utcnow(), context={}))
    db.session.commit()
    answer = _ask(host, BABY[2:])
    assert answer["ask"] is True
    assert answer["suggested_subprofile_id"] == (None if kind == "remove_from_cart" else rex)


def _old_channel(store, *order_ids: str) -> None:
    """Saleor switched channels and these orders were the old one's."""
    from plugin.admin.channel import _read_orders_again
    from plugin.models import Order

    for order_id in order_ids:
        db.session.add(Order(shop_id=store.id, external_id=order_id, customer_external_id=HOST,
                             currency="GBP", created_at=utcnow(), source_updated_at=utcnow()))
    db.session.commit()
    _read_orders_again(store)
    db.session.commit()


def test_a_shopper_whose_purchases_were_the_old_channels_is_still_judged_by_them(store):
    """After a channel switch the host's own orders teach the model nothing, but they are
    still the host's taste: a baby basket does not fit it, as before the switch."""
    from plugin.subprofiles import detection

    assert prompt.should_prompt(store, HOST, BABY[:2])["ask"] is True  # control
    _old_channel(store, *(f"h-{b}" for b in range(4)))
    later = prompt.should_prompt(store, HOST, BABY[:2], now=utcnow() + timedelta(days=15))
    assert (later["ask"], later["reason"]) == (True, "out_of_profile")
    assert set(detection.own_history(store.id, HOST)) == set(HOST_ITEMS)


def test_a_set_aside_order_given_back_to_me_is_my_own_old_channel_purchase(host, store):
    """"That was for me after all" on an order a channel switch set aside for Maya: its
    lines stay set aside (the old channel's orders teach nothing) and are the host's own,
    as the switch leaves a line never given away, not Maya's any more."""
    from plugin.models.events import SET_ASIDE
    from plugin.subprofiles import detection, recs, service

    maya = host.create("Maya")
    add_order(store.id, HOST, "o-baby", BABY[:2], utcnow())
    host.post("/reassign", {"subprofile_id": maya, "order_id": "o-baby"})
    _old_channel(store, "o-baby")
    assert service.reassign(store, HOST, None, order_id="o-baby") == 2
    rows = set(db.session.execute(sa.select(Interaction.kind, Interaction.subprofile_id).where(
        Interaction.order_external_id == "o-baby")))
    assert rows == {(SET_ASIDE, None)}
    assert set(BABY[:2]) <= set(detection.own_history(store.id, HOST))
    assert detection.subprofile_histories(store.id, [maya]) == {maya: []}
    assert recs.bought_before(store.id, maya) == {}
