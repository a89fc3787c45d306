"""The popular back-fill follows the personal list's repurchase rule.

Thirty shoppers buy milk (``p1``) and bread (``p2``) every week, so both top the popular
list and milk's typical interval is seven days. A shopper whose own list is empty (their
purchases came after the fit) gets the back-fill: milk bought yesterday is not offered
again, milk bought a month ago is; their own rhythm counts once they have one.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from plugin.extensions import db
from plugin.models.types import utcnow
from tests.api.conftest import add_order, customer_headers, fitted_recommender, ids, weekly_grocer


@pytest.fixture
def milk_shop(shop):
    weekly_grocer(shop)
    repurchase = fitted_recommender(shop).repurchase_
    milk = repurchase.data_.item_index("p1")
    assert repurchase.kind_[milk] == "consumable"
    assert repurchase.interval_days_[milk] == pytest.approx(7, abs=0.1)
    return shop


@pytest.fixture
def milk_api(client, milk_shop):
    from tests.api.conftest import Api

    return Api(client, milk_shop)


def _bought(shop, customer: str, *days_ago: float) -> None:
    for k, days in enumerate(days_ago):
        add_order(shop.id, customer, f"{customer}-{k}", ["p1"], utcnow() - timedelta(days=days))


def _shown(api, shop, customer: str) -> list[str]:
    return ids(api.recs(n=6, headers=customer_headers(shop, customer)))


def test_milk_bought_yesterday_is_not_back_filled(milk_api, milk_shop):
    _bought(milk_shop, "yesterday", 1)
    _bought(milk_shop, "last-month", 30)
    assert "p1" in _shown(milk_api, milk_shop, "stranger")  # control: it is popular
    assert "p1" in _shown(milk_api, milk_shop, "last-month")
    shown = _shown(milk_api, milk_shop, "yesterday")
    assert "p1" not in shown and "p2" in shown


def test_the_shoppers_own_rhythm_decides_once_they_have_one(milk_api, milk_shop):
    _bought(milk_shop, "fortnightly", 29, 15, 6)  # every 14 days: 6 days is too soon
    _bought(milk_shop, "every-other-day", 6, 4, 2)  # every 2 days: due again
    assert "p1" not in _shown(milk_api, milk_shop, "fortnightly")
    assert "p1" in _shown(milk_api, milk_shop, "every-other-day")


def test_an_anonymous_shopper_still_gets_the_whole_back_fill(milk_api):
    assert "p1" in ids(milk_api.recs(n=3))


def _old_channel(shop, *order_ids: str) -> None:
    """A Saleor channel switch: these orders were the old channel's (set aside)."""
    from plugin.admin.channel import _read_orders_again
    from plugin.models import Order

    for order_id in order_ids:
        db.session.add(Order(shop_id=shop.id, external_id=order_id, currency="GBP",
                             created_at=utcnow(), source_updated_at=utcnow()))
    db.session.commit()
    _read_orders_again(shop)
    db.session.commit()


def test_milk_bought_yesterday_on_the_old_channel_is_not_back_filled(milk_api, milk_shop):
    """The channel switch set yesterday's order aside (it teaches the next fit nothing),
    but the milk was bought all the same: the back-fill waits until it is due."""
    _bought(milk_shop, "yesterday", 1)
    _old_channel(milk_shop, "yesterday-0")
    shown = _shown(milk_api, milk_shop, "yesterday")
    assert "p1" not in shown and "p2" in shown


def test_milk_set_aside_for_a_subprofile_is_not_held_back_from_the_buyer(milk_api, milk_shop):
    """Bought for Maya, then set aside by the switch: it is Maya's (her list never offers
    it again), not the buyer's, whose back-fill still offers milk."""
    from plugin.models import SubProfile

    maya = SubProfile(shop_id=milk_shop.id, owner_id="parent", name="Maya")
    db.session.add(maya)
    db.session.commit()
    add_order(milk_shop.id, "parent", "parent-0", ["p1"], utcnow() - timedelta(days=1),
              subprofile_id=maya.id)
    _old_channel(milk_shop, "parent-0")
    assert "p1" in _shown(milk_api, milk_shop, "parent")


