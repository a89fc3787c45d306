"""Blender: named sources in order, an exclude set, a diversity step, a reason per item.

``Blender`` is gorse's fallback chain for any mix of sources; ``ShopkeeperRecommender``
(re-exported here) is the production model with learned blending weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np

from plugin.engine.base import BaseRecommender, Recommendation, check_is_fitted
from plugin.engine.data import Interactions
from plugin.engine.diversity import co_purchase_vectors, mmr
from plugin.engine.history import HistoryMixin
from plugin.engine.repurchase import RepurchaseModel
from plugin.engine.shopkeeper import ShopkeeperRecommender
from plugin.engine.sources import SOURCES, make_source

__all__ = ["DEFAULT_SOURCES", "Blender", "ShopkeeperRecommender"]

DEFAULT_SOURCES = ("repurchase_due", "itemknn", "content", "segment", "trending")


class Blender(HistoryMixin, BaseRecommender):
    """Chain named sources; earlier sources rank first, later ones fill the gaps.

    Parameters
    ----------
    sources : sequence of str
        Source names from ``plugin.engine.sources.SOURCES``, in priority order.
    per_source : int
        Candidates asked from each source (before exclusions and diversity).
    diversity : float
        MMR knob in [0, 1] over co-purchase similarity; 0 keeps the chain order.
    excluded_items : tuple of str
        Merchant exclusions, never recommended.
    """

    source_name = "blend"

    def __init__(self, sources: Sequence[str] = DEFAULT_SOURCES, per_source: int = 20,
                 diversity: float = 0.0, excluded_items: tuple[str, ...] = ()) -> None:
        self.sources = sources
        self.per_source = per_source
        self.diversity = diversity
        self.excluded_items = excluded_items

    def fit(self, interactions: Interactions, *, show_progress: bool = False) -> Blender:
        """Fit every named source (unknown names raise ``ValueError`` before any work)."""
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown:
            raise ValueError(f"unknown source(s) {unknown}; choose from {', '.join(SOURCES)}")
        self.data_ = interactions
        self.estimators_ = {name: make_source(name).fit(interactions) for name in self.sources}
        rep = self.estimators_.get("repurchase_due")
        self.repurchase_ = rep if isinstance(rep, RepurchaseModel) else RepurchaseModel().fit(
            interactions)
        self.vectors_ = co_purchase_vectors(interactions)
        return self

    def recommend(self, shopper: str, n: int = 10, *, exclude: Iterable[str] | None = None,
                  at: datetime | float | None = None) -> list[Recommendation]:
        """Pool candidates source by source, drop exclusions, diversify, keep ``n``."""
        check_is_fitted(self, "estimators_")
        owned = self._owned(shopper, at)
        banned = set(self._excluded(exclude).tolist()) | set(
            self._excluded(self.excluded_items).tolist())
        banned |= set(owned[self.repurchase_.is_durable(owned)].tolist())  # toilet-seat rule
        banned |= set(np.flatnonzero(~self.data_.catalog.available).tolist())
        names = [str(self.data_.item_ids[i]) for i in banned]
        pool: list[Recommendation] = []
        seen: set[str] = set()
        for name in self.sources:
            for r in self.estimators_[name].recommend(shopper, self.per_source, exclude=names,
                                                      at=at):
                if r.item not in seen and self.data_.item_index(r.item) not in banned:
                    seen.add(r.item)
                    pool.append(r)
            if len(pool) >= 3 * n and self.diversity <= 0:
                break
        if not pool:
            return []
        relevance = -np.arange(len(pool), dtype=np.float64)  # chain order is the relevance
        idx = np.array([self.data_.item_index(r.item) for r in pool], np.int64)
        return [pool[j] for j in mmr(relevance, self.vectors_[idx], n, self.diversity)]
