"""Shop lifecycle: create, look up with credentials, uninstall, erase."""

from __future__ import annotations

import copy
import logging
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

import connectors
from connectors.base import Connector, Credentials
from plugin import crypto
from plugin.after_commit import after_commit
from plugin.errors import BadRequest, Conflict, NotFound
from plugin.extensions import db
from plugin.models import AuditLog, Installation, Shop
from plugin.models.types import utcnow

#: Where a shop's customer-token secret is kept: ``Credentials.extra`` (encrypted at rest).
CUSTOMER_TOKEN_SECRET = "customer_token_secret"
#: The secret a rotation replaced, still accepted until ``..._UNTIL`` (ISO 8601, UTC): the
#: storefront's backend keeps minting with it until it is updated, and its customers' tokens
#: outlive the rotation by up to a day.
PREVIOUS_CUSTOMER_TOKEN_SECRET = "customer_token_secret_previous"
PREVIOUS_CUSTOMER_TOKEN_UNTIL = "customer_token_secret_previous_until"
_TOKEN_SECRET_KEYS = (CUSTOMER_TOKEN_SECRET, PREVIOUS_CUSTOMER_TOKEN_SECRET,
                      PREVIOUS_CUSTOMER_TOKEN_UNTIL)
#: Platforms whose storefronts signed customer tokens with the webhook secret before the
#: customer-token secret existed: still accepted there. Elsewhere the webhook secret is the
#: platform's (Shopify: every shop's app secret) or was never shown to the merchant.
#: platforms whose webhook secret is the shop's own and held by the merchant (printed by
#: `shops add`, set in their store or Vendure plugin): it signed customer tokens before the
#: customer-token secret existed, so it still verifies them. Shopify's is the app-wide client
#: secret and Saleor's is never shown: never.
WEBHOOK_SECRET_SIGNS_TOKENS = frozenset({"generic", "vendure"})

#: a shop's domain: host name labels (or an IPv4 address), optionally a port
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}"
                   r"[a-z0-9])?)*(?::\d{1,5})?")
#: what a shop id may look like before it names a directory to delete
_SHOP_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: Writes ``update_settings`` tries before giving up on settings that keep changing under it.
SETTINGS_ATTEMPTS = 20
log = logging.getLogger("shopkeeper.shops")


def create_shop(platform: str, domain: str, credentials: Credentials | None = None) -> Shop:
    """Register an installed store; a webhook secret is generated when the platform has none,
    and a customer-token secret always."""
    connectors.get(platform)  # unknown platform raises UnknownConnector
    domain = domain.strip().lower()
    if not _HOST.fullmatch(domain) or len(domain) > 253:
        raise BadRequest(f"{domain!r} is not a host name (like shop.example or "
                         "shop.example:8080).", {"domain": ["Not a host name."]})
    if db.session.scalar(sa.select(Shop).filter_by(platform=platform, domain=domain)):
        raise Conflict(f"A {platform} shop with domain {domain!r} already exists.")
    shop = Shop(
        id="shp_" + secrets.token_hex(6),
        platform=platform,
        domain=domain,
        widget_key=crypto.new_token("pk", 18),
        settings={},
    )
    credentials = credentials or Credentials(shop_domain=domain)
    if not credentials.webhook_secret:
        credentials = replace(credentials, webhook_secret=crypto.new_token("whsec", 24))
    if not credentials.extra.get(CUSTOMER_TOKEN_SECRET):
        credentials = replace(credentials, extra={**credentials.extra,
                                                  CUSTOMER_TOKEN_SECRET: new_token_secret()})
    shop.installation = Installation(credentials_encrypted=crypto.encrypt_credentials(credentials))
    db.session.add(shop)
    db.session.flush()
    audit(shop.id, "shop.created", platform=platform)
    log.info("shop.created", extra={"shop_id": shop.id, "platform": platform})
    return shop


def get_shop(shop_id: str, *, active_only: bool = False) -> Shop:
    """The shop or a 404: ids of other shops and unknown ids look the same."""
    shop = db.session.get(Shop, shop_id)
    if shop is None or (active_only and shop.status != "active"):
        raise NotFound("Unknown shop.")
    return shop


@dataclass(frozen=True)
class SettingsUpdate:
    """A shop's settings as they were in the database just before a write, and after."""

    before: dict[str, Any]
    after: dict[str, Any]

    @property
    def changed(self) -> list[str]:
        """The top-level keys the write changed, added or removed (sorted)."""
        keys = set(self.before) | set(self.after)
        return sorted(k for k in keys if self.before.get(k) != self.after.get(k))