def test_milk_bought_after_the_fit_then_set_aside_stays_out_of_the_personal_list(
        milk_api, milk_shop):
    """c00 is in the served model, which does not know the milk bought yesterday; a channel
    switch sets that order aside before the refit: neither the refreshed cache nor the
    online list offers it again (nor its back-fill)."""
    import sqlalchemy as sa

    from plugin.models import RecommendationCache
    from plugin.training import refresh_shoppers

    def cached() -> list[str]:
        row = db.session.scalar(sa.select(RecommendationCache.items).where(
            RecommendationCache.shop_id == milk_shop.id,
            RecommendationCache.shopper_id == "c00"))
        return [i for i, *_ in row]

    assert "p1" in cached()  # control: due again, months after c00's last order
    add_order(milk_shop.id, "c00", "c00-new", ["p1"], utcnow() - timedelta(days=1))
    _old_channel(milk_shop, "c00-new")
    refresh_shoppers(milk_shop.id, ["c00"])  # e.g. the hourly refresh, a reassign
    assert "p1" not in cached()
    assert "p1" not in _shown(milk_api, milk_shop, "c00")
    db.session.execute(sa.delete(RecommendationCache).where(
        RecommendationCache.shop_id == milk_shop.id, RecommendationCache.shopper_id == "c00"))
    db.session.commit()
    assert "p1" not in _shown(milk_api, milk_shop, "c00")  # online


def test_the_usual_counts_the_orders_a_channel_switch_set_aside(milk_api, milk_shop):
    """"The usual?": bread ordered three times, every ten days, the first two on the old
    Saleor channel. Set aside, they were ordered all the same: "3 times", due now. Lines
    bought for Maya stay hers, as for the rest of the owner's rules."""
    from plugin.models import SubProfile

    for k, days in enumerate((30, 20, 10)):
        add_order(milk_shop.id, "regular", f"regular-{k}", ["p5"],
                  utcnow() - timedelta(days=days))
    maya = SubProfile(shop_id=milk_shop.id, owner_id="regular", name="Maya")
    db.session.add(maya)
    db.session.commit()
    for k, days in enumerate((25, 15)):
        add_order(milk_shop.id, "regular", f"regular-maya-{k}", ["p6"],
                  utcnow() - timedelta(days=days), subprofile_id=maya.id)
    add_order(milk_shop.id, "regular", "regular-own-6", ["p6"], utcnow() - timedelta(days=40))
    _old_channel(milk_shop, "regular-0", "regular-1", "regular-maya-0", "regular-maya-1")
    body = milk_api.recs("reorder", headers=customer_headers(milk_shop, "regular")).get_json()
    assert [(i["product_id"], i["reason"]) for i in body["items"]] == [
        ("p5", "you have ordered this 3 times")]


def test_milk_reported_bought_is_not_offered_again_until_its_order_says_when(
        app, milk_api, milk_shop):
    """The storefront reports the purchase at once; the platform's order comes later.
    Meanwhile c00's cached list, "the usual?" and a new shopper's back-fill offered the
    milk just bought. Reported, it counts as just bought at once; its order then decides
    when it is due, as before. A report alone makes no rhythm: with no order a day later
    (a refused payment), the milk is offered again."""
    import sqlalchemy as sa

    from plugin.models import Interaction

    def offered(customer: str) -> list[list[str]]:  # each request its own ``g``
        shown = []
        for placement in ("for_you", "reorder"):
            with app.app_context():
                shown.append(ids(milk_api.recs(placement, n=6,
                                               headers=customer_headers(milk_shop, customer))))
        return shown

    _bought(milk_shop, "stranger", 30)  # a shopper the model does not know: the back-fill
    assert all("p1" in shown for shown in offered("c00"))  # control: due, months after
    assert "p1" in offered("stranger")[0]
    for customer in ("c00", "stranger"):
        milk_api.events([{"type": "purchase", "product_id": "p1"}],
                        headers=customer_headers(milk_shop, customer))
    db.session.expire_all()
    assert all("p1" not in shown for shown in offered("c00") + offered("stranger"))
    db.session.execute(sa.update(Interaction).where(Interaction.kind == "widget_purchase")
                       .values(occurred_at=utcnow() - timedelta(days=1)))
    db.session.commit()  # a day later, no order: the orders say it is due
    assert all("p1" in shown for shown in offered("c00"))
    assert "p1" in offered("stranger")[0]
    add_order(milk_shop.id, "c00", "c00-new", ["p1"], utcnow() - timedelta(days=1))
    assert all("p1" not in shown for shown in offered("c00"))  # its order: bought, not due

