"""Known answers for the out-of-profile detector (audiences, scores, suggestions)."""

from __future__ import annotations

import numpy as np
import pytest

from plugin.engine.base import NotFittedError
from plugin.engine.data import Interactions
from plugin.engine.subprofiles import COL, OutOfProfileDetector, audiences_of

ADULT = ["Coffee", "Wine", "Cheese", "Bread", "Olives", "Beer"]
OTHER = {"Baby Foods": "baby", "Dog Foods": "pet"}


def _catalog() -> dict[str, dict]:
    cat = {}
    for c in [*ADULT, *OTHER]:
        for k in range(4):
            cat[f"{c[:4].lower()}{k}"] = {"title": f"{c} item {k}", "categories": [c]}
    return cat


def items_of(category: str) -> list[str]:
    return [f"{category[:4].lower()}{k}" for k in range(4)]


def _shop(seed: int = 0) -> Interactions:
    """60 adults with 3 favourite categories; 15 of them also buy baby food every time."""
    rng = np.random.default_rng(seed)
    users, items, times, baskets = [], [], [], []
    for u in range(60):
        favourite = rng.choice(ADULT, size=3, replace=False)
        for b in range(6):
            picks = [str(rng.choice(items_of(str(rng.choice(favourite))))) for _ in range(4)]
            if u < 15:
                picks.append(str(rng.choice(items_of("Baby Foods"))))
            for item in picks:
                users.append(f"u{u}")
                items.append(item)
                times.append(float(b * 7 * 86400 + u))
                baskets.append(f"u{u}-{b}")
    return Interactions.from_arrays(users, items, times, baskets=baskets, catalog=_catalog())


@pytest.fixture(scope="module")
def fitted() -> OutOfProfileDetector:
    return OutOfProfileDetector(random_state=0).fit(_shop())


HOST = items_of("Coffee") + items_of("Wine") + items_of("Cheese")


@pytest.mark.parametrize(("texts", "expected"), [
    (("BABY FOODS",), {"baby"}),
    (("DIAPERS & DISPOSABLES",), {"baby"}),
    (("HOT DOGS", "beef franks"), set()),
    (("Dog food", "pets"), {"pet"}),
    (("Women's scarf",), {"women"}),
    (("Toys and games",), {"kids"}),
    (("Gift set",), {"gift"}),
    (("Bananas",), set()),
])
def test_audiences_of_known_words(texts, expected):
    assert audiences_of(*texts) == frozenset(expected)


def test_foreign_basket_scores_high_and_own_basket_low(fitted):
    foreign = fitted.score(HOST, items_of("Baby Foods")[:2])
    own = fitted.score(HOST, ["coff1", "wine2"])
    assert foreign > 0.7
    assert own < 0.3
    assert fitted.predict(HOST, items_of("Baby Foods")[:2])
    assert not fitted.predict(HOST, ["coff1", "wine2"])


def test_score_is_a_probability_that_grows_with_the_foreign_share(fitted):
    own, baby = ["coff0", "wine0", "chee0", "coff1"], items_of("Baby Foods")
    scores = [fitted.score(HOST, own[:4 - k] + baby[:k]) for k in range(4)]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores)
    assert scores[-1] > scores[0]


def test_shop_threshold_overrides_the_default(fitted):
    basket = items_of("Baby Foods")[:1]
    score = fitted.score(HOST, basket)
    assert fitted.predict(HOST, basket, threshold=score)
    assert not fitted.predict(HOST, basket, threshold=min(score + 0.01, 1.0 + 1e-9))


def test_short_history_is_never_flagged(fitted):
    assert fitted.score(HOST[:2], items_of("Baby Foods")) == 0.0
    assert fitted.score(HOST, ["unknown-item"]) == 0.0


def test_suggests_the_subprofile_with_the_same_kind_of_items(fitted):
    subprofiles = {"maya": ["baby0", "baby1"], "rex": items_of("Dog Foods")[:2]}
    assert fitted.suggest(["baby2"], subprofiles) == "maya"
    assert fitted.suggest(items_of("Dog Foods")[2:], subprofiles) == "rex"
    assert fitted.suggest(["baby2"], {}) is None


def test_calibration_is_learned_and_deterministic():
    a = OutOfProfileDetector(random_state=3).fit(_shop())
    b = OutOfProfileDetector(random_state=3).fit(_shop())
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.intercept_ == b.intercept_
    assert a.coef_[COL["new_group"]] > 0  # a category the shopper never buys raises the score


def test_tiny_shop_falls_back_to_default_weights():
    data = Interactions.from_arrays(["a"] * 6 + ["b"], [*HOST[:6], "baby0"], list(range(7)),
                                    catalog=_catalog())
    detector = OutOfProfileDetector().fit(data)
    assert detector.score(HOST[:6], ["baby0"]) > detector.score(HOST[:6], HOST[:1])


def test_unfitted_detector_raises():
    with pytest.raises(NotFittedError):
        OutOfProfileDetector().score(HOST, HOST)
    assert OutOfProfileDetector().fit(_shop()) is not None  # fit returns self
    d = OutOfProfileDetector()
    assert d.fit(_shop()) is d
