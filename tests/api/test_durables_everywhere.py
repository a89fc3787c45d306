"""The toilet-seat rule on every serving path, not only in the model's own list.

Thirty shoppers buy the same staples weekly and a toilet seat once: the seat is durable,
bought with the staples (so it is their neighbour on a product page and in a cart) and
popular (so it is in the back-fill). A shopper who bought it must not be offered it again
by any of those, nor by a merchant's pin; a shopper who never bought it still may be.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from plugin.api import model_store
from plugin.api.sources import active_version
from plugin.extensions import db
from tests.api.conftest import (
    T0,
    add_order,
    customer_headers,
    fitted_recommender,
    ids,
    weekly_grocer,
)


@pytest.fixture
def seat_shop(shop):
    weekly_grocer(shop, seat=True, categories={"seat": "bathroom"})
    add_order(shop.id, "fresh", "o-fresh", ["p5"], T0)  # never bought the seat
    recommender = fitted_recommender(shop)
    seat = recommender.data_.item_index("seat")
    assert recommender.repurchase_.kind_[seat] == "durable"
    return shop


@pytest.fixture
def seat_api(client, seat_shop):
    from tests.api.conftest import Api

    return Api(client, seat_shop)


def test_product_page_and_cart_do_not_resell_an_owned_durable(seat_api, seat_shop):
    anonymous = ids(seat_api.recs("product", product_id="p1", n=8))
    assert "seat" in anonymous  # it is a neighbour of p1...
    owner = customer_headers(seat_shop, "c00")
    assert "seat" not in ids(seat_api.recs("product", product_id="p1", n=8, headers=owner))
    assert "seat" not in ids(seat_api.recs("cart", cart="p1,p2", n=8, headers=owner))


def test_popular_back_fill_does_not_resell_an_owned_durable(seat_api, seat_shop):
    owner = customer_headers(seat_shop, "c00")
    assert "seat" not in ids(seat_api.recs(n=11, headers=owner))
    assert "seat" in ids(seat_api.recs(n=11, headers=customer_headers(seat_shop, "fresh")))


def test_a_pin_does_not_resell_an_owned_durable(seat_api, seat_shop):
    seat_shop.settings = {**seat_shop.settings, "merchandising": [
        {"action": "pin", "field": "product", "value": "seat", "weight": 1.0}]}
    db.session.commit()
    from plugin.api import access

    access.forget_shops()
    assert ids(seat_api.recs(n=3, headers=customer_headers(seat_shop, "fresh")))[0] == "seat"
    assert "seat" not in ids(seat_api.recs(n=3, headers=customer_headers(seat_shop, "c00")))


def test_a_durable_in_an_order_that_arrived_after_the_fit_is_not_resold(seat_api, seat_shop):
    """An order dated before the model's data ends but delivered after the fit (a webhook
    retried, the 30-minute reconcile): the model does not know it, the purchase is not
    'since training', and the online list and the refreshed cache must still leave the
    durable out."""
    from plugin.ingestion.mapping import forget_cached_recommendations
    from plugin.training import refresh_shoppers

    fresh = customer_headers(seat_shop, "fresh")
    assert "seat" in ids(seat_api.recs(n=11, headers=fresh))  # control: offered before
    add_order(seat_shop.id, "fresh", "o-late", ["seat"], T0 + timedelta(hours=1))
    forget_cached_recommendations(seat_shop.id, "fresh")  # what ingesting the order does
    db.session.commit()
    assert "seat" not in ids(seat_api.recs(n=11, headers=fresh))  # online path
    refresh_shoppers(seat_shop.id, ["fresh"])
    version = active_version(seat_shop.id)
    from plugin.models import RecommendationCache

    row = db.session.query(RecommendationCache).filter_by(shop_id=seat_shop.id,
                                                          shopper_id="fresh").one()
    assert row.model_version_id == version.id
    assert "seat" not in [i for i, *_ in row.items]


def test_a_durable_bought_for_a_subprofile_is_not_the_buyers_own(seat_api, seat_shop):
    """A seat bought for Maya is Maya's: sub-profile purchases never shape the buyer's own
    lists (training, reorder and 'bought since' all leave them out), so the toilet-seat
    rule does not hide it from the buyer either."""
    from plugin.ingestion.mapping import forget_cached_recommendations
    from plugin.models import SubProfile

    fresh = customer_headers(seat_shop, "fresh")
    assert "seat" in ids(seat_api.recs(n=11, headers=fresh))  # control
    maya = SubProfile(shop_id=seat_shop.id, owner_id="fresh", name="Maya")
    db.session.add(maya)
    db.session.commit()
    add_order(seat_shop.id, "fresh", "o-maya", ["seat"], T0 + timedelta(days=40),
              subprofile_id=maya.id)
    forget_cached_recommendations(seat_shop.id, "fresh")
    db.session.commit()
    assert "seat" in ids(seat_api.recs(n=11, headers=fresh))
    assert "seat" in ids(seat_api.recs("product", product_id="p1", n=8, headers=fresh))


def test_refreshing_many_shoppers_reads_their_durables_in_one_query(seat_api, seat_shop):
    """The hourly refresh of shoppers with new orders ran one durables query per shopper."""
    import sqlalchemy as sa

    from plugin.models import RecommendationCache
    from plugin.training import refresh_shoppers

    add_order(seat_shop.id, "fresh", "o-late", ["seat"], T0 + timedelta(hours=1))
    db.session.commit()
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def run(shoppers: list[str]) -> int:
        statements.clear()
        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            refresh_shoppers(seat_shop.id, shoppers)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
        return len(statements)

    few = run(["fresh", "c00"])
    many = run(["fresh", *(f"c{c:02d}" for c in range(20))])
    assert many == few  # not one more query per shopper
    rows = dict(db.session.execute(sa.select(RecommendationCache.shopper_id,
                                             RecommendationCache.items).where(
        RecommendationCache.shop_id == seat_shop.id)).all())
    assert "seat" not in [i for i, *_ in rows["fresh"]]  # the late durable, still left out
    assert all("seat" not in [i for i, *_ in rows[f"c{c:02d}"]] for c in range(20))


def test_a_durable_bought_before_a_channel_switch_is_not_resold(seat_api, seat_shop):
    """A Saleor shop moved to another channel: c00's orders were the old channel's and
    the new one does not have them, so they teach the refitted model nothing, but c00 has
    the seat all the same and is not offered it again."""
    from plugin.admin.channel import _read_orders_again
    from plugin.models import Order
    from plugin.training import train_shop

    for week in range(4):
        db.session.add(Order(shop_id=seat_shop.id, external_id=f"o0-{week}",
                             customer_external_id="c00", currency="GBP",
                             created_at=T0 + timedelta(days=7 * week),
                             source_updated_at=T0 + timedelta(days=7 * week)))
    db.session.commit()
    assert _read_orders_again(seat_shop) == 13  # c00's 4 orders: the old channel's
    db.session.commit()
    train_shop(seat_shop.id)  # the refit once the backfill has landed (without them)
    version = active_version(seat_shop.id)
    model = model_store.get_model(seat_shop.id, version.id, version.artifact_dir)
    assert model.recommender.data_.user_index("c00") is None  # nothing of theirs taught it
    owner = customer_headers(seat_shop, "c00")
    assert "seat" not in ids(seat_api.recs(n=11, headers=owner))
    assert "seat" not in ids(seat_api.recs("product", product_id="p1", n=8, headers=owner))
    assert "seat" in ids(seat_api.recs(n=11, headers=customer_headers(seat_shop, "fresh")))


def _cached(shop_id: str, shopper: str) -> list[str] | None:
    from plugin.models import RecommendationCache

    row = db.session.query(RecommendationCache).filter_by(shop_id=shop_id,
                                                          shopper_id=shopper).one_or_none()
    return None if row is None else [i for i, *_ in row.items]


def test_a_durable_reported_bought_is_left_out_before_its_order_arrives(app, seat_api,
                                                                       seat_shop):
    """The storefront reports the purchase at once (a widget ``purchase`` event); the
    platform's order comes later (its webhook, the 30-minute reconcile). Meanwhile the
    owner's list, cached at the fit, offered the seat just bought, and so did the product
    page and the cart. A reported durable is left out at once and stays out, of the next
    fit's cached list too (that fit learns from orders only, so it cannot know it)."""
    import sqlalchemy as sa

    from plugin.models import Interaction
    from plugin.models.types import utcnow
    from plugin.training import train_shop

    fresh = customer_headers(seat_shop, "fresh")

    def offered() -> list[list[str]]:  # each request its own app context (and ``g``)
        shown = []
        for placement, params in (("for_you", {}), ("product", {"product_id": "p1"}),
                                  ("cart", {"cart": "p1,p2"})):
            with app.app_context():
                shown.append(ids(seat_api.recs(placement, n=11, headers=fresh, **params)))
        return shown

    assert "seat" in _cached(seat_shop.id, "fresh")  # control: the model's own list has it
    assert all("seat" in shown for shown in offered())
    reported = seat_api.events([{"type": "purchase", "product_id": "seat"}], headers=fresh)
    assert reported.get_json() == {"stored": 1}
    db.session.expire_all()
    assert all("seat" not in shown for shown in offered())
    db.session.execute(sa.update(Interaction).where(Interaction.kind == "widget_purchase")
                       .values(occurred_at=utcnow() - timedelta(days=3)))
    db.session.commit()  # days later, with no order: a durable stays left out
    assert all("seat" not in shown for shown in offered())
    train_shop(seat_shop.id)  # a refit, which learns from orders only
    assert "seat" not in _cached(seat_shop.id, "fresh")
    assert all("seat" not in shown for shown in offered())
