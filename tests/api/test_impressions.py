"""Signed rec ids and the write-behind impression buffer."""

from __future__ import annotations

from plugin.api import impressions
from plugin.extensions import db
from plugin.models import Impression
from tests.api.conftest import anon_id


def test_rec_ids_are_bound_to_their_shop(app):
    rec_id = impressions.new_rec_id("shp_a")
    assert impressions.rec_id_valid("shp_a", rec_id)
    assert impressions.rec_id_valid("shp_a", rec_id + ".3")
    assert not impressions.rec_id_valid("shp_b", rec_id)
    token, mac = rec_id[1:].rsplit("-", 1)
    assert not impressions.rec_id_valid("shp_a", f"r{token}-{'A' * len(mac)}")
    for junk in ("", "r", "x.1", "rabc", "rtoken-"):
        assert not impressions.rec_id_valid("shp_a", junk)


def test_buffered_impressions_are_written_on_flush(app, api, trained):
    app.config["API_IMPRESSION_FLUSH_SECONDS"] = 60  # the background flush will not run
    impressions.BUFFER.flush()
    headers = {"X-Shopkeeper-Shopper": anon_id()}
    served = [api.recs(headers=headers, n=2).get_json() for _ in range(3)]
    assert db.session.query(Impression).count() == 0  # nothing written in the request
    assert impressions.BUFFER.pending() == 3
    assert impressions.BUFFER.flush() == 3
    rows = {r.rec_id: r for r in db.session.query(Impression)}
    for body in served:
        rec_id = body["items"][0]["rec_id"].split(".")[0]
        assert rows[rec_id].items == [i["product_id"] for i in body["items"]]
