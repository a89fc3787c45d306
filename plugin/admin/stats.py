"""Numbers for the dashboard, each scoped to one shop (the session's)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from plugin.currency import same_currency, shop_currency
from plugin.extensions import db
from plugin.models import (
    Impression,
    Installation,
    Interaction,
    ModelVersion,
    OfferLedgerEntry,
    Order,
    Shop,
)
from plugin.models.types import utcnow

__all__ = ["activity_end", "connector_status", "daily_series", "model_summary", "offer_cost",
           "recommendations_ab", "shop_currency", "totals"]


def _daily(query: sa.Select, column: Any, since: datetime) -> dict[date, float]:
    day = sa.func.date(column)
    rows = db.session.execute(query.add_columns(day).group_by(day))
    out: dict[date, float] = {}
    for value, d in rows:
        key = d if isinstance(d, date) else date.fromisoformat(str(d))
        out[key] = float(value or 0)
    return out


def daily_series(shop_id: str, days: int = 30, *, now: datetime | None = None
                 ) -> dict[str, Any]:
    """Per-day impressions, clicks, add-to-carts, orders and revenue for the charts."""
    now = now or utcnow()
    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    Imp, X, Ord = Impression, Interaction, Order
    end = now + timedelta(seconds=1)
    currency = shop_currency(shop_id)
    # money in another currency is not added to the shop's: it is reported beside it
    same_money = same_currency(Ord.currency, currency)
    series = {
        "impressions": _daily(sa.select(sa.func.count(Imp.id)).where(
            Imp.shop_id == shop_id, Imp.created_at >= since, Imp.created_at < end),
            Imp.created_at, since),
        "clicks": _daily(sa.select(sa.func.count(X.id)).where(
            X.shop_id == shop_id, X.kind == "click", X.occurred_at >= since,
            X.occurred_at < end), X.occurred_at, since),
        "add_to_carts": _daily(sa.select(sa.func.count(X.id)).where(
            X.shop_id == shop_id, X.kind == "add_to_cart", X.occurred_at >= since,
            X.occurred_at < end), X.occurred_at, since),
        "orders": _daily(sa.select(sa.func.count(Ord.id)).where(
            Ord.shop_id == shop_id, Ord.cancelled.is_(False), Ord.created_at >= since,
            Ord.created_at < end), Ord.created_at, since),
        "revenue": _daily(sa.select(sa.func.coalesce(sa.func.sum(Ord.total), 0)).where(
            Ord.shop_id == shop_id, Ord.cancelled.is_(False), Ord.created_at >= since,
            Ord.created_at < end, same_money), Ord.created_at, since),
    }
    other = db.session.execute(
        sa.select(sa.func.upper(Ord.currency), sa.func.sum(Ord.total)).where(
            Ord.shop_id == shop_id, Ord.cancelled.is_(False), Ord.created_at >= since,
            Ord.created_at < end, ~same_money)
        .group_by(sa.func.upper(Ord.currency)).order_by(sa.func.upper(Ord.currency))).all()
    days_list = [(since + timedelta(days=k)).date() for k in range(days)]
    return {"days": days_list, "end": now, "currency": currency,
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


def recommendations_ab(shop_id: str, days: int = 30, *, now: datetime | None = None
                       ) -> dict[str, Any]:
    """Shoppers shown recommendations, by arm: did they order within the window after?
    ``uplift`` is None until both arms have ``min_arm`` shoppers (too few to say anything).
    A shopper seen in both arms (the holdout share changed) counts once, in the arm of
    their first impression. "The usual?" (``reorder``) lists do not count as exposure: the
    control arm is never shown one, so counting them would put repeat buyers, who order
    more anyway, in the treatment arm only."""
    from plugin.offers.stats import MIN_ARM, diff_proportions

    now = now or utcnow()
    since = now - timedelta(days=days)
    first_seen: dict[str, tuple[bool, datetime]] = {}
    for shopper, holdout, at in db.session.execute(
            sa.select(Impression.shopper_id, Impression.holdout,
                      sa.func.min(Impression.created_at))
            .where(Impression.shop_id == shop_id, Impression.shopper_id.is_not(None),
                   Impression.placement != "reorder", Impression.created_at >= since)
            .group_by(Impression.shopper_id, Impression.holdout)):
        if shopper not in first_seen or at < first_seen[shopper][1]:
            first_seen[shopper] = (bool(holdout), at)
    buyers: dict[str, datetime] = {}
    if first_seen:
        for customer, at in db.session.execute(
                sa.select(Order.customer_external_id, sa.func.max(Order.created_at))
                .where(Order.shop_id == shop_id, Order.cancelled.is_(False),
                       Order.created_at >= since,
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


def offer_cost(shop_id: str, days: int = 30, *, now: datetime | None = None) -> Decimal:
    since = (now or utcnow()) - timedelta(days=days)
    value = db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(OfferLedgerEntry.amount), 0))
                              .where(OfferLedgerEntry.shop_id == shop_id,
                                     OfferLedgerEntry.at >= since))
    return Decimal(str(value or 0))


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
            "rate_limited": rate_limited, "syncs": progress}
