"""Treatment-vs-control uplift with normal-approximation 95% confidence intervals (pure).

Conversion: difference of two proportions with the unpooled (Wald) standard error.
Revenue per visitor: difference of means with Welch's standard error. Both assume
independent shoppers and enough of them for the normal approximation (the report says so).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def diff_proportions(x1: int, n1: int, x0: int, n0: int, z: float = Z95) -> Interval | None:
    """``x1/n1 - x0/n0`` with its CI; None when an arm is empty."""
    if n1 <= 0 or n0 <= 0:
        return None
    p1, p0 = x1 / n1, x0 / n0
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    d = p1 - p0
    return Interval(d, d - z * se, d + z * se)


def diff_means(a: Sequence[float], b: Sequence[float], z: float = Z95) -> Interval | None:
    """``mean(a) - mean(b)`` with Welch's standard error; None with fewer than 2 per arm."""
    if len(a) < 2 or len(b) < 2:
        return None
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1)
    se = math.sqrt(va / len(a) + vb / len(b))
    d = ma - mb
    return Interval(d, d - z * se, d + z * se)
