"""Dashboard numbers and charts come from the shop's own data; privacy tools work."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from plugin.admin import charts, stats
from plugin.extensions import db
from plugin.models import Impression, Interaction, Order, WebhookDelivery
from plugin.models.types import utcnow
from tests.admin.conftest import sign_in


def _seed(shop_id: str, *, days_ago: int = 1) -> None:
    at = utcnow() - timedelta(days=days_ago)
    db.session.add_all([
        Order(shop_id=shop_id, external_id="o1", customer_external_id="c1", currency="GBP",
              total=Decimal("30.00"), discount_codes=[], cancelled=False, created_at=at,
              source_updated_at=at),
        Order(shop_id=shop_id, external_id="o2", customer_external_id="c2", currency="GBP",
              total=Decimal("12.50"), discount_codes=[], cancelled=False, created_at=at,
              source_updated_at=at),
        Impression(shop_id=shop_id, rec_id=f"r1-{shop_id}", shopper_id="c1", placement="for_you",
                   items=["p1"], sources=["itemknn"], holdout=False, personalized=True,
                   created_at=at - timedelta(hours=1)),
        Impression(shop_id=shop_id, rec_id=f"r2-{shop_id}", shopper_id="c3", placement="for_you",
                   items=["p1"], sources=["popular"], holdout=True, personalized=False,
                   created_at=at - timedelta(hours=1)),
        Interaction(shop_id=shop_id, shopper_id="c1", product_external_id="p1", kind="click",
                    quantity=1, occurred_at=at, context={}),
    ])
    db.session.commit()


def test_totals_and_series_count_only_this_shop(shop, other_shop):
    _seed(shop.id)
    _seed(other_shop.id)
    series = stats.daily_series(shop.id)
    t = stats.totals(series)
    assert (t["impressions"], t["clicks"], t["orders"]) == (2, 1, 2)
    assert t["revenue"] == Decimal("42.50") and t["ctr"] == 0.5
    assert len(series["days"]) == 30 and sum(series["orders"]) == 2


def test_ab_counts_converted_shoppers_per_arm(shop):
    _seed(shop.id)
    ab = stats.recommendations_ab(shop.id)
    assert ab["treatment"] == {"shoppers": 1, "converted": 1}
    assert ab["control"] == {"shoppers": 1, "converted": 0}
    assert ab["uplift"] is None  # one shopper an arm: too few to say anything


def _shown_recommendations(shop_id: str, arm: str, n: int, *, ordered: int = 0) -> None:
    at = utcnow() - timedelta(days=2)
    for k in range(n):
        shopper = f"{arm}{k}"
        db.session.add(Impression(shop_id=shop_id, rec_id=f"r-{shop_id}-{shopper}",
                                  shopper_id=shopper, placement="for_you", items=["p1"],
                                  sources=["popular"], holdout=arm == "h", personalized=True,
                                  created_at=at))
        if k < ordered:
            db.session.add(Order(shop_id=shop_id, external_id=f"o-{shopper}",
                                 customer_external_id=shopper, currency="GBP",
                                 total=Decimal("10"), discount_codes=[], cancelled=False,
                                 created_at=at + timedelta(hours=1),
                                 source_updated_at=at))
    db.session.commit()


def test_ab_uplift_is_a_newcombe_interval_once_both_arms_are_big_enough(shop):
    _shown_recommendations(shop.id, "t", 40, ordered=10)
    _shown_recommendations(shop.id, "h", 30, ordered=0)
    u = stats.recommendations_ab(shop.id)["uplift"]
    # Newcombe's hybrid score interval for 10/40 - 0/30 (Wald would say 0.116 to 0.384)
    assert (u["estimate"], u["low"], u["high"]) == pytest.approx((0.25, 0.0932, 0.4019),
                                                                 abs=5e-5)


def test_tiny_arms_say_not_enough_shoppers_instead_of_a_zero_width_interval(app, client, shop):
    from tests.offers.test_attribution import _quote

    _shown_recommendations(shop.id, "t", 6)
    _shown_recommendations(shop.id, "h", 1)
    for k in range(6):  # the offers report: 0/6 treated, 0/1 in control
        _quote(shop.id, f"t{k}", utcnow() - timedelta(days=1))
    _quote(shop.id, "h0", utcnow() - timedelta(days=1), holdout=True)
    db.session.commit()
    sign_in(app, client, shop)
    html = client.get("/admin/").get_data(as_text=True)
    assert "0/6 treated shoppers ordered, 0/1 in control (not enough shoppers yet" in html
    assert "0/6 quoted shoppers converted, 0/1 in control (not enough shoppers yet" in html
    assert "[+0, +0]" not in html and "not enough shoppers in both arms yet" in html


def test_window_follows_an_imported_history(shop):
    _seed(shop.id, days_ago=400)
    end = stats.activity_end(shop.id)
    assert utcnow() - end > timedelta(days=399)
    assert sum(stats.daily_series(shop.id, now=end)["orders"]) == 2


def test_dashboard_renders_charts_kpis_and_inbox_retry(app, client, shop):
    _seed(shop.id)
    db.session.add(WebhookDelivery(shop_id=shop.id, connector="generic", topic="orders/upsert",
                                   delivery_id="d1", headers={}, body=b"{}", status="dead",
                                   attempts=8, last_error="boom"))
    db.session.commit()
    token = sign_in(app, client, shop)
    html = client.get("/admin/").get_data(as_text=True)
    assert html.count("<svg") >= 4
    assert 'data-kpi="orders">2<' in html and 'data-kpi="ctr">50.0%<' in html
    assert "dead 1" in html and "Retry 1 dead deliveries" in html
    assert "(applied rows are kept 14 days)" in html  # so "done" is not read as a total
    r = client.post("/admin/inbox/retry", data={"csrf_token": token})
    assert r.status_code == 302
    assert db.session.scalar(sa.select(WebhookDelivery.status)) == "pending"


def test_line_chart_scales_and_labels():
    svg = str(charts.line_chart("t", ["a", "b", "c"], {"x": [0, 5, 10], "y": [1, 2, 3]}))
    assert svg.startswith("<svg") and svg.count("<polyline") == 2
    assert 'aria-label="t"' in svg and ">10<" in svg  # top gridline label


def test_large_figures_read_as_people_write_them():
    svg = str(charts.line_chart("Revenue per day", ["d1", "d2"],
                                {"revenue": [612_345.5, 622_222.25]}))
    assert ">1M<" in svg and ">750k<" in svg and ">250k<" in svg  # not 1e+06 or 750000
    assert "revenue: 1,234,567.75 in total" in svg  # not 1.23457e+06
    assert [charts.axis_label(v) for v in (0, 2500, 0.25)] == ["0", "2,500", "0.25"]


def test_charts_take_their_colours_from_the_stylesheet():
    """No colour is written into the SVG: marks paint in currentColor from a series class
    that admin.css sets per colour scheme (so the dark scheme reaches them)."""
    lines = str(charts.line_chart("t", ["a", "b"], {"x": [1, 2], "y": [2, 1]}))
    uplift = str(charts.interval_chart("u", [("recommendations", 0.1, -0.2, 0.4)]))
    for svg in (lines, uplift):
        assert re.findall(r'(?:fill|stroke)="#', svg) == []
    assert lines.count('class="sk-series sk-s0"') == 1 and 'class="sk-key sk-s1"' in lines
    assert 'class="sk-estimate sk-s0"' in uplift and 'fill="currentColor"' in uplift


def test_interval_chart_without_data_says_so():
    assert "not enough shoppers" in str(charts.interval_chart("u", []))


def test_progress_bar_is_native_and_accessible():
    assert 'max="10" value="4"' in str(charts.progress_bar("sync", 4, 10))
    assert "value=" not in str(charts.progress_bar("sync", 4, None))  # indeterminate


def test_metrics_and_kpis_are_readable_numbers(app, client, shop):
    from plugin.models import ModelVersion

    db.session.add(ModelVersion(shop_id=shop.id, version="v1", status="ready",
                                metrics={"purchases": 83470, "users": 1234567.0,
                                         "ndcg@10": 0.285137, "loss": 1234.5678,
                                         "tiny": 0.0000123, "split": "time"},
                                finished_at=utcnow()))
    db.session.commit()
    sign_in(app, client, shop)
    html = client.get("/admin/").get_data(as_text=True)
    for name, shown in (("purchases learned from", "83,470"), ("users", "1,234,567"),
                        ("ndcg@10", "0.2851"),
                        ("loss", "1,234.6"), ("tiny", "1.23e-05"), ("split", "time")):
        assert f"<td>{name}</td><td>{shown}</td>" in html
    assert "e+0" not in html


def test_the_model_section_says_what_training_recorded_in_words(app, client, shop):
    from datetime import UTC, datetime

    from plugin.models import ModelVersion

    db.session.add(ModelVersion(shop_id=shop.id, version="v1", status="ready",
                                metrics={"purchases": 83471, "fit_seconds": 48.064,
                                         "cache_rows": 600},
                                trained_until=datetime(2026, 11, 23, 7, 21, 11, 788311,
                                                       tzinfo=UTC),
                                finished_at=utcnow()))
    db.session.commit()
    sign_in(app, client, shop)
    html = client.get("/admin/").get_data(as_text=True)
    assert "Recommendation model" in html and "Recommendation quality" not in html
    assert "on data up to 23 Nov 2026 07:21 UTC." in html  # not a raw timestamp
    for label, shown in (("purchases learned from", "83,471"), ("training time (s)", "48.06"),
                         ("shoppers with a precomputed list", "600")):
        assert f"<td>{label}</td><td>{shown}</td>" in html


def test_money_shows_the_shops_most_common_order_currency(app, client, shop):
    _seed(shop.id)  # two GBP orders
    at = utcnow() - timedelta(days=1)
    db.session.add(Order(shop_id=shop.id, external_id="o3", customer_external_id="c9",
                         currency="EUR", total=Decimal("1000.00"), discount_codes=[],
                         cancelled=False, created_at=at, source_updated_at=at))
    db.session.commit()
    assert stats.shop_currency(shop.id) == "GBP"
    sign_in(app, client, shop)
    html = client.get("/admin/").get_data(as_text=True)
    # the EUR order is not added to pounds: it is shown beside them
    assert 'data-kpi="revenue">GBP 42.50<' in html
    assert re.search(r'data-kpi="other_revenue">not included, in other currencies:\s*'
                     r'EUR 1,000.00<', html)
    assert stats.totals(stats.daily_series(shop.id))["other_revenue"] == {
        "EUR": Decimal("1000.00")}
    assert 'data-kpi="offer_cost">GBP 0.00<' in html


def test_money_uses_the_configured_currency_and_no_code_when_unknown(app, client, shop,
                                                                    other_shop):
    assert stats.shop_currency(other_shop.id) is None
    sign_in(app, client, shop)
    assert 'data-kpi="revenue">0.00<' in client.get("/admin/").get_data(as_text=True)
    shop.settings = {**(shop.settings or {}), "currency": "usd"}
    db.session.commit()
    assert 'data-kpi="revenue">USD 0.00<' in client.get("/admin/").get_data(as_text=True)


def test_privacy_lookup_summary_has_no_stray_space(app, client, shop):
    _seed(shop.id)
    sign_in(app, client, shop)
    page = client.get("/admin/privacy?customer=c1").get_data(as_text=True)
    assert "1 interactions, 0 sub-profiles." in page and "Erase this customer" in page


def test_privacy_lookup_of_an_unknown_customer_says_nothing_is_stored(app, client, shop):
    _seed(shop.id)
    sign_in(app, client, shop)
    page = client.get("/admin/privacy?customer=nobody").get_data(as_text=True)
    assert "No data stored for customer nobody." in page
    assert "0 orders" not in page and "Erase this customer" not in page
    assert "Download export" not in page


def test_privacy_export_and_erase(app, client, shop, other_shop):
    _seed(shop.id)
    _seed(other_shop.id)
    token = sign_in(app, client, shop)
    page = client.get("/admin/privacy?customer=c1").get_data(as_text=True)
    assert "1 orders" in page
    export = client.get("/admin/privacy/export?customer=c1")
    assert export.headers["Content-Disposition"].startswith("attachment")
    data = json.loads(export.data)
    assert data["shop_id"] == shop.id and [o["id"] for o in data["orders"]] == ["o1"]
    r = client.post("/admin/privacy/erase", data={"csrf_token": token, "customer": "c1"})
    assert r.status_code == 302
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Interaction).where(
        Interaction.shop_id == shop.id)) == 0
    # the other shop's customer with the same id is untouched
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Interaction).where(
        Interaction.shop_id == other_shop.id)) == 1


def test_an_empty_privacy_form_answers_with_the_admin_page(app, client, shop):
    token = sign_in(app, client, shop)
    r = client.post("/admin/privacy/erase", data={"csrf_token": token, "customer": " "},
                    headers={"Referer": "http://localhost/admin/privacy"})
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and r.mimetype == "text/html"
    assert "Which customer?" in html and "<strong>customer</strong>: Missing." in html
    assert 'href="http://localhost/admin/privacy"' in html  # back to where they were
    api = client.get("/admin/privacy/export?customer=", headers={"Accept": "application/json"})
    assert api.status_code == 400 and api.get_json()["errors"] == {"customer": ["Missing."]}


def test_erasing_the_shop_needs_the_domain_typed(app, client, shop):
    from plugin.models import Shop

    shop_id, domain = shop.id, shop.domain
    token = sign_in(app, client, shop)
    client.post("/admin/shop/erase", data={"csrf_token": token, "confirm": "nope"})
    assert db.session.get(Shop, shop_id) is not None
    r = client.post("/admin/shop/erase", data={"csrf_token": token, "confirm": domain})
    assert r.status_code == 200
    db.session.expire_all()
    assert db.session.get(Shop, shop_id) is None
    assert client.get("/admin/").status_code == 401


def test_a_shopper_seen_in_both_arms_stays_in_the_arm_of_their_first_exposure(shop):
    # The holdout share was raised mid-window: s1 saw personalised lists first, then the
    # holdout's. They count once, in the arm they entered, and their later order with them.
    first = utcnow() - timedelta(days=5)
    for k, holdout in enumerate((False, True)):
        db.session.add(Impression(shop_id=shop.id, rec_id=f"r-both-{k}", shopper_id="s1",
                                  placement="for_you", items=["p1"], sources=["popular"],
                                  holdout=holdout, personalized=not holdout,
                                  created_at=first + timedelta(days=2 * k)))
    db.session.add(Order(shop_id=shop.id, external_id="o-s1", customer_external_id="s1",
                         currency="GBP", total=Decimal("10"), discount_codes=[],
                         cancelled=False, created_at=first + timedelta(days=1),
                         source_updated_at=first))
    db.session.commit()
    ab = stats.recommendations_ab(shop.id)
    assert ab["treatment"] == {"shoppers": 1, "converted": 1}
    assert ab["control"] == {"shoppers": 0, "converted": 0}


def test_privacy_lookup_finds_a_customer_by_email_within_this_shop_only(app, client, shop,
                                                                        other_shop):
    from connectors.records import Customer as CustomerRecord
    from plugin.ingestion import mapping

    at = utcnow() - timedelta(days=1)
    for s in (shop, other_shop):
        _seed(s.id)
        mapping.upsert_customer(s.id, CustomerRecord(
            external_id="c1" if s is shop else "other-shops-customer", updated_at=at,
            email="ada@example.com", created_at=at))
    db.session.commit()
    sign_in(app, client, shop)
    page = client.get("/admin/privacy?customer=%20ADA@Example.com%20").get_data(as_text=True)
    assert "Customer c1" in page and "Found by the email address" in page
    assert "1 orders" in page and "Erase this customer" in page
    # the other shop's customer with that email is not found (an id no random token holds:
    # "c9" turned up inside a CSRF token once)
    assert "other-shops-customer" not in page
    missing = client.get("/admin/privacy?customer=bob@example.com").get_data(as_text=True)
    assert "No data stored for customer bob@example.com." in missing


def test_revenue_in_the_shops_currency_counts_whatever_the_case_of_its_code(shop):
    # currency codes arrive as the platform wrote them ("gbp" passes the three-letter check):
    # orders in the shop's own currency are its revenue, not "other currencies"
    at = utcnow() - timedelta(days=1)
    for k, total in enumerate(("10.00", "5.50")):
        db.session.add(Order(shop_id=shop.id, external_id=f"o-lc{k}", customer_external_id="c1",
                             currency="gbp", total=Decimal(total), discount_codes=[],
                             cancelled=False, created_at=at, source_updated_at=at))
    db.session.commit()
    totals = stats.totals(stats.daily_series(shop.id))
    assert totals["revenue"] == Decimal("15.50")
    assert totals["other_revenue"] == {}


def test_charts_say_what_they_show_to_a_screen_reader():
    """A chart is role="img": a screen reader reads its name and description, never its
    marks, so the figures (and the uplift, the A/B box's answer) are said in its <desc>."""
    lines = str(charts.line_chart("Orders per day", ["01 Nov", "02 Nov", "03 Nov"],
                                  {"orders": [2, 31, 0], "returns": [0, 0, 0]}))
    assert "<desc>01 Nov to 03 Nov. orders: 33 in total, most 31 on 02 Nov; " \
        "returns: 0 in total.</desc>" in lines
    uplift = str(charts.interval_chart("Uplift", [("Recommendations: conversion", 2.5, -1.25,
                                                   6.0)], unit=" pp"))
    assert "<desc>Recommendations: conversion: +2.5 pp (95% CI -1.25 to +6).</desc>" in uplift
    assert "<desc>Not enough shoppers in both arms yet.</desc>" in str(
        charts.interval_chart("Uplift", []))
