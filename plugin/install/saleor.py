"""Saleor install: serve the app manifest, accept the app token at ``/api/register``."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import current_app

from connectors.base import Credentials
from connectors.errors import AuthFailed, ConnectorError, InvalidPayload
from connectors.manifest import absolute_url, load_manifest
from connectors.saleor import SaleorConnector
from connectors.saleor.app_manifest import render_app_manifest, webhook_definitions
from plugin import shops
from plugin.errors import BadRequest, Forbidden, NotFound, Unauthorized
from plugin.extensions import db
from plugin.install.records import upsert_installation
from plugin.models import Shop

__all__ = ["app_manifest", "register_app"]

log = logging.getLogger("shopkeeper.install")


def app_manifest(shop_id: str | None) -> dict[str, Any]:
    """The manifest Saleor fetches; with ``shop_id`` it also lists our webhooks."""
    if shop_id is not None:
        shop = shops.get_shop(shop_id)
        if shop.platform != "saleor":
            raise NotFound("Unknown shop.")
    return render_app_manifest(load_manifest(), current_app.config["PUBLIC_URL"],
                               shop_id=shop_id)


def _allowed_host(api_url: str | None) -> tuple[str, str]:
    """(api_url, host) if the calling Saleor is on the allow-list; https unless listed."""
    parts = urlsplit(api_url or "")
    host = (parts.hostname or "").lower()
    if not host or parts.scheme not in ("https", "http"):
        raise BadRequest("Missing or invalid Saleor-Api-Url header.",
                         {"Saleor-Api-Url": ["an absolute https URL is required"]})
    allowed = {d.strip().lower() for d in
               current_app.config.get("SALEOR_ALLOWED_DOMAINS", "").split(",") if d.strip()}
    if allowed and host not in allowed:
        log.warning("install.saleor.domain_refused", extra={"host": host})
        raise Forbidden("This Saleor instance may not install the app.")
    if parts.scheme != "https" and host not in allowed:
        raise BadRequest("Saleor-Api-Url must use https.", {"Saleor-Api-Url": ["https only"]})
    return api_url or "", host


def register_app(api_url: str | None, auth_token: str | None) -> Shop:
    """Check the domain and the token (by calling Saleor back), then store the install."""
    api_url, host = _allowed_host(api_url)
    if not auth_token:
        raise BadRequest("auth_token is required.", {"auth_token": ["required"]})
    credentials = Credentials(shop_domain=host, access_token=auth_token, api_url=api_url)
    connector = SaleorConnector(credentials)
    try:
        data = connector.app_info()
    except AuthFailed:
        raise Unauthorized("Saleor rejected the app token.") from None
    except ConnectorError:
        raise BadRequest("Could not reach the Saleor API with this token.") from None
    app = data.get("app") or {}
    if not app.get("id"):
        raise Unauthorized("The token is not an app token.")
    channels = data.get("channels") or []
    if channels:
        credentials.extra.update(channel=channels[0]["slug"], channel_id=channels[0]["id"])
    credentials.extra["app_id"] = app["id"]
    shop, created = upsert_installation("saleor", host, credentials)
    existing = {w.get("name") for w in app.get("webhooks") or ()}
    wanted = webhook_definitions(
        load_manifest(),
        absolute_url(current_app.config["PUBLIC_URL"], load_manifest()["urls"]["webhooks"],
                     connector="saleor", shop_id=shop.id),
    )
    missing = [d for d in wanted if d["name"] not in existing]
    if missing:
        try:
            SaleorConnector(credentials).subscribe_webhooks(missing)
        except InvalidPayload as err:
            db.session.rollback()
            raise BadRequest("Saleor refused our webhooks.", err.errors) from None
    db.session.commit()
    log.info("install.saleor.registered",
             extra={"shop_id": shop.id, "new_shop": created, "webhooks": len(missing)})
    return shop
