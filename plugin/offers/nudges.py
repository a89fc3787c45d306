"""Nudges: idle carts and wishlist holders -> a signed webhook for the merchant's messaging.

The POST uses the generic protocol v2 signature (``X-Shopkeeper-Timestamp`` and
``X-Shopkeeper-Signature: v2=<hmac>`` keyed with the shop's webhook secret), topic
``nudges/create`` and a unique delivery id. The topic is signed, so a nudge re-sent to
Shopkeeper cannot pass for one of the store's own deliveries. An idle cart also gets a
quote; when the policy makes an offer, the payload carries it and a link
``<cart_url>?sk_offer=<token>``. At most one *sent* nudge per shopper per
``nudge_period_days``; holdout shoppers get none (their idle cart is quoted, which stores
the control observation, and a ``holdout`` row keeps the same period), nor, when the
shop requires consent, customers who have not given it. Only known customers are nudged
(anonymous ids cannot be messaged). None is sent while the stored webhook URL or cart URL
is one the settings page refuses (``Guardrails.nudge_refused``, logged).
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import requests
import sqlalchemy as sa

from connectors.generic.webhooks import sign_payload
from plugin.api.consent import has_consent
from plugin.api.identity import ANON_ID, ShopperIdentity
from plugin.api.service import in_holdout
from plugin.extensions import db
from plugin.models import Cart, Interaction, Nudge, Offer, Order, Shop
from plugin.models.types import utcnow
from plugin.offers import service
from plugin.shops import credentials_for

log = logging.getLogger("shopkeeper.offers.nudges")

TOPIC = "nudges/create"
CART_MAX_AGE = timedelta(days=2)
WISHLIST_MAX_AGE = timedelta(days=30)
TIMEOUT_SECONDS = 10
#: status of the row that stands for a nudge not sent because the shopper is in the holdout
HOLDOUT = "holdout"


def due_targets(shop: Shop, now: datetime) -> list[dict[str, Any]]:
    """Idle carts first, then wishlist holders; one entry per customer."""
    rails = service.guardrails_for(shop)
    idle_before = now - timedelta(minutes=rails.idle_minutes)
    out: dict[str, dict[str, Any]] = {}
    for cart in db.session.scalars(sa.select(Cart).where(
            Cart.shop_id == shop.id, Cart.customer_external_id.is_not(None),
            Cart.source_updated_at <= idle_before,
            Cart.source_updated_at >= now - CART_MAX_AGE).order_by(Cart.source_updated_at)):
        if cart.lines and not _ordered_since(shop.id, cart.customer_external_id or "",
                                             cart.source_updated_at):
            out.setdefault(cart.customer_external_id or "", {"stage": "idle_cart", "cart": cart})
    wishes = db.session.execute(sa.select(Interaction.shopper_id,
                                          sa.func.max(Interaction.occurred_at)).where(
        Interaction.shop_id == shop.id, Interaction.kind == "wishlist",
        Interaction.occurred_at >= now - WISHLIST_MAX_AGE).group_by(Interaction.shopper_id))
    for shopper, last in wishes:
        if not ANON_ID.fullmatch(shopper) and not _ordered_since(shop.id, shopper, last):
            out.setdefault(shopper, {"stage": "wishlist_holder", "cart": None})
    return [{"shopper_id": k, **v} for k, v in out.items()]


def _ordered_since(shop_id: str, customer: str, since: datetime) -> bool:
    return db.session.scalar(sa.select(sa.func.count(Order.id)).where(
        Order.shop_id == shop_id, Order.customer_external_id == customer,
        Order.created_at >= since)) > 0


def _recently_nudged(shop_id: str, shopper: str, period: timedelta, now: datetime) -> bool:
    return db.session.scalar(sa.select(sa.func.count(Nudge.id)).where(
        Nudge.shop_id == shop_id, Nudge.shopper_id == shopper,
        Nudge.status.in_(("sent", HOLDOUT)),
        Nudge.created_at > now - period)) > 0


def run_nudges(shop: Shop, *, now: datetime | None = None,
               session: requests.Session | None = None) -> dict[str, int]:
    """Send the due nudges of one shop; returns counts by outcome."""
    now = now or utcnow()
    rails = service.guardrails_for(shop)
    counts = {"sent": 0, "failed": 0, "skipped": 0}
    if not (shop.settings or {}).get("offers_enabled"):
        return counts
    if rails.nudge_refused:  # an address or link the settings page refuses: never used
        log.warning("offers.nudges_refused", extra={"shop_id": shop.id,
                                                    "keys": list(rails.nudge_refused)})
        return counts
    if not rails.nudge_webhook_url:
        return counts
    secret = credentials_for(shop).webhook_secret or ""
    http = session or requests.Session()
    period = timedelta(days=rails.nudge_period_days)
    for target in due_targets(shop, now):
        shopper = target["shopper_id"]
        if not has_consent(shop, ShopperIdentity(customer_id=shopper)) \
                or _recently_nudged(shop.id, shopper, period, now):
            counts["skipped"] += 1
            continue
        if in_holdout(shop, shopper, "offers"):
            # No nudge, but the same observation a treated idle cart gives the uplift
            # report: its quote (a holdout row), once per period like a sent nudge.
            # Otherwise idle carts, nudged and quoted in treatment only, would enter the
            # treatment arm alone.
            _payload(shop, target, None, now)
            db.session.add(Nudge(shop_id=shop.id, shopper_id=shopper, stage=target["stage"],
                                 delivery_id="ndg_" + secrets.token_urlsafe(16),
                                 status=HOLDOUT, created_at=now))
            db.session.commit()
            counts["skipped"] += 1
            continue
        payload, offer_id = _payload(shop, target, rails.cart_url, now)
        body = json.dumps(payload, default=str, separators=(",", ":")).encode()
        nudge = Nudge(shop_id=shop.id, shopper_id=shopper, stage=target["stage"],
                      delivery_id="ndg_" + secrets.token_urlsafe(16), offer_id=offer_id,
                      created_at=now)
        headers = {**sign_payload(secret, body, topic=TOPIC, delivery_id=nudge.delivery_id),
                   "Content-Type": "application/json"}
        try:
            resp = http.post(rails.nudge_webhook_url, data=body, headers=headers,
                             timeout=TIMEOUT_SECONDS)
            nudge.response_code = resp.status_code
            nudge.status = "sent" if 200 <= resp.status_code < 300 else "failed"
        except requests.RequestException:
            nudge.status = "failed"
        counts[nudge.status] += 1
        db.session.add(nudge)
        db.session.commit()
    log.info("offers.nudges_run", extra={"shop_id": shop.id, **counts})
    return counts


def _payload(shop: Shop, target: dict[str, Any], cart_url: str | None,
             now: datetime) -> tuple[dict[str, Any], int | None]:
    cart: Cart | None = target["cart"]
    body: dict[str, Any] = {"version": 1, "type": "nudge", "shop_id": shop.id,
                            "shopper_id": target["shopper_id"], "stage": target["stage"],
                            "at": now.isoformat(), "cart": None, "offer": None,
                            "offer_link": None}
    if cart is None or not cart.currency:
        return body, None
    body["cart"] = {"id": cart.external_id, "currency": cart.currency, "lines": cart.lines}
    answer = service.quote(shop, target["shopper_id"], service.CartIn(
        currency=cart.currency, lines=[{**ln, "price": Decimal(str(ln["price"]))}
                                       for ln in cart.lines]),
        is_customer=True, now=now, cart_changed_at=cart.source_updated_at)
    offer = answer.get("offer")
    if offer is None:
        return body, None
    body["offer"] = {k: offer[k] for k in ("id", "kind", "reason", "amount", "currency",
                                           "expires_at", "token")}
    if cart_url:
        sep = "&" if "?" in cart_url else "?"
        body["offer_link"] = f"{cart_url}{sep}{urlencode({'sk_offer': offer['token']})}"
    row = db.session.scalar(sa.select(Offer.id).where(Offer.public_id == offer["id"]))
    return body, row
