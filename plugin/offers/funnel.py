"""Funnel stage of a shopper from their events, cart and orders.

Rules, first match wins (``idle_minutes`` and ``lapsed_days`` from the guardrails):

1. ``lapsed_customer``: has orders, the last one more than ``lapsed_days`` ago;
2. with items in the cart: ``idle_cart`` when the cart last changed more than
   ``idle_minutes`` ago, else ``returning_customer`` if they have ordered, else
   ``active_cart``;
3. without a cart: ``wishlist_holder`` (a wishlist event and no order since),
   ``returning_customer`` (has ordered), ``browsing`` (any event), ``new_visitor``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from plugin.extensions import db
from plugin.models import Interaction, Order
from plugin.offers.settings import Guardrails

CART_KINDS = ("add_to_cart", "remove_from_cart")


@dataclass(frozen=True)
class FunnelFacts:
    has_cart: bool
    cart_changed_at: datetime | None
    orders: int
    last_order_at: datetime | None
    events: int
    last_wishlist_at: datetime | None


def classify(facts: FunnelFacts, rails: Guardrails, now: datetime) -> str:
    """The stage for these facts (pure; rules in the module docstring)."""
    if facts.orders and facts.last_order_at is not None \
            and now - facts.last_order_at > timedelta(days=rails.lapsed_days):
        return "lapsed_customer"
    if facts.has_cart:
        if facts.cart_changed_at is not None \
                and now - facts.cart_changed_at > timedelta(minutes=rails.idle_minutes):
            return "idle_cart"
        return "returning_customer" if facts.orders else "active_cart"
    if facts.last_wishlist_at is not None and (
            facts.last_order_at is None or facts.last_wishlist_at > facts.last_order_at):
        return "wishlist_holder"
    if facts.orders:
        return "returning_customer"
    return "browsing" if facts.events else "new_visitor"


def gather(shop_id: str, shopper_id: str, *, has_cart: bool,
           cart_changed_at: datetime | None = None) -> FunnelFacts:
    """Look up the facts; the cart's last change falls back to the last cart event."""
    orders, last_order = db.session.execute(
        sa.select(sa.func.count(Order.id), sa.func.max(Order.created_at)).where(
            Order.shop_id == shop_id, Order.customer_external_id == shopper_id,
            Order.cancelled.is_(False))).one()
    base = sa.select(sa.func.count(Interaction.id), sa.func.max(Interaction.occurred_at)).where(
        Interaction.shop_id == shop_id, Interaction.shopper_id == shopper_id)
    events, _ = db.session.execute(base).one()
    _, last_cart = db.session.execute(base.where(Interaction.kind.in_(CART_KINDS))).one()
    _, last_wish = db.session.execute(base.where(Interaction.kind == "wishlist")).one()
    last_order = _aware(last_order)
    return FunnelFacts(has_cart=has_cart, cart_changed_at=cart_changed_at or _aware(last_cart),
                       orders=int(orders or 0), last_order_at=last_order,
                       events=int(events or 0), last_wishlist_at=_aware(last_wish))


def _aware(value: datetime | None) -> datetime | None:
    """Aggregates bypass the column type on SQLite, so re-attach UTC when it is missing."""
    from datetime import UTC

    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
