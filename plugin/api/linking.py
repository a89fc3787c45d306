"""Pre-login browsing counts as the customer's: an anonymous id is linked at sign-in.

A browser's events sent under its anonymous id (views, clicks, add-to-carts, wishlist)
are moved to the customer when that browser next calls with a verified customer token
(``POST /events``, a cart-offer quote, any sub-profile call). Everything that reads a
shopper's events by id then sees them without knowing about links: the cart offer's
funnel stage, click attribution, wishlist nudges, the sub-profile prompt, the privacy
export and erasure. Verified purchases are not moved (an order names its own customer).

The rule, per shop (an id linked in one shop says nothing in another):

* **First link wins.** The first customer to sign in with an anonymous id owns it; the
  browser's later anonymous events (signed out, same browser) are moved to them at their
  next signed-in call. "Latest wins" would keep handing one person's browsing to another.
* **A second customer ends it.** Another customer signing in with the same id means a
  shared computer: from then on nothing more is linked from that id, to either of them,
  since its anonymous events could be anyone's. What was linked before stays linked.
  The limit: someone who browses signed out on the owner's browser and never signs in
  there cannot be told apart from the owner, so the owner gets that browsing.
* **Consent.** Nothing is linked when the call itself lacks consent (the rule that stores
  events) or when the customer's own latest answer is a refusal.
* **Retention.** A link lasts while it is used: ``purge_links`` drops those not used
  for the retention period; moved events keep their times, so their purge is unchanged.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa

from plugin.api.access import AnyShop
from plugin.api.consent import has_consent
from plugin.api.identity import ShopperIdentity
from plugin.extensions import db, insert_or_ignore
from plugin.ingestion.mapping import erasure_lock
from plugin.models import AnonymousLink, Interaction, ShopperConsent
from plugin.models.types import utcnow

log = logging.getLogger("shopkeeper.api.linking")


def link(shop: AnyShop, identity: ShopperIdentity, *, now: datetime | None = None) -> bool:
    """Link the identity's anonymous id to its customer and move that id's anonymous
    events to them; True when the id belongs to this customer (module docstring)."""
    customer, anonymous = identity.customer_id, identity.anonymous_id
    if not customer or not anonymous or not _may_link(shop, identity):
        return False
    now = now or utcnow()
    # first, as the shop's other writers of events: an erasure of the customer between
    # the link and the move saw neither, and the browsing moved to them once erased
    erasure_lock(shop.id)
    row = _claim(shop.id, anonymous, customer, now)
    if row.customer_id != customer:
        if row.customer_id is not None:  # a second customer on this browser: stop here
            row.customer_id, row.linked_at = None, now
            db.session.commit()
            log.info("api.anonymous_id_shared", extra={"shop_id": shop.id})
        return False
    moved = db.session.execute(sa.update(Interaction).where(
        Interaction.shop_id == shop.id, Interaction.shopper_id == anonymous,
        Interaction.subprofile_id.is_(None),  # sub-profiles move with their owner
        Interaction.kind != "purchase").values(shopper_id=customer)).rowcount or 0
    if moved:
        row.linked_at = now
    db.session.commit()
    return True


def _may_link(shop: AnyShop, identity: ShopperIdentity) -> bool:
    refused = db.session.scalar(sa.select(ShopperConsent.id).where(
        ShopperConsent.shop_id == shop.id, ShopperConsent.shopper_id == identity.customer_id,
        ShopperConsent.granted.is_(False)).limit(1))
    return refused is None and has_consent(shop, identity)


def _claim(shop_id: str, anonymous: str, customer: str, now: datetime) -> AnonymousLink:
    """The id's link row, created for ``customer`` if there is none (the unique key
    decides between two sign-ins at once)."""
    query = sa.select(AnonymousLink).where(AnonymousLink.shop_id == shop_id,
                                           AnonymousLink.anonymous_id == anonymous)
    row = db.session.scalar(query)
    if row is not None:
        return row
    db.session.execute(insert_or_ignore(
        AnonymousLink, ["shop_id", "anonymous_id"], shop_id=shop_id, anonymous_id=anonymous,
        customer_id=customer, linked_at=now))
    return db.session.scalars(query).one()


def anonymous_ids(shop_id: str, customer_id: str) -> list[AnonymousLink]:
    """The anonymous ids linked to a customer (export and erasure)."""
    return list(db.session.scalars(sa.select(AnonymousLink).where(
        AnonymousLink.shop_id == shop_id, AnonymousLink.customer_id == customer_id)
        .order_by(AnonymousLink.linked_at, AnonymousLink.id)))


def forget_customer(shop_id: str, customer_id: str) -> int:
    """Erasure: the events still waiting under the customer's linked anonymous ids, then
    the links themselves. Returns the events deleted."""
    ids = [r.anonymous_id for r in anonymous_ids(shop_id, customer_id)]
    deleted = 0
    if ids:
        deleted = db.session.execute(sa.delete(Interaction).where(
            Interaction.shop_id == shop_id, Interaction.shopper_id.in_(ids))).rowcount or 0
    db.session.execute(sa.delete(AnonymousLink).where(
        AnonymousLink.shop_id == shop_id, AnonymousLink.customer_id == customer_id))
    return deleted


def purge_links(shop_id: str, cutoff: datetime) -> int:
    """Retention: links not used since ``cutoff`` go (a later sign-in links afresh)."""
    return db.session.execute(sa.delete(AnonymousLink).where(
        AnonymousLink.shop_id == shop_id, AnonymousLink.linked_at < cutoff)).rowcount or 0
