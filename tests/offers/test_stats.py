"""Difference of two proportions: Newcombe's hybrid score interval, and no answer on tiny arms."""

from __future__ import annotations

import pytest

from plugin.offers.stats import MIN_ARM, diff_proportions, wilson

# Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10 (4 decimals).
NEWCOMBE_METHOD_10 = [
    ((56, 70, 48, 80), 0.2000, 0.0524, 0.3339),
    ((9, 10, 3, 10), 0.6000, 0.1705, 0.8090),
    ((6, 7, 2, 7), 0.5714, 0.0582, 0.8062),
    ((5, 56, 0, 29), 0.0893, -0.0381, 0.1926),
    ((0, 10, 0, 20), 0.0000, -0.1611, 0.2775),
    ((0, 10, 0, 10), 0.0000, -0.2775, 0.2775),
    ((10, 10, 0, 20), 1.0000, 0.6791, 1.0000),
    ((10, 10, 0, 10), 1.0000, 0.6075, 1.0000),
]


@pytest.mark.parametrize(("counts", "estimate", "low", "high"), NEWCOMBE_METHOD_10)
def test_newcombe_hybrid_score_interval_matches_the_paper(counts, estimate, low, high):
    ci = diff_proportions(*counts, min_n=1)
    assert (ci.estimate, ci.low, ci.high) == pytest.approx((estimate, low, high), abs=5e-5)


def test_wilson_interval_known_answer():
    # Newcombe (1998) example: 0/10 gives 0 to 0.2775 (Wilson, 95%)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=5e-5)


def test_no_conversions_in_either_arm_is_not_a_zero_width_interval():
    ci = diff_proportions(0, 6, 0, 1, min_n=1)
    assert ci.estimate == 0.0
    assert ci.low == pytest.approx(-0.7935, abs=5e-5) and ci.high == pytest.approx(0.3903,
                                                                                    abs=5e-5)


def test_arms_below_the_minimum_give_no_interval():
    assert diff_proportions(0, 6, 0, 1) is None  # the dashboard's "0/6 vs 0/1"
    assert diff_proportions(3, MIN_ARM - 1, 1, 100) is None
    assert diff_proportions(3, 100, 1, MIN_ARM - 1) is None
    assert diff_proportions(3, MIN_ARM, 1, MIN_ARM) is not None
    assert diff_proportions(0, 0, 0, 10, min_n=0) is None  # an empty arm never divides by 0
