"""The dashboard's days are the shop's local days (its ``timezone`` setting), DST included."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from marshmallow import ValidationError

from plugin import shops
from plugin.admin import stats
from plugin.admin.schemas import SettingsSchema
from plugin.extensions import db
from plugin.models import Impression, Interaction, Order
from tests.admin.conftest import sign_in

LA = ZoneInfo("America/Los_Angeles")


def _set_zone(shop, name: str) -> None:
    shop.settings = {**(shop.settings or {}), "timezone": name}
    db.session.commit()


def _order(shop_id: str, n: int, at: datetime, total: str = "10.00") -> None:
    db.session.add(Order(shop_id=shop_id, external_id=f"o{n}", customer_external_id=f"c{n}",
                         currency="USD", total=Decimal(total), discount_codes=[],
                         cancelled=False, created_at=at, source_updated_at=at))


def _on(series: dict, day: date, name: str = "orders") -> float:
    return series[name][series["days"].index(day)]


def test_an_order_at_2330_local_is_on_that_local_day(shop):
    """23:30 in Los Angeles on 10 June is 06:30 UTC on 11 June: it is a 10 June order."""
    _set_zone(shop, "America/Los_Angeles")
    at = datetime(2026, 6, 10, 23, 30, tzinfo=LA)
    _order(shop.id, 1, at, "25.00")
    db.session.add_all([
        Impression(shop_id=shop.id, rec_id="r1", shopper_id="c1", placement="for_you",
                   items=["p1"], sources=["trending"], holdout=False, personalized=True,
                   created_at=at - timedelta(minutes=10)),
        Interaction(shop_id=shop.id, shopper_id="c1", product_external_id="p1", kind="click",
                    quantity=1, occurred_at=at - timedelta(minutes=5), context={}),
    ])
    db.session.commit()
    series = stats.daily_series(shop.id, now=datetime(2026, 6, 12, 9, 0, tzinfo=LA))
    assert series["days"][-1] == date(2026, 6, 12)  # "today" is LA's, not UTC's 12 June
    for name in ("orders", "impressions", "clicks"):
        assert _on(series, date(2026, 6, 10), name) == 1, name
        assert _on(series, date(2026, 6, 11), name) == 0, name
    assert _on(series, date(2026, 6, 10), "revenue") == 25.0
    assert series["timezone"] == "America/Los_Angeles"


def test_the_window_starts_at_local_midnight(shop):
    """"Last 30 days" begins at LA's midnight 29 days back: an order one minute before it
    is out, one at midnight is in (UTC's midnight is 7 or 8 hours off)."""
    _set_zone(shop, "America/Los_Angeles")
    now = datetime(2026, 6, 30, 20, 0, tzinfo=LA)  # 1 July in UTC
    first = date(2026, 6, 1)
    _order(shop.id, 1, datetime(2026, 5, 31, 23, 59, tzinfo=LA))
    _order(shop.id, 2, datetime(2026, 6, 1, 0, 0, tzinfo=LA))
    _order(shop.id, 3, datetime(2026, 6, 30, 19, 0, tzinfo=LA))
    db.session.commit()
    series = stats.daily_series(shop.id, now=now)
    assert (series["days"][0], series["days"][-1]) == (first, date(2026, 6, 30))
    assert sum(series["orders"]) == 2
    assert _on(series, first) == 1 and _on(series, date(2026, 6, 30)) == 1


@pytest.mark.parametrize(("day", "hours"), [(date(2026, 3, 8), 23), (date(2026, 11, 1), 25)])
def test_dst_days_count_every_hour_once(shop, day, hours):
    """One order every half hour of LA's 23-hour spring-forward and 25-hour fall-back days,
    plus one each side: the day holds exactly its own, nothing is lost or doubled."""
    _set_zone(shop, "America/Los_Angeles")
    start = datetime.combine(day, datetime.min.time(), tzinfo=LA).astimezone(UTC)
    n = 0
    for k in range(hours * 2):
        _order(shop.id, n := n + 1, start + timedelta(minutes=30 * k))
    _order(shop.id, n := n + 1, start - timedelta(minutes=1))
    _order(shop.id, n + 1, start + timedelta(hours=hours))
    db.session.commit()
    series = stats.daily_series(shop.id, now=datetime.combine(
        day + timedelta(days=2), datetime.min.time(), tzinfo=LA) + timedelta(hours=12))
    assert _on(series, day) == hours * 2
    assert _on(series, day - timedelta(days=1)) == 1
    assert _on(series, day + timedelta(days=1)) == 1
    assert sum(series["orders"]) == hours * 2 + 2


def test_a_half_hour_zone_is_cut_at_its_own_midnight(shop):
    """India is UTC+5:30: 00:10 local on 2 June is 18:40 UTC on 1 June."""
    _set_zone(shop, "Asia/Kolkata")
    kolkata = ZoneInfo("Asia/Kolkata")
    _order(shop.id, 1, datetime(2026, 6, 2, 0, 10, tzinfo=kolkata))
    _order(shop.id, 2, datetime(2026, 6, 1, 23, 50, tzinfo=kolkata))
    db.session.commit()
    series = stats.daily_series(shop.id, now=datetime(2026, 6, 3, 12, tzinfo=kolkata))
    assert _on(series, date(2026, 6, 2)) == 1 and _on(series, date(2026, 6, 1)) == 1


def test_the_dashboard_chart_puts_the_order_on_the_local_day(app, client, shop, monkeypatch):
    """The orders chart's one raised point is the local day's, and the heading's date and
    zone are the shop's."""
    _set_zone(shop, "America/Los_Angeles")
    now = datetime(2026, 6, 11, 12, 0, tzinfo=LA)  # 11 June in UTC too
    monkeypatch.setattr(stats, "utcnow", lambda: now.astimezone(UTC))
    _order(shop.id, 1, datetime(2026, 6, 10, 23, 30, tzinfo=LA))
    db.session.commit()
    sign_in(app, client, shop)
    html = client.get("/admin/").get_data(as_text=True)
    assert "30 days, <span data-window>13 May \u2013 11 Jun 2026</span> " \
        "(America/Los_Angeles time)" in html
    chart = html[html.index('aria-label="Orders per day"'):]
    points = re.search(r'<polyline[^>]*points="([^"]+)"', chart)[1].split()
    heights = [float(p.split(",")[1]) for p in points]
    raised = [i for i, y in enumerate(heights) if y < max(heights)]
    assert raised == [28]  # 10 June, the day before today (UTC would say 11 June: [29])


def test_a_bad_time_zone_name_is_a_field_error():
    for bad in ("Mars/Olympus_Mons", "PST", "../etc/passwd", "", "x" * 100):
        with pytest.raises(ValidationError) as err:
            SettingsSchema().load({"shop": {"timezone": bad}})
        assert "timezone" in err.value.messages["shop"], bad
    assert SettingsSchema().load({"shop": {}})["shop"]["timezone"] == "UTC"
    assert SettingsSchema().load({"shop": {"timezone": "Asia/Kathmandu"}})["shop"] == {
        "timezone": "Asia/Kathmandu"}


def test_saving_a_zone_stores_it_and_the_default_stays_unchosen(admin, shop):
    client, token = admin
    r = client.post("/admin/settings", data={"csrf_token": token, "_section": "shop",
                                             "shop.timezone": "UTC"})
    assert r.status_code == 302
    db.session.expire_all()
    assert "timezone" not in shops.get_shop(shop.id).settings  # the platform may fill it
    r = client.post("/admin/settings", data={"csrf_token": token, "_section": "shop",
                                             "shop.timezone": " Europe/Paris "})
    assert r.status_code == 302
    db.session.expire_all()
    assert shops.get_shop(shop.id).settings["timezone"] == "Europe/Paris"
    page = client.get("/admin/settings").get_data(as_text=True)
    assert 'name="shop.timezone" value="Europe/Paris"' in page


def test_an_unknown_stored_zone_falls_back_to_utc(shop):
    """A name a later tzdata dropped must not break the dashboard."""
    _set_zone(shop, "Nowhere/Gone")
    _order(shop.id, 1, datetime(2026, 6, 10, 23, 30, tzinfo=UTC))
    db.session.commit()
    series = stats.daily_series(shop.id, now=datetime(2026, 6, 12, tzinfo=UTC))
    assert series["timezone"] == "UTC" and _on(series, date(2026, 6, 10)) == 1


def test_the_dashboard_shows_when_the_model_was_trained_on_the_shops_clock(app, client, shop):
    """07:21 UTC on 23 Nov is 23:21 the evening before in Los Angeles (PST, UTC-8)."""
    from plugin.models import ModelVersion

    _set_zone(shop, "America/Los_Angeles")
    db.session.add(ModelVersion(shop_id=shop.id, version="v1", status="ready", metrics={},
                                trained_until=datetime(2026, 11, 23, 7, 21, tzinfo=UTC),
                                finished_at=datetime(2026, 11, 23, 8, 0)))
    db.session.commit()
    sign_in(app, client, shop)
    html = client.get("/admin/").get_data(as_text=True)
    assert "on data up to 22 Nov 2026 23:21 PST." in html
    assert "07:21" not in html


def test_wall_clock_reads_naive_moments_as_utc_and_names_the_zone():
    from plugin.localtime import wall_clock

    summer = datetime(2026, 6, 11, 19, 5)  # naive: stored UTC
    assert wall_clock(summer, LA) == "11 Jun 2026 12:05 PDT"
    assert wall_clock(summer.replace(tzinfo=UTC), ZoneInfo("UTC")) == "11 Jun 2026 19:05 UTC"
    assert wall_clock(summer, ZoneInfo("Asia/Kolkata"), "%Y-%m-%d %H:%M") == "2026-06-12 00:35 IST"


def test_the_30_day_offer_figures_are_local_days_not_720_hours(shop):
    """Offer cost and the offers report cover the same 30 local days as the charts: at
    03:00 on 31 March in Los Angeles they start at local midnight on 2 March (08:00 UTC),
    not 720 hours back (1 March, 10:00 UTC)."""
    from plugin.admin import views
    from plugin.models import Offer, OfferLedgerEntry

    _set_zone(shop, "America/Los_Angeles")
    now = datetime(2026, 3, 31, 10, 0, tzinfo=UTC)
    for n, at in enumerate((datetime(2026, 3, 1, 12, 0, tzinfo=LA),  # 1 March, local
                            datetime(2026, 3, 2, 1, 0, tzinfo=LA))):
        offer = Offer(public_id=f"of_{n}", shop_id=shop.id, shopper_id=f"s{n}",
                      cart_hash="h", stage="idle_cart", status="accepted", created_at=at)
        db.session.add(offer)
        db.session.flush()
        db.session.add(OfferLedgerEntry(shop_id=shop.id, offer_id=offer.id, entry="reserve",
                                        amount=Decimal("5.00"), at=at))
    db.session.commit()
    assert stats.offer_cost(shop.id, now=now) == Decimal("5.00")
    report = views._offer_report(shop, stats.dashboard_window(shop.id, now=now))
    assert report is not None and report["since"] == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert report["arms"]["treatment"]["shoppers"] == 1
