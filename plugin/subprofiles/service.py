"""Sub-profile domain logic: create, rename, delete, switch, reassign, merge on identify.

Every function is scoped to ``(shop, owner)``: another shopper's sub-profile id answers
404 exactly like a missing one. Names are a first name or relationship; an optional age
band is the only other thing stored (no birthdays, sizes or health data).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from plugin.errors import Conflict, NotFound, Unprocessable
from plugin.extensions import db, insert_or_ignore
from plugin.ingestion.mapping import erasure_lock
from plugin.models import Interaction, Product, PromptState, Shop, SubProfile
from plugin.models.events import FORGOTTEN_SUBPROFILE as FORGOTTEN
from plugin.models.events import SET_ASIDE
from plugin.models.types import MAX_ROW_ID, utcnow
from plugin.subprofiles import recs

log = logging.getLogger("shopkeeper.subprofiles")

AGE_BANDS = ("0-2", "3-5", "6-12", "13-17", "18+")
KINDS = ("person", "gift")
MAX_PER_OWNER = 20
#: Reassigning by product id looks this far back (an order's lines, a cart's add-to-carts).
REASSIGN_WINDOW = timedelta(days=30)
#: Rows a reassign moves: what says an item was bought (on any channel) or put in the cart
#: for the person. Browsing (views, clicks, wishlist) and removals from the cart stay the
#: shopper's: looking at a product says little about whom it was for, and a removal says
#: it was not wanted.
REASSIGNED_KINDS = ("purchase", SET_ASIDE, "widget_purchase", "add_to_cart")
#: Order lines: verified purchases, and those a Saleor channel switch set aside.
ORDER_KINDS = ("purchase", SET_ASIDE)
#: Only names, not contact details: no e-mail addresses and no long digit runs.
_NOT_A_NAME = re.compile(r"@|\d{5,}|https?:")


def _clean_name(name: str) -> str:
    value = " ".join((name or "").split())
    if not value or len(value) > 40 or _NOT_A_NAME.search(value):
        raise Unprocessable("The request is invalid.", {"name": [
            "A first name or relationship of 1 to 40 characters, no contact details."]})
    return value


def _check_age_band(age_band: str | None) -> str | None:
    if age_band in (None, ""):
        return None
    if age_band not in AGE_BANDS:
        raise Unprocessable("The request is invalid.", {"age_band": [
            f"One of {', '.join(AGE_BANDS)}."]})
    return age_band


def list_subprofiles(shop: Shop, owner: str) -> list[SubProfile]:
    """The owner's people (one-off gift buckets are not listed)."""
    return list(db.session.scalars(sa.select(SubProfile).where(
        SubProfile.shop_id == shop.id, SubProfile.owner_id == owner,
        SubProfile.kind == "person").order_by(SubProfile.id)))


def get_subprofile(shop: Shop, owner: str, subprofile_id: int) -> SubProfile:
    """The owner's sub-profile; anything else (other shop, other shopper, an id no row
    can have) is 404."""
    fits = 1 <= subprofile_id <= MAX_ROW_ID  # a larger one overflows the database driver
    row = db.session.get(SubProfile, subprofile_id) if fits else None
    if row is None or row.shop_id != shop.id or row.owner_id != owner:
        raise NotFound("No such sub-profile.")
    return row


def _named(shop: Shop, owner: str, name: str) -> SubProfile | None:
    return db.session.scalar(sa.select(SubProfile).filter_by(
        shop_id=shop.id, owner_id=owner, name=name))


