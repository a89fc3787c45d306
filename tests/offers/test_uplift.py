"""The uplift model: prior before data, learns the treatment effect from quotes with data."""

from __future__ import annotations

import numpy as np
import pytest

from plugin.offers.uplift import PRIOR_RATES, UpliftModel


def test_prior_before_data():
    model = UpliftModel()
    f = {"stage": "idle_cart"}
    assert model.predict(f, 0) == PRIOR_RATES["idle_cart"]
    assert model.predict(f, 5) < model.predict(f, 10) < 1.0


def test_fit_returns_self_and_learns_a_real_effect():
    rng = np.random.default_rng(0)
    feats, pcts, ys = [], [], []
    for _ in range(4000):
        pct = float(rng.choice([0, 10]))
        feats.append({"stage": "active_cart", "cart_value": float(rng.uniform(20, 200))})
        pcts.append(pct)
        ys.append(bool(rng.random() < (0.2 if pct == 0 else 0.5)))
    model = UpliftModel(prior_weight=50)
    assert model.fit(feats, pcts, ys) is model
    f = {"stage": "active_cart", "cart_value": 100.0}
    assert model.predict(f, 0) == pytest.approx(0.2 * 0.99 + 0.30 * 0.01, abs=0.03)
    assert model.predict(f, 10) > 0.45  # the prior alone would say ~0.37


def test_one_class_arm_keeps_the_prior():
    model = UpliftModel().fit([{"stage": "browsing"}] * 3, [0, 0, 0], [False] * 3)
    assert model.predict({"stage": "browsing"}, 0) == PRIOR_RATES["browsing"]
