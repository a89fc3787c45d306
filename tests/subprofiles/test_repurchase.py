"""A sub-profile's own repurchase cycle: what was bought for Maya follows the shop's
repurchase rules on her own purchase dates, over her whole history.

A nursery shop: thirty parents buy nappies (``nappies``) every week, a cot (``cot``) once,
in their first order, and three books a week, never the same book twice. So nappies are a
consumable bought every seven days, the cot is durable and books are variety (a new one
each time).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from plugin.api import model_store
from plugin.api.sources import active_version
from plugin.extensions import db
from plugin.models import Product
from plugin.models.types import utcnow
from tests.subprofiles.conftest import HOST, T0, add_order

BOOKS = [f"book{k:02d}" for k in range(70)]
CATALOGUE = {"nappies": "Nappies", "cot": "Cots", **{b: "Books" for b in BOOKS}}


def _model(shop):
    version = active_version(shop.id)
    return model_store.get_model(shop.id, version.id, version.artifact_dir)


@pytest.fixture
def nursery(shop):
    from plugin.training import train_shop

    shop.settings = {"allowed_origins": ["https://store.example"], "holdout_share": 0}
    for pid, category in CATALOGUE.items():
        db.session.add(Product(shop_id=shop.id, external_id=pid, title=f"{category} {pid}",
                               url=f"https://shop.example/{pid}", price=Decimal("4.00"),
                               currency="GBP", categories=[category], tags=[],
                               source_updated_at=T0))
    db.session.commit()
    for u in range(30):
        for week in range(4):
            books = [BOOKS[(12 * u + 3 * week + k) % len(BOOKS)] for k in range(3)]
            add_order(shop.id, f"p{u}", f"p{u}-{week}",
                      ["nappies", *books, *(["cot"] if week == 0 else [])],
                      T0 + timedelta(days=7 * week, minutes=u), commit=False)
    db.session.commit()
    train_shop(shop.id)
    repurchase = _model(shop).recommender.repurchase_
    kind = {pid: repurchase.kind_[repurchase.data_.item_index(pid)] for pid in CATALOGUE}
    assert (kind["nappies"], kind["cot"], kind["book00"]) == ("consumable", "durable", "variety")
    assert repurchase.interval_days_[repurchase.data_.item_index("nappies")] == \
        pytest.approx(7, abs=0.01)
    return shop


@pytest.fixture
def parent(client, nursery):
    from tests.subprofiles.conftest import customer

    return customer(client, nursery)


def _shown(parent, subprofile: int, n: int = 20) -> list[tuple[str, str]]:
    body = parent.get(f"/{subprofile}/recommendations", n=n).get_json()
    return [(i["product_id"], i["reason"]) for i in body["items"]]


def test_a_durable_bought_sixty_purchases_ago_never_comes_back(parent, nursery):
    """Her cot, then sixty books, one order each: the cot is not among her fifty most
    recent items (the seeds), and is still hers."""
    from plugin.subprofiles import recs

    maya = parent.create("Maya")
    start = utcnow() - timedelta(days=100)
    add_order(nursery.id, HOST, "o-cot", ["cot"], start, subprofile_id=maya)
    for k, book in enumerate(BOOKS[:60]):
        add_order(nursery.id, HOST, f"o-book-{k}", [book], start + timedelta(days=1 + k),
                  subprofile_id=maya)
    seeds = recs.seeds(nursery.id, maya)
    assert "cot" not in seeds and len(seeds) == recs.MAX_SEEDS
    # control: the cot goes with her recent books (it would be offered, were it not hers)
    assert "cot" in [r.item for r in _model(nursery).similar(seeds, 50)]
    shown = [item for item, _ in _shown(parent, maya)]
    assert shown, "her list has books she has not read yet"
    assert "cot" not in shown
    assert not set(shown) & set(BOOKS[:60])  # nor any book of hers, however long ago


def _bought_for(shop, subprofile: int, item: str, *days_ago: float) -> float:
    """Orders of ``item`` for the sub-profile; returns the unix time of the last one."""
    at = [utcnow() - timedelta(days=d) for d in days_ago]
    for k, when in enumerate(at):
        add_order(shop.id, HOST, f"o-{subprofile}-{item}-{k}", [item], when,
                  subprofile_id=subprofile)
    return max(at).timestamp()


def test_her_weekly_nappies_come_back_when_due_with_her_rhythm(parent, nursery):
    """Nappies bought for Maya every week: not three days after the last pack, but a week
    after it, first, saying her rhythm; her cot and her book stay hers."""
    from plugin.engine.repurchase import due_date

    maya, leo = parent.create("Maya"), parent.create("Leo")
    _bought_for(nursery, maya, "nappies", 17, 10, 3)
    _bought_for(nursery, maya, "cot", 30)
    _bought_for(nursery, maya, "book00", 30)
    last = _bought_for(nursery, leo, "nappies", 21, 14, 7)
    _bought_for(nursery, leo, "cot", 30)
    _bought_for(nursery, leo, "book00", 30)
    maya_list = _shown(parent, maya)
    assert maya_list and "nappies" not in [item for item, _ in maya_list]  # not yet due
    leo_list = _shown(parent, leo)
    assert leo_list[0] == (
        "nappies", f"for Leo: you usually reorder this every ~7 days, due about "
                   f"{due_date(last, 7)}")
    for shown in (maya_list, leo_list):
        assert not {item for item, _ in shown} & {"cot", "book00"}
        assert all(reason.startswith("for ") for _, reason in shown)


def test_nappies_bought_for_her_once_come_back_on_the_shops_rhythm(parent, nursery):
    """Bought for Sam once, eight days ago: the shop's parents buy them every seven days
    (due yesterday: "due now", not yesterday's date)."""
    sam, kit = parent.create("Sam"), parent.create("Kit")
    _bought_for(nursery, sam, "nappies", 8)
    _bought_for(nursery, kit, "nappies", 2)
    assert _shown(parent, sam)[0] == (
        "nappies", "for Sam: shoppers usually reorder this every ~7 days, due now")
    assert "nappies" not in [item for item, _ in _shown(parent, kit)]


def test_nappies_set_aside_by_a_channel_switch_count_for_her_rhythm(parent, nursery):
    """Her first two packs, 24 and 14 days ago, were the old Saleor channel's: bought all
    the same, they give her rhythm (every ~10 days: due, since 4 days ago). A third pack,
    six days ago, is not due on her rhythm (now every ~9 days), though it would be on the
    shop's (7)."""
    from plugin.admin.channel import _read_orders_again
    from plugin.models import Order
    from plugin.subprofiles import recs

    maya = parent.create("Maya")
    _bought_for(nursery, maya, "nappies", 24, 14)
    for k in range(2):
        db.session.add(Order(shop_id=nursery.id, external_id=f"o-{maya}-nappies-{k}",
                             customer_external_id=HOST, currency="GBP", created_at=utcnow(),
                             source_updated_at=utcnow()))
    db.session.commit()
    _read_orders_again(nursery)
    db.session.commit()
    _bought_for(nursery, maya, "book00", 5)
    assert _shown(parent, maya)[0] == (
        "nappies", "for Maya: you usually reorder this every ~10 days, due now")
    add_order(nursery.id, HOST, "o-maya-new", ["nappies"], utcnow() - timedelta(days=6),
              subprofile_id=maya)
    recs.forget(nursery.id, maya)
    assert "nappies" not in [item for item, _ in _shown(parent, maya)]


def test_her_due_nappies_are_not_offered_when_already_in_the_cart(parent, nursery):
    """"The usual?" for a pack the parent has just put in the basket would be noise."""
    maya = parent.create("Maya")
    _bought_for(nursery, maya, "nappies", 21, 14, 7)
    assert _shown(parent, maya)[0][0] == "nappies"
    body = parent.get(f"/{maya}/recommendations", n=20, cart="nappies,book69").get_json()
    shown = [i["product_id"] for i in body["items"]]
    assert shown and not {"nappies", "book69"} & set(shown)


@pytest.mark.parametrize("reported", ["unconfirmed", "then_ordered"])
def test_a_widget_reported_purchase_counts_for_her_rhythm_as_for_her_owners(
        parent, nursery, reported):
    """One rule for the owner and the sub-profile: the platform's order is the purchase.
    Her rhythm counted the widget's report of a purchase (the owner's never did): one the
    platform never confirmed (a refused payment) made her weekly nappies not due for a
    week more, and a report the day before its order counted one pack twice. Unconfirmed
    it counts for neither; once its order arrives, for both."""
    from plugin.api.due import not_due
    from plugin.api.sources import served_version
    from plugin.models import Interaction

    maya = parent.create("Maya")
    _bought_for(nursery, maya, "nappies", 21, 14, 7)
    for days in (21, 14, 7):  # the owner's own packs, on the same days
        add_order(nursery.id, HOST, f"o-host-{days}", ["nappies"],
                  utcnow() - timedelta(days=days))
    for subprofile in (maya, None):  # the storefront reports yesterday's pack, for each
        db.session.add(Interaction(
            shop_id=nursery.id, shopper_id=HOST, kind="widget_purchase", quantity=1,
            product_external_id="nappies", subprofile_id=subprofile, context={},
            occurred_at=utcnow() - timedelta(days=1)))
    db.session.commit()
    if reported == "then_ordered":  # the platform's orders, today
        _bought_for(nursery, maya, "nappies", 0)
        add_order(nursery.id, HOST, "o-host-0", ["nappies"], utcnow())
    owner_due = "nappies" not in not_due(nursery.id, served_version(nursery.id), HOST)
    her_due = "nappies" in [item for item, _ in _shown(parent, maya)]
    assert (owner_due, her_due) == ((True, True) if reported == "unconfirmed"
                                    else (False, False))


def test_the_merchants_repurchase_overrides_hold_for_her_too(parent, nursery):
    """The merchant says nappies are durable here and cots come back every week (case
    aside, the "Cots" category): Leo's due nappies are not offered again, and the cot
    bought for Maya eight days ago is, with the merchant's rhythm; Kit's, three days ago,
    not yet."""
    from plugin.api import access

    maya, leo, kit = parent.create("Maya"), parent.create("Leo"), parent.create("Kit")
    _bought_for(nursery, maya, "cot", 8)
    _bought_for(nursery, kit, "cot", 3)
    _bought_for(nursery, leo, "nappies", 21, 14, 7)
    assert _shown(parent, leo)[0][0] == "nappies"  # controls: the model's own verdicts
    assert "cot" not in [item for item, _ in _shown(parent, maya)]
    nursery.settings = {**nursery.settings, "repurchase_overrides": [
        {"field": "product", "value": "nappies", "kind": "durable"},
        {"field": "category", "value": "cOTS", "kind": "consumable", "cycle_days": 7}]}
    db.session.commit()
    access.forget_shops()  # as a save does; the cached lists follow at once
    assert "nappies" not in [item for item, _ in _shown(parent, leo)]
    assert _shown(parent, maya)[0] == ("cot", "for Maya: you usually reorder this every ~7 days")
    assert "cot" not in [item for item, _ in _shown(parent, kit)]


def test_the_merchants_consumable_lapses_for_her_as_a_learned_one_does(parent, nursery):
    """Cots every 7 days, says the merchant: the cot bought for Maya 30 days ago (over
    three cycles, past a learned consumable's due window) is no longer offered as due to
    her; bought for Leo 30 days ago and again 8 days ago, his is due (a purchase restarts
    the cycle)."""
    from plugin.api import access

    maya, leo = parent.create("Maya"), parent.create("Leo")
    _bought_for(nursery, maya, "cot", 30)
    _bought_for(nursery, leo, "cot", 30, 8)
    nursery.settings = {**nursery.settings, "repurchase_overrides": [
        {"field": "product", "value": "cot", "kind": "consumable", "cycle_days": 7}]}
    db.session.commit()
    access.forget_shops()
    assert "cot" not in [item for item, _ in _shown(parent, maya)]
    assert _shown(parent, leo)[0] == ("cot", "for Leo: you usually reorder this every ~7 days")
