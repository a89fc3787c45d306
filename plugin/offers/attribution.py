"""Credit orders to offers and recommendations, settle quote outcomes, report the uplift.

Rules (``window`` = ``attribution_window_days``, default 7):

1. **Offer**: an order carrying an offer's discount code is that offer's redemption. The
   code is unique and single-use, so this rule is exact.
2. **Recommendation**: an order line is credited to the shopper's *last* click on a
   recommendation (an event with a ``rec_id``) of that product within ``window`` before
   the order. Lines without such a click are not credited.
3. **Outcome of a quote** (treatment and control alike): converted when the shopper placed
   an order within ``window`` after the quote, or redeemed the offer's code. Quotes whose
   window is still open and have no order yet stay undecided.
4. **Uplift**: a shopper's arm is the holdout flag of their quotes in the period (it is
   deterministic per shopper). Conversion = share of quoted shoppers that converted;
   revenue per visitor = their orders' totals inside the windows, divided by shoppers.

Money is the shop's currency (``plugin.currency``): orders in other currencies are not
added to revenue per visitor or attributed revenue, and are reported beside them per code
(``other_revenue``). A shopper who paid only in another currency still counts as a quoted
shopper, with no revenue in the shop's currency; the arms are drawn by shopper hash, so such
shoppers fall into both alike and the difference between the arms stays unbiased.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from plugin import currency as money
from plugin.extensions import db
from plugin.models import ClickAttribution, Interaction, Offer, Order, Redemption
from plugin.models.types import utcnow
from plugin.offers import budget
from plugin.offers.privacy import ERASED
from plugin.offers.service import CHECKOUT_GRACE
from plugin.offers.settings import Guardrails
from plugin.offers.stats import diff_means, diff_proportions


def attribute(shop_id: str, rails: Guardrails, *, now: datetime | None = None) -> dict[str, int]:
    """Run rules 1-3 and expire stale offers; idempotent, safe to run on a schedule."""
    now = now or utcnow()
    window = timedelta(days=rails.attribution_window_days)
    since = now - window - timedelta(days=1)
    orders = list(db.session.scalars(sa.select(Order).where(
        Order.shop_id == shop_id, Order.created_at >= since, Order.cancelled.is_(False))))
    counts = {"redemptions": _redemptions(shop_id, orders), "clicks": _clicks(shop_id, orders,
                                                                             window)}
    counts["settled"] = _settle(shop_id, window, now)
    counts["expired"] = _expire(shop_id, now)
    db.session.commit()
    return counts


def credit_codes(shop_id: str, order_ids: Sequence[str]) -> int:
    """Rule 1 for these orders now, as ``attribute`` would on its next run: a redaction
    clears their discount codes, after which no run could find the redemption (its offer
    would expire and release its budget, and the dashboard lose the order)."""
    orders = list(db.session.scalars(sa.select(Order).where(
        Order.shop_id == shop_id, Order.external_id.in_(order_ids),
        Order.cancelled.is_(False))))
    return _redemptions(shop_id, orders)


def _redemptions(shop_id: str, orders: list[Order]) -> int:
    coded = {c: o for o in orders for c in (o.discount_codes or [])}
    if not coded:
        return 0
    made = 0
    for offer in db.session.scalars(sa.select(Offer).where(Offer.shop_id == shop_id,
                                                           Offer.code.in_(list(coded)))):
        order = coded[offer.code or ""]
        exists = db.session.scalar(sa.select(Redemption.id).where(
            Redemption.shop_id == shop_id, Redemption.offer_id == offer.id))
        if exists is None:
            db.session.add(Redemption(shop_id=shop_id, offer_id=offer.id,
                                      order_external_id=order.external_id, revenue=order.total,
                                      redeemed_at=order.created_at))
            made += 1
        if offer.status == "expired":
            budget.unrelease(offer)  # released before its order arrived
        offer.status, offer.converted = "redeemed", True
    return made


def _clicks(shop_id: str, orders: list[Order], window: timedelta) -> int:
    by_customer = defaultdict(list)
    for o in orders:
        if o.customer_external_id:
            by_customer[o.customer_external_id].append(o)
    if not by_customer:
        return 0
    clicks = db.session.scalars(sa.select(Interaction).where(
        Interaction.shop_id == shop_id, Interaction.kind == "click",
        Interaction.shopper_id.in_(list(by_customer))).order_by(Interaction.occurred_at))
    last: dict[tuple[str, str], list[Interaction]] = defaultdict(list)
    for c in clicks:
        if (c.context or {}).get("rec_id"):
            last[(c.shopper_id, c.product_external_id)].append(c)
    done = {(r.order_external_id, r.product_external_id) for r in db.session.scalars(
        sa.select(ClickAttribution).where(ClickAttribution.shop_id == shop_id))}
    made = 0
    for customer, cust_orders in by_customer.items():
        for order in cust_orders:
            for product, revenue in _revenue_by_product(order).items():
                if (order.external_id, product) in done:
                    continue
                hits = [c for c in last.get((customer, product), [])
                        if order.created_at - window <= c.occurred_at <= order.created_at]
                if hits:
                    db.session.add(ClickAttribution(
                        shop_id=shop_id, order_external_id=order.external_id,
                        product_external_id=product, rec_id=hits[-1].context["rec_id"],
                        revenue=revenue, clicked_at=hits[-1].occurred_at))
                    done.add((order.external_id, product))
                    made += 1
    return made


def _revenue_by_product(order: Order) -> dict[str, Decimal]:
    """Each product's revenue in the order, summed over its lines: one product can be
    several lines (two sizes, two variants), and a credit is one row per order and product,
    so crediting line by line kept the first line's revenue and dropped the others."""
    out: dict[str, Decimal] = {}
    for line in order.lines:
        key = line.product_external_id
        out[key] = out.get(key, Decimal(0)) + line.price * line.quantity
    return out


