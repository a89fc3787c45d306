"""What an answer given at add-to-cart time claims: the cart's items, never the lines
already given to another sub-profile or to a one-off gift."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Interaction
from plugin.models.types import utcnow
from tests.subprofiles.conftest import BABY, HOST, add_order


def _owners(shop_id: str, order_id: str) -> dict[str, int | None]:
    return dict(db.session.execute(sa.select(Interaction.product_external_id,
                                             Interaction.subprofile_id).where(
        Interaction.shop_id == shop_id, Interaction.order_external_id == order_id)).all())


def test_a_cart_answer_leaves_another_subprofiles_past_purchase_alone(host, store):
    maya, leo = host.create("Maya"), host.create("Leo")
    add_order(store.id, HOST, "o-maya", BABY[:1], utcnow() - timedelta(days=3))
    host.post("/reassign", {"subprofile_id": maya, "order_id": "o-maya"})
    answer = host.post("/prompt/answer", {"choice": "existing", "subprofile_id": leo,
                                          "product_ids": BABY[:1]}).get_json()
    assert answer["subprofile_id"] == leo
    assert _owners(store.id, "o-maya") == {BABY[0]: maya}
    assert host.get("/orders").get_json()["orders"][0]["subprofile_id"] == maya


def test_a_cart_answer_leaves_a_one_off_gift_alone(host, store):
    add_order(store.id, HOST, "o-gift", BABY[:1], utcnow() - timedelta(days=3))
    gift = host.post("/prompt/answer", {"choice": "gift", "order_id": "o-gift"}
                     ).get_json()["subprofile_id"]
    host.post("/prompt/answer", {"choice": "new", "name": "Leo", "product_ids": BABY[:1]})
    assert _owners(store.id, "o-gift") == {BABY[0]: gift}


def test_a_cart_answer_still_claims_the_shoppers_own_recent_rows(host, store):
    leo = host.create("Leo")
    add_order(store.id, HOST, "o-mine", BABY[:1], utcnow() - timedelta(minutes=5))
    host.post("/prompt/answer", {"choice": "existing", "subprofile_id": leo,
                                 "product_ids": BABY[:1]})
    assert _owners(store.id, "o-mine") == {BABY[0]: leo}

