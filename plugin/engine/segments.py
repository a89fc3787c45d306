"""Shopper segments for cold start: "popular with shoppers like you".

Purchase profiles are compressed with truncated SVD and clustered with KMeans; each
segment remembers what its members buy most. A shopper with a handful of purchases is
placed in the nearest segment; an unknown shopper gets the largest one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from plugin.engine.base import BaseRecommender, Recommendation, check_is_fitted
from plugin.engine.data import Interactions
from plugin.engine.history import HistoryMixin
from plugin.engine.trending import top_indices

__all__ = ["SegmentRecommender"]


class SegmentRecommender(HistoryMixin, BaseRecommender):
    """KMeans segments on SVD-compressed purchase profiles.

    Parameters
    ----------
    n_segments : int
        Number of KMeans clusters (capped by the number of shoppers).
    n_components : int
        SVD dimensions of a purchase profile.
    min_buyers : int
        Shoppers an item needs to shape profiles or be called popular (one shopper's
        purchase is not "popular with shoppers like you", and cannot echo back to them).
    random_state : int or None
        Seed for SVD and KMeans.
    """

    source_name = "segment"

    def __init__(self, n_segments: int = 8, n_components: int = 32, min_buyers: int = 2,
                 random_state: int | None = 0) -> None:
        self.n_segments = n_segments
        self.n_components = n_components
        self.min_buyers = min_buyers
        self.random_state = random_state

    def fit(self, interactions: Interactions, *, show_progress: bool = False) -> SegmentRecommender:
        """Cluster shoppers with purchases and count what each segment buys."""
        x = self.data_ = interactions
        m = x.to_csr("binary")
        buyers = np.asarray(m.sum(axis=0)).ravel()
        m = (m @ sp.diags((buyers >= self.min_buyers).astype(np.float32))).tocsr()
        m.eliminate_zeros()
        active = np.flatnonzero(np.diff(m.indptr) > 0)
        k = max(1, min(self.n_components, x.n_items - 1, len(active) - 1))
        if len(active) >= 2 and x.n_items >= 2:
            # sklearn's explained-variance ratio divides by the total variance, 0 when every
            # active shopper bought the same items (a tiny or new shop): a diagnostic only
            with np.errstate(invalid="ignore", divide="ignore"):
                svd = TruncatedSVD(k, random_state=self.random_state).fit(m[active])
            self.components_ = svd.components_
        else:
            self.components_ = np.zeros((1, x.n_items))
        profiles = self._profile(m[active])
        distinct = len(np.unique(np.round(profiles, 8), axis=0)) if len(active) else 0
        n_seg = max(1, min(self.n_segments, distinct))  # no more segments than profiles
        if len(active) >= n_seg > 0:
            with threadpool_limits(1, "openmp"):  # small data: threads only add contention
                km = KMeans(n_seg, n_init=3, random_state=self.random_state).fit(profiles)
            self.centroids_, labels = normalize(km.cluster_centers_), km.labels_
        else:
            self.centroids_, labels = np.zeros((1, self.components_.shape[0])), np.zeros(0, int)
        n_seg = len(self.centroids_)
        self.popularity_ = np.zeros((n_seg, x.n_items))
        for s in range(n_seg):
            self.popularity_[s] = np.asarray(m[active[labels == s]].sum(axis=0)).ravel()
        self.sizes_ = np.bincount(labels, minlength=n_seg)
        return self

    def _profile(self, rows: sp.csr_matrix) -> np.ndarray:
        if rows.shape[0] == 0:  # nobody bought an item that two shoppers bought
            return np.zeros((0, self.components_.shape[0]))
        return normalize(np.asarray(rows @ self.components_.T))

    def segment_of(self, shopper: str, at: datetime | float | None = None) -> int:
        """The nearest segment to the shopper's purchases before ``at`` (largest if none)."""
        check_is_fitted(self, "centroids_")
        owned = self._owned(shopper, at)
        if not len(owned):
            return int(np.argmax(self.sizes_))
        row = np.zeros((1, self.data_.n_items))
        row[0, owned] = 1.0
        return int(np.argmax(self.centroids_ @ self._profile(row)[0]))

    def recommend(self, shopper: str, n: int = 10, *, exclude: Iterable[str] | None = None,
                  at: datetime | float | None = None) -> list[Recommendation]:
        """What the shopper's segment buys most, minus exclusions and what they own."""
        seg = self.segment_of(shopper, at)
        scores = self.popularity_[seg] * self.data_.catalog.available
        owned = self._owned(shopper, at)
        banned = np.concatenate([self._excluded(exclude), owned])
        # with no purchases the segment is just the largest one: nothing is "like you"
        reason = "popular with shoppers like you" if len(owned) else "popular with shoppers"
        return [
            Recommendation(str(self.data_.item_ids[i]), float(scores[i]), self.source_name,
                           reason)
            for i in top_indices(scores, n, banned)
        ]
