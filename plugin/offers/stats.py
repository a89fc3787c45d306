"""Treatment-vs-control uplift with 95% confidence intervals (pure).

Conversion: difference of two proportions with Newcombe's hybrid score interval (method 10
of Newcombe 1998, built from each arm's Wilson interval). Unlike the Wald interval it does
not collapse to zero width when a rate is 0% or 100%, which is common on small shops.
Below ``MIN_ARM`` shoppers in an arm there is no interval: too few to say anything.
Revenue per visitor: difference of means with Welch's standard error (normal approximation).
Both assume independent shoppers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054
#: Fewest shoppers per arm before a conversion uplift is reported.
MIN_ARM = 30


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def wilson(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of ``x/n``; stays inside [0, 1] and is not empty at 0 or n."""
    z2 = z * z
    centre = (x + z2 / 2) / (n + z2)
    half = z * math.sqrt(x * (n - x) / n + z2 / 4) / (n + z2)
    return max(0.0, centre - half), min(1.0, centre + half)


def diff_proportions(x1: int, n1: int, x0: int, n0: int, z: float = Z95, *,
                     min_n: int = MIN_ARM) -> Interval | None:
    """``x1/n1 - x0/n0`` with Newcombe's hybrid score CI; None when an arm has fewer than
    ``min_n`` (at least 1) shoppers."""
    if min(n1, n0) < max(min_n, 1):
        return None
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1, z)
    l0, u0 = wilson(x0, n0, z)
    d = p1 - p0
    return Interval(d, d - math.hypot(p1 - l1, u0 - p0), d + math.hypot(u1 - p1, p0 - l0))


def diff_means(a: Sequence[float], b: Sequence[float], z: float = Z95, *,
               min_n: int = MIN_ARM) -> Interval | None:
    """``mean(a) - mean(b)`` with Welch's standard error; None with fewer than ``min_n``
    (at least 2) per arm, as for conversion: six shoppers who all spent nothing would
    otherwise show a zero-width interval."""
    if min(len(a), len(b)) < max(min_n, 2):
        return None
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1)
    se = math.sqrt(va / len(a) + vb / len(b))
    d = ma - mb
    return Interval(d, d - z * se, d + z * se)
