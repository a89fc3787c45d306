"""The estimator contract every recommender in the engine follows (scikit-learn style)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
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

    def __init_subclass__(cls, **kwargs) -> None:
        """Every ``recommend`` a subclass defines gets the shared ``n`` check, so no
        estimator can forget it (a negative ``n`` sliced lists from the end)."""
        super().__init_subclass__(**kwargs)
        if "recommend" in cls.__dict__:
            cls.recommend = _checked_n(cls.__dict__["recommend"])

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


_Recommend = Callable[..., list[Recommendation]]


def _checked_n(recommend: _Recommend) -> _Recommend:
    """``recommend`` refusing a negative ``n`` and never answering more than ``n`` items."""
    if getattr(recommend, "_checks_n", False):
        return recommend

    @functools.wraps(recommend)
    def checked(self: BaseRecommender, shopper: str, n: int = 10, *args,
                **kwargs) -> list[Recommendation]:
        if n < 0:
            raise ValueError(f"n must be 0 or more, got {n}")
        return recommend(self, shopper, n, *args, **kwargs)[:n]

    checked._checks_n = True  # type: ignore[attr-defined]
    return checked
