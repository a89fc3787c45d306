"""The pure policy: known answers per guardrail and a property test over random carts."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugin.offers.candidates import Complement, Line, build, unit_cost
from plugin.offers.policy import Situation, choose, violations
from plugin.offers.settings import DEFAULT_STAGES, Guardrails, guardrails_from
from plugin.offers.uplift import UpliftModel

PRIOR = UpliftModel()
ALL_KINDS = ("percent_cart", "fixed_cart", "percent_item", "free_shipping", "bundle",
             "cross_sell", "upsell")


def situation(lines=None, **kw) -> Situation:
    base = dict(stage="idle_cart", lines=lines or (Line("p1", 2, D("50")),), currency="GBP",
                budget_left_day=D(100), budget_left_month=D(1000),
                features={"stage": "idle_cart", "cart_value": 100.0, "n_items": 2})
    return Situation(**{**base, **kw})


def test_idle_cart_gets_the_best_margin_offer_within_max_discount():
    decision = choose(situation(), Guardrails(), PRIOR)
    assert decision.offer is not None
    assert decision.offer.amount == D("15.00")  # 15 % of 100: the prior pays off at the cap
    assert decision.p_treated > decision.p_control
    assert decision.expected_gain > 0


def test_shopper_who_would_buy_anyway_gets_nothing():
    s = situation(stage="active_cart", features={"stage": "active_cart", "cart_value": 100.0})
    decision = choose(s, Guardrails(), PRIOR)
    assert decision.offer is None and decision.why == "no_expected_gain"


def test_each_guardrail_blocks_on_its_own():
    rails = Guardrails()
    assert choose(situation(capped=True), rails, PRIOR).why == "frequency_cap"
    assert choose(situation(stacking=True), rails, PRIOR).why == "no_stacking"
    small = (Line("p1", 1, D("19.99")),)
    assert choose(situation(small), rails, PRIOR).why == "below_min_cart_value"
    tight = situation(budget_left_day=D("4.90"))  # cheapest: free shipping 4.95
    assert choose(tight, rails, PRIOR).why == "no_allowed_candidate"
    # a 5 % discount would leave 15/95 = 15.8 % margin on a 20 % margin product
    thin = (Line("p1", 1, D("100"), cost=D("80")),)
    assert choose(situation(thin), rails, PRIOR).why == "no_allowed_candidate"


def test_budget_allows_only_offers_that_fit():
    decision = choose(situation(budget_left_month=D("10.00")), Guardrails(), PRIOR)
    assert decision.offer is not None and decision.offer.amount <= D("10.00")


def test_excluded_products_are_never_discounted():
    rails = guardrails_from({"excluded_products": ["p2"]})
    lines = (Line("p1", 1, D("60")), Line("p2", 1, D("40")))
    decision = choose(situation(lines), rails, PRIOR)
    assert decision.offer is not None
    assert decision.offer.product_ids == ("p1",)  # scoped away from the excluded line
    assert decision.offer.amount <= D("9.00")  # 15 % of the eligible 60 only


def test_excluded_category_blocks_item_offers():
    rails = guardrails_from({"excluded_categories": ["Gift cards"],
                             "stages": {"idle_cart": ["percent_item"]}})
    lines = (Line("gc", 1, D("100"), categories=("Gift cards",)),)
    assert choose(situation(lines), rails, PRIOR).offer is None


def test_known_cost_is_used_for_the_margin_floor():
    rails = Guardrails(default_margin_pct=D(60))
    line = Line("p1", 1, D("100"), cost=D("70"))
    assert unit_cost(line.unit_price, line.cost, rails) == D("70")
    assert unit_cost(D("100"), None, rails) == D("40")


def test_add_on_candidates_carry_reasons_and_need_the_complement():
    rails = guardrails_from({"stages": {"active_cart": ["bundle", "cross_sell", "upsell"]}})
    comps = (Complement("bundle", "p9", "Milk frother", D("20"), anchor_id="p1"),
             Complement("cross_sell", "p9", "Milk frother", D("20"), anchor_id="p1"),
             Complement("upsell", "p1-pro", "Kettle Pro", D("80"), anchor_id="p1"))
    cands = build(rails.stages["active_cart"], (Line("p1", 1, D("50")),), comps, rails, "GBP")
    kinds = {c.kind for c in cands}
    assert kinds == {"bundle", "cross_sell", "upsell"}
    assert all(c.reason and c.added_revenue > 0 for c in cands)
    bundle = next(c for c in cands if c.kind == "bundle")
    assert bundle.product_ids == ("p1", "p9") and bundle.min_subtotal == D("70")


def test_order_wide_offer_with_excluded_line_is_a_violation():
    rails = guardrails_from({"excluded_products": ["p2"]})
    s = situation((Line("p1", 1, D("60")), Line("p2", 1, D("40"))))
    cand = build(("free_shipping",), s.lines, (), rails, "GBP")[0]
    assert "excluded_product" in violations(cand, s, rails)


# -- property test: random carts, guardrails, models and stages -----------------------------
money = st.decimals(min_value=D("0.50"), max_value=D("500"), places=2)
pct = st.decimals(min_value=D(1), max_value=D(60), places=1)


@st.composite
def cases(draw):
    n = draw(st.integers(1, 5))
    lines = []
    for i in range(n):
        price = draw(money)
        frac = draw(st.none() | st.decimals(min_value=D("0.2"), max_value=D("1.1"), places=2))
        lines.append(Line(f"p{i}", draw(st.integers(1, 4)), price,
                          categories=(draw(st.sampled_from(["a", "b", "c"])),),
                          cost=None if frac is None else (price * frac).quantize(D("0.01"))))
    lines = tuple(lines)
    comps = tuple(Complement(draw(st.sampled_from(["bundle", "cross_sell", "upsell"])),
                             f"c{i}", "Thing", draw(money), (draw(st.sampled_from("abc")),),
                             cost=draw(st.none() | money), anchor_id=f"p{draw(st.integers(0, n))}")
                  for i in range(draw(st.integers(0, 3))))
    rails = guardrails_from({
        "max_discount_pct": draw(pct), "margin_floor_pct": draw(pct) / 2,
        "default_margin_pct": draw(st.decimals(min_value=D(5), max_value=D(90), places=0)),
        "min_cart_value": draw(st.decimals(min_value=D(0), max_value=D(100), places=0)),
        "discount_levels_pct": draw(st.lists(st.decimals(min_value=D(1), max_value=D(40),
                                                         places=0), min_size=1, max_size=4)),
        "excluded_products": draw(st.lists(st.sampled_from([f"p{i}" for i in range(5)] +
                                                           ["c0", "c1"]), max_size=2)),
        "excluded_categories": draw(st.lists(st.sampled_from("abc"), max_size=1)),
        "shipping_cost": draw(money),
        "stages": {"idle_cart": draw(st.lists(st.sampled_from(ALL_KINDS), min_size=1))},
    })
    s = situation(lines, complements=comps, budget_left_day=draw(money),
                  budget_left_month=draw(money))
    lift = draw(st.floats(0.01, 0.3))
    base = draw(st.floats(0, 0.4))
    return s, rails, (lambda f, d: min(1.0, base + lift * d / 10))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_no_offer_ever_breaks_a_guardrail(case):
    s, rails, model = case
    decision = choose(s, rails, model)
    offer = decision.offer
    if offer is None:
        return
    assert s.subtotal >= rails.min_cart_value
    assert offer.amount > 0
    assert offer.amount * 100 <= rails.max_discount_pct * offer.scope_revenue
    net = offer.scope_revenue - offer.amount
    assert (net - offer.scope_cost) * 100 >= rails.margin_floor_pct * net
    assert offer.amount <= s.budget_left_day and offer.amount <= s.budget_left_month
    cats = {ln.product_id: ln.categories for ln in s.lines}
    cats.update({c.product_id: c.categories for c in s.complements})
    scope = offer.product_ids or tuple(ln.product_id for ln in s.lines)
    for pid in scope:
        assert pid not in rails.excluded_products
        assert not set(cats.get(pid, ())) & rails.excluded_categories
    assert decision.expected_gain > 0


def test_default_stages_cover_every_funnel_stage():
    from plugin.offers.uplift import STAGES

    assert set(DEFAULT_STAGES) == set(STAGES)


def test_no_offer_where_the_platform_cannot_hold_its_amounts_in_the_carts_currency():
    """Every candidate is amounts on the platform (a value or cap, and a minimum subtotal)."""
    rails = Guardrails()
    assert choose(situation(amount_currencies=frozenset({"GBP"})), rails, PRIOR).offer
    assert choose(situation(amount_currencies=None), rails, PRIOR).offer
    for exact in (frozenset(), frozenset({"EUR"})):
        s = situation(amount_currencies=exact)
        assert choose(s, rails, PRIOR).why == "no_allowed_candidate"
        assert all("amount_currency" in violations(c, s, rails)
                   for c in build(ALL_KINDS, s.lines, s.complements, rails, s.currency))