def update_settings(shop_id: str,
                    change: Callable[[dict[str, Any]], dict[str, Any]]) -> SettingsUpdate:
    """Store ``change`` applied to the shop's settings as they are now in the database (the
    caller commits); every writer of ``Shop.settings`` goes through here.

    Writers replace the JSON dict whole, from a copy read earlier: a merchant's save while
    the worker read the platform's currencies reverted one or the other. Here the dict is
    read again, changed, and written only where ``settings_rev`` is still the one read
    (SQLite's deferred transactions and PostgreSQL's READ COMMITTED both read without
    locking); after another writer's commit ``change`` runs again on its result. So
    ``change`` gets a copy to edit, must touch only its own keys and may run several times.
    A ``Shop`` loaded in the session gets the stored dict.
    """
    for _ in range(SETTINGS_ATTEMPTS):
        row = db.session.execute(sa.select(Shop.settings, Shop.settings_rev)
                                 .where(Shop.id == shop_id)).one_or_none()
        if row is None:
            raise NotFound("Unknown shop.")
        before = dict(row.settings or {})
        after = change(copy.deepcopy(before))
        if after == before:  # nothing to write (e.g. a mark another writer cleared)
            _loaded_settings(shop_id, before, row.settings_rev)
            return SettingsUpdate(before, before)
        written = db.session.execute(
            sa.update(Shop).where(Shop.id == shop_id, Shop.settings_rev == row.settings_rev)
            .values(settings=after, settings_rev=row.settings_rev + 1)
            .execution_options(synchronize_session=False)).rowcount
        if written:
            _loaded_settings(shop_id, after, row.settings_rev + 1)
            return SettingsUpdate(before, after)
    raise Conflict("The shop's settings kept changing while they were saved; try again.")


def _loaded_settings(shop_id: str, settings: dict[str, Any], rev: int) -> None:
    """Show the stored settings to the ``Shop`` the session holds (as loaded, not dirty)."""
    shop = db.session.identity_map.get(identity_key(Shop, shop_id))
    if shop is not None:
        set_committed_value(shop, "settings", copy.deepcopy(settings))
        set_committed_value(shop, "settings_rev", rev)


def credentials_for(shop: Shop) -> Credentials:
    """Decrypted credentials (an uninstalled shop has none left)."""
    if shop.installation is None or shop.installation.credentials_encrypted is None:
        raise NotFound("This shop has no active installation.")
    return crypto.decrypt_credentials(shop.installation.credentials_encrypted)


def auth_secret(shop: Shop) -> str | None:
    """The secret that signs the shop's admin links and admin tokens (and is its admin
    secret): the stored webhook secret. Customer tokens have their own secret (see
    ``customer_token_secrets``). A Shopify shop's stored copy is the app's client
    secret as it was at install, the same for every Shopify shop: the current one
    (``SHOPIFY_API_SECRET``) is used, so an old one, once rotated, opens nothing here.
    Raises ``NotFound`` for a shop without an installation."""
    credentials = credentials_for(shop)
    if shop.platform == "shopify" and current_app.config.get("SHOPIFY_API_SECRET"):
        return current_app.config["SHOPIFY_API_SECRET"]
    return credentials.webhook_secret


def new_token_secret() -> str:
    """A fresh customer-token secret (256 bits)."""
    return secrets.token_urlsafe(32)


def customer_token_secrets(shop: Shop) -> tuple[str, ...]:
    """The secrets a customer token of ``shop`` may be signed with: its customer-token
    secret (when it has one yet), the one it replaced during the grace period after a
    rotation, and, for generic and Vendure shops, their own webhook
    secret. Never the Shopify app secret nor Saleor's generated webhook secret. Empty
    without installation."""
    try:
        credentials = credentials_for(shop)
    except NotFound:
        return ()
    found = [credentials.extra.get(CUSTOMER_TOKEN_SECRET)]
    previous = previous_customer_token_secret(credentials)
    if previous is not None:
        found.append(previous[0])
    if shop.platform in WEBHOOK_SECRET_SIGNS_TOKENS:
        found.append(credentials.webhook_secret)
    return tuple(s for s in found if s)


