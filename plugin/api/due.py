"""The repurchase rule for the popular back-fill: nothing the shopper bought that is not due.

The model's personal list only brings a consumable back once it is due; the popular list
behind it knows nothing of the shopper and would re-offer the milk bought yesterday. An
item the shopper bought is held back from the back-fill until ``due_fraction`` of its
interval has elapsed since their last purchase: their own interval once they bought it on
two or more days, else the shop's typical one (the served repurchase model's median over
repeat buyers), as ``RepurchaseModel.due`` measures it. An item with no known interval
(nobody buys it again) is left to the durable rule (``sources.owned_durables``).

The merchant's repurchase overrides (``overrides``) replace the model's verdict for the
items they name: a durable is held back for good, a consumable until its cycle has fully
elapsed since the last purchase; ``without_overridden`` applies that to every source. The
model's own For you list never holds a consumable it learned durable (bought once, never
shown again: the precomputed list left it out at the fit); ``due_by_override`` puts one the
merchant calls consumable back at its head while it is due, as the model would a learned
consumable, read at serving time so a save needs no refit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import g, has_request_context

from plugin.api import model_store, overrides
from plugin.api.sources import OWNED_KINDS, ServedVersion, reported_since
from plugin.engine.base import Recommendation
from plugin.engine.repurchase import RepurchaseModel
from plugin.extensions import db
from plugin.models import Interaction
from plugin.models.types import utcnow

DAY = 86400.0
#: Without a served repurchase model: the share of the shopper's own interval to wait.
DEFAULT_DUE_FRACTION = 0.8


def only_due(shop_id: str, version: ServedVersion | None, customer_id: str,
             recs: Iterable[Recommendation]) -> Iterator[Recommendation]:
    """``recs`` minus the customer's items that are not due; the history is read only
    once an item is reached (the back-fill behind a full personal list is not)."""
    held: set[str] | None = None
    for rec in recs:
        if held is None:
            held = not_due(shop_id, version, customer_id)
        if rec.item not in held:
            yield rec


def not_due(shop_id: str, version: ServedVersion | None, customer_id: str, *,
            now: datetime | None = None) -> set[str]:
    """Items the customer bought (for themselves, on any channel: lines a Saleor channel
    switch set aside included) whose repurchase interval has not yet (nearly) elapsed, and
    those just reported bought (``sources.reported_since``: the order may not be in yet);
    read once per request."""
    memo = g.setdefault("not_due", {}) if has_request_context() and now is None else {}
    key = (shop_id, version.id if version else None, customer_id)
    if key not in memo:
        memo[key] = _not_due(shop_id, version, customer_id, (now or utcnow()).timestamp())
    return set(memo[key])


def _not_due(shop_id: str, version: ServedVersion | None, customer_id: str,
             now: float) -> set[str]:
    rows = db.session.execute(sa.select(Interaction.product_external_id,
                                        Interaction.occurred_at).where(
        Interaction.shop_id == shop_id, Interaction.shopper_id == customer_id,
        Interaction.kind.in_(OWNED_KINDS),  # the old channel's milk was bought too
        Interaction.subprofile_id.is_(None))).all()  # bought for someone else: not theirs
    # just reported bought: its order, which then counts, may not be in yet
    held = reported_since(shop_id, [customer_id], datetime.fromtimestamp(now, UTC)).get(
        customer_id, set())
    if not rows:
        return held
    times: dict[str, list[float]] = {}
    for item, at in rows:
        times.setdefault(item, []).append(at.timestamp())
    repurchase = _repurchase_model(shop_id, version)
    fraction = getattr(repurchase, "due_fraction", DEFAULT_DUE_FRACTION)
    for item, stamps in times.items():  # the rhythm is the orders' alone
        interval = _interval(stamps, repurchase, item)
        if interval > 0 and (now - max(stamps)) / DAY < fraction * interval:
            held.add(item)
    # the merchant's word replaces the model's for the items it names
    ruled = overrides.resolve(shop_id, times)
    last = {item: max(stamps) for item, stamps in times.items()}
    return (held - set(ruled)) | overrides.held(ruled, last, now)


def without_overridden(shop_id: str, customer_id: str,
                       recs: Iterable[Recommendation]) -> Iterator[Recommendation]:
    """``recs`` minus what the merchant's overrides hold back from this customer (a durable
    they bought, a consumable not yet a cycle old), whichever source proposed it: the
    model's own list too, which knows only its learned verdicts. Free without overrides."""
    if not overrides.rules_of(shop_id):
        yield from recs
        return
    held: set[str] | None = None
    for rec in recs:
        if held is None:
            held = overridden(shop_id, customer_id)
        if rec.item not in held:
            yield rec