def create_subprofile(shop: Shop, owner: str, name: str, age_band: str | None = None, *,
                      kind: str = "person") -> SubProfile:
    """Add a person (or return the existing one with that name: answers are idempotent)."""
    clean = _clean_name(name)
    band = _check_age_band(age_band)
    existing = _named(shop, owner, clean)
    if existing is not None:
        return existing
    count = db.session.scalar(sa.select(sa.func.count()).select_from(SubProfile).where(
        SubProfile.shop_id == shop.id, SubProfile.owner_id == owner))
    if count >= MAX_PER_OWNER:
        raise Unprocessable("Too many sub-profiles.", {"name": [
            f"At most {MAX_PER_OWNER} sub-profiles per shopper."]})
    row = SubProfile(shop_id=shop.id, owner_id=owner, name=clean, age_band=band, kind=kind)
    db.session.add(row)
    try:
        db.session.commit()
    except sa.exc.IntegrityError:  # the same answer twice at once: the other one won
        db.session.rollback()
        if (existing := _named(shop, owner, clean)) is None:
            raise
        return existing
    log.info("subprofiles.created", extra={"shop_id": shop.id, "subprofile_id": row.id})
    return row


def gift_bucket(shop: Shop, owner: str) -> SubProfile:
    """The owner's one-off gift sub-profile: its purchases never feed any profile."""
    row = db.session.scalar(sa.select(SubProfile).filter_by(
        shop_id=shop.id, owner_id=owner, kind="gift"))
    return row or create_subprofile(shop, owner, "One-off gifts", kind="gift")


def update_subprofile(shop: Shop, owner: str, subprofile_id: int, *,
                      name: str | None = None, age_band: str | None = "") -> SubProfile:
    """Rename and/or change the age band (``age_band=None`` clears it, ``""`` keeps it)."""
    row = get_subprofile(shop, owner, subprofile_id)
    if name is not None:
        clean = _clean_name(name)
        if clean != row.name and _named(shop, owner, clean) is not None:
            raise Conflict("That name is taken.", {"name": [
                f"You already have a sub-profile called {clean!r}."]})
        row.name = clean
    if age_band != "":
        row.age_band = _check_age_band(age_band)
    db.session.commit()
    return row


def _not_forgotten() -> sa.ColumnElement[bool]:
    return sa.or_(Interaction.subprofile_id.is_(None), Interaction.subprofile_id != FORGOTTEN)


def delete_subprofile(shop: Shop, owner: str, subprofile_id: int) -> int:
    """Delete it and its cached recommendations; its purchases leave training for good.

    The purchases are not deleted but marked ``FORGOTTEN``: they are lines of the shopper's
    orders, and every order update (paid, fulfilled) rebuilds those lines, carrying over
    whom each was for. Deleted, they would come back as the shopper's own at the next
    update, with the kids' dresses in the parent's list again. Marked, they are nobody's:
    out of the owner's history and of every sub-profile's, listed in the customer's export,
    and erased with the customer.
    """
    # first, as the shop's other writers of purchases: an erasure of the owner between
    # the two statements below deadlocked with them (PostgreSQL); and read after it, an
    # erasure that committed meanwhile leaves no sub-profile to delete (404)
    erasure_lock(shop.id)
    row = get_subprofile(shop, owner, subprofile_id)
    # browsing done "as Maya" (events, not order lines) carries nothing worth keeping
    removed = db.session.execute(sa.delete(Interaction).where(
        Interaction.shop_id == shop.id, Interaction.subprofile_id == row.id,
        Interaction.kind.not_in(("purchase", SET_ASIDE)))).rowcount
    removed += db.session.execute(sa.update(Interaction).where(
        Interaction.shop_id == shop.id, Interaction.subprofile_id == row.id)
        .values(subprofile_id=FORGOTTEN)).rowcount
    db.session.execute(sa.update(PromptState).where(
        PromptState.shop_id == shop.id, PromptState.active_subprofile_id == row.id)
        .values(active_subprofile_id=None))
    db.session.delete(row)
    db.session.commit()
    recs.forget(shop.id, subprofile_id)
    log.info("subprofiles.deleted", extra={"shop_id": shop.id, "subprofile_id": subprofile_id,
                                           "interactions": removed})
    return removed


