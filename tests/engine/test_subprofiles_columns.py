"""The sub-profile detector's features are written and read by name, every column once."""

from __future__ import annotations

import numpy as np
import pytest

from plugin.engine.subprofiles import (
    _DEFAULT_COEF,
    _DEFAULT_WEIGHTS,
    COL,
    FEATURES,
    OutOfProfileDetector,
    feature_row,
)
from tests.engine.test_subprofiles import HOST, _shop, items_of


@pytest.fixture(scope="module")
def fitted() -> OutOfProfileDetector:
    return OutOfProfileDetector(random_state=0).fit(_shop())


def test_every_feature_name_is_one_column():
    assert len(set(FEATURES)) == len(FEATURES)
    assert [COL[f] for f in FEATURES] == list(range(len(FEATURES)))


def test_feature_row_refuses_a_feature_written_twice_never_or_unknown():
    everything = {f: float(k) for k, f in enumerate(FEATURES)}
    np.testing.assert_array_equal(feature_row(everything), np.arange(len(FEATURES), dtype=float))
    # split across parts is the same row
    half = len(FEATURES) // 2
    np.testing.assert_array_equal(
        feature_row(dict(list(everything.items())[:half]), dict(list(everything.items())[half:])),
        feature_row(everything))
    with pytest.raises(ValueError, match="'log_basket' written twice"):
        feature_row(everything, {"log_basket": 0.0})
    with pytest.raises(ValueError, match="never written: min_similarity"):
        feature_row({f: 0.0 for f in FEATURES if f != "min_similarity"})
    with pytest.raises(ValueError, match="unknown feature 'nope'"):
        feature_row(everything | {"nope": 0.0})


def test_default_coefficients_sit_in_their_named_columns():
    assert set(_DEFAULT_WEIGHTS) == set(FEATURES)
    for name, weight in _DEFAULT_WEIGHTS.items():
        assert _DEFAULT_COEF[COL[name]] == weight
    # a new category or audience raises the default score, a familiar mix lowers it
    assert _DEFAULT_COEF[COL["new_group"]] > 0 and _DEFAULT_COEF[COL["audience_new"]] > 0
    assert _DEFAULT_COEF[COL["similarity"]] < 0


def test_the_named_features_hold_what_their_names_say(fitted):
    history = fitted._idx(HOST)
    foreign = fitted._features(history, fitted._idx(items_of("Baby Foods")[:2]))
    own = fitted._features(history, fitted._idx(["coff1", "wine2", "chee0"]))
    assert not np.isnan(foreign).any() and not np.isnan(own).any()
    # every baby item is new, of a category and an audience the adult never bought
    for name in ("new_item", "new_group", "audience_new", "audience_new_max"):
        assert foreign[COL[name]] == 1.0, name
    assert foreign[COL["audience_seen"]] == 0.0
    # the own basket: items already bought, of the shopper's categories, no audience
    for name in ("new_item", "new_group", "audience_new", "audience_new_max", "audience_seen"):
        assert own[COL[name]] == 0.0, name
    assert own[COL["group_lift"]] > foreign[COL["group_lift"]]
    assert own[COL["similarity"]] > foreign[COL["similarity"]]
    for row in (own, foreign):
        assert row[COL["min_similarity"]] <= row[COL["similarity"]]
        assert row[COL["log_history"]] == np.log1p(len(HOST))
    assert foreign[COL["log_basket"]] == np.log1p(2) and own[COL["log_basket"]] == np.log1p(3)
