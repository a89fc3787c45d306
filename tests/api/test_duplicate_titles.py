"""A served list never shows two items with the same title (grocery near-duplicates)."""

from __future__ import annotations

from datetime import timedelta

from plugin.extensions import db
from plugin.models import Impression, Product, RecommendationCache
from plugin.models.types import utcnow
from tests.api.conftest import add_order, customer_headers, ids


def _retitle(shop_id: str, pid: str, title: str) -> None:
    db.session.query(Product).filter_by(shop_id=shop_id, external_id=pid).one().title = title
    db.session.commit()


def _cache(shop_id: str, shopper: str, items: list[list]) -> None:
    row = db.session.query(RecommendationCache).filter_by(shop_id=shop_id,
                                                          shopper_id=shopper).one()
    row.items = items
    db.session.commit()


def test_for_you_keeps_the_higher_ranked_twin_and_back_fills(api, trained):
    _cache(trained.id, "c1", [["p8", 1.0, "itemknn", "first pick"],
                              ["p10", 0.9, "itemknn", "second pick"],
                              ["p7", 0.8, "itemknn", "third pick"]])
    _retitle(trained.id, "p10", "  PRODUCT   p8 ")  # "Product p8" to a shopper
    body = api.recs(headers=customer_headers(trained, "c1"), n=3).get_json()
    items = body["items"]
    assert [i["product_id"] for i in items[:2]] == ["p8", "p7"]
    assert "p10" not in [i["product_id"] for i in items]
    # each kept item says its own reason; the freed place is back-filled
    assert [(i["reason"], i["source"]) for i in items[:2]] == [
        ("first pick", "itemknn"), ("third pick", "itemknn")]
    assert len(items) == 3 and items[2]["source"] == "popular"
    assert len({" ".join(i["title"].split()).casefold() for i in items}) == 3
    impression = db.session.query(Impression).order_by(Impression.id).first()
    assert impression.items == [i["product_id"] for i in items]
    assert impression.sources == [i["source"] for i in items]
    assert [i["rec_id"] for i in items] == [f"{impression.rec_id}.{k}" for k in range(3)]


def test_product_page_neighbours_repeat_no_title(api, trained):
    before = ids(api.recs("product", product_id="p4", n=3))
    assert len(before) == 3
    first, second = before[:2]
    _retitle(trained.id, second, f"product {first.upper()}")
    after = ids(api.recs("product", product_id="p4", n=3))
    assert after[0] == first and second not in after and len(after) == 3


def test_neighbour_titled_like_the_page_product_is_not_shown(api, trained):
    assert ids(api.recs("product", product_id="p4", n=2))[0] == "p5"
    _retitle(trained.id, "p5", "Product P4")
    after = ids(api.recs("product", product_id="p4", n=2))
    assert "p5" not in after and len(after) == 2


def test_cart_complement_titled_like_a_cart_item_is_not_shown(api, trained):
    assert ids(api.recs("cart", cart="p4,p5", n=3))[0] == "p6"
    _retitle(trained.id, "p6", "product p5")
    after = ids(api.recs("cart", cart="p4,p5", n=3))
    assert "p6" not in after and len(after) == 3


def test_the_usual_shows_one_card_for_two_ids_of_one_title_both_bought(api, trained):
    """The shopper's own repeat items are no exception: the id bought in more orders stays."""
    now = utcnow()
    for days in (90, 60, 30):
        add_order(trained.id, "c7", f"c7-a-{days}", ["p1"], now - timedelta(days=days))
    for days in (70, 40):
        add_order(trained.id, "c7", f"c7-b-{days}", ["p3"], now - timedelta(days=days))
    for days in (80, 50):
        add_order(trained.id, "c7", f"c7-c-{days}", ["p2"], now - timedelta(days=days))
    headers = customer_headers(trained, "c7")
    assert ids(api.recs("reorder", headers=headers)) == ["p1", "p3", "p2"]
    _retitle(trained.id, "p2", "PRODUCT P1")
    body = api.recs("reorder", headers=headers).get_json()
    assert [i["product_id"] for i in body["items"]] == ["p1", "p3"]
    assert body["items"][0]["reason"] == "you have ordered this 3 times"
