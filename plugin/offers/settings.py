"""Merchant guardrails from ``Shop.settings["offers"]``; every key states its default.

Pure (no Flask, no database) so the policy and its property tests use the same object.
Money is ``Decimal`` in the shop's currency (the catalogue's: the platform's default, in
which the mirrored prices are), budgets and ``product_costs`` included; percentages are
0-100. A cart in another currency the catalogue prices (a Vendure channel's other sold
currencies) needs the merchant's own figures in it (``currency_guardrails``): we keep no
exchange rate, so without them it is offered nothing (``currency_mismatch``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from typing import Any

from plugin.urls import address_problem, web_url_problem

log = logging.getLogger(__name__)

#: Every kind of candidate offer (``candidates``), which a stage may be given.
OFFER_KINDS = ("percent_cart", "fixed_cart", "percent_item", "free_shipping", "bundle",
               "cross_sell", "upsell")

#: Which candidate offers each funnel stage may receive (override per shop: ``stages``).
DEFAULT_STAGES: dict[str, tuple[str, ...]] = {
    "new_visitor": ("free_shipping", "percent_cart"),
    "browsing": ("cross_sell",),
    "active_cart": ("free_shipping", "bundle", "cross_sell", "upsell"),
    "idle_cart": ("percent_cart", "fixed_cart", "free_shipping"),
    "wishlist_holder": ("percent_item",),
    "returning_customer": ("bundle", "cross_sell", "upsell", "free_shipping"),
    "lapsed_customer": ("percent_cart", "fixed_cart"),
}


@dataclass(frozen=True)
class CurrencyGuardrails:
    """The money guardrails in one other currency, as the merchant sets them in it."""

    daily_budget: Decimal
    monthly_budget: Decimal
    min_cart_value: Decimal
    #: Known unit costs in this currency; a product with a cost in the shop's currency
    #: but none here is not offered in it (its margin floor would need an exchange rate).
    product_costs: dict[str, Decimal] = field(default_factory=dict)
    #: None: no free-shipping offers in this currency (its cost here is unknown).
    shipping_cost: Decimal | None = None
    free_shipping_threshold: Decimal | None = None


@dataclass(frozen=True)
class Guardrails:
    """Hard limits no offer may break, plus the knobs of stages and timing."""

    #: Largest discount as a share of the discounted goods (never exceeded).
    max_discount_pct: Decimal = Decimal(15)
    #: Gross margin that must remain after the discount, as % of discounted revenue.
    margin_floor_pct: Decimal = Decimal(20)
    #: Margin assumed for products without a known cost (``product_costs``).
    default_margin_pct: Decimal = Decimal(40)
    #: Discount money that may be committed per day / calendar month of the shop's time
    #: zone (``budget.remaining``), as on the dashboard.
    daily_budget: Decimal = Decimal(100)
    monthly_budget: Decimal = Decimal(1500)
    #: Days after an accepted offer before the same shopper can get another.
    frequency_cap_days: int = 7
    #: No offer below this cart subtotal.
    min_cart_value: Decimal = Decimal(20)
    excluded_products: frozenset[str] = frozenset()
    excluded_categories: frozenset[str] = frozenset()
    #: Discount percentages the policy may choose from (capped by ``max_discount_pct``).
    discount_levels_pct: tuple[Decimal, ...] = (Decimal(5), Decimal(10), Decimal(15))
    #: How long a quoted offer stands (the widget's countdown).
    offer_ttl_minutes: int = 30
    #: Subtotal at which shipping becomes free (None: the shop has no threshold).
    free_shipping_threshold: Decimal | None = None
    #: What free shipping costs the merchant per order (budget and margin accounting); the
    #: platform discount saves at most this (no free shipping where it cannot: Vendure).
    shipping_cost: Decimal = Decimal("4.95")
    #: Cart unchanged this long -> idle cart; no order this long -> lapsed customer.
    idle_minutes: int = 30
    lapsed_days: int = 90
    #: At most one nudge per shopper per this many days; URL that receives them.
    nudge_period_days: int = 7
    nudge_webhook_url: str | None = None
    #: Storefront cart URL; a nudge links ``<cart_url>?sk_offer=<token>`` when it has an offer.
    cart_url: str | None = None
    #: Orders within this many days of a quote / a recommendation click are attributed.
    attribution_window_days: int = 7
    #: Known unit costs ``{product_id: cost}``; others use ``default_margin_pct``.
    product_costs: dict[str, Decimal] = field(default_factory=dict)
    stages: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_STAGES))
    #: Money guardrails for offers in other currencies than the shop's, by currency code:
    #: ``{"EUR": {"daily_budget": 90, "monthly_budget": 1300, "min_cart_value": 18,
    #: "product_costs": {...}, "shipping_cost": 4.5, "free_shipping_threshold": 50}}``
    #: (the first three required). Each currency's budgets are spent by its offers alone;
    #: the shop's by offers in every currency not named here.
    currency_guardrails: dict[str, CurrencyGuardrails] = field(default_factory=dict)
    #: The currency of the money above, once ``in_currency`` took another's (None: the shop's).
    budget_currency: str | None = None
    #: Keys whose stored value the settings page refuses, left out (``drop_refused``):
    #: serving makes no offer while any is (``settings_refused``).
    refused: tuple[str, ...] = ()
    #: The same of the keys only nudges read (``NUDGE_KEYS``): no nudge is sent while
    #: any is (quotes go on: they read neither).
    nudge_refused: tuple[str, ...] = ()

    def in_currency(self, currency: str) -> Guardrails:
        """The guardrails for an offer in ``currency``: the merchant's figures for it where
        ``currency_guardrails`` names it, else these (the shop's currency)."""
        code = currency.upper()
        own = self.currency_guardrails.get(code)
        if own is None or self.budget_currency == code:
            return self
        stages = self.stages if own.shipping_cost is not None else {
            stage: tuple(k for k in kinds if k != "free_shipping")
            for stage, kinds in self.stages.items()}
        return replace(self, daily_budget=own.daily_budget, monthly_budget=own.monthly_budget,
                       min_cart_value=own.min_cart_value, product_costs=dict(own.product_costs),
                       shipping_cost=self.shipping_cost if own.shipping_cost is None
                       else own.shipping_cost, free_shipping_threshold=own
                       .free_shipping_threshold, stages=stages, budget_currency=code)


#: Each figure's allowed range (inclusive), one table for the settings page's schema
#: (``plugin.admin.schemas``) and for serving: a figure stored outside it (by an older
#: release, or written around the page) is refused here as it is there. Those without an
#: input on the page are set in the settings JSON; their ranges keep serving sane.
LIMITS: dict[str, tuple[int, int]] = {
    "max_discount_pct": (0, 90), "margin_floor_pct": (0, 95), "default_margin_pct": (1, 100),
    "daily_budget": (0, 10**7), "monthly_budget": (0, 10**8), "frequency_cap_days": (0, 365),
    "min_cart_value": (0, 10**6), "free_shipping_threshold": (0, 10**6),
    "shipping_cost": (0, 10**6), "discount_levels_pct": (1, 90),
    "offer_ttl_minutes": (1, 1440), "idle_minutes": (1, 10080), "lapsed_days": (1, 3650),
    "nudge_period_days": (1, 365), "attribution_window_days": (1, 365)}
#: The longest excluded product or category id (the page's).
TEXT_LIMIT = 255

#: The largest of each figure in another currency (the admin schema's ranges; none below 0).
CURRENCY_LIMITS: dict[str, int] = {key: LIMITS[key][1] for key in (
    "daily_budget", "monthly_budget", "min_cart_value", "shipping_cost",
    "free_shipping_threshold")}
#: The largest unit cost in ``product_costs`` of another currency.
PRODUCT_COST_LIMIT = 10**7


def currency_problems(figures: Mapping[str, Decimal | None]) -> dict[str, str]:
    """What is wrong across one other currency's figures, by figure: the admin schema
    shows each at its input, and the same rules hold wherever the figures are read."""
    problems = {}
    daily, monthly = figures.get("daily_budget"), figures.get("monthly_budget")
    if daily is not None and monthly is not None and monthly < daily:
        problems["monthly_budget"] = "The monthly budget cannot be below the daily budget."
    if figures.get("free_shipping_threshold") is not None \
            and figures.get("shipping_cost") is None:  # in_currency offers no free shipping
        problems["free_shipping_threshold"] = (
            "Free shipping in this currency needs its shipping cost: give the shipping "
            "cost, or empty this (without it no free shipping is offered in it).")
    return problems


#: Keys only nudges read: a refused one stops the nudges, not the offers.
NUDGE_KEYS = frozenset({"nudge_webhook_url", "cart_url"})


def served_problem(key: str, value: Any) -> str | None:
    """What is wrong with a stored ``stages``, ``cart_url`` or ``nudge_webhook_url`` (None:
    nothing): serving's rule, which the admin schema applies too (they have no input on the
    settings page; they are set in the settings JSON)."""
    if value is None:
        return None
    if key in NUDGE_KEYS:  # the webhook is posted to by us: not at our own network
        problem = web_url_problem(value)
        if problem is None and key == "nudge_webhook_url":
            problem = address_problem(value)
        return problem
    if key == "stages":
        return _stages_problem(value)
    return None


def _stages_problem(value: Any) -> str | None:
    """A ``stages`` override names funnel stages (``DEFAULT_STAGES``), each with a list of
    offer kinds (``OFFER_KINDS``)."""
    if not isinstance(value, Mapping):
        return "not a mapping of funnel stages to offer kinds"
    for stage, kinds in value.items():
        if stage not in DEFAULT_STAGES:
            return f"{stage!r} is no funnel stage (they are {', '.join(DEFAULT_STAGES)})"
        if not isinstance(kinds, list | tuple):
            return f"{stage}: not a list of offer kinds"
        unknown = [k for k in kinds if k not in OFFER_KINDS]
        if unknown:
            return (f"{stage}: {unknown[0]!r} is no kind of offer (they are "
                    f"{', '.join(OFFER_KINDS)})")
    return None


_DECIMALS = {"max_discount_pct", "margin_floor_pct", "default_margin_pct", "daily_budget",
             "monthly_budget", "min_cart_value", "shipping_cost"}
_INTS = {"frequency_cap_days", "offer_ttl_minutes", "idle_minutes", "lapsed_days",
         "nudge_period_days", "attribution_window_days"}


def guardrails_from(raw: dict[str, Any] | None, *, drop_refused: bool = False,
                    own_currency: str | None = None) -> Guardrails:
    """Parse the ``offers`` settings dict; unknown keys are ignored, what the settings page
    would refuse raises.

    ``drop_refused`` (serving): a refused figure is left out instead (logged), its default
    taken and its key named in ``refused``, so serving makes no offer (``settings_refused``)
    rather than failing or applying it; a currency's refused figures leave that currency
    out, so it is offered nothing (``currency_mismatch``) while the shop's own keeps its
    offers. ``own_currency``: the shop's, whose figures are the ones above; an entry for it
    in ``currency_guardrails`` (refused on save) is ignored."""
    raw = raw if isinstance(raw, dict) else {}
    known = {f.name for f in fields(Guardrails)} - {"budget_currency", "refused",
                                                     "nudge_refused"}
    values: dict[str, Any] = {}
    refused: list[str] = []
    nudge_refused: list[str] = []
    for key, value in raw.items():
        if key not in known or (value is None and key != "free_shipping_threshold"):
            continue
        try:
            values[key] = _value(key, value, drop_refused)
        except (TypeError, ValueError, AttributeError, ArithmeticError) as err:
            _refused(key, str(err), drop_refused)
            (nudge_refused if key in NUDGE_KEYS else refused).append(key)
    if own_currency and values.get("currency_guardrails", {}).pop(
            own_currency.upper(), None) is not None:
        log.warning("offers.currency_guardrails.%s ignored: the shop's own currency",
                    own_currency.upper())
    daily, monthly = values.get("daily_budget"), values.get("monthly_budget")
    if daily is not None and monthly is not None and monthly < daily:  # the page's rule
        _refused("monthly_budget", "below the daily budget", drop_refused)
        del values["monthly_budget"]
        refused.append("monthly_budget")
    return Guardrails(**values, refused=tuple(sorted(refused)),
                      nudge_refused=tuple(sorted(nudge_refused)))


def _value(key: str, value: Any, drop_refused: bool) -> Any:
    """One stored figure as ``Guardrails`` holds it; raises what the page would refuse."""
    if key in _DECIMALS or key == "free_shipping_threshold":
        return None if value is None else _bounded(key, _number(value), LIMITS[key])
    if key in _INTS:
        number = _number(value)
        if number != number.to_integral_value():
            raise ValueError(f"{key}: {value!r} is not a whole number")
        return int(_bounded(key, number, LIMITS[key]))
    if key in ("excluded_products", "excluded_categories"):
        ids = frozenset(str(v) for v in _listed(value))
        if not all(1 <= len(i) <= TEXT_LIMIT for i in ids):
            raise ValueError(f"{key}: an id is empty or longer than {TEXT_LIMIT} characters")
        return ids
    if key == "discount_levels_pct":
        return tuple(sorted(_bounded(key, _number(v), LIMITS[key]) for v in _listed(value)))
    if key == "product_costs":
        return {str(k): _bounded(f"product_costs.{k}", _number(v), (0, PRODUCT_COST_LIMIT))
                for k, v in value.items()}
    if key == "currency_guardrails":
        return _currencies(value, drop_refused)
    problem = served_problem(key, value)
    if problem:
        raise ValueError(f"{key}: {problem}")
    if key == "stages":
        return {**DEFAULT_STAGES, **{str(k): tuple(v) for k, v in value.items()}}
    return value


def _number(value: Any) -> Decimal:
    """A stored figure as a finite ``Decimal`` (JSON ``true`` is no figure)."""
    try:
        number = None if isinstance(value, bool) else Decimal(str(value))
    except ArithmeticError:
        number = None
    if number is None or not number.is_finite():
        raise ValueError(f"{value!r} is not a number")
    return number


def _listed(value: Any) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ValueError("not a list")
    return list(value)


def _bounded(key: str, value: Decimal, limits: tuple[int, int]) -> Decimal:
    """``value`` within the page's range, else the page's message about it."""
    low, high = limits
    if not low <= value <= high:
        raise ValueError(f"{key} must be between {low} and {high}")
    return value


def _currencies(raw: Any, drop_refused: bool) -> dict[str, CurrencyGuardrails]:
    """``currency_guardrails`` by upper-case code; what the admin schema refuses raises,
    or with ``drop_refused`` is left out (logged)."""
    if not isinstance(raw, dict):
        return _refused("currency_guardrails", "not a mapping", drop_refused) or {}
    out: dict[str, CurrencyGuardrails] = {}
    twice: set[str] = set()
    for code, figures in raw.items():
        key = str(code).upper()
        try:
            if key in out or key in twice:
                twice.add(key)
                raise ValueError("given twice")
            out[key] = _currency_guardrails(str(code), figures)
        except (TypeError, ValueError, AttributeError, ArithmeticError) as err:
            _refused(f"currency_guardrails.{code}", str(err), drop_refused)
    return {k: v for k, v in out.items() if k not in twice}


def _refused(where: str, why: str, drop_refused: bool) -> None:
    if not drop_refused:
        raise ValueError(f"{where}: {why}")
    log.warning("offers.%s left out: %s", where, why)


def _currency_guardrails(code: str, raw: dict[str, Any]) -> CurrencyGuardrails:
    """One currency's money guardrails; the budgets and minimum must be given (the shop's
    would be in another currency)."""
    if len(code) != 3 or not (code.isascii() and code.isalpha()):
        raise ValueError(f"currency_guardrails: {code!r} is not a currency code")
    if not isinstance(raw, dict):
        raise ValueError("not a mapping of figures")
    missing = {"daily_budget", "monthly_budget", "min_cart_value"} - {
        k for k, v in raw.items() if v is not None}
    if missing:
        raise ValueError(f"currency_guardrails.{code} needs {', '.join(sorted(missing))}")

    def money(key: str, value: Any) -> Decimal:
        try:
            return Decimal(str(value))
        except ArithmeticError:
            raise ValueError(f"{key}: {value!r} is not a number") from None

    costs = raw.get("product_costs") or {}
    if not isinstance(costs, dict):
        raise ValueError("product_costs is not a mapping")
    own = CurrencyGuardrails(
        daily_budget=money("daily_budget", raw["daily_budget"]),
        monthly_budget=money("monthly_budget", raw["monthly_budget"]),
        min_cart_value=money("min_cart_value", raw["min_cart_value"]),
        product_costs={str(k): money(f"product_costs.{k}", v) for k, v in costs.items()},
        shipping_cost=None if raw.get("shipping_cost") is None
        else money("shipping_cost", raw["shipping_cost"]),
        free_shipping_threshold=None if raw.get("free_shipping_threshold") is None
        else money("free_shipping_threshold", raw["free_shipping_threshold"]))
    for key, limit in CURRENCY_LIMITS.items():
        _check_amount(key, getattr(own, key), limit)
    for product, cost in own.product_costs.items():
        if not 1 <= len(product) <= 255:
            raise ValueError(f"product_costs: {product!r} is no product id")
        _check_amount(f"product_costs.{product}", cost, PRODUCT_COST_LIMIT)
    problems = currency_problems({k: getattr(own, k) for k in CURRENCY_LIMITS})
    if problems:
        raise ValueError("; ".join(f"{k}: {text}" for k, text in problems.items()))
    return own


def _check_amount(key: str, value: Decimal | None, limit: int) -> None:
    """The admin schema's range, so serving takes no figure the settings page refuses."""
    if value is not None and not (value.is_finite() and 0 <= value <= limit):
        raise ValueError(f"{key} must be between 0 and {limit}")

