"""Shopify webhook subscriptions brought up to this version's topics for installed shops.

Subscriptions are made at the OAuth callback. A release that adds a topic (the last one
added ``publications/delete``) reached shops installed before only at their next OAuth,
which a merchant may never go through again. An hourly job (``plugin.jobs``) subscribes
each active shop to the topics it misses:

- a shop is asked when this version wants topics its last check did not (a release), and
  otherwise once a day (a subscription deleted meanwhile comes back);
- a topic whose scope the merchant has not granted is skipped and logged (and audited):
  Shopify would refuse it, and the merchant's next launch asks for the scope anyway
  (``install.shopify.needs_oauth``), whose callback subscribes it;
- a shop whose check fails is asked again after a back-off that doubles up to a day, so
  one unreachable shop is not called every hour;
- a shop whose credentials Shopify refused (``auth_failed``) is left to its next OAuth;
- a shop Shopify holds back (frozen or locked, ``plugin.shop_unavailable``) is asked again
  after that module's hour, which counts as no failure: nothing here can help it;
- a subscription to this shop's webhook path under another base URL (``PUBLIC_URL`` was
  changed) is moved to the current address, or deleted when the current one has its
  topic: Shopify would deliver to both, and the old host may be dead or someone else's.
  A shop is asked at the first run after ``PUBLIC_URL`` changes. Subscriptions to other
  paths (another shop id, another app's route) are left alone;
- a subscription at the shop's address (current or former) to a topic this version no
  longer handles (a release dropped it) is deleted; a delete that fails is tried again
  after the back-off (an hour at first). Other addresses' subscriptions are not touched.

Its state is kept in ``Shop.settings[STATE]``; the OAuth callback clears it, so a shop
that just granted a scope is checked again at the next run.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from flask import current_app

from connectors.errors import ConnectorError, ShopUnavailable
from connectors.manifest import absolute_url, load_manifest
from connectors.shopify import ShopifyConnector, WebhookReconcile
from connectors.shopify.webhooks import SHOP_TOPICS
from plugin import shop_unavailable, shops
from plugin.extensions import db
from plugin.leadership import checkpoint, stop_if_lease_lost
from plugin.models import Shop
from plugin.models.types import utcnow

__all__ = ["STATE", "due", "reconcile", "reconcile_due", "webhook_path", "webhook_uri"]

log = logging.getLogger("shopkeeper.install")

#: ``Shop.settings`` key: ``{"topics": [...], "uri": str, "checked_at": ISO,
#: "skipped": {topic: scope}, "failures": n, "retry_at": ISO}`` (``topics`` and ``uri``:
#: the wanted topics and the address at the last check).
STATE = "shopify_webhooks"
#: A shop whose subscriptions matched this version's topics is checked again after this.
RECHECK = timedelta(days=1)
#: The first back-off after a failed check, doubled at each failure in a row, up to the last.
BACKOFF = timedelta(hours=1)
MAX_BACKOFF = timedelta(days=1)


def webhook_uri(shop_id: str) -> str:
    """Where Shopify delivers the shop's webhooks (the manifest's ``urls.webhooks``)."""
    return absolute_url(current_app.config["PUBLIC_URL"], load_manifest()["urls"]["webhooks"],
                        connector="shopify", shop_id=shop_id)


def webhook_path(shop_id: str) -> str:
    """The manifest's path of the shop's webhook address (``/webhooks/shopify/<id>``),
    without a base URL: under another base (with or without a path of its own) it is
    this deployment's address under a former ``PUBLIC_URL``."""
    return urlsplit(absolute_url("http://base", load_manifest()["urls"]["webhooks"],
                                 connector="shopify", shop_id=shop_id)).path


def _state(shop: Shop) -> dict[str, Any]:
    state = (shop.settings or {}).get(STATE)
    return state if isinstance(state, dict) else {}


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def due(shop: Shop, now: datetime) -> bool:
    """Whether the shop is to be checked now (see the module's docstring)."""
    state = _state(shop)
    retry_at = _time(state.get("retry_at"))
    if retry_at is not None and now < retry_at:
        return False
    if state.get("topics") != sorted(SHOP_TOPICS) or state.get("uri") != webhook_uri(shop.id):
        return True  # a release's topics, or a new PUBLIC_URL to move subscriptions to
    checked = _time(state.get("checked_at"))
    return checked is None or now - checked >= RECHECK


