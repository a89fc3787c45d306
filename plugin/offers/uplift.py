"""Per-shop conversion model with and without an offer (two-model uplift), with a prior.

Before a shop has data the prior answers: a base conversion rate per funnel stage and a
saturating response to the discount, ``p1 = p0 + (1 - p0) * (1 - exp(-elasticity * pct))``.
With data, two logistic regressions are fitted, one on control quotes (holdout or no offer)
and one on treated quotes (with the discount as a feature), and blended with the prior by
``n / (n + prior_weight)`` so a handful of sessions cannot swing the policy. Pure: no Flask,
no database; the service feeds it rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression

STAGES = ("new_visitor", "browsing", "active_cart", "idle_cart", "wishlist_holder",
          "returning_customer", "lapsed_customer")
#: Prior P(convert | stage, no offer): rough e-commerce rates, replaced by data as it comes.
PRIOR_RATES = {"new_visitor": 0.02, "browsing": 0.03, "active_cart": 0.30, "idle_cart": 0.10,
               "wishlist_holder": 0.05, "returning_customer": 0.35, "lapsed_customer": 0.08}


def feature_vector(features: Mapping[str, Any]) -> list[float]:
    """Numeric features of a quote: cart size, customer history and a stage one-hot."""
    value = float(features.get("cart_value") or 0.0)
    row = [math.log1p(max(value, 0.0)), float(features.get("n_items") or 0),
           float(bool(features.get("is_customer"))),
           math.log1p(float(features.get("orders_before") or 0))]
    stage = features.get("stage")
    row += [1.0 if stage == s else 0.0 for s in STAGES]
    return row


class UpliftModel(BaseEstimator):
    """Two-model uplift estimator: ``predict(features, discount_pct) -> P(convert)``.

    Parameters
    ----------
    prior_weight : float
        Pseudo-observations the prior is worth per arm.
    elasticity : float
        Prior response per discount percentage point.
    C : float
        Inverse L2 strength of both logistic regressions.
    """

    def __init__(self, prior_weight: float = 200.0, elasticity: float = 0.01, C: float = 1.0):
        self.prior_weight = prior_weight
        self.elasticity = elasticity
        self.C = C

    def fit(self, features: Sequence[Mapping[str, Any]], discount_pct: Sequence[float],
            converted: Sequence[bool]) -> UpliftModel:
        """Fit the control and treated models; an arm with one class keeps the prior."""
        x = np.array([feature_vector(f) for f in features], dtype=float).reshape(-1, 11)
        d = np.asarray(discount_pct, dtype=float)
        y = np.asarray(converted, dtype=int)
        control, treated = d <= 0, d > 0
        self.n_control_ = int(control.sum())
        self.n_treated_ = int(treated.sum())
        self.control_ = self._fit_arm(x[control], y[control])
        self.treated_ = self._fit_arm(np.column_stack([x[treated], d[treated]]), y[treated])
        return self

    def _fit_arm(self, x: np.ndarray, y: np.ndarray) -> LogisticRegression | None:
        if len(y) == 0 or len(set(y.tolist())) < 2:
            return None
        return LogisticRegression(C=self.C, max_iter=500).fit(x, y)

    def prior(self, features: Mapping[str, Any], discount_pct: float) -> float:
        """The data-free answer: stage base rate plus a saturating discount response."""
        p0 = PRIOR_RATES.get(str(features.get("stage")), 0.05)
        if discount_pct <= 0:
            return p0
        return p0 + (1 - p0) * (1 - math.exp(-self.elasticity * discount_pct))

    def predict(self, features: Mapping[str, Any], discount_pct: float) -> float:
        """Blend of the prior and the fitted arm, weighted by that arm's sample size."""
        prior = self.prior(features, discount_pct)
        if not hasattr(self, "n_control_"):
            return prior
        row = feature_vector(features)
        if discount_pct <= 0:
            model, n = self.control_, self.n_control_
        else:
            model, n = self.treated_, self.n_treated_
            row = [*row, float(discount_pct)]
        if model is None:
            return prior
        learned = float(model.predict_proba(np.array([row]))[0, 1])
        w = n / (n + self.prior_weight)
        return w * learned + (1 - w) * prior

    def __call__(self, features: Mapping[str, Any], discount_pct: float) -> float:
        return self.predict(features, discount_pct)
