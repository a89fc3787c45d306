"""The estimator contract every recommender in the engine follows (scikit-learn style)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from plugin.engine.data import Interactions

__all__ = ["BaseRecommender", "NotFittedError", "Recommendation", "check_is_fitted"]


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One recommended item with the evidence a shopper and a maintainer can read."""

    item: str  # external item id
    score: float
    source: str  # name of the estimator/source that proposed it, e.g. "itemknn"
    reason: str  # human-readable: "because you bought X"


class BaseRecommender(BaseEstimator):
    """Base for all recommenders.

    Subclasses take only hyperparameters in ``__init__``, learn in ``fit`` (state ends
    in ``_``) and answer ``recommend`` for a shopper's external id. ``at`` gives
    point-in-time context: only interactions with ``timestamp < at`` may be used.
    """

    source_name: str = "base"

    def fit(self, interactions: Interactions, *, show_progress: bool = False) -> BaseRecommender:
        raise NotImplementedError

    def recommend(
        self,
        shopper: str,
        n: int = 10,
        *,
        exclude: Iterable[str] | None = None,
        at: datetime | float | None = None,
    ) -> list[Recommendation]:
        raise NotImplementedError