def prompt_state(shop: Shop, shopper_id: str, *, create: bool = False) -> PromptState | None:
    """The shopper's prompt row (created on demand, not committed).

    Created by an INSERT that yields to a concurrent one (two widgets on a page, two tabs
    asking at once): a plain add raised the unique key's error, a 500, in the later one.
    """
    query = sa.select(PromptState).filter_by(shop_id=shop.id, shopper_id=shopper_id)
    row = db.session.scalar(query)
    if row is None and create:
        db.session.execute(insert_or_ignore(
            PromptState, ["shop_id", "shopper_id"], shop_id=shop.id, shopper_id=shopper_id,
            never_ask=False, pending={}))
        row = db.session.scalar(query)
    return row


def set_active(shop: Shop, owner: str, subprofile_id: int | None) -> int | None:
    """Switch who the shopper is buying for now (``None``: themselves)."""
    if subprofile_id is not None:
        get_subprofile(shop, owner, subprofile_id)
    state = prompt_state(shop, owner, create=True)
    state.active_subprofile_id = subprofile_id
    db.session.commit()
    return subprofile_id


def reassign(shop: Shop, owner: str, subprofile_id: int | None, *,
             order_id: str | None = None, product_ids: Iterable[str] = (),
             own_only: bool = False) -> int:
    """Move past purchases (one order, or recent lines of these products) to a profile.

    ``subprofile_id=None`` gives them back to the shopper. ``own_only`` takes only rows
    that are still the shopper's own: a cart answer names products, and the same product
    bought last week for another sub-profile (or as a one-off gift) stays theirs. Only
    purchases and add-to-carts move (``REASSIGNED_KINDS``), never the shopper's browsing of
    those products. Returns the rows moved. The shopper's own cached list is recomputed
    without them at once.

    Lines a Saleor channel switch set aside move and stay set aside: given back to the
    shopper, they are their own old-channel purchases, as the switch leaves a line nobody
    else was given (out of training; their durables and their taste still count).
    """
    target = None if subprofile_id is None else get_subprofile(shop, owner, subprofile_id).id
    products = [p for p in product_ids if p]
    if not order_id and not products:
        raise Unprocessable("The request is invalid.", {"order_id": [
            "Send an order id or product ids."]})
    where = [Interaction.shop_id == shop.id, Interaction.shopper_id == owner,
             Interaction.kind.in_(REASSIGNED_KINDS),
             _not_forgotten()]  # a deleted sub-profile's lines stay out of every profile
    if order_id:
        where.append(Interaction.order_external_id == order_id)
    if products:
        where += [Interaction.product_external_id.in_(products),
                  Interaction.occurred_at >= utcnow() - REASSIGN_WINDOW]
    if own_only:
        where.append(Interaction.subprofile_id.is_(None))
    moved = db.session.execute(sa.update(Interaction).where(*where)
                               .values(subprofile_id=target)).rowcount
    db.session.commit()
    recs.forget_owner(shop.id, owner)
    refresh_main(shop.id, owner)
    return moved


def refresh_main(shop_id: str, owner: str) -> None:
    """Recompute the owner's cached top-N (training's refresh, when it is available)."""
    try:
        from plugin.training import refresh_shoppers
    except ImportError:  # pragma: no cover - training is part of the app
        return
    refresh_shoppers(shop_id, [owner])


def merge_identity(shop: Shop, anonymous_id: str, customer_id: str) -> int:
    """On identify, the anonymous id's sub-profiles, prompt state and their purchases move
    to the customer; a name both already have is merged into the customer's row."""
    if not anonymous_id or anonymous_id == customer_id:
        return 0
    # first: an erasure of the customer between the read of the browser's sub-profiles
    # and their move deleted them, and the merge failed on rows gone
    erasure_lock(shop.id)
    rows = db.session.scalars(sa.select(SubProfile).filter_by(
        shop_id=shop.id, owner_id=anonymous_id)).all()
    for row in rows:
        twin = db.session.scalar(sa.select(SubProfile).filter_by(
            shop_id=shop.id, owner_id=customer_id, name=row.name))
        target = row.id if twin is None else twin.id
        db.session.execute(sa.update(Interaction).where(
            Interaction.shop_id == shop.id, Interaction.subprofile_id == row.id)
            .values(subprofile_id=target, shopper_id=customer_id))
        if twin is None:
            row.owner_id = customer_id
        else:
            db.session.execute(sa.update(PromptState).where(
                PromptState.active_subprofile_id == row.id).values(active_subprofile_id=target))
            db.session.delete(row)
            recs.forget(shop.id, row.id)
    _merge_prompt_state(shop, anonymous_id, customer_id)
    db.session.commit()
    if rows:
        log.info("subprofiles.merged", extra={"shop_id": shop.id, "count": len(rows)})
    return len(rows)


