"""Numbers for the dashboard, each scoped to one shop (the session's)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from plugin import shop_unavailable
from plugin.admin import settings as settings_service
from plugin.currency import catalogue_currency, same_currency, shop_currency, split
from plugin.extensions import db
from plugin.localtime import day_start, shop_zone
from plugin.models import (
    Impression,
    Installation,
    Interaction,
    ModelVersion,
    Offer,
    OfferLedgerEntry,
    Order,
    Shop,
)
from plugin.models.types import utcnow
from plugin.offers import permissions as offer_permissions
from plugin.offers.settings import Guardrails

__all__ = ["Window", "activity_end", "connector_status", "daily_series", "dashboard_window",
           "local_window", "model_summary",
           "offer_budgets", "offer_cost", "offer_costs", "recommendations_ab", "shop_currency",
           "totals", "window_start"]


#: Rows are summed per quarter hour of UTC in SQL, then each quarter hour is put on its
#: local day in Python. Every zone's offset is a whole number of quarter hours (+5:45,
#: -3:30 ...), so no quarter hour straddles a local midnight, DST days included.
SLOT_SECONDS = 900


def _slot(column: Any) -> sa.ColumnElement[Any]:
    """The quarter hour a naive-UTC timestamp falls in: its start on PostgreSQL (``date_bin``,
    14+, as cheap as ``date()``), its number (epoch seconds // 900) on SQLite, which divides
    integers as integers. Literal SQL throughout, so PostgreSQL sees one expression in
    SELECT and GROUP BY."""
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.func.date_bin(sa.literal_column("interval '15 minutes'"), column,
                                sa.literal_column("timestamp '2000-01-01'"))
    seconds = sa.cast(sa.func.strftime(sa.literal_column("'%s'"), column), sa.Integer)
    return seconds.op("/")(sa.literal_column(str(SLOT_SECONDS)))


def _slot_start(value: datetime | int) -> datetime:
    """Aware UTC start of a quarter hour as ``_slot`` returns it."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(int(value) * SLOT_SECONDS, UTC)


def _daily(query: sa.Select, column: Any, zone: ZoneInfo) -> dict[date, float]:
    """``query``'s aggregate per local day of ``column``: at most 96 rows a day leave the
    database however many rows the window holds."""
    slot = _slot(column)
    out: dict[date, float] = defaultdict(float)
    for value, start in db.session.execute(query.add_columns(slot).group_by(slot)):
        out[_slot_start(start).astimezone(zone).date()] += float(value or 0)
    return out


def local_window(now: datetime, days: int, zone: ZoneInfo) -> tuple[list[date], datetime]:
    """The last ``days`` local days up to the one ``now`` falls on, and the instant the
    first begins (aware UTC): "today" starts at the shop's midnight, not UTC's."""
    today = now.astimezone(zone).date()
    days_list = [today - timedelta(days=days - 1 - k) for k in range(days)]
    return days_list, day_start(days_list[0], zone)


class Window(NamedTuple):
    """Whole local days of the shop: ``start`` (the first one's midnight) up to ``end`` (the
    midnight after the last), both aware UTC."""

    days: list[date]
    start: datetime
    end: datetime
    zone: ZoneInfo

    @property
    def label(self) -> str:
        """The days as a merchant reads them: "27 Oct \u2013 25 Nov 2026" (an en dash)."""
        first, last = self.days[0], self.days[-1]
        head = first.strftime("%d %b") if first.year == last.year \
            else first.strftime("%d %b %Y")
        return f"{head} \u2013 {last.strftime('%d %b %Y')}"


def _window(now: datetime, days: int, zone: ZoneInfo) -> Window:
    days_list, start = local_window(now, days, zone)
    return Window(days_list, start, day_start(days_list[-1] + timedelta(days=1), zone), zone)


def dashboard_window(shop_id: str, *, now: datetime | None = None, days: int = 30) -> Window:
    """The one window of the dashboard, for its charts, KPIs and A/B box alike: the last
    ``days`` local days up to the day of ``activity_end`` (today, unless nothing at all
    happened in the last ``days``: then up to the latest order's day)."""
    return _window(activity_end(shop_id, now=now, days=days), days, shop_zone(shop_id))


def daily_series(shop_id: str, days: int = 30, *, now: datetime | None = None,
                 window: Window | None = None) -> dict[str, Any]:
    """Per local day (the shop's time zone): impressions, clicks, add-to-carts, orders and
    revenue for the charts, over ``window`` (else the ``days`` local days up to ``now``'s)."""
    now = now or utcnow()
    window = window or _window(now, days, shop_zone(shop_id))
    zone, days_list, since, end = window.zone, window.days, window.start, window.end
    Imp, X, Ord = Impression, Interaction, Order
    currency = shop_currency(shop_id)
    # money in another currency is not added to the shop's: it is reported beside it
    same_money = same_currency(Ord.currency, currency)
    series = {
        "impressions": _daily(sa.select(sa.func.count(Imp.id)).where(
            Imp.shop_id == shop_id, Imp.created_at >= since, Imp.created_at < end),
            Imp.created_at, zone),
        "clicks": _daily(sa.select(sa.func.count(X.id)).where(
            X.shop_id == shop_id, X.kind == "click", X.occurred_at >= since,
            X.occurred_at < end), X.occurred_at, zone),
        "add_to_carts": _daily(sa.select(sa.func.count(X.id)).where(
            X.shop_id == shop_id, X.kind == "add_to_cart", X.occurred_at >= since,
            X.occurred_at < end), X.occurred_at, zone),
        "orders": _daily(sa.select(sa.func.count(Ord.id)).where(
            Ord.shop_id == shop_id, Ord.cancelled.is_(False), Ord.created_at >= since,
            Ord.created_at < end), Ord.created_at, zone),
        "revenue": _daily(sa.select(sa.func.coalesce(sa.func.sum(Ord.total), 0)).where(
            Ord.shop_id == shop_id, Ord.cancelled.is_(False), Ord.created_at >= since,
            Ord.created_at < end, same_money), Ord.created_at, zone),
    }
    other = db.session.execute(
        sa.select(sa.func.upper(Ord.currency), sa.func.sum(Ord.total)).where(
            Ord.shop_id == shop_id, Ord.cancelled.is_(False), Ord.created_at >= since,
            Ord.created_at < end, ~same_money)
        .group_by(sa.func.upper(Ord.currency)).order_by(sa.func.upper(Ord.currency))).all()
    last = min(now, end - timedelta(microseconds=1))  # a moment on the window's last day
    return {"days": days_list, "end": last.astimezone(zone), "timezone": zone.key,
            "currency": currency,
            "other_revenue": {code: Decimal(str(total or 0)).quantize(Decimal("0.01"))
                              for code, total in other},
            **{name: [values.get(d, 0.0) for d in days_list] for name, values in series.items()}}


def activity_end(shop_id: str, *, now: datetime | None = None, days: int = 30) -> datetime:
    """End of the dashboard window: now, or the latest order when the last ``days`` are
    empty (an imported history, a quiet shop) so the charts show real activity."""
    now = now or utcnow()
    latest = db.session.scalar(sa.select(sa.func.max(Order.created_at))
                               .where(Order.shop_id == shop_id))
    if latest is None or latest >= now - timedelta(days=days):
        return now
    recent = db.session.scalar(sa.select(sa.func.count(Impression.id)).where(
        Impression.shop_id == shop_id, Impression.created_at >= now - timedelta(days=days)))
    return now if recent else latest


def totals(series: dict[str, Any]) -> dict[str, Any]:
    """Window totals for the KPI cards; ``currency`` is None when unknown."""
    imp, clicks = sum(series["impressions"]), sum(series["clicks"])
    return {"impressions": int(imp), "clicks": int(clicks), "currency": series.get("currency"),
            "ctr": clicks / imp if imp else None,
            "add_to_carts": int(sum(series["add_to_carts"])),
            "orders": int(sum(series["orders"])),
            "revenue": Decimal(str(round(sum(series["revenue"]), 2))),
            "other_revenue": dict(series.get("other_revenue") or {})}


def recommendations_ab(shop_id: str, days: int = 30, *, now: datetime | None = None,
                       window: Window | None = None) -> dict[str, Any]:
    """Shoppers shown recommendations, by arm: did they order within the window after?
    The window is the charts' (``dashboard_window``) unless one is given, so the box and
    the charts count the same days.
    ``uplift`` is None until both arms have ``min_arm`` shoppers (too few to say anything).
    A shopper seen in both arms (the holdout share changed) counts once, in the arm of
    their first impression. "The usual?" (``reorder``) lists do not count as exposure: the
    control arm is never shown one, so counting them would put repeat buyers, who order
    more anyway, in the treatment arm only."""
    from plugin.offers.stats import MIN_ARM, diff_proportions

    window = window or dashboard_window(shop_id, now=now, days=days)
    since, until = window.start, window.end
    first_seen: dict[str, tuple[bool, datetime]] = {}
    for shopper, holdout, at in db.session.execute(
            sa.select(Impression.shopper_id, Impression.holdout,
                      sa.func.min(Impression.created_at))
            .where(Impression.shop_id == shop_id, Impression.shopper_id.is_not(None),
                   Impression.placement != "reorder", Impression.created_at >= since,
                   Impression.created_at < until)
            .group_by(Impression.shopper_id, Impression.holdout)):
        if shopper not in first_seen or at < first_seen[shopper][1]:
            first_seen[shopper] = (bool(holdout), at)
    buyers: dict[str, datetime] = {}
    if first_seen:
        for customer, at in db.session.execute(
                sa.select(Order.customer_external_id, sa.func.max(Order.created_at))
                .where(Order.shop_id == shop_id, Order.cancelled.is_(False),
                       Order.created_at >= since, Order.created_at < until,
                       Order.customer_external_id.in_(list(first_seen)))
                .group_by(Order.customer_external_id)):
            buyers[customer] = at
    arms = {"treatment": [0, 0], "control": [0, 0]}
    for shopper, (holdout, first) in first_seen.items():
        arm = arms["control" if holdout else "treatment"]
        arm[0] += 1
        arm[1] += int(shopper in buyers and buyers[shopper] >= first)
    ci = diff_proportions(arms["treatment"][1], arms["treatment"][0],
                          arms["control"][1], arms["control"][0])
    return {"treatment": {"shoppers": arms["treatment"][0], "converted": arms["treatment"][1]},
            "control": {"shoppers": arms["control"][0], "converted": arms["control"][1]},
            "uplift": None if ci is None else vars(ci), "min_arm": MIN_ARM}


def window_start(shop_id: str, days: int = 30, *, now: datetime | None = None) -> datetime:
    """When the last ``days`` local days (the shop's, as on the charts) begin, aware UTC:
    rolling figures then cover whole days of the merchant's, not ``24 * days`` hours."""
    return local_window(now or utcnow(), days, shop_zone(shop_id))[1]


def offer_cost(shop_id: str, days: int = 30, *, now: datetime | None = None) -> Decimal:
    """Offer discounts reserved (less those released) over the last ``days`` local days,
    in the shop's currency (``offer_costs`` has the others)."""
    return offer_costs(shop_id, days, now=now)[0]


def offer_costs(shop_id: str, days: int = 30, *, now: datetime | None = None,
                window: Window | None = None) -> tuple[Decimal, dict[str, Decimal]]:
    """``offer_cost`` and ``{other currency: cost}``: a discount is money in its offer's
    currency, never added to another's. Over ``window`` when given (the dashboard's)."""
    spent = _offer_spend(shop_id, window.start, window.end) if window is not None \
        else _offer_spend(shop_id, window_start(shop_id, days, now=now))
    # the orders' currency names the dashboard's money; before any order, the catalogue's
    return split(spent.items(), shop_currency(shop_id) or catalogue_currency(shop_id))


def _offer_spend(shop_id: str, since: datetime, until: datetime | None = None
                 ) -> dict[str, Decimal]:
    """Ledger amounts dated from ``since`` (to ``until``), by their offer's currency ("":
    none recorded)."""
    # literal SQL: PostgreSQL must see one expression in SELECT and GROUP BY
    code = sa.func.upper(sa.func.coalesce(Offer.currency, sa.literal_column("''")))
    rows = db.session.execute(
        sa.select(code, sa.func.sum(OfferLedgerEntry.amount))
        .select_from(OfferLedgerEntry).outerjoin(Offer, Offer.id == OfferLedgerEntry.offer_id)
        .where(OfferLedgerEntry.shop_id == shop_id, OfferLedgerEntry.at >= since,
               sa.true() if until is None else OfferLedgerEntry.at < until)
        .group_by(code))
    return {str(c or ""): Decimal(str(total or 0)) for c, total in rows}


def offer_budgets(shop_id: str, rails: Guardrails, *, now: datetime | None = None
                  ) -> list[dict[str, Any]]:
    """Each offer budget's spend today and this month (the shop's days) and what is left,
    each in its own currency: the shop's budget (``currency`` its catalogue's, None when
    unknown), then one per currency with figures of its own (``currency_guardrails``).

    ``left_*`` is what the guardrails still allow (``budget.remaining``). A currency spent
    in without a budget of its own (figures removed since) comes last with its spend
    alone (``own_budget`` False): the guardrails count it against the shop's budget, so
    there ``left`` is less than budget minus spent."""
    from plugin.offers import budget

    now = now or utcnow()
    zone = shop_zone(shop_id)
    today = now.astimezone(zone).date()
    day = _offer_spend(shop_id, day_start(today, zone))
    month = _offer_spend(shop_id, day_start(today.replace(day=1), zone))
    own, configured = catalogue_currency(shop_id), sorted(rails.currency_guardrails)

    def row(code: str | None, keys: set[str], figures: Guardrails | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "currency": code, "own_budget": figures is not None,
            "spent_day": sum((day.get(k, Decimal(0)) for k in keys), Decimal(0)),
            "spent_month": sum((month.get(k, Decimal(0)) for k in keys), Decimal(0))}
        if figures is not None:
            left_day, left_month = budget.remaining(shop_id, figures, now)
            out.update(daily_budget=figures.daily_budget, monthly_budget=figures.monthly_budget,
                       left_day=left_day, left_month=left_month)
        return out

    shops_own = {""} | ({own} if own and own not in configured else set())
    rows = [row(own, shops_own, rails)]
    rows += [row(code, {code}, rails.in_currency(code)) for code in configured]
    rows += [row(code, {code}, None) for code in sorted(set(day) | set(month))
             if code not in shops_own and code not in configured]
    return rows


def model_summary(shop_id: str, *, now: datetime | None = None) -> dict[str, Any] | None:
    """The served model: when it was trained, on data up to when, and its offline metrics."""
    mv = db.session.scalar(sa.select(ModelVersion).where(
        ModelVersion.shop_id == shop_id, ModelVersion.status == "ready")
        .order_by(ModelVersion.id.desc()).limit(1))
    if mv is None:
        return None
    age = (now or utcnow()) - mv.finished_at if mv.finished_at else None
    return {"version": mv.version, "algorithm": mv.algorithm, "metrics": mv.metrics or {},
            "finished_at": mv.finished_at, "trained_until": mv.trained_until,
            "age_hours": None if age is None else age.total_seconds() / 3600}


def connector_status(shop: Shop) -> dict[str, Any]:
    from plugin.ingestion.sync import sync_progress

    installation = db.session.get(Installation, shop.id)
    progress = sync_progress(shop.id)
    rate_limited = any("RateLimited" in (p["last_error"] or "") for p in progress)
    return {"auth_failing": bool(installation and installation.auth_failed),
            # the platform holds the shop back (frozen, locked): said instead of "reinstall"
            "unavailable": shop_unavailable.note(shop),
            "rate_limited": rate_limited, "syncs": progress,
            "offers_blocked": offer_permissions.note(shop)
            or settings_service.offers_paused_note(shop)}
