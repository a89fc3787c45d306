"""Merchant rules: exclusions win, boosts re-rank, pins come first."""

from __future__ import annotations

from plugin.engine.base import Recommendation
from plugin.merchandising import PIN_REASON, ProductMeta, apply_rules

CANDIDATES = [Recommendation(i, 10.0 - k, "itemknn", "because") for k, i in
              enumerate(["a", "b", "c", "d", "e"])]
META = {"a": ProductMeta(frozenset({"sale"}), frozenset({"mugs"}), "acme"),
        "b": ProductMeta(frozenset(), frozenset({"bags"}), "other"),
        "c": ProductMeta(frozenset({"gift"}), frozenset({"mugs"}), "acme"),
        "d": ProductMeta(), "e": ProductMeta(frozenset({"gift"}), frozenset(), "")}


def _ids(recs):
    return [r.item for r in recs]


def test_no_rules_keeps_order():
    assert _ids(apply_rules(CANDIDATES, [], META)) == ["a", "b", "c", "d", "e"]


def test_exclude_by_each_field():
    assert _ids(apply_rules(CANDIDATES, [{"action": "exclude", "field": "product",
                                          "value": "b"}], META)) == ["a", "c", "d", "e"]
    assert _ids(apply_rules(CANDIDATES, [{"action": "exclude", "field": "category",
                                          "value": "Mugs"}], META)) == ["b", "d", "e"]
    assert _ids(apply_rules(CANDIDATES, [{"action": "exclude", "field": "vendor",
                                          "value": "ACME"}], META)) == ["b", "d", "e"]
    assert _ids(apply_rules(CANDIDATES, [{"action": "exclude", "field": "tag",
                                          "value": "gift"}], META)) == ["a", "b", "d"]


def test_boost_moves_matches_up_by_weight():
    out = _ids(apply_rules(CANDIDATES, [{"action": "boost", "field": "tag", "value": "gift",
                                         "weight": 3}], META))
    assert out.index("c") < out.index("b") and out.index("e") < out.index("d")
    assert out[0] == "c"  # rank 3 with weight 3 scores 4/3, above rank 1's 1/1
    weak = _ids(apply_rules(CANDIDATES, [{"action": "boost", "field": "tag", "value": "gift",
                                          "weight": 0.1}], META))
    assert weak == ["a", "b", "c", "d", "e"]


def test_pinned_product_comes_first_even_if_no_model_proposed_it():
    out = apply_rules(CANDIDATES, [{"action": "pin", "field": "product", "value": "z"}], META)
    assert out[0].item == "z" and out[0].reason == PIN_REASON and len(out) == 6


def test_pin_by_tag_moves_matching_candidates_first():
    out = _ids(apply_rules(CANDIDATES, [{"action": "pin", "field": "tag", "value": "gift"}],
                           META))
    assert out[:2] == ["c", "e"]


def test_exclusion_beats_pin():
    rules = [{"action": "pin", "field": "product", "value": "a"},
             {"action": "exclude", "field": "tag", "value": "sale"}]
    assert "a" not in _ids(apply_rules(CANDIDATES, rules, META))
