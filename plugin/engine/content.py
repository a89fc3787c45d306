"""Content similarity on title, description, categories and tags (TF-IDF).

The only source that can recommend an item nobody has bought yet: new products get
shown next to the ones they read like.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from plugin.engine.base import BaseRecommender, Recommendation, check_is_fitted
from plugin.engine.data import Interactions
from plugin.engine.history import HistoryMixin
from plugin.engine.trending import top_indices

__all__ = ["ContentRecommender", "item_texts"]


def item_texts(x: Interactions) -> list[str]:
    """One document per item: title, description, categories and tags."""
    c = x.catalog
    return [" ".join([str(c.title[i]), str(c.description[i]), " ".join(c.categories[i]),
                      " ".join(c.tags[i])]).strip() for i in range(x.n_items)]


class ContentRecommender(HistoryMixin, BaseRecommender):
    """TF-IDF item vectors; a shopper's profile is the mean of what they bought.

    Parameters
    ----------
    max_features : int
        Vocabulary size cap.
    ngram_range : tuple
        Word n-grams (``(1, 2)`` catches "tea light").
    """

    source_name = "content"

    def __init__(self, max_features: int = 50000, ngram_range: tuple[int, int] = (1, 2)) -> None:
        self.max_features = max_features
        self.ngram_range = ngram_range

    def fit(self, interactions: Interactions, *, show_progress: bool = False) -> ContentRecommender:
        """Vectorise every catalogue item (bought or not)."""
        x = self.data_ = interactions
        self._fit_popularity()
        docs = item_texts(x)
        if any(docs):
            vec = TfidfVectorizer(max_features=self.max_features, ngram_range=self.ngram_range,
                                  sublinear_tf=True, lowercase=True)
            self.vectors_ = vec.fit_transform(docs).tocsr()  # rows are L2-normalised
        else:
            import scipy.sparse as sp

            self.vectors_ = sp.csr_matrix((x.n_items, 1))
        return self

    def similar_items(self, item: str, n: int = 10) -> list[Recommendation]:
        """Items that read like ``item`` (works for items never bought)."""
        check_is_fitted(self, "vectors_")
        i = self.data_.item_index(item)
        if i is None:
            return []
        scores = (self.vectors_ @ self.vectors_[i].T).toarray().ravel()
        scores *= self.data_.catalog.available
        return [Recommendation(str(self.data_.item_ids[j]), float(scores[j]), self.source_name,
                               f"similar to {self._title(i)}")
                for j in top_indices(scores, n, np.array([i]))]

    def recommend(self, shopper: str, n: int = 10, *, exclude: Iterable[str] | None = None,
                  at: datetime | float | None = None) -> list[Recommendation]:
        """Unowned items closest to the shopper's purchases before ``at``."""
        check_is_fitted(self, "vectors_")
        owned = self._owned(shopper, at)
        banned = np.concatenate([self._excluded(exclude), owned])
        if not len(owned):
            return self._popular(n, banned, self.source_name)
        own = self.vectors_[owned]
        sims = (self.vectors_ @ own.T).tocsr()  # items x owned
        scores = np.asarray(sims.sum(axis=1)).ravel() / len(owned)
        scores *= self.data_.catalog.available
        out = []
        for i in top_indices(scores, n, banned):
            because = owned[int(np.argmax(sims[i].toarray().ravel()))]
            out.append(Recommendation(str(self.data_.item_ids[i]), float(scores[i]),
                                      self.source_name, f"similar to {self._title(because)}"))
        return out
