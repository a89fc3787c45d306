"""When to ask "Who are you shopping for?" and what an answer does.

Ask only when the shop has the prompt on, the shopper has not said "don't ask again",
the cooldown since the last question has passed, and the detector's calibrated score for
the cart or order reaches the shop's threshold. Asking counts as asked, answered or not.
A shopper who picked whom they are shopping for is not asked: the items go to that person,
whatever the prompt settings and "don't ask again" say (they silence the question only).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from plugin.extensions import db
from plugin.ingestion.mapping import erasure_lock
from plugin.models import Interaction, PromptState, Shop, SubProfile
from plugin.models.types import utcnow
from plugin.subprofiles import detection, recs, service

#: ``Shop.settings["subprofiles"]`` keys and their defaults.
DEFAULT_SETTINGS: dict[str, Any] = {
    "prompt_enabled": True,  # show the prompt at all
    "threshold": 0.6,        # calibrated score needed to ask (bench/subprofiles.py sweep)
    "cooldown_days": 14,     # at most one question per shopper in this many days
}
#: An answer given at add-to-cart time also claims the order lines arriving this long after.
PENDING_HOURS = 24
CHOICES = ("me", "existing", "new", "gift", "dismiss")
#: Rows an answer claims when they arrive after it (webhook orders, batched widget events).
CLAIMED_KINDS = ("purchase", "add_to_cart", "widget_purchase")


def settings_for(shop: Shop) -> dict[str, Any]:
    """The shop's sub-profile settings with defaults for what it has not set."""
    raw = (shop.settings or {}).get("subprofiles") or {}
    merged = {**DEFAULT_SETTINGS, **{k: v for k, v in raw.items() if k in DEFAULT_SETTINGS}}
    return {"prompt_enabled": bool(merged["prompt_enabled"]),
            "threshold": min(max(float(merged["threshold"]), 0.0), 1.0),
            "cooldown_days": max(int(merged["cooldown_days"]), 0)}


def should_prompt(shop: Shop, owner: str, product_ids: list[str], *,
                  order_id: str | None = None, consented: bool = True,
                  now: datetime | None = None) -> dict[str, Any]:
    """Decide whether to ask now; records the question when the answer is yes."""
    now = now or utcnow()
    apply_pending(shop.id, owner, now=now)
    settings = settings_for(shop)
    state = service.prompt_state(shop, owner)
    answer: dict[str, Any] = {"ask": False, "reason": "", "score": None,
                              "suggested_subprofile_id": None}
    if not consented:  # the score reads the shopper's history: personal processing
        return {**answer, "reason": "no_consent"}
    if state is not None and state.active_subprofile_id is not None:
        # The shopper said who they are buying for: these items go there, no question.
        # Before "disabled" and "never ask": those silence the question, not this choice.
        _claim(shop, owner, state, state.active_subprofile_id, product_ids, order_id, now)
        db.session.commit()
        return {**answer, "reason": "shopping_for_subprofile",
                "suggested_subprofile_id": state.active_subprofile_id}
    if not settings["prompt_enabled"]:
        return {**answer, "reason": "disabled"}
    if state is not None and state.never_ask:
        return {**answer, "reason": "never_ask"}
    if state is not None and state.last_asked_at is not None and \
            now - state.last_asked_at < timedelta(days=settings["cooldown_days"]):
        return {**answer, "reason": "cooldown"}
    detector = detection.detector_for(shop.id)
    history = detection.own_history(shop.id, owner, exclude_order=order_id)
    raw = detector.score(history, product_ids)
    score = round(raw, 4)  # shown rounded, compared exactly
    if raw < settings["threshold"]:
        return {**answer, "reason": "fits_profile", "score": score}
    people = service.list_subprofiles(shop, owner)
    suggestion = detector.suggest(product_ids, detection.subprofile_histories(
        shop.id, [p.id for p in people])) if people else None
    state = state or service.prompt_state(shop, owner, create=True)
    state.last_asked_at = now
    db.session.commit()
    return {"ask": True, "reason": "out_of_profile", "score": score,
            "suggested_subprofile_id": suggestion}