def previous_customer_token_secret(credentials: Credentials, *, now: datetime | None = None
                                   ) -> tuple[str, datetime] | None:
    """(secret, until) of the customer-token secret the last rotation replaced, while it is
    still accepted; None once its grace period is over (or there is none)."""
    secret = credentials.extra.get(PREVIOUS_CUSTOMER_TOKEN_SECRET)
    try:
        until = datetime.fromisoformat(credentials.extra.get(PREVIOUS_CUSTOMER_TOKEN_UNTIL, ""))
    except ValueError:
        return None
    if not secret or until.tzinfo is None or until <= (now or utcnow()):
        return None
    return secret, until


def with_new_customer_token_secret(credentials: Credentials, grace: timedelta, *,
                                   now: datetime | None = None) -> Credentials:
    """The credentials with a fresh customer-token secret; the current one keeps verifying
    for ``grace`` (none when zero: after a leak). A secret two rotations old is dropped."""
    extra = {k: v for k, v in credentials.extra.items() if k not in _TOKEN_SECRET_KEYS}
    current = credentials.extra.get(CUSTOMER_TOKEN_SECRET)
    if current and grace > timedelta(0):
        extra[PREVIOUS_CUSTOMER_TOKEN_SECRET] = current
        extra[PREVIOUS_CUSTOMER_TOKEN_UNTIL] = ((now or utcnow()) + grace).isoformat()
    extra[CUSTOMER_TOKEN_SECRET] = new_token_secret()
    return replace(credentials, extra=extra)


def without_previous_customer_token_secret(credentials: Credentials) -> Credentials:
    """The credentials with the grace period of the replaced secret ended now."""
    return replace(credentials, extra={
        k: v for k, v in credentials.extra.items()
        if k not in (PREVIOUS_CUSTOMER_TOKEN_SECRET, PREVIOUS_CUSTOMER_TOKEN_UNTIL)})


