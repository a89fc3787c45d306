"""The dashboard has one "last 30 days": its charts, KPIs and A/B box count the same days.

The A/B box used to count the last 720 hours up to now while the charts counted 30 local
days up to the last activity: on one page, a shopper from the afternoon 30 days back (in
the box, not the charts), or a quiet shop's whole history (in the charts, not the box).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from plugin.admin import stats
from plugin.extensions import db
from plugin.models import Impression, Order
from tests.admin.conftest import sign_in

LA = ZoneInfo("America/Los_Angeles")
#: Noon on 25 November in Los Angeles; 720 hours back is 13:00 PDT on 26 October, while
#: the charts' 30 local days begin at midnight on 27 October.
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=LA)


def _shopper(shop_id: str, who: str, seen: datetime, ordered: datetime | None = None, *,
             holdout: bool = False) -> None:
    """One impression (one shopper in an arm) and at most one order: the charts' totals and
    the box's arms then count the same things."""
    db.session.add(Impression(shop_id=shop_id, rec_id=f"r-{who}", shopper_id=who,
                              placement="for_you", items=["p1"], sources=["popular"],
                              holdout=holdout, personalized=not holdout, created_at=seen))
    if ordered is not None:
        db.session.add(Order(shop_id=shop_id, external_id=f"o-{who}", customer_external_id=who,
                             currency="USD", total=Decimal("10.00"), discount_codes=[],
                             cancelled=False, created_at=ordered, source_updated_at=ordered))


def _at(month: int, day: int, hour: int) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=LA)


#: Activity up to this week, and one shopper on 26 October's afternoon: inside the old
#: box's 720 hours, outside the charts' first local day.
ACTIVE = ([("early", _at(10, 26, 15), _at(10, 26, 16), False),
           ("a", _at(11, 10, 9), _at(11, 11, 9), False),
           ("b", _at(11, 20, 9), None, False),
           ("h", _at(11, 12, 9), _at(11, 13, 9), True)],
          "27 Oct \u2013 25 Nov 2026")
#: Nothing in the last 30 days: the charts follow the latest order back to September,
#: where the old box, still on the last 720 hours, found nobody.
QUIET = ([("a", _at(9, 1, 9), _at(9, 2, 9), False),
          ("b", _at(9, 3, 9), None, False),
          ("h", _at(9, 4, 9), _at(9, 5, 9), True)],
         "07 Aug \u2013 05 Sep 2026")


@pytest.mark.parametrize("history", [ACTIVE, QUIET], ids=["active", "quiet"])
def test_the_ab_box_counts_the_charts_days(app, client, shop, monkeypatch, history):
    shop.settings = {**(shop.settings or {}), "timezone": "America/Los_Angeles"}
    monkeypatch.setattr(stats, "utcnow", lambda: NOW.astimezone(UTC))
    shoppers, label = history
    for who, seen, ordered, holdout in shoppers:
        _shopper(shop.id, who, seen, ordered, holdout=holdout)
    db.session.commit()
    sign_in(app, client, shop)
    html = client.get("/admin/").get_data(as_text=True)
    # three shoppers shown recommendations (one impression each), two of them ordered
    assert 'data-kpi="impressions">3<' in html and 'data-kpi="orders">2<' in html
    assert "1/2 treated shoppers ordered, 1/1 in control" in html
    # the page names the one window, in the heading and in the box
    assert re.search(rf"<span data-window>{label}</span>", html)
    assert re.search(rf"<span data-ab-window>{label}</span>", html)


def test_the_window_is_whole_local_days_up_to_today(shop, monkeypatch):
    shop.settings = {**(shop.settings or {}), "timezone": "America/Los_Angeles"}
    db.session.commit()
    window = stats.dashboard_window(shop.id, now=NOW.astimezone(UTC))
    assert (window.days[0], window.days[-1], len(window.days)) == (
        date(2026, 10, 27), date(2026, 11, 25), 30)
    assert window.start == datetime(2026, 10, 27, 7, tzinfo=UTC)  # PDT midnight
    assert window.end == datetime(2026, 11, 26, 8, tzinfo=UTC)  # PST midnight
    assert window.end - window.start == timedelta(days=30, hours=1)  # DST ended in between
    assert window.label == "27 Oct \u2013 25 Nov 2026"