def answer_prompt(shop: Shop, owner: str, choice: str, *, product_ids: list[str],
                  order_id: str | None = None, subprofile_id: int | None = None,
                  name: str | None = None, age_band: str | None = None,
                  dont_ask_again: bool = False, now: datetime | None = None) -> dict[str, Any]:
    """Store the answer: who the cart or order is for, and whether to ask again."""
    now = now or utcnow()
    target: int | None = None
    if choice == "existing":
        target = service.get_subprofile(shop, owner, int(subprofile_id or 0)).id
    elif choice == "new":
        target = service.create_subprofile(shop, owner, name or "", age_band).id
    elif choice == "gift":
        target = service.gift_bucket(shop, owner).id
    state = service.prompt_state(shop, owner, create=True)
    moved = _claim(shop, owner, state, target, product_ids, order_id, now)
    state.never_ask = bool(state.never_ask or dont_ask_again)
    state.last_asked_at = state.last_asked_at or now
    db.session.commit()
    return {"subprofile_id": target, "moved": moved, "never_ask": state.never_ask}


def _claim(shop: Shop, owner: str, state: PromptState, target: int | None,
           product_ids: list[str], order_id: str | None, now: datetime) -> int:
    """Give the cart's or order's rows to ``target``; order lines still to come follow.

    A cart (products, no order) claims only the shopper's own rows, like ``apply_pending``:
    lines of those products already given to someone else stay theirs.
    """
    if target is None or not (order_id or product_ids):
        return 0
    moved = service.reassign(shop, owner, target, order_id=order_id, product_ids=product_ids,
                             own_only=not order_id)
    if product_ids and not order_id:
        state.pending = {"subprofile_id": target, "items": sorted(set(product_ids)),
                         "since": now.isoformat(),
                         "until": (now + timedelta(hours=PENDING_HOURS)).isoformat()}
    return moved


def apply_pending(shop_id: str, shopper_id: str | None = None, *,
                  now: datetime | None = None) -> int:
    """Tag order lines that arrived after an add-to-cart answer; drop expired answers.

    Runs on every sub-profile request of the shopper and, for all shoppers, from the
    worker (``apply_pending(shop_id)``), so webhook order lines and widget events that
    were still in the browser's batch follow the answer.
    """
    now = now or utcnow()
    # first, as the shop's other writers of purchases: an erasure under way commits
    # before the answers are read (read before, those it deleted failed the commit), and
    # one waits for this pass (it held a linked browser's rows the pass went on to: a
    # deadlock on PostgreSQL)
    erasure_lock(shop_id)
    query = sa.select(PromptState).where(PromptState.shop_id == shop_id)
    if shopper_id is not None:
        query = query.where(PromptState.shopper_id == shopper_id)
    moved = 0
    for state in db.session.scalars(query):
        pending = state.pending or {}
        if not pending.get("items"):
            continue
        target = db.session.get(SubProfile, pending["subprofile_id"])
        # deleted since; or its id came back for somebody else's new sub-profile (SQLite
        # reuses the highest id): their purchases must never land in another's profile
        if target is None or (target.shop_id, target.owner_id) != (shop_id, state.shopper_id):
            state.pending = {}
            continue
        since = datetime.fromisoformat(pending["since"])
        moved += db.session.execute(sa.update(Interaction).where(
            Interaction.shop_id == shop_id, Interaction.shopper_id == state.shopper_id,
            Interaction.subprofile_id.is_(None), Interaction.kind.in_(CLAIMED_KINDS),
            Interaction.product_external_id.in_(pending["items"]),
            Interaction.occurred_at >= since - timedelta(hours=1))
            .values(subprofile_id=pending["subprofile_id"])).rowcount
        if datetime.fromisoformat(pending["until"]) <= now:
            state.pending = {}
        recs.forget_owner(shop_id, state.shopper_id)
    db.session.commit()
    return moved
