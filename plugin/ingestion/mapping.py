"""Normalized records -> rows. Monotonic: an older ``updated_at`` never overwrites a newer
one, and a tombstone (``deleted_at``) stops a late, older upsert from resurrecting a row."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

import sqlalchemy as sa

from connectors import records as rec
from plugin.crypto import email_hash
from plugin.db_clock import db_utcnow
from plugin.extensions import db
from plugin.models import (
    Cart,
    Customer,
    Interaction,
    Order,
    OrderLine,
    Product,
    RedactedOrder,
    Variant,
)
from plugin.models.events import SET_ASIDE
from plugin.models.types import utcnow

ModelT = TypeVar("ModelT", Cart, Customer, Order, Product, Variant)
#: First key of the PostgreSQL advisory lock an erasure and the order and customer writes
#: of a shop share (the second is the shop's); pairs of keys never meet the one-key locks
#: (migrations).
ERASURE_LOCK_SPACE = 0x5348_4B45  # "SHKE"


def erasure_lock(shop_id: str, *, erasing: bool = False) -> None:
    """Order and customer writes of a shop share this lock; its erasures (``erasing``)
    take it alone, first thing, until they commit (PostgreSQL; SQLite has one writer at a
    time anyway).

    A write then checks for a redacted order or an erased customer only once no erasure
    is under way, and an erasure starts only once the writes under way have committed, so
    it sees and deletes their purchases. Row locks could not do it: an order or customer
    seen for the first time has no row to lock yet. One lock per shop, taken before any
    other, cannot deadlock with the order or customer rows a sync page locks."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    key = int.from_bytes(hashlib.sha256(shop_id.encode()).digest()[:4], "big", signed=True)
    fn = "pg_advisory_xact_lock" if erasing else "pg_advisory_xact_lock_shared"
    db.session.execute(sa.text(f"SELECT {fn}(:space, :key)"),
                       {"space": ERASURE_LOCK_SPACE, "key": key})


def redacted_orders(shop_id: str, order_ids: Collection[str]) -> set[str]:
    """Which of ``order_ids`` a redaction named: they stay redacted, whatever a later
    update, redelivery or history import says (take ``erasure_lock`` first)."""
    return set(db.session.scalars(sa.select(RedactedOrder.order_external_id).where(
        RedactedOrder.shop_id == shop_id,
        RedactedOrder.order_external_id.in_(list(order_ids)))))


def erased_customers(shop_id: str, customer_ids: Collection[str]) -> set[str]:
    """Which of ``customer_ids`` were erased: they stay erased, and an order of theirs is
    kept unlinked and files no purchases (take ``erasure_lock`` first)."""
    return set(db.session.scalars(sa.select(Customer.external_id).where(
        Customer.shop_id == shop_id, Customer.external_id.in_(list(customer_ids)),
        Customer.deleted_at.is_not(None))))


def _existing(model: type[ModelT], shop_id: str, external_id: str) -> ModelT | None:
    return db.session.scalar(
        sa.select(model).filter_by(shop_id=shop_id, external_id=external_id).with_for_update()
    )


def _row_to_update(model: type[ModelT], shop_id: str, external_id: str,
                   updated_at: datetime) -> ModelT | None:
    """The row to write (existing, or new and added), or None when ours is as new or newer:
    the one monotonic rule every upsert follows."""
    row = _existing(model, shop_id, external_id)
    if row is not None and row.source_updated_at >= updated_at:
        return None
    if row is None:
        row = model(shop_id=shop_id, external_id=external_id)
        db.session.add(row)
    return row


