"""Erasure reaches the files Shopkeeper writes about shoppers, not only the database rows."""

from __future__ import annotations

from plugin.extensions import db
from plugin.privacy import erase_customer, record_data_request


def test_erasing_a_customer_deletes_their_data_request_exports(app, shop):
    mine = record_data_request(shop.id, "c1")
    other = record_data_request(shop.id, "c2")
    db.session.commit()
    assert mine.exists() and other.exists()
    erase_customer(shop.id, "c1")
    db.session.commit()
    assert not mine.exists()
    assert other.exists()  # another customer's export is not touched

