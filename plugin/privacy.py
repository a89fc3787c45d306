"""Data subject rights: export what we hold on a customer (``plugin.privacy_export``), or
erase it."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from plugin.api import linking
from plugin.crypto import email_hash
from plugin.extensions import db, insert_or_ignore
from plugin.ingestion.mapping import (
    erasure_lock,
    forget_cached_recommendations,
    guest_shopper,
)
from plugin.models import (
    AuditLog,
    Cart,
    Customer,
    Impression,
    Interaction,
    Order,
    PromptState,
    RedactedOrder,
    ShopperConsent,
    SubProfile,
)
from plugin.models.events import SET_ASIDE
from plugin.models.types import utcnow
from plugin.offers import privacy as offers_privacy
from plugin.privacy_export import (
    erase_export,
    erased_export_names,
    export_customer,
    export_guest_orders,
    exports_dir,
    forget_order_exports,
    sweep_erased_exports,
    write_export_after_commit,
)
from plugin.shops import audit
from plugin.subprofiles import recs as subprofile_recs
from plugin.webhooks import inbox

log = logging.getLogger("shopkeeper.privacy")


def find_customer(shop_id: str, text: str) -> str:
    """The customer id ``text`` names: itself, or, for an email address, the id of the
    customer whose keyed email hash matches (a customer asking by email rarely knows their
    id). An unknown email is returned as given: nothing is stored under it."""
    if "@" not in text:
        return text
    found = db.session.scalar(sa.select(Customer.external_id).where(
        Customer.shop_id == shop_id, Customer.email_hash == email_hash(shop_id, text),
        Customer.deleted_at.is_(None)).order_by(Customer.id).limit(1))
    return found or text


def erase_customer(shop_id: str, customer_id: str, *, deleted_at: datetime | None = None,
                   order_ids: Iterable[str] = ()) -> None:
    """Remove personal data and interactions; orders stay for the shop's totals, unlinked.

    Webhook bodies still kept about the customer (not yet applied, failed, dead) go too,
    found by the customer id or ``order_ids`` (a platform redaction's orders), and so do
    the purchases of those orders placed as a guest (kept under the order, not the id).
    """
    erasure_lock(shop_id, erasing=True)  # first: order writes under way commit before
    at = deleted_at or utcnow()
    order_ids = tuple(sorted({str(o) for o in order_ids}))
    row = db.session.scalar(sa.select(Customer).filter_by(shop_id=shop_id,
                                                          external_id=customer_id))
    if row is None:
        row = Customer(shop_id=shop_id, external_id=customer_id, source_updated_at=at)
        db.session.add(row)
    row.email_hash, row.created_at, row.deleted_at = None, None, at
    row.source_updated_at = max(row.source_updated_at, at)
    # their browsers' anonymous ids: read before the links go with their waiting events
    anonymous = [r.anonymous_id for r in linking.anonymous_ids(shop_id, customer_id)]
    linking.forget_customer(shop_id, customer_id)
    for shopper_id in (customer_id, *anonymous):
        _forget_shopper(shop_id, shopper_id)
    held = _forget_orders(shop_id, order_ids)
    db.session.execute(sa.update(Order).where(Order.shop_id == shop_id,
                                              Order.customer_external_id == customer_id)
                       .values(customer_external_id=None))
    db.session.execute(sa.update(Cart).where(Cart.shop_id == shop_id,
                                             Cart.customer_external_id == customer_id)
                       .values(customer_external_id=None))
    inbox.forget_customer(shop_id, customer_id, order_ids=order_ids)
    _forget_exports(shop_id, customer_id)
    _renew_exports(shop_id, [e for e in held if e.get("customer_id") != customer_id],
                   order_ids)
    audit(shop_id, "privacy.customer_erased")
    log.info("privacy.customer_erased", extra={"shop_id": shop_id})


def redact_orders(shop_id: str, order_ids: Iterable[str]) -> None:
    """Erase what is kept about orders a redaction names without a customer to erase
    (Shopify's ``customers/redact`` of a guest checkout has no customer id): without this
    the guest's purchases and kept order bodies stayed. The orders stay, unlinked."""
    order_ids = tuple(sorted({str(o) for o in order_ids}))
    if not order_ids:
        return
    erasure_lock(shop_id, erasing=True)  # first: order writes under way commit before
    held = _forget_orders(shop_id, order_ids)
    inbox.forget_customer(shop_id, None, order_ids=order_ids)
    _renew_exports(shop_id, held, order_ids)
    audit(shop_id, "privacy.orders_redacted", orders=len(order_ids))
    log.info("privacy.orders_redacted", extra={"shop_id": shop_id})


def _forget_orders(shop_id: str, order_ids: tuple[str, ...]) -> list[dict[str, Any]]:
    """A redaction's orders: their purchases (whoever they were filed under), all kept
    under a guest order's shopper id, the order's link to a customer and the links to it
    from offer and recommendation credits, its discount codes and the data-request
    exports holding it (returned, for ``_renew_exports``). Their ids are kept
    (``RedactedOrder``) so a later delivery of them is ignored, not applied again."""
    for order_id in order_ids:
        _forget_shopper(shop_id, guest_shopper(order_id))
        db.session.execute(insert_or_ignore(
            RedactedOrder, ["shop_id", "order_external_id"], shop_id=shop_id,
            order_external_id=order_id, redacted_at=utcnow()))
    for start in range(0, len(order_ids), 500):
        chunk = order_ids[start:start + 500]
        db.session.execute(sa.delete(Interaction).where(
            Interaction.shop_id == shop_id, Interaction.order_external_id.in_(chunk)))
        db.session.execute(sa.update(Order).where(Order.shop_id == shop_id,
                                                  Order.external_id.in_(chunk))
                           .values(customer_external_id=None))
        offers_privacy.unlink_orders(shop_id, chunk)
    return forget_order_exports(shop_id, order_ids)


def _renew_exports(shop_id: str, held: list[dict[str, Any]], redacted: tuple[str, ...]) -> None:
    """Write again, without the redacted orders, the exports a redaction deleted (once it
    commits): deleted whole, a customer's export listing a guest order of the redaction
    vanished from the merchant's list and the data request it answered went unanswered.
    Called last, once everything the redaction removes is gone; a guest export left with
    no order is not written again, nor is the file of a data request that rolled back
    (never listed). The new file's name carries the time it was written."""
    recorded = _recorded_exports(shop_id) if held else set()
    for export in held:
        if export["file"] not in recorded:
            continue
        customer = export.get("customer_id")
        remaining = sorted(set(export["order_ids"]) - set(redacted))
        if customer is None and not remaining:
            continue
        key = customer if customer is not None else "orders:" + ",".join(remaining)
        content = (export_guest_orders(shop_id, remaining) if customer is None
                   else export_customer(shop_id, customer, order_ids=remaining))
        path = exports_dir(shop_id) / f"{_export_prefix(shop_id, key)}{_renewed_at(export)}.json"
        write_export_after_commit(path, json.dumps(content, indent=2))
        audit(shop_id, "privacy.data_request_renewed", file=path.name)


def _renewed_at(export: dict[str, Any]) -> int:
    """Now, as the name of a renewed export: after the one it replaces (flagged erased
    under its own name), even within the same second."""
    match = _EXPORT_NAME.fullmatch(export["file"])
    return max(int(utcnow().timestamp()), int(match.group(1)) + 1 if match else 0)


def _forget_shopper(shop_id: str, shopper_id: str) -> None:
    """Everything kept under one of the customer's shopper ids (their customer id, a
    linked browser id, a redacted guest order's): events, sub-profiles and prompt state,
    what serving kept (cached list and its Redis copy, consent answer, impressions' link),
    quotes, nudges, carts."""
    db.session.execute(sa.delete(Interaction).where(Interaction.shop_id == shop_id,
                                                    Interaction.shopper_id == shopper_id))
    db.session.execute(sa.delete(PromptState).where(PromptState.shop_id == shop_id,
                                                    PromptState.shopper_id == shopper_id))
    db.session.execute(sa.delete(SubProfile).where(SubProfile.shop_id == shop_id,
                                                   SubProfile.owner_id == shopper_id))
    # their lists' reasons name the sub-profile; a deleted id may be reused (SQLite)
    subprofile_recs.forget_owner(shop_id, shopper_id)
    forget_cached_recommendations(shop_id, shopper_id)
    db.session.execute(sa.delete(ShopperConsent).where(ShopperConsent.shop_id == shop_id,
                                                       ShopperConsent.shopper_id == shopper_id))
    db.session.execute(sa.update(Impression).where(Impression.shop_id == shop_id,
                                                   Impression.shopper_id == shopper_id)
                       .values(shopper_id=None))
    offers_privacy.erase_shopper(shop_id, shopper_id)
    db.session.execute(sa.update(Cart).where(Cart.shop_id == shop_id,
                                             Cart.shopper_id == shopper_id)
                       .values(shopper_id=None))


def purge_expired(shop_id: str, retention_days: int, *, now: datetime | None = None) -> int:
    """Delete shopper events, impressions and anonymous-id links older than the shop's
    retention period, and what idle anonymous browsers left (sub-profiles, consent).

    Orders stay (they are the shop's business records, unlinked on erasure); the events
    that profile a shopper do not outlive ``retention_days``, nor do carts last changed
    before then, nudges, or the link from an offer quote to its shopper. Applied webhook deliveries
    that still hold their body (applied before bodies were dropped on success) lose it, and
    so do dead ones received before the cutoff (closed, not applied). Data-request exports
    go after ``EXPORT_KEEP_DAYS`` whatever the retention.
    """
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    n = db.session.execute(sa.delete(Interaction).where(
        Interaction.shop_id == shop_id, Interaction.kind.not_in(("purchase", SET_ASIDE)),
        Interaction.occurred_at < cutoff)).rowcount
    n += db.session.execute(sa.delete(Impression).where(
        Impression.shop_id == shop_id, Impression.created_at < cutoff)).rowcount
    n += linking.purge_links(shop_id, cutoff)
    n += inbox.blank_done(shop_id)
    n += inbox.expire_dead(shop_id, cutoff, now=now)
    # carts and offer quotes profile a shopper too: abandoned carts go, quotes are unlinked
    n += db.session.execute(sa.delete(Cart).where(
        Cart.shop_id == shop_id, Cart.source_updated_at < cutoff)).rowcount or 0
    n += offers_privacy.purge_before(shop_id, cutoff)
    n += purge_old_exports(shop_id, now=now)
    n += _purge_idle_browsers(shop_id, cutoff)
    return n


def _purge_idle_browsers(shop_id: str, cutoff: datetime) -> int:
    """What a browser that never signed in left behind (its sub-profiles, prompt state
    and consent answer), once none of it changed within the retention period.

    A customer's rows go with the customer (erasure); an anonymous id has no such event,
    so without this its "Maya, 4-6" would be kept for good. A browser with an event left
    (older ones are gone by now) or any of these rows changed since the cutoff is still in
    use, and keeps all of them.
    """
    anonymous = "anon\\_%"
    kept = ((PromptState, PromptState.shopper_id), (ShopperConsent, ShopperConsent.shopper_id),
            (SubProfile, SubProfile.owner_id))
    in_use = sa.union(
        sa.select(Interaction.shopper_id).where(Interaction.shop_id == shop_id),
        *(sa.select(column).where(model.shop_id == shop_id, model.updated_at >= cutoff)
          for model, column in kept))
    n = 0
    for model, column in kept:  # prompt state first: it points at a sub-profile
        n += db.session.execute(sa.delete(model).where(
            model.shop_id == shop_id, column.like(anonymous, escape="\\"),
            column.not_in(sa.select(in_use.subquery().c[0])))).rowcount or 0
    return n


def record_data_request(shop_id: str, customer_id: str | None, *,
                        order_ids: Iterable[str] = ()) -> Path:
    """Write the export (with the request's ``order_ids``: ``export_customer``; without a
    customer, those guest orders: ``export_guest_orders``) where the merchant can fetch it
    (admin page) and audit the request."""
    # first, shared: an erasure under way commits before the export reads (else it held
    # what the erasure deleted), and one starting waits until the file is written (else
    # it looked for the customer's exports too early, and this one stayed listed)
    erasure_lock(shop_id)
    out = exports_dir(shop_id)
    out.mkdir(parents=True, exist_ok=True)
    order_ids = sorted({str(o) for o in order_ids})
    key = customer_id if customer_id is not None else "orders:" + ",".join(order_ids)
    path = out / f"{_export_prefix(shop_id, key)}{int(utcnow().timestamp())}.json"
    export = (export_guest_orders(shop_id, order_ids) if customer_id is None
              else export_customer(shop_id, customer_id, order_ids=order_ids))
    # written now, under its final name, so an erasure in the same transaction finds it;
    # listed only once the audit entry naming it commits (``_listed_exports``)
    path.write_text(json.dumps(export, indent=2))
    audit(shop_id, "privacy.data_request", file=path.name)
    return path


#: A platform data request's export waits this long for the merchant, then is deleted.
EXPORT_KEEP_DAYS = 30
_EXPORT_NAME = re.compile(r"customer-[0-9a-f]{16}-(\d{1,12})\.json")
#: Audit entries naming (``file``) the export they wrote: a data request's and a renewal's.
_EXPORT_AUDITS = ("privacy.data_request", "privacy.data_request_renewed")
#: An export file no committed audit entry names is left this long (its request may be
#: committing still), then swept: its request rolled back.
UNRECORDED_EXPORT_GRACE = timedelta(hours=1)


def _recorded_exports(shop_id: str) -> set[str]:
    """Names of the shop's exports whose audit entry committed (or is in this
    transaction): a data request that rolled back (a failed delivery, retried later)
    leaves a file no entry names."""
    details = db.session.scalars(sa.select(AuditLog.detail).where(
        AuditLog.shop_id == shop_id, AuditLog.action.in_(_EXPORT_AUDITS)))
    return {str(d.get("file")) for d in details if isinstance(d, dict)}


def _listed_exports(shop_id: str) -> set[str]:
    """The exports the merchant may see: recorded, and not deleted by an erasure."""
    return _recorded_exports(shop_id) - erased_export_names(shop_id)


def data_requests(shop_id: str) -> list[dict[str, Any]]:
    """The platform's data requests whose exports wait for the merchant, newest first.

    The platform (e.g. Shopify's ``customers/data_request``) expects the merchant to hand
    the data to the customer: the admin's privacy page lists these files to download.
    """
    directory = exports_dir(shop_id)
    listed = _listed_exports(shop_id) if directory.is_dir() else set()
    out = []
    for path in directory.iterdir() if directory.is_dir() else ():
        match = _EXPORT_NAME.fullmatch(path.name)
        if match is None or not path.is_file() or path.name not in listed:
            continue
        try:
            customer = json.loads(path.read_text()).get("customer_id")
        except (OSError, ValueError, AttributeError):
            customer = None
        at = datetime.fromtimestamp(int(match.group(1)), UTC)
        out.append({"name": path.name, "customer_id": customer, "requested_at": at,
                    "expires_at": at + timedelta(days=EXPORT_KEEP_DAYS)})
    return sorted(out, key=lambda r: (r["requested_at"], r["name"]), reverse=True)


def data_request_file(shop_id: str, name: str) -> Path | None:
    """The export file ``name`` of this shop, or None (never a path outside its folder,
    nor an export an erasure deleted whose file is still there, nor one of a data request
    that rolled back)."""
    if _EXPORT_NAME.fullmatch(name) is None or name not in _listed_exports(shop_id):
        return None
    path = exports_dir(shop_id) / name
    return path if path.is_file() else None


def purge_old_exports(shop_id: str, *, now: datetime | None = None) -> int:
    """Delete data-request exports older than ``EXPORT_KEEP_DAYS``: copies of personal data
    should not outlive the request they answer. Erased exports' files still on disk go too
    (``sweep_erased_exports``), and so do those of data requests that rolled back (no
    audit entry names them) after ``UNRECORDED_EXPORT_GRACE``."""
    now = now or utcnow()
    n = sweep_erased_exports(shop_id)
    directory = exports_dir(shop_id)
    listed = _listed_exports(shop_id) if directory.is_dir() else set()
    for path in directory.iterdir() if directory.is_dir() else ():
        match = _EXPORT_NAME.fullmatch(path.name)
        if match is None or not path.is_file():
            continue
        keep = timedelta(days=EXPORT_KEEP_DAYS) if path.name in listed \
            else UNRECORDED_EXPORT_GRACE
        if datetime.fromtimestamp(int(match.group(1)), UTC) < now - keep:
            path.unlink(missing_ok=True)
            n += 1
    return n


def _export_prefix(shop_id: str, customer_id: str) -> str:
    digest = hashlib.sha256(f"{shop_id}:{customer_id}".encode()).hexdigest()[:16]
    return f"customer-{digest}-"


def _forget_exports(shop_id: str, customer_id: str) -> None:
    """Delete the customer's data-request exports (once the erasure commits: ``erase_export``):
    copies of what erasure removes."""
    directory = exports_dir(shop_id)
    if directory.is_dir():
        for path in directory.glob(f"{_export_prefix(shop_id, customer_id)}*.json"):
            erase_export(shop_id, path)
