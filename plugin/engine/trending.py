"""Time-decayed popularity, overall and per category: the fallback every list ends with.

Scores are computed as of ``at`` from purchases strictly before it (prefix sums per item),
so a point-in-time query never sees later sales.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime

import numpy as np

from plugin.engine.base import BaseRecommender, Recommendation, check_is_fitted
from plugin.engine.baskets import DAY
from plugin.engine.data import Interactions, to_timestamp
from plugin.engine.history import HistoryMixin

__all__ = ["TrendingRecommender", "top_indices"]


def top_indices(scores: np.ndarray, n: int, banned: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``n`` best positive scores, best first, ties by lower index."""
    s = np.asarray(scores, np.float64).copy()
    if banned is not None and len(banned):
        s[banned] = -np.inf
    valid = np.flatnonzero(s > 0)
    if not len(valid) or n <= 0:
        return np.zeros(0, np.int64)
    if len(valid) > n:
        valid = valid[np.argpartition(-s[valid], n - 1)[:n]]
    return valid[np.lexsort((valid, -s[valid]))]


class TrendingRecommender(HistoryMixin, BaseRecommender):
    """What sells now: purchases weighted by ``0.5 ** (age / half_life_days)``.

    Parameters
    ----------
    half_life_days : float
        Age at which a purchase counts half.
    per_category : bool
        Lead with "trending in <category>" from the shopper's favourite category.
    """

    source_name = "trending"

    def __init__(self, half_life_days: float = 14.0, per_category: bool = True) -> None:
        self.half_life_days = half_life_days
        self.per_category = per_category

    def fit(self, interactions: Interactions, *,
            show_progress: bool = False) -> TrendingRecommender:
        """Index purchase times per item so scores can be taken at any moment."""
        x = self.data_ = interactions
        self.t0_ = float(x.timestamp.min()) if len(x) else 0.0
        self.end_ = float(x.timestamp.max()) if len(x) else 0.0
        self.span_ = self.end_ - self.t0_ + 2 * DAY
        order = np.lexsort((x.timestamp, x.item))
        times = x.timestamp[order] - self.t0_
        self.keys_ = x.item[order].astype(np.float64) * self.span_ + times
        w = np.power(2.0, (times - (self.end_ - self.t0_)) / DAY / self.half_life_days)
        # running sums per item, not over the whole array: an old sale's weight is tiny
        # (2 ** -52 two years before the end) and vanished in the difference of two
        # shop-wide sums, so a query long before the end found nothing trending
        parts = np.split(w, np.flatnonzero(np.diff(x.item[order])) + 1) if len(w) else []
        self.item_cum_ = np.concatenate([[0.0], *map(np.cumsum, parts)])
        cats = [x.catalog.primary_category(i) for i in range(x.n_items)]
        self.categories_ = np.asarray(cats, dtype=object)
        self.scores_ = self.scores_at(None)
        return self

    def scores_at(self, at: datetime | float | None) -> np.ndarray:
        """Decayed popularity of every item as of ``at`` (default: end of the data)."""
        check_is_fitted(self, "keys_")
        t = to_timestamp(at)
        t = self.end_ + 1e-6 if t is None else min(t, self.end_ + 1e-6)
        cache: OrderedDict[float, np.ndarray] = self.__dict__.setdefault("_cache", OrderedDict())
        if t in cache:
            return cache[t]
        n = self.data_.n_items
        base = np.arange(n, dtype=np.float64) * self.span_
        lo = np.searchsorted(self.keys_, base)
        hi = np.searchsorted(self.keys_, base + (t - self.t0_), side="left")
        hi = np.maximum(hi, lo)
        scale = np.power(2.0, -(t - self.end_) / DAY / self.half_life_days)
        if hasattr(self, "item_cum_"):  # position k + 1: the item's sales up to k
            scores = np.where(hi > lo, self.item_cum_[hi], 0.0) * scale
        else:  # a model saved before item_cum_ existed
            scores = (self.cum_[hi] - self.cum_[lo]) * scale
        cache[t] = scores
        if len(cache) > 16:  # evaluation asks at many moments; keep memory bounded
            cache.popitem(last=False)
        return scores

    def recommend(self, shopper: str, n: int = 10, *, exclude: Iterable[str] | None = None,
                  at: datetime | float | None = None) -> list[Recommendation]:
        """Trending in the shopper's favourite category first, then trending overall."""
        scores = self.scores_at(at).copy()
        scores[~self.data_.catalog.available] = 0.0
        banned = self._excluded(exclude)
        out: list[Recommendation] = []
        favourite = self._favourite_category(shopper, at) if self.per_category else ""
        if favourite:
            in_cat = np.where(self.categories_ == favourite, scores, 0.0)
            for i in top_indices(in_cat, max(1, n // 2), banned):
                out.append(Recommendation(str(self.data_.item_ids[i]), float(scores[i]),
                                          self.source_name, f"trending in {favourite}"))
        taken = np.array([self.data_.item_index(r.item) for r in out], np.int64)
        for i in top_indices(scores, n - len(out), np.concatenate([banned, taken])):
            cat = self.categories_[i]
            reason = f"trending in {cat}" if cat else "trending now"
            out.append(Recommendation(str(self.data_.item_ids[i]), float(scores[i]),
                                      self.source_name, reason))
        return out[:n]

    def _favourite_category(self, shopper: str, at: datetime | float | None) -> str:
        cats = self.categories_[self.data_.item[self._events(shopper, at)]]
        cats = cats[cats != ""]
        if not len(cats):
            return ""
        names, counts = np.unique(cats.astype(str), return_counts=True)
        return str(names[np.argmax(counts)])