def upsert_product(shop_id: str, p: rec.Product) -> bool:
    """Insert or update a product and replace its variants; False when skipped as stale."""
    row = _row_to_update(Product, shop_id, p.external_id, p.updated_at)
    if row is None:
        return False
    row.title, row.description = p.title, p.description or ""
    row.url, row.image_url, row.vendor = p.url, p.image_url, p.vendor
    row.categories, row.tags = list(p.categories), list(p.tags)
    row.price, row.currency, row.available = p.price, p.currency, p.available
    row.prices = _prices(p.prices)
    row.available_from = p.available_from
    row.source_updated_at, row.deleted_at = p.updated_at, None
    db.session.flush()
    # one row per variant id: the latest product to list a variant owns it (a store that
    # moved it, or listed it twice, must not fail this delivery on the unique key forever)
    variants = {v.external_id: v for v in p.variants}
    db.session.execute(sa.delete(Variant).where(Variant.shop_id == shop_id, sa.or_(
        Variant.product_id == row.id, Variant.external_id.in_(list(variants)))))
    for v in variants.values():
        db.session.add(Variant(shop_id=shop_id, product_id=row.id, external_id=v.external_id,
                               title=v.title, sku=v.sku, price=v.price, available=v.available,
                               inventory_qty=v.inventory_qty, prices=_prices(v.prices)))
    return True


def _prices(prices: Mapping[str, Decimal]) -> dict[str, str] | None:
    """A record's prices by currency as the JSON column holds them (exact decimal text)."""
    return {code: str(amount) for code, amount in sorted(prices.items())} or None


def sells(p: rec.Product, now: datetime | None = None) -> bool:
    """Whether the record says the product is on sale at ``now`` (``catalog.on_sale``)."""
    return p.available and (p.available_from is None or p.available_from <= (now or utcnow()))


def delete_product(shop_id: str, d: rec.Deletion) -> None:
    """Tombstone the product (creating the tombstone if we never saw the product)."""
    at = d.deleted_at or utcnow()
    row = _existing(Product, shop_id, d.external_id)
    if row is None:
        db.session.add(Product(shop_id=shop_id, external_id=d.external_id, title="",
                               source_updated_at=at, deleted_at=at, available=False))
        return
    if row.source_updated_at > at:
        return  # re-created after this delete was issued
    row.deleted_at, row.source_updated_at, row.available = at, at, False
    db.session.execute(sa.delete(Variant).where(Variant.product_id == row.id))


def mark_listed(shop_id: str, external_ids: list[str]) -> None:
    """Stamp products a sync pass has just listed (after their upserts), so the pass's
    sweep spares them however many runs it took."""
    for start in range(0, len(external_ids), 500):
        db.session.execute(sa.update(Product).where(
            Product.shop_id == shop_id,
            Product.external_id.in_(external_ids[start:start + 500]))
            .values(listed_at=db_utcnow()).execution_options(synchronize_session=False))


def tombstone_unlisted_products(shop_id: str, started: datetime) -> int:
    """Tombstone live products a complete listing begun at ``started`` did not include
    (not ``mark_listed`` since then).

    Rows written since ``started`` (a webhook during the pass) are left alone. The row's
    ``source_updated_at`` is kept, so a later, newer update of the product (listed again)
    revives it, while a late delivery of an older change does not.
    """
    gone = list(db.session.scalars(sa.select(Product.id).where(
        Product.shop_id == shop_id, Product.deleted_at.is_(None),
        Product.source_updated_at < started,
        sa.or_(Product.listed_at.is_(None), Product.listed_at < started))))
    for start in range(0, len(gone), 500):
        ids = gone[start:start + 500]
        db.session.execute(sa.update(Product).where(Product.id.in_(ids))
                           .values(deleted_at=started, available=False))
        db.session.execute(sa.delete(Variant).where(Variant.product_id.in_(ids)))
    return len(gone)


def upsert_customer(shop_id: str, c: rec.Customer) -> bool:
    """Keep only a keyed email hash; False when stale or already erased (an erased
    customer stays erased, whatever a later update or backfill says)."""
    # as upsert_order: before the check and the row lock, so an erasure under way has
    # committed (else the update waited on its row, then wrote the email hash back)
    erasure_lock(shop_id)
    if erased_customers(shop_id, [c.external_id]):
        return False
    row = _row_to_update(Customer, shop_id, c.external_id, c.updated_at)
    if row is None:
        return False
    row.email_hash = email_hash(shop_id, c.email)
    row.created_at, row.source_updated_at, row.deleted_at = c.created_at, c.updated_at, None
    return True


