"""Attributed revenue and the offers' revenue per visitor count the shop's currency only.

A Saleor shop with channels in two currencies, or a generic store, has orders in each; with
no exchange rates, a euro total added to pounds is a wrong number. The other currencies are
reported beside the figure, per code, as the dashboard's revenue series does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from plugin.extensions import db
from plugin.models import Interaction
from plugin.models.types import utcnow
from plugin.offers import attribution
from plugin.offers.admin_auth import mint_admin_token
from plugin.offers.settings import Guardrails
from tests.admin.conftest import sign_in
from tests.offers.test_attribution import _order, _quote

RAILS = Guardrails()


def _in_pounds(shop) -> None:
    shop.settings = {**(shop.settings or {}), "currency": "GBP"}
    db.session.commit()


def _credited_in_two_currencies(shop_id: str) -> None:
    """c1 redeems an offer and follows a recommendation in pounds, c2 the same in euros."""
    now = utcnow()
    for shopper, code, currency, lines in (("c1", "SK-GBP", "gbp", (("p1", 2, "10"),)),
                                           ("c2", "SK-EUR", "EUR", (("p1", 1, "30"),))):
        _quote(shop_id, shopper, now - timedelta(hours=2), status="accepted", code=code,
               amount=Decimal(5))
        db.session.add(Interaction(shop_id=shop_id, shopper_id=shopper,
                                   product_external_id="p1", kind="click",
                                   occurred_at=now - timedelta(hours=1),
                                   context={"rec_id": f"r{shopper}.0"}))
        total = str(sum(Decimal(p) * q for _, q, p in lines))
        order = _order(shop_id, f"o-{shopper}", shopper, now - timedelta(minutes=30),
                       total=total, codes=[code], lines=lines)
        order.currency = currency
    db.session.commit()
    attribution.attribute(shop_id, RAILS, now=now)


def test_attributed_revenue_is_the_shops_currency_with_others_beside(app, shop):
    _in_pounds(shop)
    _credited_in_two_currencies(shop.id)
    now = utcnow()
    got = attribution.uplift_report(shop.id, RAILS, now - timedelta(days=1), now)["attributed"]
    assert (got["offer_orders"], got["offer_revenue"]) == (2, Decimal("20"))
    assert got["offer_other_revenue"] == {"EUR": Decimal("30.00")}
    assert (got["recommendation_lines"], got["recommendation_revenue"]) == (2, Decimal("20"))
    assert got["recommendation_other_revenue"] == {"EUR": Decimal("30.00")}
    assert got["currency"] == "GBP"


def test_dashboard_shows_recommendation_revenue_in_pounds_and_euros_apart(app, client, shop):
    _in_pounds(shop)
    _credited_in_two_currencies(shop.id)
    sign_in(app, client, shop)
    html = client.get("/admin/").get_data(as_text=True)
    assert 'data-kpi="recommendation_revenue">GBP 20.00<' in html
    assert ('data-kpi="recommendation_other_revenue">not included, in other currencies:\n'
            '    EUR 30.00<') in html


def test_revenue_per_visitor_counts_the_shops_currency_only(client, shop, shop_secret):
    _in_pounds(shop)
    now = datetime.now(UTC)
    for arm, holdout in (("t", False), ("h", True)):
        for i in range(30):
            _quote(shop.id, f"{arm}{i}", now - timedelta(days=1), holdout=holdout)
    _order(shop.id, "o1", "t0", now - timedelta(hours=20), total="60")
    _order(shop.id, "o2", "t1", now - timedelta(hours=20), total="1000").currency = "EUR"
    _order(shop.id, "o3", "h0", now - timedelta(hours=20), total="30")
    db.session.commit()
    token = mint_admin_token(shop.id, shop_secret)
    body = client.get(f"/api/v1/offers/uplift?key={shop.widget_key}&days=7",
                      headers={"Authorization": f"Bearer {token}"}).get_json()
    treated, control = body["arms"]["treatment"], body["arms"]["control"]
    # 60 pounds over 30 treated shoppers; the 1000 euros are not 1000 pounds
    assert treated["revenue_per_visitor"] == 2.0
    assert body["currency"] == "GBP"
    assert treated["other_revenue"] == {"EUR": "1000.00"}
    assert (control["revenue_per_visitor"], control["other_revenue"]) == (1.0, {})
    assert body["revenue_per_visitor_uplift"]["estimate"] == 1.0
