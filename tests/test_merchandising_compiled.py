"""The compiled rules (``plugin.merchandising.Rules``) give the lists the rule-by-rule
matching gave: exclusions, boosts summed over every matching rule, pins in rule order."""

from __future__ import annotations

import random

from plugin.engine.base import Recommendation
from plugin.merchandising import PIN_REASON, ProductMeta, Rules


def _matches(rule, item, meta):
    value = str(rule["value"]).strip().lower()
    if rule["field"] == "product":
        return item == str(rule["value"])
    if meta is None:
        return False
    if rule["field"] == "tag":
        return value in meta.tags
    if rule["field"] == "category":
        return value in meta.categories
    return rule["field"] == "vendor" and meta.vendor == value


def _one_by_one(candidates, rules, meta):
    """The former ``apply_rules``: every rule tried on every candidate."""
    excludes = [r for r in rules if r["action"] == "exclude"]
    boosts = [r for r in rules if r["action"] == "boost"]
    pins = [r for r in rules if r["action"] == "pin"]

    def banned(item):
        return any(_matches(r, item, meta.get(item)) for r in excludes)

    kept = [c for c in candidates if not banned(c.item)]

    def boosted(pair):
        rank, rec = pair
        weight = sum(float(r.get("weight", 1.0)) for r in boosts
                     if _matches(r, rec.item, meta.get(rec.item)))
        return -(1.0 + weight) / (rank + 1)

    ranked = [rec for _, rec in sorted(enumerate(kept), key=boosted)] if boosts else kept
    pinned = []
    for rule in pins:
        if rule["field"] == "product":
            item = str(rule["value"])
            if not banned(item) and item not in {p.item for p in pinned}:
                pinned.append(Recommendation(item, float("inf"), "merchandising", PIN_REASON))
        else:
            pinned += [r for r in ranked if _matches(rule, r.item, meta.get(r.item))
                       and r.item not in {p.item for p in pinned}]
    first = {p.item for p in pinned}
    return pinned + [r for r in ranked if r.item not in first]


def test_compiled_rules_serve_what_rule_by_rule_matching_served():
    rng = random.Random(7)
    words = ["gift", "Sale ", "mugs", "acme", "other", "bags"]
    items = [f"p{k}" for k in range(30)]
    meta = {i: ProductMeta(frozenset(w.strip().lower() for w in rng.sample(words, 2)),
                           frozenset({rng.choice(words).strip().lower()}),
                           rng.choice(["acme", "other", ""])) for i in items[:25]}
    for _ in range(300):
        candidates = [Recommendation(i, 1.0, "itemknn", "") for i in rng.sample(items, 15)]
        rules = []
        for _ in range(rng.randint(0, 12)):
            field = rng.choice(["product", "tag", "category", "vendor"])
            value = rng.choice(items) if field == "product" else rng.choice(words)
            rules.append({"action": rng.choice(["pin", "boost", "exclude"]), "field": field,
                          "value": value, "weight": rng.choice([0.5, 1.0, 2.0, 10.0])})
        assert Rules.of(rules).apply(candidates, meta) == _one_by_one(candidates, rules, meta)
