"""Shopify install: OAuth authorization-code grant with a ``state`` nonce."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping

from flask import current_app

from connectors.errors import AuthFailed, ConnectorError, InvalidPayload, SignatureInvalid
from connectors.manifest import absolute_url, load_manifest
from connectors.shopify import ShopifyConnector
from connectors.shopify.install import validate_shop_domain
from plugin.errors import BadRequest, NotFound, ShopkeeperError, Unauthorized
from plugin.extensions import db
from plugin.install.records import upsert_installation
from plugin.models import Shop

__all__ = ["UpstreamError", "begin_install", "callback_url", "finish_install"]

log = logging.getLogger("shopkeeper.install")


class UpstreamError(ShopkeeperError):
    """The platform failed a step of the install (502)."""

    code = 502


def _connector() -> ShopifyConnector:
    api_key = current_app.config.get("SHOPIFY_API_KEY")
    secret = current_app.config.get("SHOPIFY_API_SECRET")
    if not api_key or not secret:
        raise NotFound("The Shopify app is not configured on this server.")
    return ShopifyConnector.for_app(api_key, secret)


def callback_url() -> str:
    """Where Shopify redirects after consent (must be whitelisted in the app settings)."""
    return current_app.config["PUBLIC_URL"].rstrip("/") + "/install/shopify/callback"


def begin_install(shop_domain: str | None) -> tuple[str, str, str]:
    """Validate the shop and return (authorize URL, state nonce, shop) to redirect with."""
    connector = _connector()
    try:
        shop = validate_shop_domain(shop_domain)
    except InvalidPayload as err:
        raise BadRequest(err.message, err.errors) from None
    state = secrets.token_urlsafe(24)
    return connector.install_url(shop, state, callback_url()), state, shop


def finish_install(params: Mapping[str, str], expected_state: str | None) -> Shop:
    """Verify the callback, exchange the code, store the shop's credentials."""
    connector = _connector()
    if not expected_state:
        raise Unauthorized("The install session expired; start the install again.")
    try:
        credentials = connector.complete_install(params, expected_state=expected_state)
    except InvalidPayload as err:
        raise BadRequest(err.message, err.errors) from None
    except SignatureInvalid:
        log.warning("install.shopify.callback_invalid")
        raise Unauthorized("The install callback could not be verified.") from None
    except AuthFailed:
        raise Unauthorized("Shopify refused the authorization code.") from None
    shop, created = upsert_installation("shopify", credentials.shop_domain, credentials)
    uri = absolute_url(current_app.config["PUBLIC_URL"], load_manifest()["urls"]["webhooks"],
                       connector="shopify", shop_id=shop.id)
    try:
        ShopifyConnector(credentials, session=connector.session).subscribe_webhooks(uri)
    except ConnectorError as err:
        db.session.rollback()
        log.warning("install.shopify.subscribe_failed", extra={"error": type(err).__name__})
        raise UpstreamError("Shopify refused the webhook subscriptions.") from None
    db.session.commit()
    log.info("install.shopify.completed", extra={"shop_id": shop.id, "new_shop": created})
    return shop