def reconcile(shop: Shop, *, now: datetime | None = None,
              session: requests.Session | None = None) -> WebhookReconcile:
    """Subscribe the shop to the topics it misses and record the check (the caller
    commits). A failure is recorded with its back-off, then raised."""
    now = now or utcnow()
    before = _state(shop)
    try:
        connector = shops.connector_for(shop, session=session)
        assert isinstance(connector, ShopifyConnector)
        uri = webhook_uri(shop.id)
        done = connector.reconcile_webhooks(uri, path=webhook_path(shop.id))
    except ShopUnavailable as err:  # frozen or locked: asked again when the others ask
        shop_unavailable.record(shop, err, now=now)
        _store(shop, {**before, "retry_at": (now + shop_unavailable.RETRY_AFTER).isoformat()})
        log.info("install.shopify.webhooks_shop_unavailable", extra={
            "shop_id": shop.id, "status": err.status})
        raise
    except ConnectorError as err:
        failures = int(before.get("failures") or 0) + 1
        wait = min(BACKOFF * 2 ** (failures - 1), MAX_BACKOFF)
        _store(shop, {**before, "failures": failures, "retry_at": (now + wait).isoformat()})
        log.warning("install.shopify.webhooks_reconcile_failed", extra={
            "shop_id": shop.id, "error": type(err).__name__, "failures": failures,
            "retry_in_seconds": int(wait.total_seconds())})
        raise
    _store(shop, {"topics": sorted(SHOP_TOPICS), "uri": uri, "checked_at": now.isoformat(),
                  "skipped": done.skipped})
    shop_unavailable.clear(shop)  # Shopify answered
    if done.skipped and done.skipped != before.get("skipped"):
        log.warning("install.shopify.webhooks_scope_missing", extra={
            "shop_id": shop.id, "skipped": done.skipped})
    changed = done.created or done.moved or done.removed or done.dropped
    if changed or (done.skipped and done.skipped != before.get("skipped")):
        shops.audit(shop.id, "install.webhooks_reconciled", created=done.created,
                    skipped=done.skipped, moved=done.moved, removed=done.removed,
                    dropped=done.dropped)
    if done.created:
        log.info("install.shopify.webhooks_created", extra={
            "shop_id": shop.id, "topics": done.created})
    if done.moved or done.removed:
        log.info("install.shopify.webhooks_moved", extra={
            "shop_id": shop.id, "moved": done.moved, "removed": done.removed})
    if done.dropped:
        log.info("install.shopify.webhooks_dropped", extra={
            "shop_id": shop.id, "topics": done.dropped})
    return done


def _store(shop: Shop, state: dict[str, Any]) -> None:
    shops.update_settings(shop.id, lambda settings: {**settings, STATE: state})


def reconcile_due(*, now: datetime | None = None) -> int:
    """The hourly job: each active Shopify shop that is due, one failing shop not stopping
    the others (the first failure is raised after them, so the run is recorded failed).
    Returns the subscriptions created or moved to the current address."""
    now = now or utcnow()
    created = 0
    failed: list[Exception] = []
    for shop in db.session.scalars(sa.select(Shop).where(
            Shop.status == "active", Shop.platform == "shopify")).all():
        if shop.installation is None or shop.installation.auth_failed or not due(shop, now) \
                or shop_unavailable.wait_left(shop, now=now) is not None:
            continue
        checkpoint()  # the scheduler lease was lost: the new leader reconciles the rest
        try:
            done = reconcile(shop, now=now)
            created += len(done.created) + len(done.moved)
        except ShopUnavailable:  # recorded, with the hour it waits: no failure of the job
            pass
        except ConnectorError as err:
            failed.append(err)
        except Exception as err:  # no credentials left, a crash: the other shops go on
            stop_if_lease_lost(err)
            db.session.rollback()
            log.exception("install.shopify.webhooks_reconcile_crashed",
                          extra={"shop_id": shop.id})
            failed.append(err)
            continue
        db.session.commit()  # the check, or the failure and its back-off
    if failed:
        raise failed[0]
    return created