def _settle(shop_id: str, window: timedelta, now: datetime) -> int:
    open_quotes = list(db.session.scalars(sa.select(Offer).where(
        Offer.shop_id == shop_id, Offer.converted.is_(None))))
    if not open_quotes:
        return 0
    start = min(q.created_at for q in open_quotes)
    times = defaultdict(list)
    for customer, at in db.session.execute(sa.select(Order.customer_external_id,
                                                     Order.created_at).where(
            Order.shop_id == shop_id, Order.created_at >= start, Order.cancelled.is_(False),
            Order.customer_external_id.in_({q.shopper_id for q in open_quotes}))):
        times[customer].append(at)
    settled = 0
    for q in open_quotes:
        if any(q.created_at <= t <= q.created_at + window for t in times.get(q.shopper_id, [])):
            q.converted = True
        elif q.created_at + window <= now:
            q.converted = False
        else:
            continue
        settled += 1
    return settled


def _expire(shop_id: str, now: datetime) -> int:
    n = 0
    for offer in db.session.scalars(sa.select(Offer).where(
            Offer.shop_id == shop_id, Offer.status.in_(("offered", "accepted")),
            Offer.expires_at <= now)):
        if offer.status == "accepted":
            if offer.expires_at + CHECKOUT_GRACE > now:
                continue
            budget.release(offer)
        offer.status = "expired"
        n += 1
    return n


def uplift_report(shop_id: str, rails: Guardrails, since: datetime, until: datetime
                  ) -> dict[str, Any]:
    """Rule 4: per-arm shoppers, conversion and revenue per visitor, differences with CIs."""
    window = timedelta(days=rails.attribution_window_days)
    # Erased shoppers' quotes all carry the same placeholder id: pooled, they would count as
    # one shopper in one arm. They cannot be linked to orders any more, so they are left out.
    quotes = db.session.execute(sa.select(Offer.id, Offer.shopper_id, Offer.holdout,
                                          Offer.created_at, Offer.converted).where(
        Offer.shop_id == shop_id, Offer.created_at >= since, Offer.created_at < until,
        Offer.shopper_id != ERASED).order_by(Offer.created_at, Offer.id)).all()
    undone = cancelled_conversions(shop_id, [(q, sid, at) for q, sid, _, at, converted
                                              in quotes if converted], window)
    shoppers: dict[str, dict[str, Any]] = {}
    for oid, sid, holdout, at, converted in quotes:
        s = shoppers.setdefault(sid, {"holdout": bool(holdout), "first": at, "last": at,
                                      "converted": False})
        s["first"], s["last"] = min(s["first"], at), max(s["last"], at)
        s["converted"] |= bool(converted) and oid not in undone
    code = money.shop_currency(shop_id)
    revenue, other = _revenue(shop_id, shoppers, window, code)
    arms: dict[str, dict[str, Any]] = {}
    values: dict[str, list[float]] = {"treatment": [], "control": []}
    for arm, flag in (("treatment", False), ("control", True)):
        ids = [sid for sid, s in shoppers.items() if s["holdout"] is flag]
        conv = sum(1 for sid in ids if shoppers[sid]["converted"])
        values[arm] = [revenue.get(sid, 0.0) for sid in ids]
        arms[arm] = {"shoppers": len(ids), "converted": conv,
                     "conversion": conv / len(ids) if ids else None,
                     "revenue_per_visitor": sum(values[arm]) / len(ids) if ids else None,
                     "other_revenue": money.split(
                         ((c, v) for sid in ids for c, v in other.get(sid, ())), code)[1]}
    t, c = arms["treatment"], arms["control"]
    conv_ci = diff_proportions(t["converted"], t["shoppers"], c["converted"], c["shoppers"])
    rpv_ci = diff_means(values["treatment"], values["control"])
    return {"since": since, "until": until, "currency": code, "arms": arms,
            "conversion_uplift": None if conv_ci is None else vars(conv_ci),
            "revenue_per_visitor_uplift": None if rpv_ci is None else vars(rpv_ci),
            "method": "difference of proportions (Newcombe hybrid score, 95%) and of "
                      "means (Welch, 95%), each none until both arms have 30 shoppers; "
                      "unit = quoted shopper; arm = holdout by shopper hash",
            "attributed": _attributed(shop_id, since, until, code)}


