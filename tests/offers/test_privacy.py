"""Offers' share of export, erasure of a shopper, and erasure of a shop."""

from __future__ import annotations

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Nudge, Offer, OfferKey, OfferLedgerEntry
from plugin.offers import keys, privacy
from tests.offers.conftest import SHOPPER, accept, make_idle, quote


def _accepted(client, shop) -> None:
    make_idle(shop.id)
    offer = quote(client, shop).get_json()["offer"]
    assert accept(client, shop, offer["token"]).status_code == 200
    db.session.add(Nudge(shop_id=shop.id, shopper_id=SHOPPER, stage="idle_cart",
                         delivery_id="ndg_1", status="sent"))
    db.session.commit()


def test_export_then_erase_unlinks_the_shopper(client, offer_shop):
    _accepted(client, offer_shop)
    exported = privacy.export_shopper(offer_shop.id, SHOPPER)
    assert [o["status"] for o in exported["offers"]] == ["accepted"]
    assert exported["nudges"][0]["stage"] == "idle_cart"
    privacy.erase_shopper(offer_shop.id, SHOPPER)
    db.session.commit()
    assert privacy.export_shopper(offer_shop.id, SHOPPER) == {"offers": [], "nudges": []}
    row = db.session.scalar(sa.select(Offer))
    assert row.shopper_id == privacy.ERASED and row.features == {}


def test_erase_shop_removes_every_offers_row(client, offer_shop):
    _accepted(client, offer_shop)
    keys.rotate(offer_shop.id)
    privacy.erase_shop(offer_shop.id)
    db.session.commit()
    for model in (Offer, OfferLedgerEntry, Nudge, OfferKey):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(model)) == 0
