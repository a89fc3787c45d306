"""Data subject rights, the export: what we hold on a customer (or on orders a guest
placed), as plain JSON (``plugin.privacy`` writes it for the platform's data requests)."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app

from plugin.after_commit import after_commit
from plugin.api import linking
from plugin.extensions import db, insert_or_ignore
from plugin.ingestion.mapping import guest_shopper
from plugin.models import (
    Cart,
    Customer,
    ErasedExport,
    Impression,
    Interaction,
    Order,
    PromptState,
    RecommendationCache,
    ShopperConsent,
    SubProfile,
    WebhookDelivery,
)
from plugin.models.events import FORGOTTEN_SUBPROFILE
from plugin.models.types import utcnow
from plugin.offers import privacy as offers_privacy
from plugin.webhooks import inbox


def export_customer(shop_id: str, customer_id: str, *,
                    order_ids: Iterable[str] = ()) -> dict[str, Any]:
    """Everything Shopkeeper stores about one customer of one shop, as plain JSON.

    ``order_ids`` are orders the request names as theirs (Shopify's ``orders_requested``):
    those placed as a guest carry no customer id, so only the list finds them and their
    purchases (kept under the order), as a redaction's list does."""
    order_ids = sorted({str(o) for o in order_ids})
    customer = db.session.scalar(sa.select(Customer).filter_by(shop_id=shop_id,
                                                               external_id=customer_id))
    links = linking.anonymous_ids(shop_id, customer_id)
    # what is kept under their browsers' anonymous ids is theirs too (events moved and
    # still waiting, shown lists, carts, quotes): the ids erasure reaches
    ids = [customer_id, *(r.anonymous_id for r in links)]
    return {
        "shop_id": shop_id,
        "customer_id": customer_id,
        "customer": None if customer is None else {
            "created_at": _iso(customer.created_at),
            "email_stored": "keyed hash only" if customer.email_hash else "none",
        },
        **_orders_export(shop_id, order_ids, customer_id=customer_id, shopper_ids=ids),
        "anonymous_ids": [{"id": r.anonymous_id, "linked_at": _iso(r.linked_at),
                           "consent": _consent_export(shop_id, r.anonymous_id)}
                          for r in links],
        "subprofiles": [{"id": s.id, "name": s.name, "age_band": s.age_band, "kind": s.kind,
                         "created_at": _iso(s.created_at)}
                        for s in db.session.scalars(sa.select(SubProfile).where(
                            SubProfile.shop_id == shop_id, SubProfile.owner_id.in_(ids))
                            .order_by(SubProfile.id))],
        **_serving_export(shop_id, ids),
        **_offers_export(shop_id, ids),
        "webhook_deliveries": _deliveries_export(shop_id, customer_id, order_ids),
    }


def export_guest_orders(shop_id: str, order_ids: Iterable[str]) -> dict[str, Any]:
    """What a data request naming orders but no customer (a guest checkout's) reaches: the
    guest-order part of ``export_customer`` (orders, purchases, kept bodies), nothing else."""
    order_ids = sorted({str(o) for o in order_ids})
    return {"shop_id": shop_id, "customer_id": None, "order_ids": order_ids,
            **_orders_export(shop_id, order_ids),
            "webhook_deliveries": _deliveries_export(shop_id, None, order_ids)}


def exports_root() -> Path:
    """The folder holding each shop's folder of exports (``instance/exports``)."""
    return Path(current_app.instance_path) / "exports"


def exports_dir(shop_id: str) -> Path:
    """Where a shop's data-request exports are written (``instance/exports/<shop id>``)."""
    return exports_root() / shop_id


def forget_order_exports(shop_id: str, order_ids: Collection[str]) -> list[dict[str, Any]]:
    """Delete the data-request exports holding any of a redaction's orders (a guest
    checkout's export names them, a customer's may list them): copies of what the
    redaction removes, as a customer's exports go with the customer. Returns what they
    held, for ``plugin.privacy`` to write each again without those orders."""
    redacted, held = set(order_ids), []
    directory = exports_dir(shop_id)
    for path in directory.glob("customer-*.json") if directory.is_dir() else ():
        try:
            export = json.loads(path.read_text())
            export["order_ids"] = {*export.get("order_ids", ()),
                                   *(o["id"] for o in export.get("orders", ()))}
        except (OSError, ValueError, AttributeError, KeyError, TypeError):
            continue  # not an export this module wrote
        if export["order_ids"] & redacted:
            erase_export(shop_id, path)
            held.append({**export, "file": path.name})
    return held


def erase_export(shop_id: str, path: Path) -> None:
    """Delete the export ``path`` once the erasure's transaction commits, not now: an
    erasure that rolls back (a failed delivery, retried later) must leave the shopper's
    export. It is flagged erased in the same transaction, so if the process dies between
    the commit and the delete the file is neither listed nor served, and the retention
    sweep (``sweep_erased_exports``) deletes it."""
    db.session.execute(insert_or_ignore(ErasedExport, ["shop_id", "name"], shop_id=shop_id,
                                        name=path.name, erased_at=utcnow()))
    after_commit(partial(path.unlink, missing_ok=True))


def write_export_after_commit(path: Path, text: str) -> None:
    """Write an export computed in an erasure's transaction once that commits (a rolled
    back erasure leaves the export it replaces, so writes none)."""
    after_commit(partial(_write, path, text))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def erased_export_names(shop_id: str) -> set[str]:
    """Names of the shop's exports an erasure deleted (committed), whose file may remain."""
    return set(db.session.scalars(sa.select(ErasedExport.name).where(
        ErasedExport.shop_id == shop_id)))


def sweep_erased_exports(shop_id: str) -> int:
    """Delete the files of erased exports still on disk (their erasure's process stopped
    between its commit and the delete), then forget the names; returns the files deleted."""
    directory, n = exports_dir(shop_id), 0
    for name in erased_export_names(shop_id):
        path = directory / name
        if path.is_file():
            path.unlink(missing_ok=True)
            n += 1
    db.session.execute(sa.delete(ErasedExport).where(ErasedExport.shop_id == shop_id))
    return n


def _orders_export(shop_id: str, order_ids: list[str], *, customer_id: str | None = None,
                   shopper_ids: Iterable[str] = ()) -> dict[str, Any]:
    """The customer's orders and ``order_ids`` placed as a guest, with the purchases and
    events kept under ``shopper_ids`` or those guest orders."""
    theirs = sa.and_(Order.customer_external_id.is_(None), Order.external_id.in_(order_ids))
    if customer_id is not None:  # (never ``== None``: that is every guest order)
        theirs = sa.or_(Order.customer_external_id == customer_id, theirs)
    orders = db.session.scalars(sa.select(Order).where(Order.shop_id == shop_id, theirs)
                                .order_by(Order.created_at, Order.id))
    interactions = db.session.scalars(sa.select(Interaction).where(
        Interaction.shop_id == shop_id,
        Interaction.shopper_id.in_([*shopper_ids, *map(guest_shopper, order_ids)]))
        .order_by(Interaction.occurred_at, Interaction.id))
    return {
        "orders": [{"id": o.external_id, "created_at": _iso(o.created_at),
                    "currency": o.currency, "total": str(o.total) if o.total else None,
                    "lines": [{"product_id": ln.product_external_id, "quantity": ln.quantity,
                               "price": str(ln.price)} for ln in o.lines]} for o in orders],
        "interactions": [{"kind": i.kind, "product_id": i.product_external_id,
                          # a deleted sub-profile's purchases: used for nobody any more
                          "subprofile_id": "deleted" if i.subprofile_id == FORGOTTEN_SUBPROFILE
                          else i.subprofile_id, "at": _iso(i.occurred_at)}
                         for i in interactions],
    }


def _deliveries_export(shop_id: str, customer_id: str | None,
                       order_ids: list[str]) -> list[dict[str, Any]]:
    """Platform deliveries about them or their orders still kept whole (waiting, failed,
    dead): the most personal copy held (names, addresses in an order's body) until
    applied or erased."""
    ids = inbox.kept_about(shop_id, customer_id, order_ids=order_ids)
    rows = db.session.scalars(sa.select(WebhookDelivery).where(
        WebhookDelivery.id.in_(ids)).order_by(WebhookDelivery.id)) if ids else ()
    return [{"topic": r.topic, "status": r.status, "received_at": _iso(r.received_at),
             "body": _payload(bytes(r.body))} for r in rows]


def _payload(body: bytes) -> Any:
    """A delivery's body as JSON when it is JSON, else as text."""
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def _offers_export(shop_id: str, ids: list[str]) -> dict[str, Any]:
    """Quotes and nudges of every id of the customer, in one list each."""
    out: dict[str, list[Any]] = {}
    for shopper_id in ids:
        for key, rows in offers_privacy.export_shopper(shop_id, shopper_id).items():
            out.setdefault(key, []).extend(rows)
    return out


def _consent_export(shop_id: str, shopper_id: str) -> dict[str, Any] | None:
    consent = db.session.scalar(sa.select(ShopperConsent).filter_by(
        shop_id=shop_id, shopper_id=shopper_id))
    return None if consent is None else {
        "granted": consent.granted, "updated_at": _iso(consent.updated_at)}


def _serving_export(shop_id: str, ids: list[str]) -> dict[str, Any]:
    """What serving and the storefront keep about them: consent answer, prompt state, the
    precomputed list (with its reasons), the lists they were shown, their carts.

    ``ids`` is the customer id, then their linked anonymous ids (shown lists and carts
    kept under those are theirs too)."""
    customer_id = ids[0]
    prompt = db.session.scalar(sa.select(PromptState).filter_by(
        shop_id=shop_id, shopper_id=customer_id))
    cached = db.session.scalar(sa.select(RecommendationCache).filter_by(
        shop_id=shop_id, shopper_id=customer_id))
    shown = db.session.scalars(sa.select(Impression).where(
        Impression.shop_id == shop_id, Impression.shopper_id.in_(ids))
        .order_by(Impression.created_at, Impression.id))
    carts = db.session.scalars(sa.select(Cart).where(
        Cart.shop_id == shop_id, sa.or_(Cart.customer_external_id == customer_id,
                                        Cart.shopper_id.in_(ids))).order_by(Cart.id))
    return {
        "consent": _consent_export(shop_id, customer_id),
        "prompt": None if prompt is None else {
            "never_ask": prompt.never_ask, "last_asked_at": _iso(prompt.last_asked_at),
            "active_subprofile_id": prompt.active_subprofile_id},
        "recommendations": [] if cached is None else [
            {"product_id": item, "source": source, "reason": reason,
             "computed_at": _iso(cached.computed_at)}
            for item, _score, source, reason in cached.items],
        "impressions": [{"placement": i.placement, "items": list(i.items),
                         "holdout": i.holdout, "at": _iso(i.created_at)} for i in shown],
        "carts": [{"id": c.external_id, "currency": c.currency, "lines": list(c.lines),
                   "updated_at": _iso(c.source_updated_at)} for c in carts],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
