"""Candidate features: category due-ness (variety seekers rotate items within a category)."""

from __future__ import annotations

import numpy as np
import pytest

from plugin.engine.nextbasket import SCORE_FEATURES, NextBasketState, refresh_time
from plugin.engine.pairs import COL
from tests.engine.synthetic import CATALOG, DAY, T0, build

DAYS, DUE, BASKETS = COL["cat_log_days_since"], COL["cat_due_ratio"], COL["cat_log_baskets"]


def _rotating_tea():
    """Shopper ``v`` buys a different tea every week; ``w`` only milk."""
    rows = []
    for week, tea in enumerate(["tea-a", "tea-b", "tea-c"]):
        t = T0 + 7 * week * DAY
        rows += [("v", "milk", t, f"v{week}"), ("v", tea, t, f"v{week}"),
                 ("w", "milk", t, f"w{week}")]
    return build(rows)


def _features(state, x, shopper, items, now):
    u = x.user_index(shopper)
    idx = np.array([x.item_index(i) for i in items])
    users = np.full(len(idx), u)
    scores = {f: np.zeros(len(idx)) for f in SCORE_FEATURES}
    return state.features(state.personal, users, idx, np.full(len(idx), now), scores)


def test_category_due_ness_known_answer():
    x = _rotating_tea()
    state = NextBasketState(x)
    # a week after the last tea: the category is exactly due, for every tea bought or not
    c = _features(state, x, "v", ["tea-a", "tea-c", "new-jam"], T0 + 21 * DAY)
    assert c.X[:2, BASKETS] == pytest.approx([np.log1p(3)] * 2)
    assert c.X[:2, DAYS] == pytest.approx([np.log1p(7)] * 2)
    assert c.X[:2, DUE] == pytest.approx([0.0, 0.0])
    # a category never bought: no baskets, a year since, nothing due
    assert c.X[2, [BASKETS, DAYS, DUE]] == pytest.approx([0.0, np.log1p(365), 0.0])
    # two weeks later the tea is overdue; the shopper who never bought tea is not
    late = _features(state, x, "v", ["tea-b"], T0 + 28 * DAY)
    assert late.X[0, DUE] == pytest.approx(np.log1p(14) - np.log1p(7))
    other = _features(state, x, "w", ["tea-b"], T0 + 28 * DAY)
    assert other.X[0, BASKETS] == 0.0 and other.X[0, DUE] == 0.0


def test_refresh_time_moves_category_features_like_a_fresh_computation():
    x = _rotating_tea()
    state = NextBasketState(x)
    items = ["tea-a", "milk", "new-jam"]
    early = _features(state, x, "v", items, T0 + 15 * DAY)
    later = _features(state, x, "v", items, T0 + 40 * DAY)
    u_last = np.full(len(items), state.personal.bp.last_time[x.user_index("v")])
    moved = refresh_time(early, u_last, np.full(len(items), T0 + 40 * DAY))
    np.testing.assert_allclose(moved, later.X)


def test_a_catalogue_without_categories_gives_constant_category_columns():
    flat = {k: {**v, "categories": ["all"]} for k, v in CATALOG.items()}
    x = build([(r[0], r[1], r[2], r[3]) for r in [
        ("v", "tea-a", T0, "1"), ("v", "tea-b", T0 + 7 * DAY, "2"), ("v", "milk", T0, "1")]],
        catalog=flat)
    state = NextBasketState(x)
    c = _features(state, x, "v", ["tea-a", "milk", "new-jam"], T0 + 14 * DAY)
    for col in (DAYS, DUE, BASKETS):
        assert len(set(c.X[:, col].tolist())) == 1