def _merge_prompt_state(shop: Shop, anonymous_id: str, customer_id: str) -> None:
    anon = prompt_state(shop, anonymous_id)
    if anon is None:
        return
    mine = prompt_state(shop, customer_id, create=True)
    mine.never_ask = bool(mine.never_ask or anon.never_ask)
    times = [t for t in (mine.last_asked_at, anon.last_asked_at) if t]
    mine.last_asked_at = max(times) if times else None
    mine.active_subprofile_id = mine.active_subprofile_id or anon.active_subprofile_id
    mine.pending = mine.pending or anon.pending or {}
    db.session.delete(anon)


def recent_orders(shop: Shop, owner: str, limit: int = 10) -> list[dict[str, Any]]:
    """The owner's latest orders with who each line is for (to reassign past purchases);
    ``gift`` when it was a one-off gift.

    Orders a Saleor channel switch set aside are listed too, with whom their lines were
    given to: they were bought all the same, and still say who has what (the durables
    rule, whom a basket is for), so the shopper can still say whom they were for.
    """
    latest = sa.func.max(Interaction.occurred_at)
    orders = db.session.execute(
        sa.select(Interaction.order_external_id, latest.label("at"))
        .where(Interaction.shop_id == shop.id, Interaction.shopper_id == owner,
               Interaction.kind.in_(ORDER_KINDS), Interaction.order_external_id.is_not(None),
               _not_forgotten())
        .group_by(Interaction.order_external_id).order_by(latest.desc()).limit(limit)).all()
    if not orders:
        return []
    ids = [o.order_external_id for o in orders]
    lines = db.session.execute(
        sa.select(Interaction.order_external_id, Interaction.product_external_id,
                  Interaction.subprofile_id, Product.title)
        .outerjoin(Product, sa.and_(Product.shop_id == Interaction.shop_id,
                                    Product.external_id == Interaction.product_external_id))
        .where(Interaction.shop_id == shop.id, Interaction.shopper_id == owner,
               Interaction.kind.in_(ORDER_KINDS), Interaction.order_external_id.in_(ids),
               _not_forgotten())
        .order_by(Interaction.id)).all()
    out = {o.order_external_id: {"order_id": o.order_external_id, "at": o.at, "items": [],
                                 "subprofile_ids": set()} for o in orders}
    for line in lines:
        entry = out[line.order_external_id]
        entry["items"].append({"product_id": line.product_external_id,
                               "title": line.title or line.product_external_id})
        entry["subprofile_ids"].add(line.subprofile_id)
    gift = _gift_id(shop, owner)
    for entry in out.values():
        subs = entry.pop("subprofile_ids")
        entry["subprofile_id"] = next(iter(subs)) if len(subs) == 1 else None
        entry["mixed"] = len(subs) > 1
        entry["gift"] = gift is not None and entry["subprofile_id"] == gift
    return [out[i] for i in ids]


def _gift_id(shop: Shop, owner: str) -> int | None:
    """The owner's one-off gift sub-profile, if any: not among the people listed, so an
    order given to it says so (else it read as the shopper's own)."""
    return db.session.scalar(sa.select(SubProfile.id).filter_by(
        shop_id=shop.id, owner_id=owner, kind="gift"))


def describe(row: SubProfile) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "age_band": row.age_band, "kind": row.kind}
