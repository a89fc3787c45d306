"""Candidate offers for one cart: what each offer type would cost and what it asks for.

Every money discount becomes a *fixed amount* on the platform (scoped to products and a
minimum subtotal) even when the shopper sees a percentage, so the platform never gives more
than the amount the guardrails approved, whatever is added to the cart later.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Literal

from plugin.offers.settings import OFFER_KINDS, Guardrails

CENT = Decimal("0.01")
KINDS = OFFER_KINDS


@dataclass(frozen=True)
class Line:
    """One cart line as the policy sees it (``cost`` per unit when the merchant knows it)."""

    product_id: str
    quantity: int
    unit_price: Decimal
    categories: tuple[str, ...] = ()
    cost: Decimal | None = None

    @property
    def revenue(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Complement:
    """A product to add: ``bundle``/``cross_sell`` add it, ``upsell`` swaps ``replaces``."""

    kind: Literal["bundle", "cross_sell", "upsell"]
    product_id: str
    title: str
    price: Decimal
    categories: tuple[str, ...] = ()
    cost: Decimal | None = None
    anchor_id: str | None = None  # the cart product it goes with (bundle) or replaces (upsell)


@dataclass(frozen=True)
class Candidate:
    """A concrete offer and its economics (money in the cart's currency)."""

    kind: str
    discount_kind: Literal["fixed", "free_shipping"]
    amount: Decimal  # the most this offer can cost the merchant
    display_pct: Decimal | None  # what the shopper is told ("10% off"), if a percentage
    product_ids: tuple[str, ...]  # platform scope; () = whole order
    min_subtotal: Decimal  # the platform refuses the code below this subtotal
    scope_revenue: Decimal  # full-price revenue of the discounted goods
    scope_cost: Decimal  # their cost
    added_revenue: Decimal = Decimal(0)  # what the shopper must add to use it
    added_cost: Decimal = Decimal(0)
    reason: str = ""


def unit_cost(price: Decimal, cost: Decimal | None, rails: Guardrails) -> Decimal:
    """Known cost, else price times (1 - default margin)."""
    if cost is not None:
        return cost
    return price * (Decimal(100) - rails.default_margin_pct) / Decimal(100)


def excluded(product_id: str, categories: tuple[str, ...], rails: Guardrails) -> bool:
    return product_id in rails.excluded_products or bool(
        set(categories) & rails.excluded_categories)


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_DOWN)


def _fmt(value: Decimal, currency: str) -> str:
    return f"{currency} {value.quantize(CENT)}"


def build(stage_kinds: tuple[str, ...], lines: tuple[Line, ...], complements: tuple[
        Complement, ...], rails: Guardrails, currency: str) -> list[Candidate]:
    """All candidates the stage allows, before guardrails and the conversion model."""
    eligible = tuple(ln for ln in lines if not excluded(ln.product_id, ln.categories, rails))
    subtotal = sum((ln.revenue for ln in lines), Decimal(0))
    elig_rev = sum((ln.revenue for ln in eligible), Decimal(0))
    elig_cost = sum((unit_cost(ln.unit_price, ln.cost, rails) * ln.quantity for ln in eligible),
                    Decimal(0))
    scope = tuple(sorted({ln.product_id for ln in eligible})) if len(eligible) < len(lines) \
        else ()
    levels = [p for p in rails.discount_levels_pct if 0 < p <= rails.max_discount_pct]
    out: list[Candidate] = []
    for kind in stage_kinds:
        if kind == "percent_cart" and elig_rev > 0:
            for pct in levels:
                amount = _money(elig_rev * pct / 100)
                out.append(Candidate(kind, "fixed", amount, pct, scope, subtotal, elig_rev,
                                     elig_cost, reason=f"{pct}% off your cart today"))
        elif kind == "fixed_cart" and elig_rev > 0:
            for pct in levels:
                amount = (elig_rev * pct / 100).to_integral_value(rounding=ROUND_DOWN)
                if amount > 0:
                    out.append(Candidate(kind, "fixed", amount, None, scope, subtotal, elig_rev,
                                         elig_cost, reason=f"{_fmt(amount, currency)} off "
                                         "if you check out now"))
        elif kind == "percent_item" and eligible:
            top = max(eligible, key=lambda ln: (ln.revenue, ln.product_id))
            cost = unit_cost(top.unit_price, top.cost, rails) * top.quantity
            for pct in levels:
                out.append(Candidate(kind, "fixed", _money(top.revenue * pct / 100), pct,
                                     (top.product_id,), subtotal, top.revenue, cost,
                                     reason=f"{pct}% off an item you saved"))
        elif kind == "free_shipping" and subtotal > 0:
            out.append(_free_shipping(subtotal, elig_rev, elig_cost, rails, currency))
        elif kind in ("bundle", "cross_sell", "upsell"):
            out += _add_ons(kind, lines, complements, levels, rails, subtotal, currency)
    return out


def _free_shipping(subtotal: Decimal, rev: Decimal, cost: Decimal, rails: Guardrails,
                   currency: str) -> Candidate:
    gap = (rails.free_shipping_threshold or Decimal(0)) - subtotal
    reason = ("Free shipping on this order, no need to add "
              f"{_fmt(gap, currency)} more") if gap > 0 else "Free shipping on this order"
    return Candidate("free_shipping", "free_shipping", rails.shipping_cost, None, (), subtotal,
                     rev, cost, reason=reason)


def _add_ons(kind: str, lines: tuple[Line, ...], complements: tuple[Complement, ...],
             levels: list[Decimal], rails: Guardrails, subtotal: Decimal,
             currency: str) -> list[Candidate]:
    by_id = {ln.product_id: ln for ln in lines}
    out: list[Candidate] = []
    for comp in complements:
        if comp.kind != kind or comp.product_id in by_id or comp.price <= 0 \
                or excluded(comp.product_id, comp.categories, rails):
            continue
        comp_cost = unit_cost(comp.price, comp.cost, rails)
        anchor = by_id.get(comp.anchor_id or "")
        for pct in levels:
            if kind == "bundle" and anchor is not None and not excluded(
                    anchor.product_id, anchor.categories, rails):
                pair = anchor.unit_price + comp.price
                pair_cost = unit_cost(anchor.unit_price, anchor.cost, rails) + comp_cost
                amount = _money(pair * pct / 100)
                out.append(Candidate(kind, "fixed", amount, pct,
                                     tuple(sorted({anchor.product_id, comp.product_id})),
                                     subtotal + comp.price, pair, pair_cost, comp.price,
                                     comp_cost, reason=f"Add {comp.title}: {pct}% off the pair"))
            elif kind == "cross_sell":
                amount = _money(comp.price * pct / 100)
                out.append(Candidate(kind, "fixed", amount, pct, (comp.product_id,),
                                     subtotal + comp.price, comp.price, comp_cost, comp.price,
                                     comp_cost, reason=f"Goes with your cart: {comp.title}, "
                                     f"{pct}% off"))
            elif kind == "upsell" and anchor is not None and comp.price > anchor.unit_price:
                amount = _money(comp.price * pct / 100)
                extra = comp.price - anchor.unit_price - amount
                out.append(Candidate(kind, "fixed", amount, pct, (comp.product_id,),
                                     subtotal - anchor.unit_price + comp.price, comp.price,
                                     comp_cost, comp.price - anchor.unit_price,
                                     comp_cost - unit_cost(anchor.unit_price, anchor.cost, rails),
                                     reason=f"Upgrade to {comp.title} for only "
                                     f"{_fmt(extra, currency)} more"))
    return out
