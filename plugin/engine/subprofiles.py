"""Does this basket fit the shopper, or are they buying for someone else?

``OutOfProfileDetector`` learns from the catalog (category groups, audience words such as
baby / kids / women / men / pet / gift in titles, categories and tags) and from purchase
histories (a category embedding from who buys what together). It returns a calibrated
probability that a basket (an order, or a cart after an add-to-cart) is for someone else.

No shop has labels, so the calibration is self-supervised: for sampled shoppers their own
last basket is a negative, and a basket of another real shopper scored against the same
history is a positive. The logistic calibration therefore means "probability at a 50/50
prior"; each shop picks its own operating point with a threshold.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from types import MappingProxyType

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.decomposition import TruncatedSVD
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from plugin.engine.columns import column_index, named_columns
from plugin.engine.data import Interactions

__all__ = ["AUDIENCES", "COL", "FEATURES", "OutOfProfileDetector", "audiences_of",
           "feature_row"]

AUDIENCES = ("baby", "kids", "women", "men", "pet", "gift")
_WORDS = {
    "baby": {"baby", "babies", "babyfood", "infant", "infants", "diaper", "diapers", "nappy",
             "nappies", "newborn", "toddler", "toddlers", "pacifier", "teether"},
    "kids": {"kid", "kids", "child", "children", "childrens", "toy", "toys", "junior", "boys",
             "girls", "youth"},
    "women": {"women", "womens", "ladies", "feminine", "maternity"},
    "men": {"men", "mens", "gentlemen"},
    "pet": {"pet", "pets", "dog", "dogs", "puppy", "cat", "cats", "kitten", "litter",
            "aquarium"},
    "gift": {"gift", "gifts", "giftset"},
}
#: Phrases whose words would otherwise name an audience ("hot dogs" are not for the dog).
_NOT_AUDIENCE = re.compile(r"\b(hot|corn)\s*dogs?\b|\bcat\s*fish\b|\bcatfish\b")
_TOKEN = re.compile(r"[a-z0-9]+")

#: Features of a (history, basket) pair, in the calibrator's column order. Code writes and
#: reads them by name (``COL``, ``feature_row``). No saved artifact holds these column
#: numbers (the detector is refitted in each process, never persisted), so the order is
#: free; it is kept as it was because the logistic fit's rounding follows the column order,
#: and this order is the one bench/subprofiles.py's precision/recall were measured with.
FEATURES = ("new_item", "new_group", "group_lift", "similarity", "audience_new",
            "audience_new_max", "audience_seen", "min_similarity", "log_history",
            "log_basket")
#: Column of each feature: ``detector.coef_[COL["new_group"]]``.
COL: Mapping[str, int] = column_index(FEATURES)


def feature_row(*parts: Mapping[str, float]) -> np.ndarray:
    """The ``len(FEATURES)`` vector of named values, each feature given exactly once
    (``columns.named_columns``: a value left at its default or landing in a neighbour's
    column would otherwise be calibrated and scored silently)."""
    return named_columns((), FEATURES, COL, *parts)


#: Used when a shop has too little data to calibrate (hand-set, conservative): a new
#: category or an audience the shopper never bought for raises the score, a basket close
#: to the shopper's category mix lowers it, the sizes alone say nothing.
_DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType({
    "new_item": 1.0, "new_group": 1.5, "group_lift": -0.6, "similarity": -2.0,
    "audience_new": 2.5, "audience_new_max": 1.0, "audience_seen": -1.0,
    "min_similarity": -1.0, "log_history": 0.0, "log_basket": 0.0})
_DEFAULT_COEF = feature_row(_DEFAULT_WEIGHTS)
_DEFAULT_INTERCEPT = -1.5


def audiences_of(*texts: str) -> frozenset[str]:
    """Audience words in product text: ``audiences_of("BABY FOODS")`` is ``{"baby"}``."""
    text = _NOT_AUDIENCE.sub(" ", " ".join(t.lower() for t in texts if t))
    tokens = {t[:-1] if t.endswith("s") and t[:-1] in _ALL_WORDS else t
              for t in _TOKEN.findall(text)}
    return frozenset(a for a, words in _WORDS.items() if tokens & words)


_ALL_WORDS = set().union(*_WORDS.values())


class OutOfProfileDetector(BaseEstimator):
    """Calibrated out-of-profile score of a basket against a shopper's history.

    Parameters
    ----------
    n_components : size of the category embedding (truncated SVD of shopper x category).
    smoothing : pseudo-purchases pulling a short history towards the shop's category mix.
    min_history : purchases a shopper needs before anything is flagged (below: score 0).
    threshold : default decision threshold on the calibrated score (shops override it).
    calibration_shoppers : shoppers sampled for the self-supervised calibration.
    random_state : seed for sampling and the SVD.
    """

    def __init__(self, n_components: int = 24, smoothing: float = 5.0, min_history: int = 5,
                 threshold: float = 0.6, calibration_shoppers: int = 2000,
                 random_state: int | None = 0) -> None:
        self.n_components = n_components
        self.smoothing = smoothing
        self.min_history = min_history
        self.threshold = threshold
        self.calibration_shoppers = calibration_shoppers
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def fit(self, interactions: Interactions, *, show_progress: bool = False
            ) -> OutOfProfileDetector:
        """Learn category groups, audiences, the embedding and the calibration."""
        data = interactions
        cat = data.catalog
        keys = [cat.primary_category(i) or f"item:{data.item_ids[i]}" for i in range(data.n_items)]
        self.group_ids_, self.item_group_ = np.unique(np.asarray(keys, dtype=object),
                                                      return_inverse=True)
        self.item_group_ = self.item_group_.astype(np.int64)
        self.item_ids_ = data.item_ids
        self._index = {str(i): k for k, i in enumerate(data.item_ids)}
        self.item_audience_ = np.array(
            [[a in found for a in AUDIENCES] for found in (
                audiences_of(cat.title[i], cat.description[i], *cat.categories[i], *cat.tags[i])
                for i in range(data.n_items))], dtype=bool).reshape(data.n_items, len(AUDIENCES))
        n_groups = len(self.group_ids_)
        counts = np.bincount(self.item_group_[data.item], minlength=n_groups).astype(float)
        self.group_share_ = (counts + 1.0) / (counts.sum() + n_groups)
        self.group_vectors_ = self._embed(data, n_groups)
        X, y = self._calibration_set(data)
        if len(y) >= 40 and 0 < y.sum() < len(y):
            model = LogisticRegression(C=1.0, max_iter=1000).fit(X, y)
            self.coef_, self.intercept_ = model.coef_[0].copy(), float(model.intercept_[0])
        else:
            self.coef_, self.intercept_ = _DEFAULT_COEF.copy(), _DEFAULT_INTERCEPT
        return self

    def _embed(self, data: Interactions, n_groups: int) -> np.ndarray:
        """Category vectors: categories bought by the same shoppers point the same way."""
        m = sp.csr_matrix((np.ones(len(data)), (data.user, self.item_group_[data.item])),
                          shape=(data.n_users, n_groups))
        m.sum_duplicates()
        m.data = np.log1p(m.data)
        k = min(self.n_components, n_groups - 1, data.n_users - 1)
        if k < 2:
            return np.zeros((n_groups, 1))
        svd = TruncatedSVD(n_components=k, random_state=self.random_state).fit(m)
        vectors = svd.components_.T * svd.singular_values_
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    def _calibration_set(self, data: Interactions) -> tuple[np.ndarray, np.ndarray]:
        """Own last basket (0) vs another shopper's basket (1), against the same history."""
        rng = np.random.default_rng(self.random_state)
        ptr = data.user_ptr
        eligible = [u for u in range(data.n_users)
                    if len(np.unique(data.basket[ptr[u]:ptr[u + 1]])) >= 3
                    and ptr[u + 1] - ptr[u] > self.min_history]
        if len(eligible) < 10:
            return np.zeros((0, len(FEATURES))), np.zeros(0)
        chosen = rng.permutation(eligible)[: self.calibration_shoppers]
        rows, labels = [], []
        for u in chosen:
            items, baskets = data.item[ptr[u]:ptr[u + 1]], data.basket[ptr[u]:ptr[u + 1]]
            last = baskets == baskets[-1]
            donor = int(rng.choice(eligible))
            if donor == u:
                continue
            d_items, d_baskets = data.item[ptr[donor]:ptr[donor + 1]], \
                data.basket[ptr[donor]:ptr[donor + 1]]
            pick = d_items[d_baskets == rng.choice(np.unique(d_baskets))]
            for basket, label in ((items[last], 0), (pick, 1)):
                size = int(rng.integers(1, len(basket) + 1))
                rows.append(self._features(items[~last], rng.permutation(basket)[:size]))
                labels.append(label)
        return np.asarray(rows), np.asarray(labels)

    # ------------------------------------------------------------------ features
    def _idx(self, ids: Sequence[str]) -> np.ndarray:
        found = (self._index.get(str(i)) for i in ids)
        return np.array([i for i in found if i is not None], dtype=np.int64)

    def _profile(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        counts = np.bincount(self.item_group_[history], minlength=len(self.group_ids_))
        weights = np.log1p(counts.astype(float))
        centroid = weights @ self.group_vectors_
        norm = np.linalg.norm(centroid)
        return counts, (centroid / norm if norm > 0 else centroid), \
            self.item_audience_[history].any(axis=0)

    def _features(self, history: np.ndarray, basket: np.ndarray) -> np.ndarray:
        """The ``FEATURES`` row of a basket (item indices) against a history (same)."""
        counts, centroid, seen_aud = self._profile(history)
        groups = self.item_group_[basket]
        n = max(len(history), 1)
        prior = self.group_share_[groups]
        lift = np.log((counts[groups] + self.smoothing * prior) / (n + self.smoothing)) \
            - np.log(prior)
        sim = self.group_vectors_[groups] @ centroid
        aud = self.item_audience_[basket]
        aud_new = (aud & ~seen_aud).any(axis=1)
        return feature_row({
            "new_item": (~np.isin(basket, history)).mean(),
            "new_group": (counts[groups] == 0).mean(),
            "group_lift": lift.mean(),
            "similarity": sim.mean(),
            "min_similarity": sim.min(),
            "audience_new": aud_new.mean(),
            "audience_new_max": float(aud_new.any()),
            "audience_seen": (aud & seen_aud).any(axis=1).mean(),
            "log_history": np.log1p(len(history)),
            "log_basket": np.log1p(len(basket)),
        })

    # ------------------------------------------------------------------ answers
    def score(self, history: Sequence[str], basket: Sequence[str]) -> float:
        """Probability (50/50 prior) that ``basket`` is bought for someone else.

        ``history`` is the shopper's own past purchases (item ids, repeats count); items
        unknown to the fit are ignored. Too short a history scores 0: no judgement yet.
        """
        check_is_fitted(self, "coef_")
        hist, items = self._idx(history), self._idx(basket)
        if len(hist) < self.min_history or not len(items):
            return 0.0
        z = float(self._features(hist, items) @ self.coef_ + self.intercept_)
        return float(1.0 / (1.0 + np.exp(-z)))

    def predict(self, history: Sequence[str], basket: Sequence[str], *,
                threshold: float | None = None) -> bool:
        """True when the basket looks bought for someone else (shop threshold if given)."""
        cut = self.threshold if threshold is None else threshold
        return self.score(history, basket) >= cut

    def suggest(self, basket: Sequence[str], subprofiles: Mapping[Hashable, Sequence[str]], *,
                min_similarity: float = 0.3) -> Hashable | None:
        """The existing sub-profile whose purchases this basket most resembles, if any.

        Similarity is the cosine of the category centroids plus a bonus for a shared
        audience (a baby item suggests the sub-profile that already holds baby items).
        """
        check_is_fitted(self, "coef_")
        items = self._idx(basket)
        if not len(items) or not subprofiles:
            return None
        _, b_centroid, b_aud = self._profile(items)
        best, best_sim = None, -np.inf
        for key, past in subprofiles.items():
            hist = self._idx(past)
            if not len(hist):
                continue
            _, centroid, aud = self._profile(hist)
            sim = float(b_centroid @ centroid) + 0.5 * float((b_aud & aud).any())
            if sim > best_sim:
                best, best_sim = key, sim
        return best if best_sim >= min_similarity else None
