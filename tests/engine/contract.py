"""EstimatorContract: the behaviour every engine recommender shares (scikit-learn style).

A test class mixes this in and defines ``make`` (a fresh estimator); each estimator's own
file then only adds its known-answer tests.
"""

from __future__ import annotations

import math

import pytest
from sklearn.base import clone

from plugin.engine.base import BaseRecommender, NotFittedError
from tests.engine.synthetic import CATALOG, DAY, T0, build, weekly_rows

SHOPPER = "s03"


class EstimatorContract:
    """Mix in and implement ``make`` (estimators without randomness ignore the seed)."""

    def make(self, random_state: int | None = 0) -> BaseRecommender:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def history(cls):
        return build(weekly_rows(seed=1))

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, history):
        return cls().make().fit(history)

    def test_fit_returns_self(self, history):
        model = self.make()
        assert model.fit(history) is model

    def test_recommend_before_fit_raises_not_fitted(self):
        with pytest.raises(NotFittedError):
            self.make().recommend(SHOPPER, 5)

    def test_constructor_only_stores_hyperparameters(self):
        model = self.make()
        assert clone(model).get_params() == model.get_params()

    def test_same_random_state_gives_same_answer(self, history):
        a = self.make(random_state=7).fit(history).recommend(SHOPPER, 8)
        b = self.make(random_state=7).fit(history).recommend(SHOPPER, 8)
        assert a == b

    def test_unknown_shopper_gets_an_answer(self, fitted):
        recs = fitted.recommend("never-seen", 5)
        assert isinstance(recs, list)
        assert all(r.reason and r.source for r in recs)

    def test_every_item_has_a_reason_and_respects_exclude(self, fitted):
        first = fitted.recommend(SHOPPER, 5)
        assert first, "a known shopper gets recommendations"
        assert all(r.reason and r.source for r in first)
        again = fitted.recommend(SHOPPER, 5, exclude=[first[0].item])
        assert first[0].item not in {r.item for r in again}

    def test_at_never_leaks_the_future(self):
        """A purchase after ``at`` (here: a brand-new item in the shopper's last basket)
        changes nothing about what the shopper is shown at ``at``."""
        rows = weekly_rows(seed=2)
        last = max(t for s, _, t, _ in rows if s == SHOPPER)
        at = last - 0.5 * DAY
        catalog = {**CATALOG, "future-gadget": {"title": "Future gadget", "categories": ["z"]}}
        with_future = [*rows, (SHOPPER, "future-gadget", last, f"{SHOPPER}-w7")]
        seen = self.make().fit(build(with_future, catalog)).recommend(SHOPPER, 10, at=at)
        unseen = self.make().fit(build(rows, catalog)).recommend(SHOPPER, 10, at=at)
        assert "future-gadget" not in {r.item for r in seen}
        assert not any("Future gadget" in r.reason for r in seen)
        assert [(r.item, r.source, r.reason) for r in seen] == [
            (r.item, r.source, r.reason) for r in unseen]
        assert all(math.isclose(a.score, b.score, rel_tol=1e-9, abs_tol=1e-12)
                   for a, b in zip(seen, unseen, strict=True))

    def test_at_uses_only_earlier_purchases(self, history):
        """Asked before the shopper's first purchase, the model treats them as new."""
        model = self.make().fit(history)
        early = model.recommend(SHOPPER, 5, at=T0 - DAY)
        assert not any(r.reason.startswith("you ") for r in early)

    def test_negative_n_is_refused(self, fitted):
        """The API allows 1 to 50; a negative count is a caller's bug, not a short list."""
        with pytest.raises(ValueError, match="n must be"):
            fitted.recommend(SHOPPER, -1)
        with pytest.raises(ValueError, match="n must be"):
            fitted.recommend("never-seen", n=-3)

    def test_zero_n_gives_an_empty_list(self, fitted):
        assert fitted.recommend(SHOPPER, 0) == []
        assert fitted.recommend("never-seen", 0) == []
