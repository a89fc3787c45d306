"""Merchant rules on top of any recommendation list: exclude, boost, pin.

Rules come from the settings page (``Shop.settings["merchandising"]``): each is
``{"action": "pin"|"boost"|"exclude", "field": "product"|"tag"|"category"|"vendor",
"value": str, "weight": float}``. Exclusions win over everything; pinned products are put
first even when no model proposed them (live filters still drop unavailable ones); boosts
re-rank by position so sources with different score scales blend fairly.

The settings page keeps a stored line it refuses (flagged, for the merchant to fix), so
serving checks each line with the page's own rule (``RuleSchema``) and applies only the
ones it accepts (``valid_rules``): a refused line is skipped and logged, never applied as
is nor let fail the list. The check runs once per version of the stored rules, not on
each request (``compiled_rules``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
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


@dataclass(frozen=True)
class _Index:
    """Rules of one action by what they match: product ids as stored, the other fields'
    values stripped and in lower case (as ``load_meta`` gives a product's)."""

    products: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    vendors: frozenset[str] = frozenset()

    @classmethod
    def of(cls, rules: Iterable[dict]) -> _Index:
        by: dict[str, set[str]] = {f: set() for f in ("product", "tag", "category", "vendor")}
        for rule in rules:
            if rule["field"] in by:
                by[rule["field"]].add(_key(rule))
        return cls(frozenset(by["product"]), frozenset(by["tag"]),
                   frozenset(by["category"]), frozenset(by["vendor"]))

    def matches(self, item: str, meta: ProductMeta | None) -> bool:
        if item in self.products:
            return True
        return meta is not None and (not self.tags.isdisjoint(meta.tags)
                                     or not self.categories.isdisjoint(meta.categories)
                                     or meta.vendor in self.vendors)


def _key(rule: dict) -> str:
    """What a rule's value is compared with: a product id as is, else stripped, lower."""
    value = str(rule["value"])
    return value if rule["field"] == "product" else value.strip().lower()


def _matches(rule: dict, item: str, meta: ProductMeta | None) -> bool:
    key, field = _key(rule), rule["field"]
    if field == "product":
        return item == key
    if meta is None:
        return False
    if field == "tag":
        return key in meta.tags
    if field == "category":
        return key in meta.categories
    return field == "vendor" and meta.vendor == key


@dataclass(frozen=True)
class Rules:
    """A shop's accepted rules made ready to apply: matching a candidate costs a few set
    and dict lookups, not a pass over every rule (a stored list may have 500 lines)."""

    rules: tuple[dict[str, Any], ...]
    excludes: _Index
    #: (field, key) -> the summed weight of the boosts matching it
    boosts: dict[tuple[str, str], float]
    pins: tuple[dict[str, Any], ...]

    @classmethod
    def of(cls, rules: Iterable[dict]) -> Rules:
        """``rules`` as ``valid_rules`` returns them (or ``apply_rules`` is given them)."""
        rules = tuple(rules)
        boosts: dict[tuple[str, str], float] = {}
        for rule in rules:
            if rule["action"] == "boost":
                key = (rule["field"], _key(rule))
                boosts[key] = boosts.get(key, 0.0) + float(rule.get("weight", 1.0))
        return cls(rules, _Index.of(r for r in rules if r["action"] == "exclude"), boosts,
                   tuple(r for r in rules if r["action"] == "pin"))

    @cached_property
    def needs_meta(self) -> bool:
        """Whether a rule matches on a product's tags, categories or vendor."""
        return any(r["field"] != "product" for r in self.rules)

    @cached_property
    def excludes_only(self) -> Rules:
        """The exclusions alone (a sub-profile's list: pins and boosts are the shop's)."""
        return Rules.of(r for r in self.rules if r["action"] == "exclude")

    def _boost(self, item: str, meta: ProductMeta | None) -> float:
        weight = self.boosts.get(("product", item), 0.0)
        if meta is not None:
            weight += sum(self.boosts.get(("tag", t), 0.0) for t in meta.tags)
            weight += sum(self.boosts.get(("category", c), 0.0) for c in meta.categories)
            weight += self.boosts.get(("vendor", meta.vendor), 0.0)
        return weight

    def apply(self, candidates: Sequence[Recommendation],
              meta: dict[str, ProductMeta]) -> list[Recommendation]:
        """Pure: exclude, then boost by rank, then pins first (in rule order)."""
        def banned(item: str) -> bool:
            return self.excludes.matches(item, meta.get(item))

        kept = [c for c in candidates if not banned(c.item)]

        def boosted(pair: tuple[int, Recommendation]) -> float:
            rank, rec = pair
            return -(1.0 + self._boost(rec.item, meta.get(rec.item))) / (rank + 1)

        ranked = [rec for _, rec in sorted(enumerate(kept), key=boosted)] \
            if self.boosts else kept
        pinned: list[Recommendation] = []
        first: set[str] = set()
        for rule in self.pins:
            if rule["field"] == "product":
                item = str(rule["value"])
                if not banned(item) and item not in first:
                    pinned.append(Recommendation(item, float("inf"), "merchandising",
                                                 PIN_REASON))
                    first.add(item)
            else:
                for rec in ranked:
                    if rec.item not in first and _matches(rule, rec.item, meta.get(rec.item)):
                        pinned.append(rec)
                        first.add(rec.item)
        return pinned + [r for r in ranked if r.item not in first]


NO_RULES = Rules.of(())


def valid_rules(shop_id: str, stored: Any) -> list[dict[str, Any]]:
    """The stored rules the settings page accepts, as its schema loads them (a boost's
    weight a float, 1 by default); each refused line is left out and logged (once per
    version of the rules and process, see ``compiled_rules``)."""
    return list(compiled_rules(shop_id, stored).rules)


def compiled_rules(shop_id: str, stored: Any) -> Rules:
    """The stored rules the settings page accepts, ready to apply.

    Checking a line with the page's schema costs far more than applying it, and serving
    did it for each line of up to 500 on every request: the result is kept per shop and
    content of the stored list (a digest of its JSON, so any change, by whatever writer,
    is a new entry), for the ``RULES_CACHE_SIZE`` versions used last."""
    if not stored:
        return NO_RULES
    try:
        text = json.dumps(stored, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):  # not as JSON stores it: checked each time, as before
        return _compile(shop_id, stored)
    key = (shop_id, hashlib.blake2b(text.encode(), digest_size=16).digest())
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    rules = _compile(shop_id, stored)
    with _cache_lock:
        _cache[key] = rules
        while len(_cache) > RULES_CACHE_SIZE:
            _cache.popitem(last=False)
    return rules


#: Versions of stored rules kept compiled per process (each at most 500 small lines).
RULES_CACHE_SIZE = 256
_cache: OrderedDict[tuple[str, bytes], Rules] = OrderedDict()
_cache_lock = threading.Lock()


def forget_rules() -> None:
    """Drop the compiled rules (tests)."""
    with _cache_lock:
        _cache.clear()


def _compile(shop_id: str, stored: Any) -> Rules:
    """Check each stored line with the settings page's schema; log and skip the refused."""
    if not isinstance(stored, list):
        log.warning("merchandising.rules_refused", extra={
            "shop_id": shop_id, "errors": "not a list of rules"})
        return NO_RULES
    schema = RuleSchema()
    rules: list[dict[str, Any]] = []
    for line, rule in enumerate(stored, start=1):
        try:
            rules.append(schema.load(rule))
        except ValidationError as err:
            log.warning("merchandising.rule_refused", extra={
                "shop_id": shop_id, "line": line, "errors": err.messages})
    return Rules.of(rules)


def apply_rules(candidates: Sequence[Recommendation], rules: Iterable[dict],
                meta: dict[str, ProductMeta]) -> list[Recommendation]:
    """Pure: exclude, then boost by rank, then pins first (in rule order); ``rules`` as
    ``valid_rules`` returns them."""
    return Rules.of(rules).apply(candidates, meta)


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


def merchandise(shop_id: str, settings: dict, candidates: Sequence[Recommendation], *,
                excludes_only: bool = False) -> list[Recommendation]:
    """Apply the shop's rules the settings page accepts to ``candidates`` (a no-op
    without any); with ``excludes_only``, its exclusions alone."""
    rules = compiled_rules(shop_id, settings.get("merchandising"))
    if excludes_only:
        rules = rules.excludes_only
    if not rules.rules:
        return list(candidates)
    meta = load_meta(shop_id, (c.item for c in candidates)) if rules.needs_meta else {}
    return rules.apply(candidates, meta)