def ensure_customer_token_secret(shop: Shop) -> tuple[str, bool]:
    """The shop's customer-token secret, created (and stored, encrypted) when it has none
    yet: (secret, created). Two processes creating it at once agree on one: the row is
    only updated while it still holds the credentials read here, else the winner's secret
    is read back. The caller commits. Raises ``NotFound`` without an installation."""
    for _ in range(3):
        credentials = credentials_for(shop)
        current = credentials.extra.get(CUSTOMER_TOKEN_SECRET)
        if current:
            return current, False
        before = shop.installation.credentials_encrypted  # type: ignore[union-attr]
        secret = new_token_secret()
        credentials.extra = {**credentials.extra, CUSTOMER_TOKEN_SECRET: secret}
        updated = db.session.execute(
            sa.update(Installation)
            .where(Installation.shop_id == shop.id,
                   Installation.credentials_encrypted == before)
            .values(credentials_encrypted=crypto.encrypt_credentials(credentials),
                    updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.refresh(shop.installation)  # type: ignore[arg-type]
        if updated:
            audit(shop.id, "keys.customer_token_secret_created")
            return secret, True
    raise Conflict("The shop's credentials keep changing; retry.")


def save_credentials(shop: Shop, credentials: Credentials) -> None:
    """Store new credentials (install callback, token refresh, secret rotation). The
    customer-token secret (and a replaced one still in its grace period) is kept when the
    new credentials carry none (a platform's re-authorisation must not log every customer
    out)."""
    if shop.installation is None:
        shop.installation = Installation()
    else:
        credentials = _newer_token_kept(shop, credentials)
        if not credentials.extra.get(CUSTOMER_TOKEN_SECRET) \
                and shop.installation.credentials_encrypted is not None:
            stored = credentials_for(shop).extra
            kept = {k: stored[k] for k in _TOKEN_SECRET_KEYS if stored.get(k)}
            if kept:
                credentials = replace(credentials, extra={**credentials.extra, **kept})
    shop.installation.credentials_encrypted = crypto.encrypt_credentials(credentials)
    shop.installation.auth_failed = False
    audit(shop.id, "credentials.saved")


def _newer_token_kept(shop: Shop, credentials: Credentials) -> Credentials:
    """Keep a Shopify token pair rotated since the caller read its credentials.

    Callers read, change and save them (a secret rotation, the zone or channel id a sync
    learns); a token refresh in another worker meanwhile rotated the pair, and Shopify
    retires a refresh token once its successor is used. So the stored pair wins when its
    access token expires later than the one being saved. The install and a hand-set token
    bring a newer token, or none that refreshes, and win. The row is locked until commit.
    """
    from connectors.shopify.install import (
        ACCESS_EXPIRES_AT,
        REFRESH_TOKEN,
        REFRESH_TOKEN_EXPIRES_AT,
    )

    encrypted = db.session.scalar(sa.select(Installation.credentials_encrypted).where(
        Installation.shop_id == shop.id).with_for_update())
    if encrypted is None or not credentials.extra.get(REFRESH_TOKEN):
        return credentials
    stored = crypto.decrypt_credentials(encrypted)
    if not stored.extra.get(REFRESH_TOKEN) or _expiry(stored.extra, ACCESS_EXPIRES_AT) \
            <= _expiry(credentials.extra, ACCESS_EXPIRES_AT):
        return credentials
    pair = (ACCESS_EXPIRES_AT, REFRESH_TOKEN, REFRESH_TOKEN_EXPIRES_AT)
    return replace(credentials, access_token=stored.access_token,
                   extra={**credentials.extra, **{k: stored.extra[k] for k in pair
                                                  if k in stored.extra}})


def _expiry(extra: dict, key: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(extra.get(key)))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def connector_for(shop: Shop, *, session: requests.Session | None = None) -> Connector:
    """An instance of the shop's platform connector bound to its credentials."""
    credentials = credentials_for(shop)
    app_secret = current_app.config.get("SHOPIFY_API_SECRET")
    if shop.platform == "shopify" and app_secret:
        # Shopify signs webhooks with the app's current client secret, not the copy stored
        # at install: after a rotation that copy is the old one (see verify_webhook)
        credentials.extra = {**credentials.extra, "app_secret": app_secret}
    if shop.platform == "shopify" and (shop.settings or {}).get("shopify_publication"):
        # the storefront's publication, as the merchant chose it (plugin.admin.publication)
        credentials.extra = {**credentials.extra,
                             "storefront_publication": shop.settings["shopify_publication"]}
    if shop.platform == "saleor" and "public_only" not in credentials.extra:
        credentials.extra = {**credentials.extra,
                             "public_only": not _saleor_host_listed(credentials, shop)}
    connector = connectors.get(shop.platform)(credentials, session=session)
    if shop.platform == "shopify":  # its access token expires hourly: renewed and stored
        from plugin import shopify_tokens

        shopify_tokens.attach(shop, connector)  # type: ignore[arg-type]
    return connector


def saleor_allowed_hosts() -> set[str]:
    """``SALEOR_ALLOWED_DOMAINS``: the Saleor hosts the operator lets install, private
    addresses included (empty: public hosts only)."""
    return {d.strip().lower() for d in
            current_app.config.get("SALEOR_ALLOWED_DOMAINS", "").split(",") if d.strip()}


def _saleor_host_listed(credentials: Credentials, shop: Shop) -> bool:
    """Whether an install stored without ``public_only`` (registered before it was kept,
    or added with ``shops add``) names a host the operator allowed: only then may it
    reach private addresses; otherwise it is held to public ones, as a new install is."""
    host = urlsplit(credentials.api_url or "").hostname or shop.domain or ""
    return host.lower() in saleor_allowed_hosts()


def mark_uninstalled(shop: Shop, *, at: datetime | None = None) -> None:
    """Platform told us we're gone: wipe credentials now, data after the retention period."""
    shop.status = "uninstalled"
    shop.uninstalled_at = at or utcnow()
    if shop.installation is not None:
        shop.installation.credentials_encrypted = None
    audit(shop.id, "shop.uninstalled")
    log.info("shop.uninstalled", extra={"shop_id": shop.id})


def erase_shop(shop_id: str) -> None:
    """Delete every row of a shop: each table with a ``shop_id`` column (children first),
    so tables added by later features are covered without being listed here."""
    from plugin.models import Order, OrderLine

    order_ids = sa.select(Order.id).where(Order.shop_id == shop_id)
    db.session.execute(sa.delete(OrderLine).where(OrderLine.order_id.in_(order_ids)))
    for table in reversed(db.metadata.sorted_tables):
        if "shop_id" in table.c and table.name != Shop.__tablename__:
            db.session.execute(sa.delete(table).where(table.c.shop_id == shop_id))
    db.session.execute(sa.delete(Shop).where(Shop.id == shop_id))  # ORM: syncs the session
    # Files hold shoppers' data too: model artifacts (their purchase histories) and
    # data-request exports. They go once the rows' delete commits: a rolled-back erasure
    # (a failed delivery, retried later) keeps a shop whose files must still be there.
    _remove_after_commit([base / shop_id for base in _shop_file_roots()], shop_id)
    _forget_cached_lists(shop_id)
    log.info("shop.erased", extra={"shop_id": shop_id})


def _shop_file_roots() -> tuple[Path, Path]:
    """The folders holding a ``<shop id>`` folder of files per shop: model artifacts and
    data-request exports."""
    from plugin.privacy_export import exports_root

    return Path(current_app.config["MODEL_DIR"]), exports_root()


def _remove_after_commit(directories: list[Path], shop_id: str) -> None:
    """Delete the shop's folders when the session commits; forget them if it rolls back.
    A process stopping between the two leaves them to ``sweep_erased_shop_files``."""
    for directory in directories:
        after_commit(partial(_remove_shop_dir, directory, shop_id))


#: A folder of no shop is left this long (seconds) before it is swept: a shop being
#: created writes nothing before it commits, but a clock or a slow commit may lag.
ORPHAN_DIR_GRACE = 3600


def sweep_erased_shop_files(*, now: float | None = None) -> int:
    """Delete the model and export folders of shops that no longer exist: an erasure's
    process stopped between its commit and the files' delete, or a fit still running for
    a shop erased meanwhile wrote its artifacts afterwards. Returns the folders deleted."""
    shops = set(db.session.scalars(sa.select(Shop.id)))
    cutoff, n = (time.time() if now is None else now) - ORPHAN_DIR_GRACE, 0
    for root in _shop_file_roots():
        for directory in root.iterdir() if root.is_dir() else ():
            if directory.name in shops or not _SHOP_ID.fullmatch(directory.name) \
                    or not directory.is_dir() or directory.is_symlink() \
                    or directory.stat().st_mtime > cutoff:
                continue
            _remove_shop_dir(directory, directory.name)
            n += 1
    if n:
        log.info("shop.files_swept", extra={"folders": n})
    return n


def _forget_cached_lists(shop_id: str) -> None:
    """Delete the Redis copies of the shop's cached lists: each outlived its table row by
    up to its TTL (an hour), personal lists of a shop that is gone."""
    from plugin import cache
    from plugin.api.sources import cache_key

    cache.delete_prefix(cache_key(shop_id, ""))


def _remove_shop_dir(directory: Path, shop_id: str) -> None:
    """Delete ``directory`` (``<base>/<shop id>``) when the id is a plain name in it."""
    if not _SHOP_ID.fullmatch(shop_id) or directory.name != shop_id:
        return
    if directory.is_dir() and not directory.is_symlink():
        shutil.rmtree(directory, ignore_errors=True)


def purge_uninstalled(now: datetime | None = None) -> list[str]:
    """Erase shops uninstalled longer ago than ``UNINSTALL_RETENTION_HOURS`` (an hourly
    job), then sweep the folders erased shops left behind (``sweep_erased_shop_files``).

    Shop by shop, each erasure its own transaction with a lease checkpoint before it: all
    in one, a lost lease or a crash on the last shop undid every erasure before it, and a
    shop whose erasure fails does not keep the others. Returns the shops erased.
    """
    from plugin.leadership import checkpoint, stop_if_lease_lost

    hours = current_app.config["UNINSTALL_RETENTION_HOURS"]
    cutoff = (now or utcnow()) - timedelta(hours=hours)
    ids = list(db.session.scalars(
        sa.select(Shop.id).where(Shop.status == "uninstalled", Shop.uninstalled_at <= cutoff)
        .order_by(Shop.id)))
    erased: list[str] = []
    failed: list[Exception] = []
    for shop_id in ids:
        checkpoint()  # the scheduler lease was lost: the new leader erases the rest
        try:
            erase_shop(shop_id)
            db.session.commit()
        except Exception as err:  # the next run tries it again
            stop_if_lease_lost(err)
            db.session.rollback()
            log.exception("shop.purge_failed", extra={"shop_id": shop_id})
            failed.append(err)
            continue
        erased.append(shop_id)
    sweep_erased_shop_files()
    if failed:  # the job is recorded as failed, with the first error
        raise failed[0]
    return erased


def audit(shop_id: str, action: str, **detail: object) -> None:
    """Append an audit entry (no PII: ids and setting names only)."""
    db.session.add(AuditLog(shop_id=shop_id, action=action, detail=detail))
