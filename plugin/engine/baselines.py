"""Reference recommenders the production model must beat in the offline evaluation.

G-Pop, P-TopFreq, cosine ItemKNN and ALS (``implicit``) are the usual next-basket floors
(Li et al., "A Next Basket Recommendation Reality Check"). They follow the estimator
contract so the evaluation treats them exactly like the production model. ``at=`` limits
the shopper's own history to purchases strictly before ``at``; learned global state is that
of the fitted data.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import numpy as np
import scipy.sparse as sp

from plugin.engine.base import BaseRecommender, Recommendation, check_is_fitted
from plugin.engine.data import Interactions, to_timestamp

__all__ = ["ALSBaseline", "GlobalPopularity", "ItemKNNBaseline", "PersonalTopFrequency"]


def _top(scores: np.ndarray, n: int, banned: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``n`` highest positive-or-zero scores, best first, ties by index."""
    scores = scores.astype(np.float64, copy=True)
    if banned is not None and len(banned):
        scores[banned] = -np.inf
    n = min(n, int(np.isfinite(scores).sum()))
    if n <= 0:
        return np.zeros(0, np.int64)
    part = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    # stable order: score descending, then item index ascending (deterministic ties)
    return part[np.lexsort((part, -scores[part]))]


class _HistoryMixin:
    """Shared helpers: fitted data, the shopper's past events, exclusions as indices."""

    data_: Interactions

    def _events(self, shopper: str, at: datetime | float | None) -> np.ndarray:
        """Indices of the shopper's events strictly before ``at`` (empty if unknown)."""
        u = self.data_.user_index(shopper)
        if u is None:
            return np.zeros(0, np.int64)
        events = self.data_.events_of(u)
        idx = np.arange(events.start, events.stop)
        t = to_timestamp(at)
        return idx if t is None else idx[self.data_.timestamp[idx] < t]

    def _excluded(self, exclude: Iterable[str] | None) -> np.ndarray:
        idx = [self.data_.item_index(i) for i in exclude or ()]
        return np.array([i for i in idx if i is not None], dtype=np.int64)

    def _title(self, i: int) -> str:
        return str(self.data_.catalog.title[i] or self.data_.item_ids[i])


class GlobalPopularity(_HistoryMixin, BaseRecommender):
    """G-Pop: items ranked by the number of training baskets containing them.

    Everyone gets the same list; it is also the back-fill of the personal baselines.
    """

    source_name = "g-pop"

    def fit(self, interactions: Interactions, *, show_progress: bool = False) -> GlobalPopularity:
        self.data_ = interactions
        counts = np.asarray(interactions.to_csr("baskets").sum(axis=0)).ravel()
        self.popularity_ = counts.astype(np.float64)
        return self

    def recommend(self, shopper: str, n: int = 10, *, exclude: Iterable[str] | None = None,
                  at: datetime | float | None = None) -> list[Recommendation]:
        check_is_fitted(self, "popularity_")
        top = _top(self.popularity_, n, self._excluded(exclude))
        return [
            Recommendation(str(self.data_.item_ids[i]), float(self.popularity_[i]),
                           self.source_name, "popular with all shoppers")
            for i in top
        ]


class PersonalTopFrequency(_HistoryMixin, BaseRecommender):
    """P-TopFreq: the shopper's own items by number of baskets, ties by most recent purchase,
    back-filled with G-Pop (without repeating items)."""

    source_name = "p-topfreq"

    def fit(self, interactions: Interactions, *,
            show_progress: bool = False) -> PersonalTopFrequency:
        self.data_ = interactions
        self.popular_ = GlobalPopularity().fit(interactions)
        return self

    def recommend(self, shopper: str, n: int = 10, *, exclude: Iterable[str] | None = None,
                  at: datetime | float | None = None) -> list[Recommendation]:
        check_is_fitted(self, "popular_")
        banned = set(self._excluded(exclude).tolist())
        out: list[Recommendation] = []
        events = self._events(shopper, at)
        if len(events):
            items = self.data_.item[events]
            pairs = np.unique(np.stack([items.astype(np.int64), self.data_.basket[events]]), axis=1)
            owned, counts = np.unique(pairs[0], return_counts=True)
            last = np.full(len(owned), -np.inf)
            np.maximum.at(last, np.searchsorted(owned, items), self.data_.timestamp[events])
            for j in np.lexsort((owned, -last, -counts)):
                i = int(owned[j])
                if i in banned:
                    continue
                times = "once" if counts[j] == 1 else f"{counts[j]} times"
                out.append(Recommendation(str(self.data_.item_ids[i]), float(counts[j]),
                                          self.source_name, f"you bought this {times}"))
                if len(out) == n:
                    return out
        taken = {r.item for r in out}
        fill = self.popular_.recommend(shopper, n + len(taken), exclude=[
            str(self.data_.item_ids[i]) for i in banned])
        out += [r for r in fill if r.item not in taken][: n - len(out)]
        return out