def overridden(shop_id: str, customer_id: str, *, now: datetime | None = None) -> set[str]:
    """Items the customer bought for themselves that an override holds back now."""
    last = last_bought(shop_id, customer_id, fresh=now is not None)
    return overrides.held(overrides.resolve(shop_id, last), last,
                          (now or utcnow()).timestamp())


def due_by_override(shop_id: str, customer_id: str, *,
                    now: datetime | None = None) -> list[Recommendation]:
    """Items the customer bought for themselves that a merchant's consumable line makes
    due now (``Override.due``: from one cycle after the last purchase until it lapses),
    longest bought first, with the line's reason ("you usually reorder this every ~7
    days"); not one just reported bought (``sources.reported_since``: its order is to
    come). Nothing to read for a shop without a consumable line."""
    if not overrides.rules_of(shop_id).any_consumable:
        return []
    last = last_bought(shop_id, customer_id, fresh=now is not None)
    at = now or utcnow()
    ruled = overrides.resolve(shop_id, last)
    due = sorted((last[item], item, rule) for item, rule in ruled.items()
                 if rule.due(last[item], at.timestamp()))
    if not due:
        return []
    just = reported_since(shop_id, [customer_id], at).get(customer_id, set())
    return [Recommendation(item, 1.0, "repurchase_due", rule.reason)
            for _, item, rule in due if item not in just]


def last_bought(shop_id: str, customer_id: str, *, fresh: bool = False) -> dict[str, float]:
    """When the customer last bought each item for themselves (unix s; on any channel, not
    for a sub-profile); read once per request (``fresh``: read now, not remembered)."""
    memo = g.setdefault("last_bought", {}) if has_request_context() and not fresh else {}
    key = (shop_id, customer_id)
    if key not in memo:
        memo[key] = {item: at.timestamp() for item, at in db.session.execute(
            sa.select(Interaction.product_external_id, sa.func.max(Interaction.occurred_at))
            .where(Interaction.shop_id == shop_id, Interaction.shopper_id == customer_id,
                   Interaction.kind.in_(OWNED_KINDS), Interaction.subprofile_id.is_(None))
            .group_by(Interaction.product_external_id))}
    return dict(memo[key])


def _interval(stamps: list[float], repurchase: RepurchaseModel | None, item: str) -> float:
    """Days between purchases: the shopper's own over distinct days, else the shop's
    median (nan when unknown)."""
    days = len({int(s // DAY) for s in stamps})
    if days > 1:
        return (max(stamps) - min(stamps)) / DAY / (days - 1)
    if repurchase is None:
        return float("nan")
    i = repurchase.data_.item_index(item)
    return float("nan") if i is None else float(repurchase.interval_days_[i])


def _repurchase_model(shop_id: str, version: ServedVersion | None):
    """The served model's ``RepurchaseModel`` (None: untrained, or a model without one)."""
    if version is None:
        return None
    model = model_store.get_model(shop_id, version.id, version.artifact_dir)
    repurchase = getattr(model.recommender, "repurchase_", None) if model is not None else None
    return repurchase if repurchase is not None and hasattr(repurchase, "interval_days_") \
        else None

