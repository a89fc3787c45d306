"""The serving chain: cache when fresh, online model when not, popular fallback; live filters."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest

from plugin.api import model_store
from plugin.api.service import in_holdout
from plugin.api.sources import NON_PERSONAL, active_version
from plugin.extensions import db
from plugin.models import Impression, Product, RecommendationCache
from plugin.models.types import utcnow
from tests.api.conftest import add_order, anon_id, customer_headers, ids

MARKED = [["p8", 1.0, "itemknn", "from the cache"], ["p10", 0.9, "itemknn", "from the cache"]]


def _cache_row(shop_id: str, shopper: str) -> RecommendationCache:
    return db.session.query(RecommendationCache).filter_by(shop_id=shop_id,
                                                           shopper_id=shopper).one()


def _mark_cache(shop_id: str, shopper: str = "c1", **changes) -> RecommendationCache:
    row = _cache_row(shop_id, shopper)
    row.items = MARKED
    for name, value in changes.items():
        setattr(row, name, value)
    db.session.commit()
    return row


def test_fresh_cache_is_served(api, trained):
    _mark_cache(trained.id)
    body = api.recs(headers=customer_headers(trained, "c1"), n=2).get_json()
    assert [i["product_id"] for i in body["items"]] == ["p8", "p10"]
    assert {i["reason"] for i in body["items"]} == {"from the cache"}
    assert body["personalized"] is True


def _model_answer(shop_id: str, shopper: str, n: int) -> list[str]:
    """What the loaded model itself proposes (personal sources only), for comparison."""
    version = active_version(shop_id)
    model = model_store.get_model(shop_id, version.id, version.artifact_dir)
    return [r.item for r in model.recommender.recommend(shopper, 50)
            if r.source not in NON_PERSONAL][:n]


def test_stale_cache_is_recomputed_online(api, trained):
    _mark_cache(trained.id, computed_at=utcnow() - timedelta(days=30))
    body = api.recs(headers=customer_headers(trained, "c1"), n=3).get_json()
    assert body["personalized"] is True
    assert "from the cache" not in {i["reason"] for i in body["items"]}
    expected = _model_answer(trained.id, "c1", 3)
    assert expected and ids_of(body)[:len(expected)] == expected


def test_cache_of_an_older_version_is_not_served(api, trained):
    from plugin.training import train_shop

    old = _mark_cache(trained.id)
    db.session.expunge(old)
    train_shop(trained.id)  # new version: the marked row is replaced
    body = api.recs(headers=customer_headers(trained, "c1"), n=3).get_json()
    assert "from the cache" not in {i["reason"] for i in body["items"]}


def test_missing_cache_row_is_computed_online(api, trained):
    db.session.delete(_cache_row(trained.id, "c1"))
    db.session.commit()
    body = api.recs(headers=customer_headers(trained, "c1"), n=3).get_json()
    assert body["personalized"] is True
    expected = _model_answer(trained.id, "c1", 3)
    assert expected and ids_of(body)[:len(expected)] == expected


def test_online_path_skips_what_was_bought_after_training(api, trained):
    db.session.delete(_cache_row(trained.id, "c1"))
    db.session.commit()
    first = _model_answer(trained.id, "c1", 1)[0]
    add_order(trained.id, "c1", "o-new", [first], utcnow())
    assert first not in ids(api.recs(headers=customer_headers(trained, "c1"), n=5))


def test_without_training_popular_items_are_served(api):
    body = api.recs(headers=customer_headers(api.shop, "c1"), n=3).get_json()
    assert body["personalized"] is False
    assert ids_of(body)[0] == "p9"  # the most bought
    assert {i["source"] for i in body["items"]} == {"popular"}


def test_unloadable_model_falls_back_to_popular(api, trained):
    version = active_version(trained.id)
    db.session.delete(_cache_row(trained.id, "c1"))
    db.session.commit()
    model_store.LOADED.clear()
    shutil.rmtree(model_store.artifact_path(version.artifact_dir))
    body = api.recs(headers=customer_headers(trained, "c1"), n=3).get_json()
    assert body["personalized"] is False
    assert body["items"] and {i["source"] for i in body["items"]} == {"popular"}


def test_product_placement_uses_neighbours_loaded_from_disk(api, trained):
    model_store.LOADED.clear()  # as in a fresh gunicorn worker
    body = api.recs("product", product_id="p4", n=2).get_json()
    assert set(ids_of(body)) <= {"p5", "p6", "p9"}
    assert body["items"][0]["product_id"] == "p5"
    assert "p4" not in ids_of(body)
    assert body["items"][0]["reason"] == "often bought with Product p4"


def ids_of(body: dict) -> list[str]:
    return [i["product_id"] for i in body["items"]]


def test_cart_items_are_never_recommended(api, trained):
    cached = [i for i, *_ in _cache_row(trained.id, "c1").items][:2]
    body = api.recs(headers=customer_headers(trained, "c1"), n=5,
                    cart=",".join(cached)).get_json()
    assert body["items"]
    assert not set(cached) & set(ids_of(body))


def test_cart_placement_suggests_complements_not_the_cart(api, trained):
    body = api.recs("cart", cart="p4,p5", n=3).get_json()
    assert body["items"][0]["product_id"] == "p6"
    assert not {"p4", "p5"} & set(ids_of(body))


@pytest.mark.parametrize("change", ["deleted", "unavailable", "excluded"])
def test_dead_products_are_never_served(api, trained, change):
    _mark_cache(trained.id)
    p8 = db.session.query(Product).filter_by(shop_id=trained.id, external_id="p8").one()
    if change == "deleted":
        p8.deleted_at = utcnow()
    elif change == "unavailable":
        p8.available = False
    else:
        trained.settings = {**trained.settings, "exclude_products": ["p8"]}
    db.session.commit()
    for body in (api.recs(headers=customer_headers(trained, "c1"), n=5).get_json(),
                 api.recs("product", product_id="p10", n=10).get_json(),
                 api.recs(n=10).get_json()):
        assert "p8" not in ids_of(body)
    assert "p10" in ids_of(api.recs(headers=customer_headers(trained, "c1"), n=5).get_json())


def test_products_missing_from_the_catalog_are_never_served(api, trained):
    add_order(trained.id, "c9", "o-ghost", ["ghost"], utcnow())  # bought, but no Product row
    body = api.recs(n=50).get_json()
    assert "ghost" not in ids_of(body)


def test_reorder_offers_what_the_customer_buys_again(api, trained):
    body = api.recs("reorder", headers=customer_headers(trained, "c1")).get_json()
    assert ids_of(body)[:2] == ["p1", "p9"] or ids_of(body)[:2] == ["p9", "p1"]
    assert body["items"][0]["reason"] == "you have ordered this 2 times"
    assert api.recs("reorder", headers={"X-Shopkeeper-Shopper": anon_id()}).get_json()[
        "items"] == []


def test_reorder_does_not_offer_what_was_just_restocked(api, trained):
    """"Time to stock up again?": milk bought weekly and yesterday is not due; tea bought
    weekly, last a month ago, is."""
    now = utcnow()
    for k in range(4):
        add_order(trained.id, "c7", f"c7-milk-{k}", ["p1"], now - timedelta(days=1 + 7 * k))
        add_order(trained.id, "c7", f"c7-tea-{k}", ["p2"], now - timedelta(days=30 + 7 * k))
    assert ids(api.recs("reorder", headers=customer_headers(trained, "c7"))) == ["p2"]


def test_reorder_puts_a_lapsed_rhythm_after_the_current_ones(api, trained):
    """Tea ordered five times weekly a year ago is no longer "the usual": coffee, ordered
    twice a fortnight apart and due, comes first although tea has more orders."""
    now = utcnow()
    for k in range(5):
        add_order(trained.id, "c6", f"c6-tea-{k}", ["p2"], now - timedelta(days=365 + 7 * k))
    for k in range(2):
        add_order(trained.id, "c6", f"c6-coffee-{k}", ["p3"], now - timedelta(days=14 + 14 * k))
    items = api.recs("reorder", headers=customer_headers(trained, "c6")).get_json()["items"]
    assert [i["product_id"] for i in items][:2] == ["p3", "p2"]
    assert items[1]["reason"] == "you have ordered this 5 times"


def test_holdout_arm_gets_popular_items_and_is_flagged(api, trained):
    trained.settings = {**trained.settings, "holdout_share": 1.0}
    db.session.commit()
    _mark_cache(trained.id)
    body = api.recs(headers=customer_headers(trained, "c1"), n=3).get_json()
    assert body["holdout"] is True
    assert body["personalized"] is False
    assert {i["source"] for i in body["items"]} == {"popular"}
    impression = db.session.query(Impression).one()
    assert impression.holdout is True


def test_holdout_is_deterministic_and_near_its_share(store):
    store.settings = {"holdout_share": 0.2}
    shoppers = [anon_id() for _ in range(30000)]  # the share within 0.03: 13 sd, not 4
    first = [in_holdout(store, s) for s in shoppers]
    assert first == [in_holdout(store, s) for s in shoppers]
    assert 0.17 < sum(first) / len(first) < 0.23


def test_default_holdout_share_is_ten_percent(store):
    store.settings = {}
    share = sum(in_holdout(store, f"c{k}") for k in range(50000)) / 50000  # 0.02: 15 sd
    assert 0.08 < share < 0.12


def test_impression_is_logged_with_rec_ids(api, trained):
    shopper = anon_id()
    body = api.recs(headers={"X-Shopkeeper-Shopper": shopper}, n=3).get_json()
    impression = db.session.query(Impression).one()
    assert impression.items == ids_of(body)
    assert impression.shopper_id == shopper
    assert [i["rec_id"] for i in body["items"]] == [
        f"{impression.rec_id}.{k}" for k in range(len(body["items"]))]
    assert impression.model_version_id == active_version(trained.id).id


def test_empty_answer_is_valid(client, shop):
    response = client.get("/api/v1/recommendations",
                          query_string={"key": shop.widget_key, "placement": "for_you"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["items"] == []
    assert body["placement"] == "for_you"
    assert body["personalized"] is False


def test_online_path_in_a_fresh_worker_loads_the_model_from_disk(api, trained):
    db.session.delete(_cache_row(trained.id, "c1"))
    db.session.commit()
    expected = _model_answer(trained.id, "c1", 3)
    model_store.LOADED.clear()  # as in a gunicorn worker that did not train
    body = api.recs(headers=customer_headers(trained, "c1"), n=3).get_json()
    assert body["personalized"] is True
    assert ids_of(body)[:len(expected)] == expected
    assert model_store.LOADED.get((trained.id, active_version(trained.id).id)) is not None


@pytest.mark.parametrize("placement,params", [
    ("for_you", {}), ("product", {"product_id": "p1"}), ("cart", {"cart": "p1,p2"}),
    ("reorder", {}),
])
def test_answers_are_exactly_what_the_response_schema_dumps(api, trained, placement, params):
    """The view sends the service's answer without a dump: it must already be one."""
    from decimal import Decimal

    from plugin.api.schemas import RecommendationsSchema

    body = api.recs(placement, headers=customer_headers(trained, "c1"), n=4, **params
                    ).get_json()
    assert body["items"] and all(i["price"] is not None for i in body["items"])
    as_served_before = {**body, "items": [{**i, "price": Decimal(i["price"])}
                                          for i in body["items"]]}
    assert RecommendationsSchema().dump(as_served_before) == body
    assert RecommendationsSchema().load(body)["items"][0]["price"] == Decimal(
        body["items"][0]["price"])
