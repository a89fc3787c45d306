"""Attribution rules (code -> offer, click -> recommendation), outcomes and the uplift report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import ClickAttribution, Interaction, Offer, Order, OrderLine, Redemption
from plugin.models.types import utcnow
from plugin.offers import attribution
from plugin.offers.admin_auth import mint_admin_token
from plugin.offers.settings import Guardrails
from plugin.offers.stats import diff_means, diff_proportions

RAILS = Guardrails()
#: A fixed clock for the budget tests: an offer accepted three hours before ``utcnow()``
#: belongs to last month's budget when the suite runs in the first three hours of a month.
MID_MONTH = datetime(2026, 11, 16, 12, 0, tzinfo=UTC)


def _order(shop_id, oid, customer, at, total="40", codes=(), lines=(("p1", 1, "40"),)):
    o = Order(shop_id=shop_id, external_id=oid, customer_external_id=customer, currency="GBP",
              total=Decimal(total), discount_codes=list(codes), created_at=at,
              source_updated_at=at)
    o.lines = [OrderLine(product_external_id=p, quantity=q, price=Decimal(pr))
               for p, q, pr in lines]
    db.session.add(o)
    return o


def _quote(shop_id, shopper, at, *, holdout=False, status="none", code=None, amount=None):
    row = Offer(public_id=f"of_{shopper}_{at.timestamp()}", shop_id=shop_id, shopper_id=shopper,
                cart_hash="h", stage="idle_cart", status="holdout" if holdout else status,
                holdout=holdout, code=code, amount=amount, created_at=at, cart_value=Decimal(50),
                expires_at=at + timedelta(minutes=30))
    db.session.add(row)
    return row


def test_order_with_offer_code_is_a_redemption(app, shop):
    now = utcnow()
    offer = _quote(shop.id, "c1", now - timedelta(hours=1), status="accepted", code="SK-AB",
                   amount=Decimal(5))
    _order(shop.id, "o1", "c1", now - timedelta(minutes=10), codes=["SK-AB"])
    _order(shop.id, "o2", "c2", now - timedelta(minutes=10), codes=["OTHER"])
    db.session.commit()
    assert attribution.attribute(shop.id, RAILS, now=now)["redemptions"] == 1
    assert attribution.attribute(shop.id, RAILS, now=now)["redemptions"] == 0  # idempotent
    red = db.session.scalar(sa.select(Redemption))
    assert red.offer_id == offer.id and red.order_external_id == "o1"
    assert offer.status == "redeemed" and offer.converted is True


def test_last_click_within_window_gets_the_line(app, shop):
    now = utcnow()
    for days, rec in ((9, "rOld.0"), (3, "rA.1"), (1, "rB.2")):
        db.session.add(Interaction(shop_id=shop.id, shopper_id="c1", product_external_id="p1",
                                   kind="click", occurred_at=now - timedelta(days=days),
                                   context={"rec_id": rec}))
    db.session.add(Interaction(shop_id=shop.id, shopper_id="c1", product_external_id="p2",
                               kind="click", occurred_at=now - timedelta(days=8),
                               context={"rec_id": "rC.0"}))
    _order(shop.id, "o1", "c1", now, lines=(("p1", 2, "10"), ("p2", 1, "5")))
    db.session.commit()
    attribution.attribute(shop.id, RAILS, now=now)
    rows = db.session.scalars(sa.select(ClickAttribution)).all()
    assert [(r.product_external_id, r.rec_id, r.revenue) for r in rows] == [
        ("p1", "rB.2", Decimal("20"))]  # p2's click is outside the 7-day window


def test_quote_outcomes_settle_when_window_closes(app, shop):
    now = utcnow()
    bought = _quote(shop.id, "c1", now - timedelta(days=2))
    waiting = _quote(shop.id, "c2", now - timedelta(days=2))
    lapsed = _quote(shop.id, "c3", now - timedelta(days=8))
    _order(shop.id, "o1", "c1", now - timedelta(days=1))
    db.session.commit()
    attribution.attribute(shop.id, RAILS, now=now)
    assert (bought.converted, waiting.converted, lapsed.converted) == (True, None, False)


def _accepted_unused(shop_id: str, code: str, now):
    """A 7.00 offer accepted three hours ago (its budget reserved) and not used since."""
    from plugin.offers import budget

    offer = _quote(shop_id, "c1", now - timedelta(hours=3), status="accepted", code=code,
                   amount=Decimal(7))
    offer.accepted_at = now - timedelta(hours=3)
    db.session.flush()
    budget.reserve(offer, offer.accepted_at)
    db.session.commit()
    return offer


def test_unused_accepted_offer_expires_and_releases_budget(app, shop):
    from plugin.offers import budget

    now = MID_MONTH
    offer = _accepted_unused(shop.id, "SK-1", now)
    assert budget.remaining(shop.id, RAILS, now)[1] == RAILS.monthly_budget - 7
    attribution.attribute(shop.id, RAILS, now=now)
    assert offer.status == "expired"
    assert budget.remaining(shop.id, RAILS, now)[1] == RAILS.monthly_budget


def test_diff_proportions_known_answer():
    ci = diff_proportions(30, 100, 20, 100)  # Newcombe (1998) method 10
    assert ci.estimate == pytest.approx(0.10)
    assert (ci.low, ci.high) == (pytest.approx(-0.02025, abs=1e-5),
                                 pytest.approx(0.21673, abs=1e-5))
    assert diff_proportions(1, 0, 1, 10) is None


def test_diff_means_known_answer():
    assert diff_means([0.0] * 6, [0.0] * 6) is None  # too few shoppers to say anything
    ci = diff_means([1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0], min_n=2)
    assert ci.estimate == pytest.approx(1.0)
    assert ci.high - ci.estimate == pytest.approx(1.959964 * (1.0 / 3) ** 0.5, abs=1e-6)


def test_uplift_endpoint_needs_admin_token_and_reports_arms(client, shop, shop_secret):
    now = datetime.now(UTC)
    for i in range(30):  # the uplift needs 30 shoppers in each arm
        _quote(shop.id, f"t{i}", now - timedelta(days=1)).converted = i < 15
        _quote(shop.id, f"h{i}", now - timedelta(days=1), holdout=True).converted = i < 5
    _order(shop.id, "o1", "t0", now - timedelta(hours=20), total="60")
    db.session.commit()
    url = f"/api/v1/offers/uplift?key={shop.widget_key}&days=7"
    assert client.get(url).status_code == 401
    bad = mint_admin_token(shop.id, "whsec_not-the-secret-of-this-shop-at-all")
    assert client.get(url, headers={"Authorization": f"Bearer {bad}"}).status_code == 401
    token = mint_admin_token(shop.id, shop_secret)
    body = client.get(url, headers={"Authorization": f"Bearer {token}"}).get_json()
    assert body["arms"]["treatment"] == {"shoppers": 30, "converted": 15, "conversion": 0.5,
                                         "revenue_per_visitor": 2.0, "other_revenue": {}}
    assert body["arms"]["control"]["conversion"] == pytest.approx(1 / 6)
    assert body["conversion_uplift"]["estimate"] == pytest.approx(0.5 - 1 / 6)
    assert body["conversion_uplift"]["low"] < body["conversion_uplift"]["estimate"]
    assert "Newcombe" in body["method"]


def test_offer_jobs_run_only_for_shops_with_offers_on(app, shop):
    from plugin.offers.jobs import run_offer_jobs
    from tests.factories import make_shop
    from tests.offers.conftest import configure

    off = make_shop()
    configure(shop)
    _quote(shop.id, "c1", utcnow() - timedelta(days=8))
    _quote(off.id, "c1", utcnow() - timedelta(days=8))
    db.session.commit()
    results = run_offer_jobs()
    assert set(results) == {shop.id} and results[shop.id]["settled"] == 1
    assert db.session.scalar(sa.select(sa.func.count(Offer.id)).where(
        Offer.converted.is_(None))) == 1  # the other shop's quote is untouched


def test_order_arriving_after_the_release_takes_the_budget_back(app, shop):
    """The code stays valid on the platform until the job can release it, and orders sync
    late: a redemption seen after the release must count against the budget again."""
    from plugin.offers import budget

    now = MID_MONTH
    offer = _accepted_unused(shop.id, "SK-2", now)
    attribution.attribute(shop.id, RAILS, now=now)
    assert offer.status == "expired"
    _order(shop.id, "o9", "c1", now - timedelta(hours=2), codes=["SK-2"])  # synced late
    db.session.commit()
    assert attribution.attribute(shop.id, RAILS, now=now)["redemptions"] == 1
    assert offer.status == "redeemed"
    assert budget.remaining(shop.id, RAILS, now)[1] == RAILS.monthly_budget - 7


def test_an_order_cancelled_after_attribution_leaves_the_attributed_revenue(app, shop):
    now = utcnow()
    _quote(shop.id, "c1", now - timedelta(hours=2), status="accepted", code="SK-CX",
           amount=Decimal(5))
    db.session.add(Interaction(shop_id=shop.id, shopper_id="c1", product_external_id="p1",
                               kind="click", occurred_at=now - timedelta(hours=1),
                               context={"rec_id": "rA.0"}))
    kept = _order(shop.id, "o1", "c1", now - timedelta(minutes=30), total="40", codes=["SK-CX"])
    _order(shop.id, "o2", "c1", now - timedelta(minutes=20), total="40")
    db.session.commit()
    attribution.attribute(shop.id, RAILS, now=now)
    before = attribution.uplift_report(shop.id, RAILS, now - timedelta(days=1), now)
    assert before["attributed"]["offer_revenue"] == Decimal("40")
    assert before["attributed"]["recommendation_revenue"] == Decimal("80")
    kept.cancelled = True  # the platform cancels o1 after it was credited
    db.session.commit()
    attribution.attribute(shop.id, RAILS, now=now)
    after = attribution.uplift_report(shop.id, RAILS, now - timedelta(days=1), now)["attributed"]
    assert (after["offer_orders"], after["offer_revenue"]) == (0, Decimal("0"))
    assert (after["recommendation_lines"], after["recommendation_revenue"]) == (1, Decimal("40"))


def test_uplift_does_not_pool_erased_shoppers_into_one(app, shop):
    from plugin.offers import privacy

    now = utcnow()
    for k in range(3):
        _quote(shop.id, f"gone{k}", now - timedelta(days=1), holdout=k == 0).converted = k == 2
        privacy.erase_shopper(shop.id, f"gone{k}")
    _quote(shop.id, "kept", now - timedelta(days=1)).converted = True
    db.session.commit()
    arms = attribution.uplift_report(shop.id, RAILS, now - timedelta(days=7), now)["arms"]
    # the erased quotes can no longer be told apart or linked to orders: they are left out,
    # not counted as one control shopper who converted
    assert arms["treatment"] == {"shoppers": 1, "converted": 1, "conversion": 1.0,
                                 "revenue_per_visitor": 0.0, "other_revenue": {}}
    assert arms["control"]["shoppers"] == 0


def test_a_conversion_whose_order_was_cancelled_leaves_the_conversion_uplift(app, shop):
    now = utcnow()
    for arm, holdout in (("t", False), ("h", True)):
        for i in range(30):
            _quote(shop.id, f"{arm}{i}", now - timedelta(days=10), holdout=holdout)
    bought = _order(shop.id, "o1", "t0", now - timedelta(days=9))
    _order(shop.id, "o2", "h0", now - timedelta(days=9))
    db.session.commit()
    attribution.attribute(shop.id, RAILS, now=now)
    before = attribution.uplift_report(shop.id, RAILS, now - timedelta(days=30), now)
    assert before["arms"]["treatment"]["converted"] == 1
    bought.cancelled = True  # the platform cancels o1 after the quote was settled
    db.session.commit()
    attribution.attribute(shop.id, RAILS, now=now)
    after = attribution.uplift_report(shop.id, RAILS, now - timedelta(days=30), now)
    treated = after["arms"]["treatment"]
    # no revenue and no conversion: a cancelled order is not a sale, in either figure
    assert (treated["converted"], treated["revenue_per_visitor"]) == (0, 0.0)
    assert after["conversion_uplift"]["estimate"] == pytest.approx(-1 / 30)


def test_offer_learning_does_not_count_a_cancelled_conversion(app, shop):
    """The uplift model learns from settled quotes; an order cancelled after its quote was
    settled is no sale there either, or the model learns the discount "worked"."""
    from plugin.offers.learning import training_rows

    now = utcnow()
    for shopper in ("c1", "c2"):
        _quote(shop.id, shopper, now - timedelta(days=10), status="offered",
               amount=Decimal(5))
    cancelled = _order(shop.id, "o1", "c1", now - timedelta(days=9))
    _order(shop.id, "o2", "c2", now - timedelta(days=9))
    db.session.commit()
    attribution.attribute(shop.id, RAILS, now=now)
    assert sorted(training_rows(shop.id)[2]) == [True, True]
    cancelled.cancelled = True
    db.session.commit()
    assert sorted(training_rows(shop.id)[2]) == [False, True]


def test_a_clicked_product_on_two_lines_is_credited_with_both(app, shop):
    """The dress in two sizes is two lines of one product: the click earned both."""
    now = utcnow()
    db.session.add(Interaction(shop_id=shop.id, shopper_id="c1", product_external_id="p1",
                               kind="click", occurred_at=now - timedelta(hours=1),
                               context={"rec_id": "rA.0"}))
    _order(shop.id, "o1", "c1", now - timedelta(minutes=5), total="35",
           lines=(("p1", 1, "10"), ("p2", 1, "5"), ("p1", 2, "10")))
    db.session.commit()
    assert attribution.attribute(shop.id, RAILS, now=now)["clicks"] == 1
    got = attribution.uplift_report(shop.id, RAILS, now - timedelta(days=1), now)["attributed"]
    assert (got["recommendation_lines"], got["recommendation_revenue"]) == (1, Decimal("30"))


def test_the_daily_budget_is_the_shops_day(app, shop):
    """A Los Angeles shop's day runs from 07:00 to 07:00 UTC in summer: a discount
    reserved at 4 pm there (23:00 UTC) still counts against the same evening's budget,
    which a UTC day would have restarted at 5 pm."""
    from plugin.models import OfferLedgerEntry
    from plugin.offers import budget

    shop.settings = {**(shop.settings or {}), "timezone": "America/Los_Angeles"}
    offer = _quote(shop.id, "c1", datetime(2026, 6, 10, 23, 0, tzinfo=UTC), amount=Decimal(7))
    db.session.flush()
    db.session.add(OfferLedgerEntry(shop_id=shop.id, offer_id=offer.id, entry="reserve",
                                    amount=Decimal(7),
                                    at=datetime(2026, 6, 10, 23, 0, tzinfo=UTC)))
    db.session.commit()
    evening = datetime(2026, 6, 11, 5, 0, tzinfo=UTC)  # 10 pm on the 10th in Los Angeles
    assert budget.remaining(shop.id, RAILS, evening)[0] == RAILS.daily_budget - 7
    next_morning = datetime(2026, 6, 11, 8, 0, tzinfo=UTC)  # 1 am on the 11th there
    assert budget.remaining(shop.id, RAILS, next_morning)[0] == RAILS.daily_budget


def test_a_redaction_unlinks_its_orders_credits_and_keeps_the_reported_figures(app, shop):
    """Redemptions and click credits name their order: a redaction of the order drops that
    link (it tied the order to a quote's shopper and a click), while what the report reads
    through it stays: each credit's amount and count, its order's currency, and whether
    the order was cancelled (a cancelled order's credit still counts for nothing). The
    orders' discount codes go too: each names its quote, so the quote's shopper."""
    from plugin import privacy
    from plugin.admin import stats
    from plugin.offers import budget

    now = utcnow()
    quotes = [_quote(shop.id, "c1", now - timedelta(hours=hours), status="accepted",
                     code=code, amount=Decimal(5)) for hours, code in ((2, "SK-R1"),
                                                                         (3, "SK-R3"))]
    db.session.add(Interaction(shop_id=shop.id, shopper_id="c1", product_external_id="p1",
                               kind="click", occurred_at=now - timedelta(hours=1),
                               context={"rec_id": "rA.0"}))
    _order(shop.id, "o1", "c1", now - timedelta(minutes=40), codes=["SK-R1"])
    _order(shop.id, "o2", "c1", now - timedelta(minutes=30), total="30",
           lines=(("p1", 1, "30"),)).currency = "EUR"
    cancelled = _order(shop.id, "o3", "c1", now - timedelta(minutes=20), total="20",
                       codes=["SK-R3"], lines=(("p1", 1, "20"),))
    _order(shop.id, "o4", "c1", now - timedelta(minutes=10), total="10",
           lines=(("p1", 1, "10"),))
    db.session.commit()
    attribution.attribute(shop.id, RAILS, now=now)
    cancelled.cancelled = True
    db.session.commit()

    def report() -> dict:  # the dashboard's offer figures
        return {**attribution.uplift_report(shop.id, RAILS, now - timedelta(days=1),
                                            now)["attributed"],
                "offer_cost": stats.offer_cost(shop.id, now=now)}

    def undone() -> set[int]:  # by their redeemed orders alone (a shopper with no orders)
        return attribution.cancelled_conversions(
            shop.id, [(q.id, "nobody", q.created_at) for q in quotes], timedelta(days=7))

    before = report()
    assert (before["offer_orders"], before["offer_revenue"]) == (1, Decimal("40"))
    assert (before["recommendation_lines"], before["recommendation_revenue"],
            before["recommendation_other_revenue"]) == (3, Decimal("50"), {"EUR": Decimal("30")})
    assert undone() == {quotes[1].id}
    privacy.redact_orders(shop.id, ["o1", "o2", "o3"])
    db.session.commit()
    assert sorted(db.session.scalars(sa.select(Redemption.order_external_id)),
                  key=str) == [None, None]
    assert sorted(db.session.scalars(sa.select(ClickAttribution.order_external_id)),
                  key=str) == [None, None, None, "o4"]
    assert report() == before
    assert undone() == {quotes[1].id}
    attribution.attribute(shop.id, RAILS, now=now)  # nothing credited twice
    assert report() == before
    assert db.session.scalars(sa.select(Order.discount_codes).where(
        Order.external_id.in_(["o1", "o3"]))).all() == [[], []]  # they named the quotes

    # an order redacted before the job credited its code: credited by the redaction (the
    # job finds no code after it), so its offer is not expired and its budget not released
    late = _quote(shop.id, "anon_guest", now - timedelta(hours=2), status="accepted",
                  code="SK-R5", amount=Decimal(5))
    late.accepted_at = late.created_at
    _order(shop.id, "o5", None, now - timedelta(minutes=5), total="15", codes=["SK-R5"])
    db.session.flush()
    budget.reserve(late, late.created_at)
    db.session.commit()
    privacy.redact_orders(shop.id, ["o5"])
    db.session.commit()
    attribution.attribute(shop.id, RAILS, now=now)
    assert report() == {**before, "offer_orders": 2, "offer_revenue": Decimal("55"),
                        "offer_cost": before["offer_cost"] + 5}
    assert (late.status, late.converted) == ("redeemed", True)
    assert db.session.scalars(sa.select(Order.discount_codes).filter_by(
        external_id="o5")).all() == [[]]
    assert db.session.scalars(sa.select(Redemption.order_external_id).filter_by(
        offer_id=late.id)).all() == [None]
