"""Co-purchase neighbours: "frequently bought together" and "because you bought X".

Two items are neighbours when they share baskets (cosine with shrinkage, so a pair seen
once in two tiny baskets does not look like a perfect match). Only items with enough
support get neighbours, which keeps 68k-item catalogues cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import numpy as np
import scipy.sparse as sp

from plugin.engine.base import BaseRecommender, Recommendation, check_is_fitted
from plugin.engine.baskets import basket_pairs
from plugin.engine.data import Interactions
from plugin.engine.history import HistoryMixin
from plugin.engine.trending import top_indices

__all__ = ["ItemKNNRecommender", "top_k_per_row"]


def top_k_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of every row (ties: lower column first)."""
    m = m.tocsr()
    indptr, indices, data = [0], [], []
    for r in range(m.shape[0]):
        s, e = m.indptr[r], m.indptr[r + 1]
        cols, vals = m.indices[s:e], m.data[s:e]
        if len(vals) > k:
            # the k-th largest value bounds the pick (linear time); only the few entries
            # at or above it are sorted
            kth = -np.partition(-vals, k - 1)[k - 1] if k > 0 else np.inf
            near = np.flatnonzero(vals >= kth)
            best = near[np.lexsort((cols[near], -vals[near]))[:k]]
            cols, vals = cols[best], vals[best]
        indices.append(cols)
        data.append(vals)
        indptr.append(indptr[-1] + len(cols))
    data_ = np.concatenate(data) if data else np.zeros(0)
    indices_ = np.concatenate(indices).astype(np.int64) if indices else np.zeros(0, np.int64)
    return sp.csr_matrix((data_, indices_, np.array(indptr)), shape=m.shape)


class ItemKNNRecommender(HistoryMixin, BaseRecommender):
    """Item-to-item co-purchase similarity over baskets.

    Parameters
    ----------
    n_neighbors : int
        Neighbours kept per item.
    min_support : int
        Baskets an item needs before it gets neighbours.
    shrink : float
        Added to the cosine denominator to damp rare pairs.
    """

    source_name = "itemknn"

    def __init__(self, n_neighbors: int = 50, min_support: int = 2, shrink: float = 10.0) -> None:
        self.n_neighbors = n_neighbors
        self.min_support = min_support
        self.shrink = shrink

    def fit(self, interactions: Interactions, *, show_progress: bool = False) -> ItemKNNRecommender:
        """Count co-occurrences in baskets and keep each item's strongest neighbours."""
        x = self.data_ = interactions
        self._fit_popularity()
        bp = basket_pairs(x)
        basket = np.unique(bp.user * (bp.rank.max() + 1 if len(bp.rank) else 1) + bp.rank,
                           return_inverse=True)[1]
        b = sp.csr_matrix((np.ones(len(bp.item)), (basket, bp.item)),
                          shape=(basket.max() + 1 if len(basket) else 0, x.n_items))
        support = np.asarray(b.sum(axis=0)).ravel()
        b = b @ sp.diags((support >= self.min_support).astype(float))
        co = (b.T @ b).tocsr()
        co.setdiag(0)
        co.eliminate_zeros()
        co = co.tocoo()
        sim = co.data / (np.sqrt(support[co.row] * support[co.col]) + self.shrink)
        self.similarity_ = top_k_per_row(
            sp.csr_matrix((sim, (co.row, co.col)), shape=(x.n_items, x.n_items)), self.n_neighbors)
        return self

    def similar_items(self, item: str, n: int = 10) -> list[Recommendation]:
        """Frequently bought together with ``item`` (empty for unknown items)."""
        check_is_fitted(self, "similarity_")
        i = self.data_.item_index(item)
        if i is None:
            return []
        row = self.similarity_[i].toarray().ravel() * self.data_.catalog.available
        return [Recommendation(str(self.data_.item_ids[j]), float(row[j]), self.source_name,
                               f"frequently bought together with {self._title(i)}")
                for j in top_indices(row, n, np.array([i]))]

    def recommend(self, shopper: str, n: int = 10, *, exclude: Iterable[str] | None = None,
                  at: datetime | float | None = None) -> list[Recommendation]:
        """Neighbours of what the shopper bought before ``at`` that they do not own yet."""
        check_is_fitted(self, "similarity_")
        owned = self._owned(shopper, at)
        banned = np.concatenate([self._excluded(exclude), owned])
        if not len(owned):
            return self._popular(n, banned, self.source_name)
        rows = self.similarity_[owned]
        scores = np.asarray(rows.sum(axis=0)).ravel() * self.data_.catalog.available
        out = []
        for i in top_indices(scores, n, banned):
            because = owned[int(np.argmax(rows[:, i].toarray().ravel()))]
            reason = f"because you bought {self._title(because)}"
            out.append(Recommendation(str(self.data_.item_ids[i]), float(scores[i]),
                                      self.source_name, reason))
        return out
