"""Blender: named sources in order, an exclude set, a diversity step, a reason per item.

``Blender`` is gorse's fallback chain for any mix of sources; ``ShopkeeperRecommender``
(re-exported here) is the production model with learned blending weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np
from sklearn.linear_model import LogisticRegression

from plugin.engine.base import BaseRecommender, Recommendation, check_is_fitted
from plugin.engine.baskets import hold_out_last_basket
from plugin.engine.data import Interactions
from plugin.engine.diversity import co_purchase_vectors, mmr
from plugin.engine.history import HistoryMixin
from plugin.engine.repurchase import RepurchaseModel
from plugin.engine.shopkeeper import ShopkeeperRecommender
from plugin.engine.sources import SOURCES, make_source

__all__ = ["DEFAULT_SOURCES", "Blender", "ShopkeeperRecommender"]

DEFAULT_SOURCES = ("repurchase_due", "itemknn", "content", "segment", "trending")


class Blender(HistoryMixin, BaseRecommender):
    """Chain named sources with weights learned on a validation basket (or chain order).

    Parameters
    ----------
    sources : sequence of str
        Source names from ``plugin.engine.sources.SOURCES``, in priority order.
    per_source : int
        Candidates asked from each source (before exclusions and diversity).
    diversity : float
        MMR knob in [0, 1] over co-purchase similarity; 0 keeps the blended order.
    excluded_items : tuple of str
        Merchant exclusions, never recommended.
    learn_weights : bool
        Fit a logistic regression over the sources' rank scores on each shopper's last
        training basket (sources refit on the earlier history); off: pure chain order.
    validation_users : int
        Shoppers sampled for learning the weights.
    random_state : int or None
        Seed for that sample.
    """

    source_name = "blend"

    def __init__(self, sources: Sequence[str] = DEFAULT_SOURCES, per_source: int = 20,
                 diversity: float = 0.0, excluded_items: tuple[str, ...] = (),
                 learn_weights: bool = True, validation_users: int = 300,
                 random_state: int | None = 0) -> None:
        self.sources = sources
        self.per_source = per_source
        self.diversity = diversity
        self.excluded_items = excluded_items
        self.learn_weights = learn_weights
        self.validation_users = validation_users
        self.random_state = random_state

    def fit(self, interactions: Interactions, *, show_progress: bool = False) -> Blender:
        """Learn source weights, then fit every named source (unknown names raise first)."""
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown:
            raise ValueError(f"unknown source(s) {unknown}; choose from {', '.join(SOURCES)}")
        self.data_ = interactions
        self.weights_ = self._learn_weights(interactions) if self.learn_weights else None
        self.estimators_ = {name: make_source(name).fit(interactions) for name in self.sources}
        rep = self.estimators_.get("repurchase_due")
        self.repurchase_ = rep if isinstance(rep, RepurchaseModel) else RepurchaseModel().fit(
            interactions)
        self.vectors_ = co_purchase_vectors(interactions)
        return self

    def _learn_weights(self, x: Interactions) -> np.ndarray | None:
        """Per-source weight from predicting each shopper's last basket from the rest."""
        train, keys, at = hold_out_last_basket(x)
        users = np.flatnonzero(~np.isnan(at))
        if not len(users):
            return None
        rng = np.random.default_rng(self.random_state)
        if len(users) > self.validation_users:
            users = np.sort(rng.choice(users, self.validation_users, replace=False))
        fitted = [make_source(name).fit(train) for name in self.sources]
        rows, labels = [], []
        for u in users:
            uid = str(x.user_ids[u])
            feats: dict[str, np.ndarray] = {}
            for s, est in enumerate(fitted):
                for rank, r in enumerate(est.recommend(uid, self.per_source, at=at[u])):
                    feats.setdefault(r.item, np.zeros(len(fitted)))[s] = 1.0 / (1 + rank)
            for item, f in feats.items():
                rows.append(f)
                labels.append(u * x.n_items + x.item_index(item) in keys)
        y = np.asarray(labels, bool)
        if not len(y) or y.all() or not y.any():
            return None
        model = LogisticRegression(C=1.0).fit(np.vstack(rows), y)
        return model.coef_.ravel()

    def recommend(self, shopper: str, n: int = 10, *, exclude: Iterable[str] | None = None,
                  at: datetime | float | None = None) -> list[Recommendation]:
        """Pool candidates from every source, drop exclusions, blend, diversify, keep ``n``."""
        check_is_fitted(self, "estimators_")
        owned = self._owned(shopper, at)
        banned = set(self._excluded(exclude).tolist()) | set(
            self._excluded(self.excluded_items).tolist())
        banned |= set(owned[self.repurchase_.is_durable(owned)].tolist())  # toilet-seat rule
        banned |= set(np.flatnonzero(~self.data_.catalog.available).tolist())
        names = [str(self.data_.item_ids[i]) for i in banned]
        pool: dict[str, Recommendation] = {}
        relevance: dict[str, float] = {}
        best: dict[str, float] = {}
        for s, name in enumerate(self.sources):
            recs = self.estimators_[name].recommend(shopper, self.per_source, exclude=names, at=at)
            for rank, r in enumerate(recs):
                if self.data_.item_index(r.item) in banned:
                    continue
                if self.weights_ is None:  # chain order: earlier sources always rank first
                    if r.item not in pool:
                        pool[r.item] = r
                        relevance[r.item] = -float(len(pool))
                    continue
                gain = float(self.weights_[s]) / (1 + rank)
                relevance[r.item] = relevance.get(r.item, 0.0) + gain
                if gain > best.get(r.item, -np.inf):  # the reason of the strongest source
                    best[r.item] = gain
                    pool[r.item] = r
            if self.weights_ is None and len(pool) >= 3 * n and self.diversity <= 0:
                break
        if not pool:
            return []
        items = list(pool)
        rel = np.array([relevance[i] for i in items])
        idx = np.array([self.data_.item_index(i) for i in items], np.int64)
        order = mmr(rel, self.vectors_[idx], n, self.diversity)
        return [Recommendation(items[j], float(rel[j]), pool[items[j]].source,
                               pool[items[j]].reason) for j in order]
