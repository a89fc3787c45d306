"""Merchant rules on top of any recommendation list: exclude, boost, pin.

Rules come from the settings page (``Shop.settings["merchandising"]``): each is
``{"action": "pin"|"boost"|"exclude", "field": "product"|"tag"|"category"|"vendor",
"value": str, "weight": float}``. Exclusions win over everything; pinned products are put
first even when no model proposed them (live filters still drop unavailable ones); boosts
re-rank by position so sources with different score scales blend fairly.

The settings page keeps a stored line it refuses (flagged, for the merchant to fix), so
serving checks each line with the page's own rule (``RuleSchema``) and applies only the
ones it accepts (``valid_rules``): a refused line is skipped and logged, never applied as
is nor let fail the list.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError

from plugin.admin.schemas import RuleSchema
from plugin.engine.base import Recommendation
from plugin.extensions import db
from plugin.models import Product

log = logging.getLogger("shopkeeper.merchandising")

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


def valid_rules(shop_id: str, stored: Any) -> list[dict[str, Any]]:
    """The stored rules the settings page accepts, as its schema loads them (a boost's
    weight a float, 1 by default); each refused line is left out and logged."""
    if not stored:
        return []
    if not isinstance(stored, list):
        log.warning("merchandising.rules_refused", extra={
            "shop_id": shop_id, "errors": "not a list of rules"})
        return []
    schema = RuleSchema()
    rules: list[dict[str, Any]] = []
    for line, rule in enumerate(stored, start=1):
        try:
            rules.append(schema.load(rule))
        except ValidationError as err:
            log.warning("merchandising.rule_refused", extra={
                "shop_id": shop_id, "line": line, "errors": err.messages})
    return rules


def apply_rules(candidates: Sequence[Recommendation], rules: Iterable[dict],
                meta: dict[str, ProductMeta]) -> list[Recommendation]:
    """Pure: exclude, then boost by rank, then pins first (in rule order); ``rules`` as
    ``valid_rules`` returns them."""
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
    """Apply the shop's rules the settings page accepts to ``candidates`` (a no-op
    without any)."""
    rules = valid_rules(shop_id, settings.get("merchandising"))
    if not rules:
        return list(candidates)
    needs_meta = any(r["field"] != "product" for r in rules)
    meta = load_meta(shop_id, (c.item for c in candidates)) if needs_meta else {}
    return apply_rules(candidates, rules, meta)
