"""Saleor install: serve the app manifest, accept the app token at ``/api/register``."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from flask import current_app

from connectors.base import Credentials
from connectors.errors import (
    AuthFailed,
    ConnectorError,
    InvalidPayload,
    RateLimited,
    TransientError,
)
from connectors.guarded_http import ResolutionTimedOut, make_guarded_session
from connectors.manifest import absolute_url, load_manifest
from connectors.saleor import SaleorConnector, app_webhook_names
from connectors.saleor.app_manifest import render_app_manifest, webhook_definitions
from connectors.saleor.channels import Channel, choose_channel, parse_channels
from connectors.saleor.client import SchemaLacksField
from plugin import shops
from plugin.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)
from plugin.extensions import db
from plugin.install.records import upsert_installation
from plugin.models import Shop
from plugin.urls import public_addresses

__all__ = ["app_manifest", "register_app"]

log = logging.getLogger("shopkeeper.install")

#: The audit action of a refresh that found our webhooks deactivated (see ``plugin.metrics``).
REACTIVATED = "install.webhooks_reactivated"


def app_manifest(shop_id: str | None) -> dict[str, Any]:
    """The manifest Saleor fetches; with ``shop_id`` it also lists our webhooks."""
    if shop_id is not None:
        shop = shops.get_shop(shop_id)
        if shop.platform != "saleor":
            raise NotFound("Unknown shop.")
    return render_app_manifest(load_manifest(), current_app.config["PUBLIC_URL"],
                               shop_id=shop_id)


#: Saleor waits 25 s for ``/api/register``; every call we make for it shares this budget.
REGISTER_DEADLINE = 15.0
REGISTER_HTTP = {"retries": 1, "timeout": (3.0, 10.0), "deadline": REGISTER_DEADLINE,
                 "budget": REGISTER_DEADLINE, "max_body": 1_000_000}
#: One answer for every way the check can fail before Saleor has vouched for the token
#: (unreachable, refused, redirected, not JSON, not an app...): telling them apart would make
#: this unauthenticated endpoint a probe of whatever the URL points at.
NOT_CONFIRMED = "The Saleor API at Saleor-Api-Url did not confirm this app token."


def _allowed_host(api_url: str | None) -> tuple[str, str, bool, list[str]]:
    """(api_url, host, listed, addresses) if the calling Saleor may install; https unless
    listed.

    With an empty allow-list any *public* host may install: IP literals and names that
    resolve to private, loopback, link-local, reserved or multicast addresses are refused
    (and the connection itself is checked again, see ``connectors.guarded_http``).
    ``addresses`` are what the pre-check resolved (none for a listed host): the calls
    for this registration connect to them rather than resolve the name again.
    """
    parts = urlsplit(api_url or "")
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # not a port number
        host, port = "", 0
    if not host or parts.scheme not in ("https", "http"):
        raise BadRequest("Missing or invalid Saleor-Api-Url header.",
                         {"Saleor-Api-Url": ["an absolute https URL is required"]})
    allowed = shops.saleor_allowed_hosts()
    if allowed and host not in allowed:
        log.warning("install.saleor.domain_refused", extra={"host": host})
        raise Forbidden("This Saleor instance may not install the app.")
    if parts.scheme != "https" and host not in allowed:
        raise BadRequest("Saleor-Api-Url must use https.", {"Saleor-Api-Url": ["https only"]})
    addresses = [] if allowed else _public_host(host, port)
    if not allowed and not addresses:
        log.warning("install.saleor.address_refused", extra={"host": host})
        raise BadRequest("Saleor-Api-Url must name a public host.",
                         {"Saleor-Api-Url": ["a host name with public addresses is required "
                                             "(or list the host in SALEOR_ALLOWED_DOMAINS)"]})
    return api_url or "", host, bool(allowed), addresses


def _public_host(host: str, port: int) -> list[str]:
    """The public-address rule (``plugin.urls.public_addresses``: no IP literals) bounded
    by ``SALEOR_REGISTER_DNS_TIMEOUT_SECONDS``: a name whose resolver answers slowly
    (anyone can make one) must not hold a web worker."""
    timeout = float(current_app.config["SALEOR_REGISTER_DNS_TIMEOUT_SECONDS"])
    try:
        return public_addresses(host, port, timeout=timeout)
    except ResolutionTimedOut:
        log.warning("install.saleor.dns_timeout", extra={"host": host})
        raise ServiceUnavailable(
            f"The Saleor-Api-Url host did not resolve within {timeout:g} s; retry later.",
            {"Saleor-Api-Url": ["the host name did not resolve in time"]}) from None


def _same_api(stored: str | None, given: str) -> bool:
    """Both URLs name the same Saleor API (scheme, host, port, path; trailing '/' aside)."""
    if not stored:
        return True

    def key(url: str) -> tuple[str, str, int | None, str]:
        parts = urlsplit(url)
        default = 443 if parts.scheme == "https" else 80
        return (parts.scheme, (parts.hostname or "").lower(), parts.port or default,
                parts.path.rstrip("/"))

    try:
        return key(stored) == key(given)
    except ValueError:
        return False


def _webhooks_failure(err: ConnectorError) -> str:
    """What the merchant reads when creating our webhooks failed other than by Saleor's
    refusal: an outage or an answer that confirmed nothing is worth another try now."""
    if isinstance(err, TransientError | RateLimited):
        return ("Could not create our webhooks on Saleor: it could not be reached or "
                "answered unexpectedly; try the install again.")
    return "Could not create our webhooks on Saleor; install again."


def _confirmed_app(connector: SaleorConnector) -> tuple[dict[str, Any], list[Channel]]:
    """Our app's record from Saleor for the connector's token, or refuse the registration."""
    manifest = load_manifest()
    expected = manifest["app"]["id"]
    try:
        data = connector.app_info()
    except SchemaLacksField as err:
        if ("App", "identifier") in err.fields:  # "Canonical app ID", added in Saleor 3.19
            required = manifest["platforms"]["saleor"]["required_saleor_version"]
            raise BadRequest(
                f"This Saleor is too old for Shopkeeper (it needs Saleor {required}): its "
                "API cannot tell which app a token belongs to (App.identifier).",
                {"Saleor-Api-Url": [f"Saleor {required} required"]}) from None
        log.warning("install.saleor.not_confirmed", extra={"reason": str(err)})
        raise Unauthorized(NOT_CONFIRMED) from None
    except ConnectorError as err:
        log.warning("install.saleor.not_confirmed",
                    extra={"reason": f"{type(err).__name__}: {err}"})
        raise Unauthorized(NOT_CONFIRMED) from None
    app = data.get("app") if isinstance(data, dict) else None
    if not isinstance(app, dict) or not isinstance(app.get("id"), str) or not app["id"]:
        log.warning("install.saleor.not_confirmed", extra={"reason": "no app in the answer"})
        raise Unauthorized(NOT_CONFIRMED)
    if app.get("identifier") != expected:
        log.warning("install.saleor.other_app", extra={"app_id": str(app["id"])[:64]})
        raise Forbidden("This token belongs to another Saleor app, not Shopkeeper.",
                        {"auth_token": [f"the token's app must be {expected!r}"]})
    return app, parse_channels(data.get("channels"))


def _stored_channel(host: str) -> str | None:
    """The channel slug a shop on this host uses already (chosen by the merchant, which
    outlives an uninstall, or taken at an earlier install): a reinstall keeps it while
    Saleor still has it."""
    shop = db.session.scalar(sa.select(Shop).filter_by(platform="saleor", domain=host))
    if shop is None:
        return None
    if (shop.settings or {}).get("saleor_channel"):
        return str(shop.settings["saleor_channel"])
    try:
        return shops.credentials_for(shop).extra.get("channel") or None
    except NotFound:
        return None


def _still_installed(shop: Shop, session: requests.Session) -> bool:
    """False only when Saleor refuses the stored token: that install was removed.

    Lets a reinstall through when Saleor's APP_DELETED webhook never reached us.
    """
    stored = shops.credentials_for(shop)
    try:
        return SaleorConnector(stored, session=session).token_app_id() is not None
    except AuthFailed:
        return False
    except ConnectorError:
        return True  # unreachable or odd: keep the installation we know


def _guard_active_installation(host: str, api_url: str, app_id: str,
                               session: requests.Session) -> None:
    """An active install of this Saleor may only be refreshed by the same app install.

    Another app id (a second install of the app, or anyone else's) or another API URL on
    the same host gets a 409, unless the stored token is dead.
    """
    shop = db.session.scalar(sa.select(Shop).filter_by(platform="saleor", domain=host))
    if shop is None or shop.status != "active":
        return  # first install, or a reinstall after an uninstall
    try:
        stored = shops.credentials_for(shop)
    except NotFound:
        return
    stored_app = stored.extra.get("app_id")
    if not stored_app:
        return  # created with `shopkeeper shops add`, registering for the first time
    if stored_app == app_id and _same_api(stored.api_url, api_url):
        return
    if not _still_installed(shop, session):
        log.info("install.saleor.replacing_dead_install", extra={"shop_id": shop.id})
        return
    log.warning("install.saleor.already_installed",
                extra={"shop_id": shop.id, "app_id": str(app_id)[:64]})
    raise Conflict(
        "Shopkeeper is already installed on this Saleor instance by another app install. "
        "Remove that installation in the Saleor Dashboard (Apps) before installing again.",
        {"auth_token": ["another app install is registered for this Saleor instance"]})


def our_webhooks(shop_id: str) -> list[dict[str, Any]]:
    """The webhooks this version of Shopkeeper wants on a Saleor shop (manifest order)."""
    manifest = load_manifest()
    return webhook_definitions(manifest, absolute_url(
        current_app.config["PUBLIC_URL"], manifest["urls"]["webhooks"],
        connector="saleor", shop_id=shop_id))


def refresh_webhooks(shop: Shop, *, session: requests.Session | None = None
                     ) -> dict[str, list[str]]:
    """Create or update the shop's webhooks on Saleor to match this version (a daily job):
    Saleor keeps the queries registered at install, so an upgrade reaches installed shops
    only this way, and a webhook deleted or deactivated in the Dashboard comes back."""
    connector = shops.connector_for(shop, session=session)
    assert isinstance(connector, SaleorConnector)
    done = connector.refresh_webhooks(our_webhooks(shop.id))
    if done["created"] or done["updated"]:
        shops.audit(shop.id, "install.webhooks_refreshed", **done)
        if done["reactivated"]:
            _report_reactivated(shop.id, done["reactivated"])
        db.session.commit()
        log.info("install.saleor.webhooks_refreshed", extra={
            "shop_id": shop.id, "webhooks_created": done["created"],
            "webhooks_updated": done["updated"]})
    return done


def _report_reactivated(shop_id: str, names: list[str]) -> None:
    """A deactivated webhook means events were lost until now: a warning, and an audit
    entry that ``/metrics`` counts (``shopkeeper_saleor_webhooks_reactivated_24h``), so
    an operator sees it (and resyncs) rather than finds the gap in the data later."""
    shops.audit(shop_id, REACTIVATED, webhooks=names)
    log.warning("install.saleor.webhooks_reactivated",
                extra={"shop_id": shop_id, "webhooks": names})


def _existing_webhooks(app: dict[str, Any]) -> set[str]:
    """The names of the webhooks Saleor lists for the app. A listing of another shape
    says nothing (read as none, each webhook was made twice): the install is refused
    with the answer that asks for another try, before anything is stored."""
    try:
        return app_webhook_names(app)
    except TransientError as err:
        log.warning("install.saleor.webhooks_unlisted", extra={"reason": str(err)})
        raise BadRequest(_webhooks_failure(err)) from None


def register_app(api_url: str | None, auth_token: str | None) -> Shop:
    """Check the domain and the token (by calling Saleor back), then store the install."""
    api_url, host, listed, addresses = _allowed_host(api_url)
    if not auth_token:
        raise BadRequest("auth_token is required.", {"auth_token": ["required"]})
    # the pre-checked addresses: the connection must not resolve the name again, with no
    # time limit (and, for a name whose answers change, to other addresses)
    session = make_guarded_session(public_only=not listed, pinned={host: addresses},
                                   **REGISTER_HTTP)
    credentials = Credentials(shop_domain=host, access_token=auth_token, api_url=api_url)
    app, channels = _confirmed_app(SaleorConnector(credentials, session=session))
    _guard_active_installation(host, api_url, app["id"], session)
    channel = choose_channel(channels, _stored_channel(host))
    if channel is not None:
        credentials.extra.update(channel=channel.slug, channel_id=channel.id)
    credentials.extra["app_id"] = app["id"]
    credentials.extra["public_only"] = not listed  # later calls check each peer too
    existing = _existing_webhooks(app)
    shop, created = upsert_installation("saleor", host, credentials)
    wanted = our_webhooks(shop.id)
    missing = [d for d in wanted if d["name"] not in existing]
    if missing:
        try:
            SaleorConnector(credentials, session=session).subscribe_webhooks(missing)
        except InvalidPayload as err:
            db.session.rollback()
            raise BadRequest("Saleor refused our webhooks.", err.errors) from None
        except ConnectorError as err:
            db.session.rollback()
            log.warning("install.saleor.webhooks_failed",
                        extra={"reason": f"{type(err).__name__}: {err}"})
            raise BadRequest(_webhooks_failure(err)) from None
    db.session.commit()
    log.info("install.saleor.registered",
             extra={"shop_id": shop.id, "new_shop": created, "webhooks": len(missing)})
    return shop
