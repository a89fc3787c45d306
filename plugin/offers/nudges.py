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

The webhook URL is the merchant's, and the worker posts to it from inside our network: a
run sends only when its host resolves, now, to public addresses alone (no loopback,
private range or cloud metadata service; ``NUDGE_PRIVATE_HOSTS`` lists exceptions), and
connects to those addresses (no second lookup a rebinding DNS could answer differently),
checking the connected peer again and following no redirect; else it sends none (logged
``offers.nudge_host_refused``). It connects directly: ``HTTPS_PROXY``/``HTTP_PROXY`` are
not used for it (a proxy resolves the name itself), except for ``NUDGE_PRIVATE_HOSTS``,
which the operator lets through as the environment says.
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
from flask import current_app

from connectors.errors import ConnectorError, TransientError
from connectors.generic.webhooks import sign_payload
from connectors.guarded_http import GuardedSession, ResolutionTimedOut
from connectors.http import CONNECTION_FAILURES, RetrySession, failure_reason
from plugin.api.consent import has_consent
from plugin.api.identity import ANON_ID, ShopperIdentity
from plugin.api.service import in_holdout
from plugin.extensions import db
from plugin.models import Cart, Interaction, Nudge, Offer, Order, Shop
from plugin.models.types import utcnow
from plugin.offers import service
from plugin.offers.settings import Guardrails
from plugin.shops import credentials_for
from plugin.urls import public_addresses, url_host

log = logging.getLogger("shopkeeper.offers.nudges")

TOPIC = "nudges/create"
CART_MAX_AGE = timedelta(days=2)
WISHLIST_MAX_AGE = timedelta(days=30)
TIMEOUT_SECONDS = 10
#: Seconds the webhook's host may take to resolve; slower, the run sends nothing.
DNS_TIMEOUT_SECONDS = 5
#: The most of the receiver's answer we read (only its status is kept).
MAX_ANSWER_BYTES = 64 * 1024
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


class _OneTry(RetrySession):
    """Each status answered as is (the nudge keeps the receiver's code) and no retry: a
    failed nudge is sent again by a later run."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        try:
            return self._attempt(request, kwargs)
        except CONNECTION_FAILURES as exc:
            raise TransientError(failure_reason(exc)) from None


class _WebhookSession(GuardedSession, _OneTry):
    """A ``GuardedSession`` (deadline, no redirect, bounded answer, addresses checked)
    whose tries are ``_OneTry``'s."""


def private_hosts() -> set[str]:
    """``NUDGE_PRIVATE_HOSTS``: webhook hosts the operator lets reach non-public addresses."""
    return {h.strip().lower().rstrip(".") for h in
            current_app.config.get("NUDGE_PRIVATE_HOSTS", "").split(",") if h.strip()}


def webhook_session(shop: Shop, url: str) -> requests.Session | None:
    """A session that posts to ``url`` at the public addresses its host has now, or None
    (logged) when it has none, a private one among them, or did not resolve in time."""
    host, port = url_host(url)
    name = host.rstrip(".")
    session_for = {"deadline": TIMEOUT_SECONDS, "max_body": MAX_ANSWER_BYTES, "retries": 0,
                   "timeout": (min(5, TIMEOUT_SECONDS), TIMEOUT_SECONDS)}
    if name in private_hosts():
        return _WebhookSession(**session_for)
    try:
        addresses = public_addresses(host, port, timeout=DNS_TIMEOUT_SECONDS, literals=True)
        why = "not all its addresses are public (or it did not resolve)"
    except ResolutionTimedOut:
        addresses, why = [], f"it did not resolve within {DNS_TIMEOUT_SECONDS} s"
    if not addresses:
        log.warning("offers.nudge_host_refused", extra={"shop_id": shop.id, "host": name,
                                                        "reason": why})
        return None
    session = _WebhookSession(public_only=True, pinned={name: addresses}, **session_for)
    # Straight to the checked addresses, whatever the environment says: through the proxy
    # HTTP(S)_PROXY names, the proxy would resolve the name again and reach whatever it
    # answers (our network included), unchecked and unpinned. Nor is ~/.netrc read (no
    # credentials of ours for the merchant's host) or REQUESTS_CA_BUNDLE (public hosts:
    # the default CAs).
    session.trust_env = False
    return session


def run_nudges(shop: Shop, *, now: datetime | None = None) -> dict[str, int]:
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
    targets = due_targets(shop, now)
    if targets:  # the host is checked when there is something to send
        http = webhook_session(shop, rails.nudge_webhook_url)
        if http is None:  # refused now: no nudge, no quote, no holdout row this run
            return counts
        with http:
            _send(shop, rails, targets, http, now, counts)
    log.info("offers.nudges_run", extra={"shop_id": shop.id, **counts})
    return counts


def _send(shop: Shop, rails: Guardrails, targets: list[dict[str, Any]],
          http: requests.Session, now: datetime, counts: dict[str, int]) -> None:
    """Nudge each target through ``http``, counting the outcomes in ``counts``."""
    secret = credentials_for(shop).webhook_secret or ""
    period = timedelta(days=rails.nudge_period_days)
    for target in targets:
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
            resp = http.post(rails.nudge_webhook_url, data=body, headers=headers)
            nudge.response_code = resp.status_code
            nudge.status = "sent" if 200 <= resp.status_code < 300 else "failed"
        except (requests.RequestException, ConnectorError) as err:
            log.warning("offers.nudge_failed", extra={"shop_id": shop.id,
                                                      "error": type(err).__name__})
            nudge.status = "failed"
        counts[nudge.status] += 1
        db.session.add(nudge)
        db.session.commit()


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