def cancelled_conversions(shop_id: str, converted: list[tuple[int, str, datetime]],
                           window: timedelta) -> set[int]:
    """Converted quotes whose every order (the shopper's inside the window, the redeemed
    code's) has been cancelled since: the outcome was settled once, when the order came, and
    a later cancellation must take the conversion back, as it takes back the revenue."""
    if not converted:
        return set()
    orders: dict[str, list[tuple[datetime, bool]]] = defaultdict(list)
    for sid, at, cancelled in db.session.execute(sa.select(
            Order.customer_external_id, Order.created_at, Order.cancelled).where(
            Order.shop_id == shop_id,
            Order.customer_external_id.in_({sid for _, sid, _ in converted}))):
        orders[sid].append((at, bool(cancelled)))
    # a redaction unlinked its order: the redemption kept whether it was cancelled
    redeemed = dict(db.session.execute(sa.select(
        Redemption.offer_id, sa.func.coalesce(Order.cancelled, Redemption.order_cancelled))
        .outerjoin(Order, sa.and_(Order.shop_id == Redemption.shop_id,
                                  Order.external_id == Redemption.order_external_id)).where(
        Redemption.shop_id == shop_id, Redemption.offer_id.in_([q for q, _, _ in converted]),
        sa.or_(Order.id.is_not(None), Redemption.order_external_id.is_(None)))).all())
    undone = set()
    for q, sid, at in converted:
        evidence = [c for t, c in orders.get(sid, ()) if at <= t <= at + window]
        if q in redeemed:
            evidence.append(bool(redeemed[q]))
        if evidence and all(evidence):
            undone.add(q)
    return undone


def _revenue(shop_id: str, shoppers: dict[str, dict[str, Any]], window: timedelta,
             code: str | None) -> tuple[dict[str, float], dict[str, list[tuple[str, Decimal]]]]:
    """Each shopper's order totals inside their window: in the shop's currency (for the
    means), and the ``(code, total)`` of their orders in other currencies."""
    if not shoppers:
        return {}, {}
    out: dict[str, float] = defaultdict(float)
    other: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
    rows = db.session.execute(sa.select(Order.customer_external_id, Order.created_at,
                                        Order.total, Order.currency).where(
        Order.shop_id == shop_id, Order.cancelled.is_(False),
        Order.customer_external_id.in_(list(shoppers)))).all()
    for sid, at, total, cur in rows:
        s = shoppers[sid]
        if s["first"] <= at <= s["last"] + window:
            if money.is_shop_currency(cur, code):
                out[sid] += float(total or Decimal(0))
            else:
                other[sid].append((cur, total or Decimal(0)))
    return out, other


def _not_cancelled(shop_id: str,
                   order_external_id: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """The credited order has not been cancelled since (credit is given once, when the
    order arrives; a later cancellation must take it back from the report)."""
    return ~sa.exists().where(Order.shop_id == shop_id,
                              Order.external_id == order_external_id,
                              Order.cancelled.is_(True))


def _attributed(shop_id: str, since: datetime, until: datetime,
                code: str | None) -> dict[str, Any]:
    """Orders and revenue credited to offers and recommendations in the period: revenue in
    the shop's currency, other currencies beside it (the credited order's currency; a
    credit whose order is gone counts as the shop's, like an order without a code; one a
    redaction unlinked from its order kept the order's currency and cancellation)."""
    def by_currency(model: type[Any], revenue: sa.ColumnElement[Decimal],
                    at: sa.ColumnElement[datetime]) -> tuple[int, Decimal, dict[str, Decimal]]:
        credited = aliased(Order)  # not the Order that ``_not_cancelled`` correlates
        order = sa.and_(credited.shop_id == model.shop_id,
                        credited.external_id == model.order_external_id)
        cur = sa.func.upper(sa.func.coalesce(credited.currency, model.order_currency))
        rows = db.session.execute(
            sa.select(cur, sa.func.count(model.id), sa.func.coalesce(sa.func.sum(revenue), 0))
            .select_from(model).outerjoin(credited, order).where(
                model.shop_id == shop_id, at >= since, at < until,
                model.order_cancelled.is_(False),
                _not_cancelled(shop_id, model.order_external_id))
            .group_by(cur)).all()
        main, other = money.split(((cur, total) for cur, _, total in rows), code)
        return sum(int(n) for _, n, _ in rows), main, other

    offers = by_currency(Redemption, Redemption.revenue, Redemption.redeemed_at)
    recs = by_currency(ClickAttribution, ClickAttribution.revenue, ClickAttribution.clicked_at)
    return {"currency": code, "offer_orders": offers[0], "offer_revenue": offers[1],
            "offer_other_revenue": offers[2], "recommendation_lines": recs[0],
            "recommendation_revenue": recs[1], "recommendation_other_revenue": recs[2]}
