"""Shopify install: OAuth authorization-code grant with a ``state`` nonce."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app

from connectors.base import header
from connectors.errors import (
    AuthFailed,
    ConnectorError,
    InvalidPayload,
    RateLimited,
    SignatureInvalid,
    TransientError,
)
from connectors.parsing import load_json_object
from connectors.shopify import SCOPES, ShopifyConnector
from connectors.shopify.install import (
    validate_shop_domain,
    verify_session_token,
    verify_signed_query,
)
from connectors.shopify.webhooks import TOPIC_HEADER, named_shop, verify_hmac
from plugin import shops
from plugin.errors import BadRequest, NotFound, ShopkeeperError, Unauthorized
from plugin.extensions import db
from plugin.ingestion.apply import delivery_connector
from plugin.install import shopify_webhooks
from plugin.install.records import upsert_installation
from plugin.localtime import adopt_platform_zone
from plugin.models import Shop
from plugin.webhooks.receive import receive_webhook, store_verified

__all__ = [
    "Launch",
    "UpstreamError",
    "app_admin_url",
    "begin_install",
    "callback_url",
    "finish_install",
    "is_launch",
    "missing_scopes",
    "needs_oauth",
    "receive_app_webhook",
    "verify_launch",
]

log = logging.getLogger("shopkeeper.install")

#: Compliance topics about one customer: applied to an uninstalled shop's kept data too.
CUSTOMER_PRIVACY_TOPICS = ("customers/redact", "customers/data_request")


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


@dataclass(frozen=True)
class Launch:
    """Shopify opening the app for a store: from the App Store's "Install", or its admin.

    ``shop`` is None when the store has not installed Shopkeeper (or uninstalled it): it
    must be asked for access first. ``via_token`` says a session token vouched for the
    merchant; a signed query only says which store, so it never signs anyone in.
    """

    domain: str
    shop: Shop | None
    embedded: bool
    via_token: bool


def is_launch(params: Mapping[str, str], token: str | None) -> bool:
    """Shopify sends the App URL a signed query, and embedded apps a session token."""
    return bool(token) or ("hmac" in params and "shop" in params)


def verify_launch(params: Mapping[str, str], token: str | None) -> Launch:
    """Check the session token, else the query's ``hmac``; 401 when neither is Shopify's."""
    cfg = current_app.config
    api_key, secret = cfg.get("SHOPIFY_API_KEY"), cfg.get("SHOPIFY_API_SECRET")
    if not api_key or not secret:
        raise Unauthorized("Shopify is not configured on this server.")
    try:
        if token:
            domain = urlsplit(str(verify_session_token(token, api_key, secret)["dest"])).hostname
        else:
            domain = verify_signed_query(params, secret)
    except (SignatureInvalid, InvalidPayload) as err:
        log.warning("install.shopify.launch_invalid", extra={"error": type(err).__name__})
        raise Unauthorized("This request did not come from Shopify; open Shopkeeper from "
                           "your store's admin.") from None
    shop = db.session.scalar(db.select(Shop).filter_by(platform="shopify", domain=domain))
    installed = shop if shop is not None and shop.status == "active" else None
    return Launch(str(domain), installed, params.get("embedded") == "1", bool(token))


def needs_oauth(shop: Shop) -> bool:
    """Whether the merchant's launch must go through OAuth again: Shopify refused the
    shop's credentials (a refresh token expired or was revoked) or a scope is missing."""
    if shop.installation is not None and shop.installation.auth_failed:
        return True
    return bool(missing_scopes(shop))


def missing_scopes(shop: Shop) -> list[str]:
    """Scopes this version needs that the shop's token was not granted (a release added one,
    e.g. ``read_inventory`` for stock webhooks). Shopify's ``write_x`` includes ``read_x``.

    Shops installed before such a release keep working but miss what the new scope feeds,
    until the merchant approves it: the next launch sends them through OAuth again.
    """
    try:
        granted_text = shops.credentials_for(shop).extra.get("scope")
    except NotFound:
        return []
    if granted_text is None:  # installed before scopes were recorded: nothing to compare
        return []
    granted = {s.strip() for s in str(granted_text).split(",") if s.strip()}
    granted |= {"read_" + s[len("write_"):] for s in granted if s.startswith("write_")}
    return [s for s in SCOPES if s not in granted]


