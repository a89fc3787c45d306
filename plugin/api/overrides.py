"""The merchant's repurchase overrides (settings ``repurchase_overrides``), at serving time.

The learned repurchase model can be wrong about an item (a kettle bought by two buyers
twice looks consumable; a tea bought by new shoppers only looks durable). A merchant's
line fixes the verdict for a product, or for every product of a category: ``durable``
(bought once, never offered again to whoever bought it) or ``consumable`` every N days
(held back until N days after the last purchase, then due: "the usual?", and back in the
shopper's For you list, until ``LAPSED_AFTER`` cycles have passed, as a learned
consumable's interval: a shopper who stopped buying it months ago is not reminded of it).
Read when serving, not when fitting, so a save takes effect at once without a refit.

A product's own line wins over a category line; a category line matches the product's
categories in the catalogue case-insensitively, the merchant's first matching line
winning. A stored line the settings schema refuses (one saved before a rule existed, an
edit of the JSON) is skipped and logged once per process, never an error for a shopper.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import g, has_request_context
from marshmallow import ValidationError

from plugin.admin.schemas import RepurchaseOverrideSchema
from plugin.engine.repurchase import every, lapsed
from plugin.extensions import db
from plugin.models import Product, Shop

log = logging.getLogger("shopkeeper.api.overrides")

DAY = 86400.0
#: Products per catalogue query of ``resolve`` (bound parameters stay well under limits).
CHUNK = 1000


@dataclass(frozen=True)
class Override:
    """One merchant line: what an item is, whatever the model learned."""

    kind: str  # "durable" | "consumable"
    cycle_days: int | None = None

    def holds(self, last: float, now: float) -> bool:
        """Whether an item last bought at ``last`` (unix s) is kept out at ``now``: a
        durable for good, a consumable until its cycle has fully elapsed."""
        return self.kind != "consumable" or now - last < (self.cycle_days or 0) * DAY

    def due(self, last: float, now: float) -> bool:
        """Whether an item last bought at ``last`` (unix s) is due at ``now`` (offered as
        "the usual?"): its cycle has elapsed, and not yet ``LAPSED_AFTER`` cycles, the
        window of a learned consumable (``RepurchaseModel.due_in``). Past it the item is
        no longer held back, only no longer pushed as due."""
        cycle = self.cycle_days or 0
        return self.kind == "consumable" and cycle * DAY <= now - last \
            and not lapsed(last, now, cycle)

    @property
    def reason(self) -> str:
        """The "the usual?" reason, worded as the model's own ("every ~7 days")."""
        return f"you usually reorder this {every(self.cycle_days or 1)}"


@dataclass(frozen=True)
class Rules:
    """A shop's valid lines: by product id, and by category (case-folded), in line order."""

    key: str = ""
    products: dict[str, Override] = field(default_factory=dict)
    categories: dict[str, Override] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.products or self.categories)

    @property
    def any_consumable(self) -> bool:
        return any(o.kind == "consumable"
                   for o in (*self.products.values(), *self.categories.values()))


_NONE = Rules()
_lock = threading.Lock()
#: shop id -> (the stored lines, parsed); re-parsed only when the lines change
_parsed: dict[str, tuple[list[Any], Rules]] = {}


def rules_of(shop_id: str) -> Rules:
    """The shop's valid override lines, read from its settings (the request's shop when it
    is this one: the API's per-process copy, refreshed on every save in this process).
    Parsed once per stored version of the lines, so serving costs no schema run."""
    lines = _stored_lines(shop_id)
    if not lines:
        return _NONE
    with _lock:
        hit = _parsed.get(shop_id)
    if hit is not None and hit[0] is lines:  # the same cached settings: unchanged
        return hit[1]
    key = json.dumps(lines, sort_keys=True, default=str)
    rules = hit[1] if hit is not None and hit[1].key == key else _parse(shop_id, lines, key)
    with _lock:
        _parsed[shop_id] = (lines, rules)
    return rules


def _stored_lines(shop_id: str) -> list[Any]:
    shop = g.get("api_shop") if has_request_context() else None
    if shop is not None and shop.id == shop_id:
        settings = shop.settings or {}
    else:
        settings = db.session.scalar(sa.select(Shop.settings).where(Shop.id == shop_id)) or {}
    lines = settings.get("repurchase_overrides") if isinstance(settings, dict) else None
    return lines if isinstance(lines, list) else []


def _parse(shop_id: str, lines: list[Any], key: str) -> Rules:
    """Each line through the settings page's own schema; a refused one is skipped."""
    schema = RepurchaseOverrideSchema()
    products: dict[str, Override] = {}
    categories: dict[str, Override] = {}
    for n, line in enumerate(lines, 1):
        try:
            data = schema.load(line if isinstance(line, dict) else {})
        except ValidationError as err:
            log.warning("api.repurchase_override_skipped", extra={
                "shop_id": shop_id, "line": n, "errors": err.messages})
            continue
        override = Override(data["kind"], data.get("cycle_days"))
        if data["field"] == "product":
            products.setdefault(data["value"], override)
        else:
            categories.setdefault(data["value"].casefold(), override)
    return Rules(key, products, categories)


def resolve(shop_id: str, items: Iterable[str]) -> dict[str, Override]:
    """The override of each of ``items`` that has one (product line, else category line)."""
    rules = rules_of(shop_id)
    if not rules:
        return {}
    wanted = {str(i) for i in items}
    out = {i: rules.products[i] for i in wanted if i in rules.products}
    rest = sorted(wanted - set(out))
    if not rules.categories or not rest:
        return out
    for start in range(0, len(rest), CHUNK):
        for item, cats in db.session.execute(
                sa.select(Product.external_id, Product.categories).where(
                    Product.shop_id == shop_id,
                    Product.external_id.in_(rest[start:start + CHUNK]))):
            mine = {str(c).casefold() for c in cats or ()}
            match = next((o for c, o in rules.categories.items() if c in mine), None)
            if match is not None:
                out[item] = match
    return out


def held(overrides: Mapping[str, Override], last: Mapping[str, float],
         now: float) -> set[str]:
    """Bought items (``last`` purchase, unix s) an override keeps out at ``now``."""
    return {item for item, at in last.items()
            if item in overrides and overrides[item].holds(at, now)}


def forget() -> None:
    """Drop the parsed lines of every shop (tests)."""
    with _lock:
        _parsed.clear()
