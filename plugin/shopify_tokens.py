"""Shopify's expiring offline access tokens: renewed under a lock and stored at once.

An access token lasts an hour, and each use of its refresh token replaces that refresh
token: two workers refreshing with the same one would spend it twice and one would end up
holding a retired token. A renewal therefore runs in a transaction of its own that first
locks the shop's ``installations`` row (the row on PostgreSQL, the database's write lock
on SQLite) and reads the credentials again under that lock: a second worker waits, finds
them renewed and uses them. Its own transaction, because the new pair must be stored
whatever becomes of the caller's (a sync page that rolls back).

Shops installed before tokens expired hold a non-expiring token, which Shopify stops
accepting on 2027-01-01: their first API call (or the hourly ``migrate_shopify_tokens``
job) trades it for an expiring one by token exchange.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import sqlalchemy as sa
from flask import current_app

from connectors.base import Credentials
from connectors.errors import AuthFailed, ConnectorError, ShopUnavailable
from connectors.shopify import MIGRATION_REFUSED_AT, ShopifyConnector, migration_due
from connectors.shopify import install as tokens
from plugin import crypto, shop_unavailable, shops
from plugin.extensions import db
from plugin.leadership import checkpoint, stop_if_lease_lost
from plugin.models import Installation, Shop
from plugin.models.types import utcnow

__all__ = ["attach", "migrate_legacy_tokens", "renew_credentials"]

log = logging.getLogger("shopkeeper.shopify_tokens")


def attach(shop: Shop, connector: ShopifyConnector) -> None:
    """Let ``connector`` renew the shop's token, stored under the lock (``connector_for``)."""
    shop_id = shop.id

    def renew(held: Credentials, force: bool) -> Credentials:
        fresh = renew_credentials(shop_id, connector, held, force=force)
        _forget_stale_copy(shop)
        return fresh

    connector.renew_credentials = renew


def _forget_stale_copy(shop: Shop) -> None:
    """The caller's session still holds the credentials it read before the renewal: a
    later read-modify-write (``save_credentials``) would store the retired pair again."""
    installation = shop.installation
    if installation is None or installation not in db.session:
        return
    state = sa.inspect(installation)
    if not state.attrs.credentials_encrypted.history.has_changes():
        db.session.expire(installation, ["credentials_encrypted"])


def renew_credentials(shop_id: str, connector: ShopifyConnector, held: Credentials, *,
                      force: bool = False) -> Credentials:
    """The shop's credentials with an access token good for a while yet: as another worker
    stored them meanwhile, else refreshed (or migrated) by ``connector`` and stored.

    ``force``: Shopify answered 401 to ``held``'s token. A refused refresh (the refresh
    token expired or was revoked) marks the installation ``auth_failed``, so the merchant's
    next admin launch goes through OAuth again, and raises ``AuthFailed``. A refused
    migration keeps the non-expiring token (good until 2027) and is asked again a day later.
    A frozen or locked store (``ShopUnavailable``) marks nothing: its grant is not at fault.
    """
    with current_app.app_context():  # a session (and transaction) of its own
        try:
            return _renew_locked(shop_id, connector, held, force)
        except BaseException:
            db.session.rollback()
            raise


def _renew_locked(shop_id: str, connector: ShopifyConnector, held: Credentials,
                  force: bool) -> Credentials:
    if db.engine.dialect.name == "postgresql":  # never wait forever on the row
        db.session.execute(sa.text("SET LOCAL lock_timeout = '60s'"))
    locked = db.session.execute(
        sa.update(Installation)
        .where(Installation.shop_id == shop_id, Installation.credentials_encrypted.is_not(None))
        .values(updated_at=Installation.updated_at)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not locked:
        raise AuthFailed("the shop has no installation any more")
    installation = db.session.get(Installation, shop_id)
    assert installation is not None and installation.credentials_encrypted is not None
    stored = crypto.decrypt_credentials(installation.credentials_encrypted)
    expiring = bool(stored.extra.get(tokens.REFRESH_TOKEN))
    if stored.access_token != held.access_token and expiring \
            and not tokens.token_due(stored.extra):
        db.session.commit()  # another worker renewed it while this one waited
        return stored
    if not expiring and not force and not migration_due(stored):
        db.session.commit()  # refused migration lately: keep the non-expiring token
        return stored
    if expiring and not force and not tokens.token_due(stored.extra):
        db.session.commit()
        return stored
    try:
        fresh = _renewed_unwaited(connector, stored)
    except AuthFailed as err:
        if expiring:
            installation.auth_failed = True
            shops.audit(shop_id, "credentials.refresh_refused")
            db.session.commit()
            log.warning("shopify.token_refresh_refused", extra={
                "shop_id": shop_id, "error": str(err)})
            raise
        kept = replace(stored, extra={**stored.extra, MIGRATION_REFUSED_AT: utcnow().isoformat()})
        installation.credentials_encrypted = crypto.encrypt_credentials(kept)
        db.session.commit()
        log.warning("shopify.token_migration_refused", extra={
            "shop_id": shop_id, "error": str(err)})
        return kept
    installation.credentials_encrypted = crypto.encrypt_credentials(fresh)
    if not expiring:
        shops.audit(shop_id, "credentials.migrated_to_expiring")
    db.session.commit()
    log.info("shopify.token_renewed", extra={"shop_id": shop_id,
                                             "migrated": not expiring, "after_401": force})
    return fresh


def _renewed_unwaited(connector: ShopifyConnector, stored: Credentials) -> Credentials:
    """``connector.renewed_credentials`` without the session's ``on_wait``: a sync renews
    its lease there, which commits, and a retried token request would then commit this
    transaction and free the row while the single-use refresh token is being spent."""
    http = connector.session
    waited = getattr(http, "on_wait", None)
    if waited is None:
        return connector.renewed_credentials(stored)
    http.on_wait = None
    try:
        return connector.renewed_credentials(stored)
    finally:
        http.on_wait = waited


def migrate_legacy_tokens() -> int:
    """Trade every active Shopify shop's non-expiring token for an expiring one before
    Shopify stops accepting them (2027-01-01); shops that make no API call would otherwise
    keep theirs. Idempotent: migrated shops are skipped. Returns the shops migrated."""
    migrated = 0
    failed: list[Exception] = []
    for shop in db.session.scalars(sa.select(Shop).where(
            Shop.status == "active", Shop.platform == "shopify")).all():
        checkpoint()  # the scheduler lease was lost: the new leader trades the tokens
        try:
            connector = shops.connector_for(shop)
        except Exception as err:  # no credentials left (uninstalled meanwhile)
            stop_if_lease_lost(err)
            db.session.rollback()
            continue
        if not isinstance(connector, ShopifyConnector) or not connector.migration_due():
            continue
        try:
            fresh = renew_credentials(shop.id, connector, connector.credentials)
        except ShopUnavailable as err:  # frozen or locked: the token stays, asked next run
            shop_unavailable.record(shop, err)
            db.session.commit()
            continue
        except ConnectorError as err:  # unreachable now: the next run asks again
            log.warning("jobs.token_migration_failed", extra={
                "shop_id": shop.id, "error": type(err).__name__})
            failed.append(err)
            continue
        migrated += bool(fresh.extra.get(tokens.REFRESH_TOKEN))
    if failed:
        raise failed[0]
    return migrated

