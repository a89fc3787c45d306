"""The discount budget ledger: reserve when a discount is created, release if never used.

Spend in a period is the sum of entries dated in it; a release carries the date of its
reservation, so freeing yesterday's unused discount does not inflate today's budget.

Budgets are money in the shop's currency (``plugin.offers.settings``), spent by offers in
it, and by any in a currency the merchant gave no budget of its own (a converted Shopify
offer is in the shop's currency anyway). An offer in a currency with its own budget
(``Guardrails.currency_guardrails``) is charged to that one alone: amounts in two currencies
are never added up, as that would take an exchange rate.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from plugin.extensions import db
from plugin.localtime import day_start, shop_zone
from plugin.models import Offer, OfferLedgerEntry
from plugin.offers.settings import Guardrails


def _spent_since(shop_id: str, since: datetime, rails: Guardrails) -> Decimal:
    query = sa.select(sa.func.coalesce(sa.func.sum(OfferLedgerEntry.amount), 0)).where(
        OfferLedgerEntry.shop_id == shop_id, OfferLedgerEntry.at >= since)
    own = sorted(rails.currency_guardrails)
    if rails.budget_currency is not None:
        query = query.join(Offer, Offer.id == OfferLedgerEntry.offer_id).where(
            sa.func.upper(Offer.currency) == rails.budget_currency)
    elif own:
        query = query.join(Offer, Offer.id == OfferLedgerEntry.offer_id).where(sa.or_(
            Offer.currency.is_(None), sa.func.upper(Offer.currency).not_in(own)))
    return Decimal(str(db.session.scalar(query) or 0))


def remaining(shop_id: str, rails: Guardrails, now: datetime) -> tuple[Decimal, Decimal]:
    """Budget left today and this month, never below zero, in the currency of ``rails``
    (``Guardrails.in_currency``: the shop's unless it took another's).

    Days and months are the shop's (its ``timezone`` setting), as on the dashboard: a
    merchant in Los Angeles who sets a daily budget means their day, which UTC would
    restart at 4 or 5 pm.
    """
    zone = shop_zone(shop_id)
    today = now.astimezone(zone).date()
    day = day_start(today, zone)
    month = day_start(today.replace(day=1), zone)
    left_day = rails.daily_budget - _spent_since(shop_id, day, rails)
    left_month = rails.monthly_budget - _spent_since(shop_id, month, rails)
    return max(left_day, Decimal(0)), max(left_month, Decimal(0))


def reserve(offer: Offer, at: datetime) -> None:
    db.session.add(OfferLedgerEntry(shop_id=offer.shop_id, offer_id=offer.id, entry="reserve",
                                    amount=offer.amount or Decimal(0), at=at))


def reserved(offer: Offer) -> bool:
    """Whether ``offer`` holds a reservation (kept by a failed create until it is settled)."""
    return db.session.scalar(sa.select(OfferLedgerEntry.id).where(
        OfferLedgerEntry.offer_id == offer.id, OfferLedgerEntry.entry == "reserve")) is not None


def cancel(offer: Offer) -> None:
    """Undo a reservation whose discount was never created (or deleted unused)."""
    db.session.execute(sa.delete(OfferLedgerEntry).where(OfferLedgerEntry.offer_id == offer.id,
                                                         OfferLedgerEntry.entry == "reserve"))


def release(offer: Offer) -> None:
    """Give back an accepted offer's reservation (expired unused); idempotent."""
    exists = db.session.scalar(sa.select(OfferLedgerEntry.id).where(
        OfferLedgerEntry.offer_id == offer.id, OfferLedgerEntry.entry == "release"))
    if exists is None and offer.accepted_at is not None:
        db.session.add(OfferLedgerEntry(shop_id=offer.shop_id, offer_id=offer.id,
                                        entry="release", amount=-(offer.amount or Decimal(0)),
                                        at=offer.accepted_at))


def unrelease(offer: Offer) -> None:
    """The released discount was used after all (its order synced late): spend it again."""
    db.session.execute(sa.delete(OfferLedgerEntry).where(OfferLedgerEntry.offer_id == offer.id,
                                                         OfferLedgerEntry.entry == "release"))
