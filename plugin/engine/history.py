"""Shared helpers for estimators that keep their training interactions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import numpy as np

from plugin.engine.base import Recommendation
from plugin.engine.data import Interactions, to_timestamp

__all__ = ["HistoryMixin"]


class HistoryMixin:
    """Point-in-time access to a shopper's past and exclusions as item indices."""

    data_: Interactions

    def _events(self, shopper: str, at: datetime | float | None) -> np.ndarray:
        """Event indices of the shopper strictly before ``at`` (empty when unknown)."""
        u = self.data_.user_index(shopper)
        if u is None:
            return np.zeros(0, np.int64)
        ptr = self.__dict__.get("_ptr")
        if ptr is None or len(ptr) != self.data_.n_users + 1:  # cached: searchsorted per call
            ptr = self.__dict__["_ptr"] = self.data_.user_ptr  # would copy the event array
        idx = np.arange(ptr[u], ptr[u + 1])
        t = to_timestamp(at)
        return idx if t is None else idx[self.data_.timestamp[idx] < t]

    def _owned(self, shopper: str, at: datetime | float | None) -> np.ndarray:
        """Distinct item indices the shopper bought before ``at``."""
        return np.unique(self.data_.item[self._events(shopper, at)])

    def _excluded(self, exclude: Iterable[str] | None) -> np.ndarray:
        idx = (self.data_.item_index(i) for i in exclude or ())
        return np.array([i for i in idx if i is not None], dtype=np.int64)

    def _title(self, i: int) -> str:
        return str(self.data_.catalog.title[i] or self.data_.item_ids[i])

    def _fit_popularity(self) -> None:
        """Baskets per item: the answer for shoppers a model knows nothing about."""
        self.popularity_ = np.bincount(self.data_.item, minlength=self.data_.n_items).astype(float)

    def _popular(self, n: int, banned: np.ndarray, source: str) -> list[Recommendation]:
        from plugin.engine.trending import top_indices

        scores = self.popularity_ * self.data_.catalog.available
        return [Recommendation(str(self.data_.item_ids[i]), float(scores[i]), source,
                               "popular with all shoppers") for i in top_indices(scores, n, banned)]