def upsert_order(shop_id: str, o: rec.Order) -> bool:
    """Replace the order, its lines and its purchase interactions as one unit; False when
    stale or redacted (a redacted order stays redacted, whatever a later update says).

    An erased customer's order is kept unlinked and without purchases: filed under the
    guest id ``order:<id>`` instead, their purchases came back with every later update."""
    # Before a new Order joins the session (a query would autoflush it half-filled), and
    # after an erasure under way has committed (its tombstones are seen then).
    erasure_lock(shop_id)
    if redacted_orders(shop_id, [o.external_id]):
        return False
    erased = o.customer_id and erased_customers(shop_id, [o.customer_id])
    customer_id = None if erased else o.customer_id  # an erased customer stays erased
    row = _row_to_update(Order, shop_id, o.external_id, o.updated_at)
    if row is None:
        return False
    if row.id is not None:  # an existing order: its lines are replaced as a whole
        db.session.execute(sa.delete(OrderLine).where(OrderLine.order_id == row.id))
    row.customer_external_id, row.currency, row.total = customer_id, o.currency, o.total
    row.discount_codes, row.cancelled = list(o.discount_codes), o.cancelled
    row.imported = False  # an imported order the platform lists too is the platform's now
    row.created_at, row.source_updated_at = o.created_at, o.updated_at
    db.session.flush()
    for line in o.lines:
        db.session.add(OrderLine(order_id=row.id, product_external_id=line.product_id,
                                 variant_external_id=line.variant_id, quantity=line.quantity,
                                 price=line.price))
    _replace_purchases(shop_id, o, customer_id, erased=bool(erased))
    if customer_id:
        forget_cached_recommendations(shop_id, customer_id)
    return True


def forget_cached_recommendations(shop_id: str, shopper_id: str) -> None:
    """A new order makes the precomputed list stale (it may hold what was just bought, a
    durable that must never come back): drop it so serving recomputes it online."""
    from plugin import cache
    from plugin.api.sources import cache_key
    from plugin.models import RecommendationCache

    db.session.execute(sa.delete(RecommendationCache).where(
        RecommendationCache.shop_id == shop_id, RecommendationCache.shopper_id == shopper_id))
    cache.delete_after_commit(cache_key(shop_id, shopper_id))


def guest_shopper(order_id: str) -> str:
    """The shopper id a guest order's purchases are kept under (no customer to name)."""
    return f"order:{order_id}"


def _replace_purchases(shop_id: str, o: rec.Order, customer_id: str | None, *,
                       erased: bool = False) -> None:
    shopper = customer_id or guest_shopper(o.external_id)
    # Lines the shopper gave to a sub-profile ("that was for Maya") stay given: platforms
    # update an order several times (paid, fulfilled, edited) and each update lands here,
    # and an order set aside by a channel switch comes back here from the backfill.
    kinds = Interaction.kind.in_(("purchase", SET_ASIDE))
    given = dict(db.session.execute(sa.select(
        Interaction.product_external_id, Interaction.subprofile_id).where(
        Interaction.shop_id == shop_id, Interaction.order_external_id == o.external_id,
        kinds, Interaction.shopper_id == shopper,
        Interaction.subprofile_id.is_not(None))).all())
    db.session.execute(sa.delete(Interaction).where(
        Interaction.shop_id == shop_id, Interaction.order_external_id == o.external_id, kinds))
    if o.cancelled or erased:
        return
    for line in o.lines:
        db.session.add(Interaction(
            shop_id=shop_id, shopper_id=shopper, product_external_id=line.product_id,
            subprofile_id=given.get(line.product_id),
            kind="purchase", quantity=line.quantity, price=line.price,
            order_external_id=o.external_id, occurred_at=o.created_at, context={}))


def upsert_cart(shop_id: str, c: rec.Cart) -> bool:
    """Latest cart contents, for offers and for not recommending what is already in it."""
    row = _row_to_update(Cart, shop_id, c.external_id, c.updated_at)
    if row is None:
        return False
    row.customer_external_id, row.shopper_id, row.currency = c.customer_id, c.shopper_id, c.currency
    row.lines = [{"product_id": ln.product_id, "variant_id": ln.variant_id,
                  "quantity": ln.quantity, "price": str(ln.price)} for ln in c.lines]
    row.source_updated_at = c.updated_at
    return True

