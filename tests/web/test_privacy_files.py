"""Erasure reaches the files Shopkeeper writes about shoppers, not only the database rows."""

from __future__ import annotations

from pathlib import Path

from flask import current_app

from plugin.extensions import db
from plugin.privacy import erase_customer, record_data_request
from plugin.shops import erase_shop
from tests.factories import make_shop


def test_erasing_a_customer_deletes_their_data_request_exports(app, shop):
    mine = record_data_request(shop.id, "c1")
    other = record_data_request(shop.id, "c2")
    db.session.commit()
    assert mine.exists() and other.exists()
    erase_customer(shop.id, "c1")
    db.session.commit()
    assert not mine.exists()
    assert other.exists()  # another customer's export is not touched


def test_erasing_a_shop_deletes_its_exports_and_model_artifacts(app):
    a, b = make_shop(), make_shop()
    files = {}
    for shop in (a, b):
        export = record_data_request(shop.id, "c1")
        artifacts = Path(current_app.config["MODEL_DIR"]) / shop.id / "v1"
        artifacts.mkdir(parents=True)
        (artifacts / "recommender.npz").write_bytes(b"per-shopper histories")
        files[shop.id] = (export, artifacts)
    db.session.commit()
    a_id = a.id
    erase_shop(a_id)
    db.session.commit()
    export, artifacts = files[a_id]
    assert not export.exists() and not export.parent.exists()
    assert not artifacts.exists() and not artifacts.parent.exists()
    export, artifacts = files[b.id]
    assert export.exists() and artifacts.exists()