def app_admin_url(domain: str) -> str:
    """The app inside the store's admin, where Shopify embeds it with a session token."""
    return f"https://{validate_shop_domain(domain)}/admin/apps/{current_app.config['SHOPIFY_API_KEY']}"


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
    except ConnectorError as err:  # unreachable, 5xx, rate limited: retry the install
        log.warning("install.shopify.exchange_failed", extra={"error": type(err).__name__})
        raise UpstreamError("Shopify could not be reached to finish the install; "
                            "try again.") from None
    shop, created = upsert_installation("shopify", credentials.shop_domain, credentials)
    adopt_platform_zone(shop, credentials.extra.get("timezone"))  # unless the merchant chose
    # the scopes may have changed: the reconcile job checks this shop's topics again
    shops.update_settings(shop.id, lambda settings: {
        k: v for k, v in settings.items() if k != shopify_webhooks.STATE})
    try:
        ShopifyConnector(credentials, session=connector.session).subscribe_webhooks(
            shopify_webhooks.webhook_uri(shop.id))
    except ConnectorError as err:
        db.session.rollback()
        log.warning("install.shopify.subscribe_failed", extra={"error": type(err).__name__})
        raise UpstreamError(_subscribe_failure(err)) from None
    db.session.commit()
    log.info("install.shopify.completed", extra={"shop_id": shop.id, "new_shop": created})
    return shop


def _subscribe_failure(err: ConnectorError) -> str:
    """What the merchant reads when subscribing failed: a refusal is not worth a retry,
    an outage or an answer that confirmed nothing (``TransientError``, ``RateLimited``)
    is, and must not read as Shopify saying no."""
    if isinstance(err, TransientError | RateLimited):
        return ("Shopify could not be reached or answered unexpectedly while subscribing "
                "to its webhooks; try again.")
    return "Shopify refused the webhook subscriptions."


def receive_app_webhook(headers: Mapping[str, str], raw_body: bytes) -> str:
    """App-wide Shopify webhooks (the compliance topics from ``shopify.app.toml``).

    Shopify sends them to one URL for every shop, so the shop is found by the
    ``X-Shopify-Shop-Domain`` header *after* the HMAC (app secret) checks out. A shop we no
    longer hold (``shop/redact`` arrives 48 h after uninstall) is acknowledged; if it
    still has rows they are erased now. A customer's redaction or data request for an
    uninstalled shop whose rows are still kept is stored and applied like an active one's.
    """
    secret = current_app.config.get("SHOPIFY_API_SECRET")
    if not secret:
        raise NotFound("The Shopify app is not configured on this server.")
    try:
        verify_hmac(secret, headers, raw_body)
    except SignatureInvalid:
        log.warning("webhook.signature_invalid", extra={"connector": "shopify"})
        raise Unauthorized("Webhook signature is missing or invalid.") from None
    domain = (header(headers, "X-Shopify-Shop-Domain") or "").strip().lower()
    topic = (header(headers, TOPIC_HEADER) or "").strip()
    try:
        named = named_shop(topic, load_json_object(raw_body))
    except InvalidPayload as err:
        raise BadRequest(err.message, err.errors) from None
    if named is not None and named != domain:  # the header is not signed; the body is
        log.warning("webhook.shopify.shop_mismatch", extra={"topic": topic})
        raise BadRequest("The delivery's body names another shop than its header.")
    shop = db.session.scalar(db.select(Shop).filter_by(platform="shopify", domain=domain))
    if shop is not None and shop.status == "active":
        return receive_webhook("shopify", shop.id, headers, raw_body)
    if shop is not None and topic in CUSTOMER_PRIVACY_TOPICS:
        # uninstalled but not yet erased: the customer's data is still held, and a
        # reinstall within the grace period would keep it; the worker applies the request
        # without the (revoked) token, as the app secret verified it
        return store_verified(shop, delivery_connector(shop), headers, raw_body)
    if shop is not None and topic == "shop/redact":
        shops.erase_shop(shop.id)
        db.session.commit()
    log.info("webhook.shopify.no_active_shop", extra={"topic": topic})
    return "accepted"