def test_a_staple_skipped_lately_stays_a_candidate():
    """Beyond ``max_history`` items, the most recent ones plus the most frequent of all time."""
    rows = [("s", "rice", T0 + b * DAY, f"b{b}") for b in range(6)]  # a staple, early on
    for b in range(6, 16):  # then ten baskets of three one-off items each
        rows += [("s", f"one-off-{b}-{j}", T0 + b * DAY, f"b{b}") for j in range(3)]
    x = build(rows)
    rice = x.item_index("rice")

    def candidates(**kw):
        state = NextBasketState(x, max_history=10, n_explore=0, **kw)
        return set(state.candidates(np.array([x.user_index("s")])).item.tolist())

    assert rice not in candidates(n_frequent=0)  # 30 newer items push it out
    with_staple = candidates(n_frequent=1)
    assert rice in with_staple
    assert len(with_staple - {rice}) == 10


def test_ease_proposes_what_shoppers_with_the_same_basket_buy_and_scores_it():
    """Ten shoppers buy pasta with sauce; one bought only pasta: sauce is an EASE candidate."""
    rows = []
    for s in range(10):
        rows += [(f"p{s}", "pasta", T0, f"p{s}a"), (f"p{s}", "sauce", T0, f"p{s}a"),
                 (f"p{s}", "pasta", T0 + 7 * DAY, f"p{s}b")]
        rows += [(f"q{s}", "soap", T0, f"q{s}a"), (f"q{s}", "sponge", T0 + DAY, f"q{s}b")]
    rows += [("new", "pasta", T0, "n1"), ("new", "pasta", T0 + 7 * DAY, "n2")]
    x = build(rows)
    shopper = np.array([x.user_index("new")])
    ease = COL["ease"]

    def pool(**kw):
        c = NextBasketState(x, n_explore=0, **kw).candidates(shopper)
        return {str(x.item_ids[i]): row for i, row in zip(c.item, c.X, strict=True)}

    assert set(pool(n_ease=0)) == {"pasta"}  # no other source proposes anything
    with_ease = pool(n_ease=1, ease_l2=1.0)
    assert set(with_ease) == {"pasta", "sauce"}
    assert with_ease["sauce"][ease] > 0.5  # nearly every pasta buyer took sauce
    assert with_ease["pasta"][ease] == 0.0  # an item never explains itself (zero diagonal)


def _neighbourhood():
    """``u`` and ``near`` share milk and bread; only ``near`` (one basket) bought jam.
    ``a``, ``b`` and ``c`` have long histories of other things."""
    rows = [("u", "milk", T0, "u0"), ("u", "bread", T0, "u0"), ("u", "milk", T0 + DAY, "u1"),
            ("near", "milk", T0, "n0"), ("near", "bread", T0, "n0"), ("near", "jam", T0, "n0")]
    for who, item in (("a", "tea"), ("b", "coffee"), ("c", "milk")):
        rows += [(who, item, T0 + k * DAY, f"{who}{k}") for k in range(4)]
    return build(rows)


def test_neighbours_come_from_the_pool_of_longest_histories():
    x = _neighbourhood()
    jam = np.flatnonzero(NextBasketState(x).vote_items == x.item_index("jam"))
    u = np.array([x.user_index("u")])
    full = NextBasketState(x, n_neighbors=2).neighbour_scores(u)
    assert full[0, jam] > 0  # "near" is u's closest shopper and votes for jam
    capped = NextBasketState(x, n_neighbors=2, max_neighbour_pool=4)
    # "near" has the shortest history, so is the one left out of a pool of four
    assert x.user_index("near") not in capped.neighbour_pool
    assert capped.neighbour_scores(u)[0, jam] == 0.0
    # a cap the shop does not reach changes nothing
    roomy = NextBasketState(x, n_neighbors=2, max_neighbour_pool=5)
    assert roomy.neighbour_pool is None
    np.testing.assert_array_equal(roomy.neighbour_scores(u), full)


def test_a_shopper_in_the_pool_is_never_their_own_neighbour():
    x = _neighbourhood()
    state = NextBasketState(x, n_neighbors=3, max_neighbour_pool=4)
    a = x.user_index("a")
    assert a in state.neighbour_pool
    tea = np.flatnonzero(state.vote_items == x.item_index("tea"))
    assert state.neighbour_scores(np.array([a]))[0, tea] == 0.0  # only a bought tea