class ItemKNNBaseline(_HistoryMixin, BaseRecommender):
    """Cosine item-item neighbours on the binary training matrix.

    Parameters
    ----------
    n_neighbors : int
        Similarities kept per item (the strongest), to bound memory on large catalogues.
    """

    source_name = "itemknn"

    def __init__(self, n_neighbors: int = 200) -> None:
        self.n_neighbors = n_neighbors

    def fit(self, interactions: Interactions, *, show_progress: bool = False) -> ItemKNNBaseline:
        self.data_ = interactions
        x = interactions.to_csr("binary").astype(np.float32)
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        xn = (x @ sp.diags(inv)).tocsc()
        self.similarity_ = pruned_similarity(xn, self.n_neighbors)  # items x items, CSR
        self.popular_ = GlobalPopularity().fit(interactions)
        return self

    def recommend(self, shopper: str, n: int = 10, *, exclude: Iterable[str] | None = None,
                  at: datetime | float | None = None) -> list[Recommendation]:
        check_is_fitted(self, "similarity_")
        owned = np.unique(self.data_.item[self._events(shopper, at)])
        if not len(owned):
            return self.popular_.recommend(shopper, n, exclude=exclude)
        rows = self.similarity_[owned]
        scores = np.asarray(rows.sum(axis=0)).ravel()
        banned = self._excluded(exclude)
        top = np.array([i for i in _top(scores, n, banned) if scores[i] > 0], dtype=np.int64)
        # the owned item contributing most to each recommendation names the reason
        strongest = owned[np.asarray(rows[:, top].toarray().argmax(axis=0)).ravel()]
        out = [
            Recommendation(str(self.data_.item_ids[i]), float(scores[i]), self.source_name,
                           f"because you bought {self._title(j)}")
            for i, j in zip(top, strongest, strict=True)
        ]
        if len(out) < n:
            taken = {r.item for r in out}
            fill = self.popular_.recommend(shopper, n + len(out), exclude=exclude)
            out += [r for r in fill if r.item not in taken][: n - len(out)]
        return out


def pruned_similarity(xn: sp.spmatrix, keep: int, rows: np.ndarray | None = None,
                      chunk: int = 2048) -> sp.csr_matrix:
    """Rows ``rows`` (default: all items) of ``xn.T @ xn`` without self-similarity, keeping
    the ``keep`` largest entries per row: ItemKNN's neighbour lists.

    Computed in row chunks so the full item-item product is never held in memory.
    """
    n = xn.shape[1]
    rows = np.arange(n) if rows is None else np.asarray(rows)
    xt = xn.T.tocsr()
    indptr, indices, data = [0], [], []
    for lo in range(0, len(rows), chunk):
        block = (xt[rows[lo:lo + chunk]] @ xn).tocsr()  # chunk x items
        for r in range(block.shape[0]):
            s, e = block.indptr[r], block.indptr[r + 1]
            cols, vals = block.indices[s:e], block.data[s:e]
            other = cols != rows[lo + r]
            cols, vals = cols[other], vals[other]
            if len(vals) > keep:
                best = np.argpartition(-vals, keep - 1)[:keep]
                cols, vals = cols[best], vals[best]
            indices.append(cols)
            data.append(vals)
            indptr.append(indptr[-1] + len(cols))

    def cat(parts: list, dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    return sp.csr_matrix((cat(data, np.float32), cat(indices, np.int32), np.array(indptr)),
                         shape=(len(rows), n))


class ALSBaseline(_HistoryMixin, BaseRecommender):
    """Implicit-feedback matrix factorisation (Hu, Koren, Volinsky) from ``implicit``.

    Parameters
    ----------
    factors, regularization, alpha, iterations : ALS hyperparameters; the confidence of a
        user-item cell is ``alpha * number of baskets``.
    random_state : int
        Seed for the factor initialisation; with one thread the fit is deterministic.
    """

    source_name = "als"

    def __init__(self, factors: int = 64, regularization: float = 0.05, alpha: float = 1.0,
                 iterations: int = 15, random_state: int | None = 0) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state

    def fit(self, interactions: Interactions, *, show_progress: bool = False) -> ALSBaseline:
        from implicit.cpu.als import AlternatingLeastSquares  # dev/bench extra only
        from threadpoolctl import threadpool_limits

        self.data_ = interactions
        self.popular_ = GlobalPopularity().fit(interactions)
        matrix = (interactions.to_csr("baskets") * self.alpha).astype(np.float32).tocsr()
        with threadpool_limits(1, "blas"):  # implicit warns (and slows) with threaded BLAS
            model = AlternatingLeastSquares(
                factors=self.factors, regularization=self.regularization,
                iterations=self.iterations, random_state=self.random_state, num_threads=1,
            )
            model.fit(matrix, show_progress=show_progress)
        self.user_factors_ = np.asarray(model.user_factors)
        self.item_factors_ = np.asarray(model.item_factors)
        return self

    def recommend(self, shopper: str, n: int = 10, *, exclude: Iterable[str] | None = None,
                  at: datetime | float | None = None) -> list[Recommendation]:
        check_is_fitted(self, "item_factors_")
        u = self.data_.user_index(shopper)
        if u is None or not len(self._events(shopper, at)):  # cold start
            return self.popular_.recommend(shopper, n, exclude=exclude)
        scores = self.item_factors_ @ self.user_factors_[u]
        top = _top(scores, n, self._excluded(exclude))
        return [
            Recommendation(str(self.data_.item_ids[i]), float(scores[i]), self.source_name,
                           "popular with shoppers like you")
            for i in top
        ]
