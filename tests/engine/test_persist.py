"""Persistence: versioned .npz + JSON, no pickle, same answers after a round trip."""

from __future__ import annotations

import json

import pytest

from plugin.engine.blend import Blender, ShopkeeperRecommender
from plugin.engine.persist import VERSION, load_model, save_model
from plugin.engine.repurchase import RepurchaseModel
from tests.engine.synthetic import DAY, T0, weekly_history


@pytest.mark.parametrize("make", [ShopkeeperRecommender, Blender, RepurchaseModel])
def test_round_trip_gives_identical_recommendations(tmp_path, make):
    model = make().fit(weekly_history())
    npz, js = save_model(model, tmp_path / "model")
    assert npz.suffix == ".npz" and json.loads(js.read_text())["version"] == VERSION
    loaded = load_model(tmp_path / "model")
    assert loaded.get_params() == model.get_params()
    for shopper in ("s00", "s05", "unknown"):
        for at in (None, T0 + 20 * DAY):
            assert loaded.recommend(shopper, 8, at=at) == model.recommend(shopper, 8, at=at)


def test_artifact_naming_a_class_outside_the_engine_is_refused(tmp_path):
    save_model(RepurchaseModel().fit(weekly_history()), tmp_path / "m")
    meta = json.loads((tmp_path / "m.json").read_text())
    meta["root"]["cls"] = "os:system"
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="outside the engine"):
        load_model(tmp_path / "m")


def test_other_format_versions_are_refused(tmp_path):
    save_model(RepurchaseModel().fit(weekly_history()), tmp_path / "m")
    meta = json.loads((tmp_path / "m.json").read_text())
    meta["version"] = 99
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unsupported"):
        load_model(tmp_path / "m")


def test_an_artifact_fitted_on_other_features_is_refused_and_one_without_the_list_loads(
        tmp_path):
    """A column added or moved without a VERSION bump must not score rows silently wrong."""
    model = ShopkeeperRecommender().fit(weekly_history())
    save_model(model, tmp_path / "m")
    meta = json.loads((tmp_path / "m.json").read_text())
    older = {**meta, "features": [f for f in meta["features"] if f != "ease"]}
    (tmp_path / "m.json").write_text(json.dumps(older))
    with pytest.raises(ValueError, match="other ranker features"):
        load_model(tmp_path / "m")
    del meta["features"]  # written before the list was stored: version 2's list
    (tmp_path / "m.json").write_text(json.dumps(meta))
    assert load_model(tmp_path / "m").recommend("s00", 5) == model.recommend("s00", 5)


def test_learned_discovery_survives_a_round_trip(tmp_path):
    model = ShopkeeperRecommender().fit(weekly_history())
    assert model.explore_scorer_ is not None  # there is something to save
    save_model(model, tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert loaded.explore_boost_ == model.explore_boost_
    assert loaded.explore_validation_ == model.explore_validation_
    assert (loaded.explore_scorer_.coef == model.explore_scorer_.coef).all()
