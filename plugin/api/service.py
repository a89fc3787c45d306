"""The serving path: pick the arm, walk the source chain, filter live, log the impression."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from plugin.api import impressions, sources
from plugin.api.access import AnyShop, settings_of
from plugin.api.consent import consent_required, has_consent
from plugin.api.due import due_by_override, only_due, without_overridden
from plugin.api.filters import Servable, apply_live_filters
from plugin.api.identity import ShopperIdentity
from plugin.engine.base import Recommendation
from plugin.extensions import db
from plugin.merchandising import merchandise
from plugin.models import Product

DEFAULT_HOLDOUT_SHARE = 0.1
DEFAULT_STRINGS = {
    "for_you_title": "Picked for you",
    "product_title": "Frequently bought together",
    "cart_title": "Complete your order",
    "reorder_title": "The usual?",
    "consent_prompt": "Allow personalised recommendations?",
    "consent_accept": "Allow",
    "consent_decline": "No thanks",
}


@dataclass
class RecsQuery:
    placement: str
    n: int = 8
    product_id: str | None = None
    cart: list[str] = field(default_factory=list)


#: experiments with an independent holdout each (the first keeps the original draw)
EXPERIMENTS = ("recommendations", "offers")


def in_holdout(shop: AnyShop, shopper_key: str, experiment: str = "recommendations") -> bool:
    """Deterministic arm per shopper and experiment: the same shopper always lands in the
    same arm of it.

    Each experiment draws its own arm from its own hash (a 2x2 design). With one shared
    draw, the recommendations control also got no offers and vice versa, so each feature's
    uplift was the two features' joint effect; drawn independently, the other feature is
    spread evenly over both arms and each uplift measures its own feature.
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}")
    share = float(settings_of(shop).get("holdout_share", DEFAULT_HOLDOUT_SHARE))
    share = min(max(share, 0.0), 1.0)
    salt = "" if experiment == "recommendations" else f"{experiment}:"
    digest = hashlib.sha256(f"{shop.id}:{salt}{shopper_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def recommend(shop: AnyShop, identity: ShopperIdentity, query: RecsQuery) -> dict[str, Any]:
    """Answer one widget request (contract v1 ``GET /recommendations``), JSON-ready."""
    consented = has_consent(shop, identity)
    holdout = bool(consented and identity.key and in_holdout(shop, identity.key))
    version = sources.served_version(shop.id)
    exclude = set(query.cart)
    if query.product_id:
        exclude.add(query.product_id)
    want = max(3 * query.n, query.n + len(exclude) + 10)
    customer = identity.customer_id if consented else None

    chain: Iterable[Recommendation] = []
    personal: set[str] = set()  # the model's own list already left owned durables out
    about_shopper = False  # did the list use the shopper's own data?
    if not holdout:
        recs, about_shopper = _personal_or_contextual(shop, version, customer, query, want,
                                                      exclude)
        if query.placement == "for_you" and customer is not None:
            # the merchant's due consumables the model's list cannot hold (learned durable)
            due = due_by_override(shop.id, customer)
            if due:
                recs, about_shopper = itertools.chain(due, recs), True
        chain = _remember(recs, personal, query.placement)
    if query.placement != "reorder":  # "the usual?" makes no sense with popular items
        fill: Iterable[Recommendation] = sources.popular(shop.id, version)
        if customer is not None:  # the personal list's rule: a consumable only when due
            fill = only_due(shop.id, version, customer, fill)
        chain = itertools.chain(chain, fill)
    if settings_of(shop).get("merchandising"):  # merchant pin/boost/exclude
        chain = merchandise(shop.id, settings_of(shop), list(chain))
    if customer is not None:
        chain = _without_owned_durables(shop.id, version, customer, chain, personal)
        # the merchant's repurchase overrides hold for every source, the model's list too
        chain = without_overridden(shop.id, customer, chain)
    items = apply_live_filters(shop, chain, query.n, exclude=exclude)
    personalized = about_shopper and any(i.source not in sources.NON_PERSONAL
                                         for i in items)
    rec_id = _log_impression(shop, identity.key if consented else None, query.placement,
                             items, holdout=holdout, personalized=personalized,
                             version_id=version.id if version else None)
    return {"placement": query.placement, "holdout": holdout, "personalized": personalized,
            "items": [_item(i, f"{rec_id}.{k}") for k, i in enumerate(items)]}


def _personal_or_contextual(shop: AnyShop, version: sources.ServedVersion | None,
                            customer: str | None, query: RecsQuery,
                            want: int, exclude: set[str],
                            ) -> tuple[Iterable[Recommendation], bool]:
    """The non-popular sources, in order, for the placement, and whether they used the
    shopper's own data (only then is the answer ``personalized``).

    A cached list was written for a shopper the model was fitted with, or who ordered
    since (``training.refresh_shoppers``): it did.
    """
    if query.placement == "product":
        return sources.neighbours(shop.id, version, [query.product_id or ""], want, exclude,
                                  "product"), False
    if query.placement == "cart":
        return sources.neighbours(shop.id, version, query.cart, want, exclude, "cart"), False
    if customer is None:
        return [], False
    if query.placement == "reorder":
        return sources.reorder(shop.id, customer, want), True
    if version is None:
        return [], False
    recs = sources.cached(shop.id, customer, version)
    if recs is not None:
        return recs, True
    return sources.online(shop.id, customer, version, want, exclude)


def _remember(recs: Iterable[Recommendation], seen: set[str],
              placement: str) -> Iterator[Recommendation]:
    """Pass ``recs`` through, noting the items of the shopper's own model list."""
    for rec in recs:
        if placement == "for_you":
            seen.add(rec.item)
        yield rec


def _without_owned_durables(shop_id: str, version: sources.ServedVersion | None, customer: str,
                            chain: Iterable[Recommendation],
                            personal: set[str]) -> Iterator[Recommendation]:
    """The toilet-seat rule on the items the model did not choose for this shopper
    (neighbours, reorder, popular back-fill, pins). Their durables are looked up only when
    such an item is reached, so a cached list answered from its first rows stays one read."""
    owned: set[str] | None = None
    for rec in chain:
        if rec.item not in personal or rec.source == "merchandising":
            if owned is None:
                owned = sources.owned_durables(shop_id, version, customer)
            if rec.item in owned:
                continue
        yield rec


def _item(s: Servable, rec_id: str) -> dict[str, Any]:
    """Already in ``RecommendedItemSchema``'s dumped form (the view skips a dump; a test
    proves the schema would produce the same)."""
    return {"product_id": s.product_id, "title": s.title, "url": s.url,
            "image_url": s.image_url,
            "price": None if s.price is None else format(s.price, "f"),
            "currency": s.currency, "reason": s.reason, "source": s.source, "rec_id": rec_id}


def _log_impression(shop: AnyShop, shopper_id: str | None, placement: str,
                    items: list[Servable], *, holdout: bool, personalized: bool,
                    version_id: int | None) -> str:
    """One row per answer; item ``k`` is attributed as ``<rec_id>.<k>``."""
    rec_id = impressions.new_rec_id(shop.id)
    if items:
        impressions.record_impression(
            shop_id=shop.id, rec_id=rec_id, shopper_id=shopper_id, placement=placement,
            items=[i.product_id for i in items], sources=[i.source for i in items],
            holdout=holdout, personalized=personalized, model_version_id=version_id)
    return rec_id


def shop_config(shop: AnyShop) -> dict[str, Any]:
    """What the loader needs before rendering anything (contract v1 ``GET /config``)."""
    settings = settings_of(shop)
    currency = settings.get("currency") or db.session.scalar(
        sa.select(Product.currency).where(Product.shop_id == shop.id,
                                          Product.currency.is_not(None)).limit(1))
    strings = {**DEFAULT_STRINGS, **{str(k): str(v)
                                     for k, v in (settings.get("strings") or {}).items()}}
    return {"shop_id": shop.id,
            "widgets": {"for_you": True,
                        "shopping_for": bool(settings.get("subprofiles_enabled", False)),
                        "cart_offer": bool(settings.get("offers_enabled", False))},
            "consent_required": consent_required(shop), "currency": currency,
            "strings": strings}
