"""Merchant rules on top of any recommendation list: exclude, boost, pin.

Rules come from the settings page (``Shop.settings["merchandising"]``): each is
``{"action": "pin"|"boost"|"exclude", "field": "product"|"tag"|"category"|"vendor",
"value": str, "weight": float}``. Exclusions win over everything; pinned products are put
first even when no model proposed them (live filters still drop unavailable ones); boosts
re-rank by position so sources with different score scales blend fairly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from plugin.engine.base import Recommendation
from plugin.extensions import db
from plugin.models import Product

PIN_REASON = "picked for you by the shop"


@dataclass(frozen=True)
class ProductMeta:
    tags: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    vendor: str = ""


def _matches(rule: dict, item: str, meta: ProductMeta | None) -> bool:
    value = str(rule["value"]).strip().lower()
    field = rule["field"]
    if field == "product":
        return item == str(rule["value"])
    if meta is None:
        return False
    if field == "tag":
        return value in meta.tags
    if field == "category":
        return value in meta.categories
    return field == "vendor" and meta.vendor == value


def apply_rules(candidates: Sequence[Recommendation], rules: Iterable[dict],
                meta: dict[str, ProductMeta]) -> list[Recommendation]:
    """Pure: exclude, then boost by rank, then pins first (in rule order)."""
    rules = list(rules)
    excludes = [r for r in rules if r["action"] == "exclude"]
    boosts = [r for r in rules if r["action"] == "boost"]
    pins = [r for r in rules if r["action"] == "pin"]

    def banned(item: str) -> bool:
        return any(_matches(r, item, meta.get(item)) for r in excludes)

    kept = [c for c in candidates if not banned(c.item)]

    def boosted(pair: tuple[int, Recommendation]) -> float:
        rank, rec = pair
        weight = sum(float(r.get("weight", 1.0)) for r in boosts
                     if _matches(r, rec.item, meta.get(rec.item)))
        return -(1.0 + weight) / (rank + 1)

    ranked = [rec for _, rec in sorted(enumerate(kept), key=boosted)] if boosts else kept
    pinned: list[Recommendation] = []
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


def load_meta(shop_id: str, items: Iterable[str]) -> dict[str, ProductMeta]:
    """Tags, categories and vendor of the candidate products (one query)."""
    ids = list(dict.fromkeys(items))
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(Product.external_id, Product.tags, Product.categories, Product.vendor)
        .where(Product.shop_id == shop_id, Product.external_id.in_(ids)))
    return {pid: ProductMeta(frozenset(t.lower() for t in (tags or [])),
                             frozenset(c.lower() for c in (cats or [])),
                             (vendor or "").lower())
            for pid, tags, cats, vendor in rows}


def merchandise(shop_id: str, settings: dict, candidates: Sequence[Recommendation]
                ) -> list[Recommendation]:
    """Apply the shop's rules to ``candidates`` (a no-op without rules)."""
    rules = settings.get("merchandising") or []
    if not rules:
        return list(candidates)
    needs_meta = any(r["field"] != "product" for r in rules)
    meta = load_meta(shop_id, (c.item for c in candidates)) if needs_meta else {}
    return apply_rules(candidates, rules, meta)
