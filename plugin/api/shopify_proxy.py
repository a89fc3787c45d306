"""Shopify's app proxy: which shop and which signed-in customer a proxied request is for.

A theme storefront calls ``https://<shop>/apps/shopkeeper/<path>``; Shopify forwards it to
``PROXY_URL/<path>`` and appends ``shop``, ``logged_in_customer_id`` (empty when nobody is
signed in), ``path_prefix``, ``timestamp`` and a ``signature`` made with the app's client
secret over every query parameter (``connectors.shopify.install.verify_app_proxy``). So the
shop and the customer come from Shopify, not from the page: no widget key decides the shop
and no customer token is needed. Everything else about the answer is the shopper API's.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from urllib.parse import parse_qsl

import sqlalchemy as sa

from connectors.errors import SignatureInvalid
from connectors.shopify.install import verify_app_proxy
from plugin.api.access import ApiShop, cached_shop_for_key
from plugin.api.identity import ANON_ID, ShopperIdentity
from plugin.errors import NotFound, Unauthorized
from plugin.extensions import db
from plugin.models import Shop

log = logging.getLogger("shopkeeper.api.app_proxy")

#: where Shopify forwards the app proxy (``app_proxy_url`` in manifest.yaml; the storefront
#: side is ``app_proxy``, ``/apps/shopkeeper``)
PROXY_URL = "/proxy/shopify"
#: what Shopify appends: each must appear once. Signed values of a repeated parameter are
#: joined with ``,`` before signing, so a page adding ``logged_in_customer_id=7`` next to
#: Shopify's own (empty) one would still carry a valid signature over ``7,``.
SHOPIFY_PARAMS = ("shop", "logged_in_customer_id", "path_prefix", "timestamp", "signature")
#: Shopify customer ids are numbers; orders map them the same way (``legacy_id``)
CUSTOMER_ID = re.compile(r"[0-9]{1,20}\Z")


def verified_params(query_string: str, secret: str | None, *,
                    now: float | None = None) -> dict[str, str]:
    """The proxied query once its signature and timestamp check out (401 otherwise)."""
    if not secret:
        raise NotFound("The Shopify app is not configured on this server.")
    try:
        params = verify_app_proxy(query_string, secret, now=now)
    except SignatureInvalid as err:
        log.warning("api.app_proxy_refused", extra={"reason": str(err)})
        raise Unauthorized("This request did not come through the shop's Shopify app proxy, "
                           "or too long ago.") from None
    counts = Counter(k for k, _ in parse_qsl(query_string, keep_blank_values=True))
    repeated = sorted(k for k in SHOPIFY_PARAMS if counts[k] > 1)
    if repeated:
        log.warning("api.app_proxy_repeated_params", extra={"params": repeated})
        raise Unauthorized("The app proxy request names its shop or customer more than once.",
                           {k: ["Given more than once."] for k in repeated})
    return params


def proxy_shop(params: dict[str, str], *, cached: bool = True) -> ApiShop | Shop:
    """The active Shopify shop the signed ``shop`` names; anything else is 404.

    ``cached``: the shopper API's per-process snapshot (``ApiShop``); offers and
    sub-profiles read the row itself, as on the API (``access.open_gate(cached=False)``).
    """
    domain = (params.get("shop") or "").strip().lower()
    where = (Shop.platform == "shopify", Shop.domain == domain)
    if not cached:
        shop = db.session.scalar(sa.select(Shop).where(*where)) if domain else None
        if shop is None or shop.status != "active":
            raise NotFound("Unknown shop.")
        return shop
    found = db.session.execute(sa.select(Shop.widget_key, Shop.status).where(*where)
                               ).first() if domain else None
    if found is None or found.status != "active":
        raise NotFound("Unknown shop.")
    return cached_shop_for_key(found.widget_key)  # the shopper API's snapshot of the shop


def proxy_identity(params: dict[str, str], anonymous: str | None) -> ShopperIdentity:
    """Shopify's signed-in customer (the id its orders carry), and the browser's anonymous
    id as the API takes it; an empty ``logged_in_customer_id`` is an anonymous shopper."""
    customer = params.get("logged_in_customer_id") or ""
    if customer and not CUSTOMER_ID.fullmatch(customer):
        raise Unauthorized("The app proxy request names no readable customer.",
                           {"logged_in_customer_id": ["Not a Shopify customer id."]})
    anonymous = (anonymous or "").strip()
    return ShopperIdentity(anonymous_id=anonymous if ANON_ID.fullmatch(anonymous) else None,
                           customer_id=customer or None)
