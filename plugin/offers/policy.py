"""Pure decision: the offer that maximises expected margin within the guardrails, or none.

For a candidate with cost ``A`` the expected margin gain over offering nothing is::

    gain = p1 * (M + u * (M_add - A)) - p0 * M

``M`` is the cart's margin, ``p0``/``p1`` the conversion probability without/with the
offer (the uplift model), ``u`` the share of converting shoppers who use the offer (1 for
cart-wide offers, ``addon_take_rate`` for add-ons) and ``M_add`` the margin of what the
shopper must add. A shopper who would buy anyway has ``p1 ~ p0``, so the discount only
costs margin and ``gain < 0``: no offer. Guardrails are checked first and are absolute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from plugin.offers.candidates import Candidate, Complement, Line, build, excluded, unit_cost
from plugin.offers.settings import Guardrails

#: ``predict(features, discount_pct) -> P(convert)``; ``discount_pct == 0`` is "no offer".
ConversionModel = Callable[[Mapping[str, Any], float], float]

ADDON_TAKE_RATE = 0.3


@dataclass(frozen=True)
class Situation:
    """Everything the policy needs about this shopper and cart, already looked up."""

    stage: str
    lines: tuple[Line, ...]
    currency: str
    budget_left_day: Decimal
    budget_left_month: Decimal
    capped: bool = False  # frequency cap reached
    stacking: bool = False  # a discount is already on the cart or a live offer exists
    complements: tuple[Complement, ...] = ()
    features: Mapping[str, Any] = field(default_factory=dict)
    #: Most products the platform's discount can be limited to exactly (None: any); an
    #: offer scoped to more becomes an order-wide code there.
    scope_limit: int | None = None
    #: False when the platform's free-shipping discount waives any shipping price (Vendure):
    #: the offer's cost would then not be the ``shipping_cost`` the guardrails were checked
    #: and the budget charged with, so free shipping is not offered there at all.
    free_shipping_capped: bool = True
    #: The currencies the platform takes an offer's amounts in as meant (None: any). Every
    #: candidate is amounts there (a value or shipping cap, and the subtotal as minimum),
    #: so a cart in another currency is offered nothing (``plugin.offers.platform``).
    amount_currencies: frozenset[str] | None = None
    #: The cart is in another currency than ``currency``, which the platform converts the
    #: offer's amounts from at checkout (``plugin.offers.pricing``). Its shipping cap is not
    #: documented to be converted, so free shipping is not offered on such a cart.
    converted: bool = False

    @property
    def subtotal(self) -> Decimal:
        return sum((ln.revenue for ln in self.lines), Decimal(0))


@dataclass(frozen=True)
class Decision:
    """The chosen offer (or None with ``why``) and the numbers behind the choice."""

    offer: Candidate | None
    why: str
    p_control: float | None = None
    p_treated: float | None = None
    expected_gain: float = 0.0


def violations(c: Candidate, s: Situation, rails: Guardrails) -> list[str]:
    """Every guardrail ``c`` breaks (empty list: allowed)."""
    out = []
    if c.amount <= 0:
        out.append("no_discount")
    if c.scope_revenue <= 0 or c.amount * 100 > rails.max_discount_pct * c.scope_revenue:
        out.append("max_discount")
    net = c.scope_revenue - c.amount
    if net <= 0 or (net - c.scope_cost) * 100 < rails.margin_floor_pct * net:
        out.append("margin_floor")
    if c.amount > s.budget_left_day or c.amount > s.budget_left_month:
        out.append("budget")
    if c.discount_kind == "free_shipping" and not s.free_shipping_capped:
        out.append("uncapped_shipping")
    if c.discount_kind == "free_shipping" and s.converted:
        out.append("converted_shipping_cap")
    if s.amount_currencies is not None and s.currency.upper() not in s.amount_currencies:
        out.append("amount_currency")
    cats = {ln.product_id: ln.categories for ln in s.lines}
    cats.update({cp.product_id: cp.categories for cp in s.complements})
    if any(excluded(p, cats.get(p, ()), rails) for p in c.product_ids):
        out.append("excluded_product")
    order_wide = not c.product_ids or (s.scope_limit is not None
                                       and len(c.product_ids) > s.scope_limit)
    if order_wide and any(excluded(ln.product_id, ln.categories, rails) for ln in s.lines):
        out.append("excluded_product")  # an order-wide code would discount excluded items
    return out


def choose(s: Situation, rails: Guardrails, model: ConversionModel) -> Decision:
    """Pick the best allowed candidate; ties go to the cheaper offer, then the kind name."""
    if s.stacking:
        return Decision(None, "no_stacking")
    if s.capped:
        return Decision(None, "frequency_cap")
    if s.subtotal < rails.min_cart_value:
        return Decision(None, "below_min_cart_value")
    kinds = rails.stages.get(s.stage, ())
    allowed = [c for c in build(kinds, s.lines, s.complements, rails, s.currency)
               if c.kind in kinds and not violations(c, s, rails)]
    p0 = _clip(model(s.features, 0.0))
    if not allowed:
        return Decision(None, "no_allowed_candidate", p0)
    margin = float(sum((ln.revenue - unit_cost(ln.unit_price, ln.cost, rails) * ln.quantity
                        for ln in s.lines), Decimal(0)))
    best: tuple[float, float, str] | None = None
    chosen: tuple[Candidate, float, float] | None = None
    for c in allowed:
        pct = float(c.amount / (s.subtotal + c.added_revenue) * 100)
        p1 = max(_clip(model(s.features, pct)), p0)  # an offer never lowers conversion
        take = 1.0 if c.added_revenue == 0 else ADDON_TAKE_RATE
        m_add = float(c.added_revenue - c.added_cost)
        gain = p1 * (margin + take * (m_add - float(c.amount))) - p0 * margin
        key = (-gain, float(c.amount), c.kind)
        if best is None or key < best:
            best, chosen = key, (c, p1, gain)
    assert chosen is not None
    cand, p1, gain = chosen
    if gain <= 0:
        return Decision(None, "no_expected_gain", p0, p1, gain)
    return Decision(cand, "best_expected_margin", p0, p1, gain)


def _clip(p: float) -> float:
    return min(max(float(p), 0.0), 1.0)
