"""Quote -> sign -> accept -> a real single-use discount through the shop's connector.

Quotes are stored (also the holdout and "no offer" answers, the control observations) and
are idempotent per shopper and cart. Accepting checks the signed token, claims the offer
row and reserves its budget in one locked transaction (so a replay finds it used, and
concurrent accepts cannot pass the budget or the shopper's caps together: ``reservation``),
and only then asks the platform for a discount with the offer's own unique code, usage
limit 1 and an expiry. An accepted offer asked for again by its shopper, with its token
and cart, gets the same answer: accepting is idempotent, as a retry after a lost answer
needs. The platform enforces the price, so a forged or altered token
changes nothing.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NoReturn

import requests
import sqlalchemy as sa

import connectors
from connectors.base import Connector
from connectors.errors import (
    ConnectorError,
    InvalidPayload,
    NotSupported,
    PermissionDenied,
    ShopUnavailable,
)
from connectors.guarded_http import make_guarded_session
from connectors.records import DiscountSpec
from plugin import shop_unavailable
from plugin.api.service import in_holdout
from plugin.currency import catalogue_currency
from plugin.errors import Conflict, Forbidden, ShopkeeperError
from plugin.extensions import db
from plugin.models import Offer, Shop
from plugin.models.types import utcnow
from plugin.offers import availability, budget, funnel, keys, permissions, platform, reservation
from plugin.offers.candidates import CENT, Line
from plugin.offers.catalog import categories_of, complements_for
from plugin.offers.learning import model_for
from plugin.offers.policy import ConversionModel, Situation, choose
from plugin.offers.pricing import catalogue_currencies, priced_in_other_currency, trusted_cart
from plugin.offers.settings import Guardrails, guardrails_from
from plugin.offers.tokens import OfferClaims, OfferTokenInvalid, cart_hash, sign_offer, verify_offer
from plugin.shops import connector_for

log = logging.getLogger("shopkeeper.offers")

#: After accepting, the shopper has this long beyond the countdown to finish checkout.
CHECKOUT_GRACE = timedelta(minutes=30)
#: How the platform is asked while a shopper waits on an accept, holding one of the web
#: server's few threads (gunicorn gives a request 30 s): two tries, short reads, 12 s a call
#: and 20 s for the whole create. The sync's session took six tries, 30 s reads and a
#: Retry-After of up to a minute: minutes per accept in a platform outage.
ACCEPT_HTTP: dict[str, Any] = {"retries": 1, "backoff": 0.5, "timeout": (3.0, 8.0),
                               "deadline": 12.0, "budget": 20.0, "max_body": 1_000_000}
LIVE = ("offered",)
#: Most products a fixed-amount code can be limited to, exactly, per platform (others: any).
#: Saleor takes a product voucher once per order off one unit; Vendure has no product-scoped
#: fixed amounts.
SCOPE_LIMITS = {"saleor": 1, "vendure": 0}
USED = ("accepting", "accepted", "redeemed")
#: A connector's refusal of the discount itself (invalid there, a currency its channel does
#: not sell, a capability it lacks): not worth a retry, unlike a timeout or an outage.
REFUSED = (InvalidPayload, NotSupported)
#: Why an accept was refused after the offer was quoted (``reservation.claim``).
REFUSALS = {
    "budget": "The offer budget is used up; the offer was withdrawn.",
    "no_stacking": "You already have a discount from an offer; this one was withdrawn.",
    "frequency_cap": "You had a discount from an offer recently; this one was withdrawn.",
}


#: Why an accept is refused while the platform refuses discounts (``permissions``).
PAUSED = "Offers are paused in this shop; this one was withdrawn."
#: Why no offer is made while a stored guardrail is one the settings page refuses
#: (``Guardrails.refused``): applying it could break a limit, guessing another could too.
SETTINGS_REFUSED = "settings_refused"


class DiscountUnavailable(ShopkeeperError):
    """The platform could not create the discount; the offer stays open for a retry."""

    code = 502


@dataclass(frozen=True)
class CartIn:
    """The cart as the storefront reports it (validated by the API schema)."""

    currency: str
    lines: list[dict[str, Any]]
    discount_codes: list[str] = field(default_factory=list)

    @property
    def hash(self) -> str:
        return cart_hash(self.currency, self.lines)

    @property
    def subtotal(self) -> Decimal:
        return sum((Decimal(str(ln["price"])) * int(ln["quantity"]) for ln in self.lines),
                   Decimal(0))


def guardrails_for(shop: Shop) -> Guardrails:
    """The shop's guardrails as serving applies them: a currency's figures the settings
    page would refuse are left out (no offers in it), not a failure of every offer, and
    figures under the shop's own currency never replace its own."""
    offers = (shop.settings or {}).get("offers")
    # the shop's currency is a group-by over its catalogue: only asked when there are
    # other currencies' figures to check against it (most shops have none)
    others = isinstance(offers, dict) and offers.get("currency_guardrails")
    return guardrails_from(offers, drop_refused=True,
                           own_currency=catalogue_currency(shop.id) if others else None)


def quote(shop: Shop, shopper_id: str, cart: CartIn, *, is_customer: bool = False,
          now: datetime | None = None, model: ConversionModel | None = None,
          cart_changed_at: datetime | None = None) -> dict[str, Any]:
    """Answer ``POST /offers/quote``: the offer (with its token) or none, and why."""
    now = now or utcnow()
    rails = guardrails_for(shop)
    progress = _free_shipping_progress(shop.id, rails, cart)
    if not (shop.settings or {}).get("offers_enabled"):
        return _answer(None, "disabled", progress)
    if permissions.blocked(shop) is not None:  # every accept would fail: promise nothing
        return _answer(None, permissions.REASON, progress)
    if shop_unavailable.state(shop) is not None:  # frozen or locked: promise nothing
        return _answer(None, shop_unavailable.REASON, progress)
    if rails.refused:
        log.warning("offers.settings_refused", extra={"shop_id": shop.id,
                                                      "keys": list(rails.refused)})
        return _answer(None, SETTINGS_REFUSED, progress)
    chash = cart.hash
    recent = _recent_quote(shop.id, shopper_id, chash, now, rails)
    if recent is not None:
        return _answer(recent, recent.status, progress)
    # the token binds the cart as reported; its value for the offer is capped by the catalogue
    # (and, in a currency the platform converts from the shop's, is the catalogue's alone)
    reported = cart.currency
    cart, refused = trusted_cart(shop.id, cart,
                                 converts=connectors.get(shop.platform).converts_amounts)
    if refused is None:
        rails, refused = _rails_in(shop.id, rails, cart)
    if refused is not None:
        log.info("offers.cart_refused", extra={"shop_id": shop.id, "why": refused})
        return _answer(None, refused, progress)
    facts = funnel.gather(shop.id, shopper_id, has_cart=bool(cart.lines),
                          cart_changed_at=cart_changed_at)
    stage = funnel.classify(facts, rails, now)
    features = {"stage": stage, "cart_value": float(cart.subtotal), "n_items": sum(
        int(ln["quantity"]) for ln in cart.lines), "is_customer": is_customer,
        "orders_before": facts.orders}
    row = Offer(public_id="of_" + secrets.token_urlsafe(12), shop_id=shop.id,
                shopper_id=shopper_id, cart_hash=chash, stage=stage, currency=cart.currency,
                cart_value=cart.subtotal, features=features, created_at=now)
    if in_holdout(shop, shopper_id, "offers"):
        row.status, row.holdout = "holdout", True
        db.session.add(row)
        db.session.commit()
        return _answer(row, "holdout", progress)
    _supersede_live(shop.id, shopper_id, now)
    left_day, left_month = budget.remaining(shop.id, rails, now)
    situation = Situation(
        stage=stage, lines=_lines(shop.id, cart, rails), currency=cart.currency,
        budget_left_day=left_day, budget_left_month=left_month,
        capped=_capped(shop.id, shopper_id, rails, now),
        stacking=bool(cart.discount_codes) or _has_unused_discount(shop.id, shopper_id, now),
        complements=complements_for(shop.id, [ln["product_id"] for ln in cart.lines]),
        features=features, scope_limit=SCOPE_LIMITS.get(shop.platform),
        free_shipping_capped=_caps_free_shipping(shop),
        amount_currencies=platform.amount_currencies(shop),
        converted=cart.currency != reported)
    decision = choose(situation, rails, model or model_for(shop.id))
    row.p_control, row.p_treated = decision.p_control, decision.p_treated
    offer = decision.offer
    if offer is None:
        row.status, row.reason = "none", decision.why
    else:
        row.status, row.kind, row.discount_kind = "offered", offer.kind, offer.discount_kind
        row.value = offer.amount if offer.discount_kind == "fixed" else Decimal(0)
        row.amount, row.product_ids = offer.amount, list(offer.product_ids)
        row.min_subtotal, row.reason = offer.min_subtotal, offer.reason
        row.expires_at = now + timedelta(minutes=rails.offer_ttl_minutes)
        row.features = {**features, "display_pct": None if offer.display_pct is None
                        else str(offer.display_pct)}
    db.session.add(row)
    db.session.commit()
    log.info("offers.quoted", extra={"shop_id": shop.id, "offer": row.public_id,
                                     "status": row.status, "why": decision.why})
    return _answer(row, decision.why, progress)


def accept(shop: Shop, shopper_id: str, token: str, cart: CartIn, *,
           customer_id: str | None = None, now: datetime | None = None,
           session: requests.Session | None = None) -> dict[str, Any]:
    """Turn a valid, unused offer into a platform discount; every tamper case raises.

    A retry adopts the discount an earlier attempt may have made, with that attempt's
    customer scope; harmless, since every attempt has the same one. The signed token and
    the row bind the offer to ``shopper_id``, which is the verified customer id when there
    is one (``ShopperIdentity.key``): a customer's offer is accepted only with that
    customer's token, so ``customer_id == shopper_id``; an anonymous offer only without a
    verified customer, so ``customer_id`` is None. Another shopper is refused before the
    platform is asked, and never sees the code. (The API always passes the customer as
    ``shopper_id`` too; the check below keeps that true for any other caller.)
    """
    now = now or utcnow()
    if customer_id is not None and customer_id != shopper_id:
        raise Forbidden("This offer is not valid for this cart.")
    offer = _verified_offer(shop, shopper_id, token, cart, now)
    if offer.status == "accepted" and offer.code and offer.platform_ref:
        # the same shopper, token and cart again: the first answer was lost on its way (a
        # timeout, a dropped connection) after the discount was made. The same discount,
        # not a second one and not a refusal that would lose the shopper their code.
        log.info("offers.accept_repeated", extra={"shop_id": shop.id, "offer": offer.public_id})
        return _accepted(shop, offer)
    if not (shop.settings or {}).get("offers_enabled"):
        raise Conflict("Offers are switched off in this shop.")
    if permissions.blocked(shop) is not None or shop_unavailable.state(shop) is not None:
        _withdraw(offer)  # quoted before the platform refused, or held the shop back
        raise Conflict(PAUSED)
    if offer.discount_kind == "free_shipping" and not _caps_free_shipping(shop):
        # quoted before such platforms were excluded: its cost has no bound there
        _withdraw(offer)
        raise Conflict("This offer was withdrawn; ask for a new one.")
    if platform.amounts_exact(shop, offer.currency or "") is False:
        # quoted before the shop's currencies were read as they are now; when they were
        # never read, the connector checks them as it creates the discount
        _withdraw(offer)
        raise Conflict("This offer was withdrawn; ask for a new one.")
    if availability.off_sale(shop.id, offer.product_ids or (), now):
        # a product it is for was unpublished, sold out or deleted since it was quoted
        _withdraw(offer)
        raise Conflict("This offer was withdrawn; ask for a new one.")
    rails = guardrails_for(shop)
    if rails.refused:  # quoted before a refused figure was stored
        _withdraw(offer)
        raise Conflict(PAUSED)
    why = reservation.claim(offer, rails.in_currency(offer.currency or ""), now,
                            grace=CHECKOUT_GRACE)
    if why == "used":
        raise Conflict("This offer was already used or withdrawn.")
    if why is not None:
        db.session.execute(sa.update(Offer).where(Offer.id == offer.id, Offer.status == "offered")
                           .values(status="none", reason=why))
        db.session.commit()
        raise Conflict(REFUSALS[why])
    spec = discount_spec(offer, shop.platform, customer_id=customer_id)
    connector: Connector | None = None
    try:
        connector = connector_for(shop, session=session or shopper_session(shop))
        ref = connector.create_discount(spec)
    except PermissionDenied as err:
        db.session.rollback()
        if connector is None or not permissions.confirm(shop, connector, err, now=now):
            _keep_open(shop, offer, err)
        # refused for good, as ``REFUSED`` is; ``creating_since`` stays for the reconcile
        # job, should a step before the refused one have made something
        _withdraw_refused(offer)
        withdraw_unaccepted(shop.id)
        db.session.commit()
        raise Conflict(PAUSED) from None
    except ShopUnavailable as err:  # frozen or locked: no offers until it is back
        db.session.rollback()
        shop_unavailable.record(shop, err, now=now)
        _withdraw_refused(offer)
        withdraw_unaccepted(shop.id)
        db.session.commit()
        log.warning("offers.shop_unavailable", extra={"shop_id": shop.id, "status": err.status})
        raise Conflict(PAUSED) from None
    except REFUSED as err:  # asked again, the platform would say the same
        db.session.rollback()
        _withdraw_refused(offer)
        log.warning("offers.discount_refused", extra={"shop_id": shop.id, "offer":
                                                      offer.public_id, "error": str(err)})
        raise Conflict("This offer was withdrawn; ask for a new one.") from None
    except Exception as err:  # an unexpected answer too: never leave it claimed
        db.session.rollback()
        _keep_open(shop, offer, err)
    offer.status, offer.code, offer.platform_ref = "accepted", spec.code, ref.platform_id
    offer.accepted_at, offer.creating_since = now, None
    db.session.commit()
    log.info("offers.accepted", extra={"shop_id": shop.id, "offer": offer.public_id})
    return _accepted(shop, offer)


def _accepted(shop: Shop, offer: Offer) -> dict[str, Any]:
    """The answer to an accepted offer (the same each time it is asked for)."""
    return {"offer_id": offer.public_id, "code": offer.code,
            "expires_at": (offer.expires_at or utcnow()) + CHECKOUT_GRACE,
            "discount_token": offer.platform_ref if shop.platform == "generic" else None}


def _keep_open(shop: Shop, offer: Offer, err: Exception) -> NoReturn:
    """A create that failed without a refusal: the offer stays open for a retry (502).

    ``creating_since`` and the reservation stay: the platform may have made the discount
    all the same (a timeout, a reset after sending, a multi-step create that failed late),
    and it could be used. A retry asks for the same code, adopts it and keeps the
    reservation; else plugin.offers.reconcile deletes it and releases that.
    """
    offer.status = "offered"
    db.session.commit()
    if not isinstance(err, ConnectorError):
        log.exception("offers.discount_crashed", extra={"shop_id": shop.id,
                                                        "offer": offer.public_id})
    log.warning("offers.discount_failed", extra={"shop_id": shop.id, "offer":
                                                 offer.public_id, "error": type(err).__name__})
    raise DiscountUnavailable("The shop could not create the discount; try again.") from None


def shopper_session(shop: Shop) -> requests.Session:
    """A session bounded by ``ACCEPT_HTTP`` that keeps the connector's address rule (a
    public-only Saleor install connects to public addresses only, as its own would)."""
    public_only = bool(getattr(connector_for(shop), "public_only", False))
    return make_guarded_session(public_only=public_only, **ACCEPT_HTTP)


def dismiss(shop: Shop, shopper_id: str, token: str, cart: CartIn, *,
            now: datetime | None = None) -> None:
    """The shopper closed the banner: the offer stops standing (no discount exists)."""
    offer = _verified_offer(shop, shopper_id, token, cart, now or utcnow())
    db.session.execute(sa.update(Offer).where(Offer.id == offer.id, Offer.status == "offered")
                       .values(status="dismissed"))
    db.session.commit()


def discount_spec(offer: Offer, platform: str, *, customer_id: str | None) -> DiscountSpec:
    """The platform discount: fixed amount (or free shipping up to its cost), unique code, one use.

    The code is the offer's own, stored at its first claim (``reservation.claim``), so a
    retried create finds the discount an unanswered attempt made instead of making a second
    one, even after a ``SECRET_KEY`` rotation.

    The offer's products stay its scope where the platform can limit a fixed amount to them
    exactly (``SCOPE_LIMITS``); beyond that (a bundle on Saleor, every Vendure offer) it
    becomes an order discount with the offer's minimum subtotal, which keeps the amount
    exact. The policy refuses such offers on a cart with excluded items.
    """
    limit = SCOPE_LIMITS.get(platform)
    scoped = bool(offer.product_ids) and (limit is None or len(offer.product_ids) <= limit)
    return DiscountSpec(
        code=offer.code or keys.discount_code(offer),
        kind="free_shipping" if offer.discount_kind == "free_shipping" else "fixed",
        # free shipping: the budgeted shipping cost caps what the platform may waive
        value=((offer.amount if offer.discount_kind == "free_shipping" else offer.value)
               or Decimal(0)).quantize(CENT),
        expires_at=(offer.expires_at or utcnow()) + CHECKOUT_GRACE,
        currency=offer.currency, usage_limit=1, customer_id=customer_id,
        product_ids=tuple(offer.product_ids) if scoped else (),
        min_subtotal=None if offer.min_subtotal is None else offer.min_subtotal.quantize(CENT))


def _withdraw(offer: Offer) -> None:
    """An offer the platform cannot honour as quoted stops standing; nothing was reserved."""
    db.session.execute(sa.update(Offer).where(Offer.id == offer.id, Offer.status == "offered")
                       .values(status="superseded"))
    db.session.commit()


def _withdraw_refused(offer: Offer) -> None:
    """The platform refused the discount for good: the offer stops standing and its
    reservation goes now (left offered, it held the budget until the reconcile job ran,
    and every retry was refused the same way). ``creating_since`` stays, so the job still
    deletes what a create of several steps may have left (a Saleor voucher without its
    value); its code was never handed out."""
    offer.status = "superseded"
    budget.cancel(offer)
    db.session.commit()


def _caps_free_shipping(shop: Shop) -> bool:
    """Whether the shop's platform keeps free shipping within the budgeted shipping cost."""
    return connectors.get(shop.platform).caps_free_shipping


def _verified_offer(shop: Shop, shopper_id: str, token: str, cart: CartIn,
                    now: datetime) -> Offer:
    try:
        claims: OfferClaims = verify_offer(token, keys.verification_keys(shop.id, now=now),
                                           shop_id=shop.id, shopper_id=shopper_id,
                                           cart=cart.hash, now=now)
    except OfferTokenInvalid as err:
        log.info("offers.token_rejected", extra={"shop_id": shop.id, "reason": str(err)})
        raise Forbidden("This offer is not valid for this cart.") from None
    offer = db.session.scalar(sa.select(Offer).where(Offer.shop_id == shop.id,
                                                     Offer.public_id == claims.offer_id))
    if offer is None or offer.shopper_id != shopper_id or offer.cart_hash != claims.cart_hash \
            or offer.amount != claims.amount or offer.kind != claims.kind \
            or (offer.currency or "") != claims.currency:
        # the currency too: an offer on a converted cart is in the shop's currency, not the
        # cart's, and a token naming another one was not made for this offer
        raise Forbidden("This offer is not valid for this cart.")
    if offer.expires_at is None or offer.expires_at <= now:
        raise Forbidden("This offer has expired.")
    return offer


def _answer(row: Offer | None, why: str, progress: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"offer": None, "reason_code": why, "free_shipping": progress,
                            "holdout": bool(row is not None and row.holdout),
                            "stage": row.stage if row is not None else None}
    if row is not None and row.status == "offered" and row.expires_at is not None:
        kid, key = keys.signing_key(row.shop_id)
        row.kid = kid
        db.session.commit()
        token = sign_offer(OfferClaims(row.public_id, row.shop_id, row.shopper_id, row.cart_hash,
                                       row.amount or Decimal(0), row.kind or "",
                                       row.currency or "", row.expires_at), key, kid)
        pct = (row.features or {}).get("display_pct")
        body["offer"] = {"id": row.public_id, "kind": row.kind, "reason": row.reason,
                         "amount": (row.amount or Decimal(0)).quantize(CENT),
                         "currency": row.currency,
                         "percent": Decimal(pct) if pct else None,
                         "discount_kind": row.discount_kind, "product_ids": row.product_ids,
                         "min_subtotal": None if row.min_subtotal is None
                         else row.min_subtotal.quantize(CENT), "expires_at": row.expires_at,
                         "token": token}
    return body


def _free_shipping_progress(shop_id: str, rails: Guardrails, cart: CartIn
                            ) -> dict[str, Any] | None:
    """How far the cart is from free shipping; nothing for a cart in another currency than
    the catalogue's (the threshold is the shop's money: a euro subtotal against a pound
    threshold, shown in euros, would be a wrong promise)."""
    if rails.free_shipping_threshold is None:
        return None
    currencies = catalogue_currencies(shop_id, {str(ln["product_id"]) for ln in cart.lines})
    if currencies and cart.currency.upper() not in currencies:
        return None
    left = max(rails.free_shipping_threshold - cart.subtotal, Decimal(0)).quantize(CENT)
    return {"threshold": rails.free_shipping_threshold, "remaining": left,
            "reached": left == 0}


def _rails_in(shop_id: str, rails: Guardrails, cart: CartIn) -> tuple[Guardrails, str | None]:
    """The guardrails in the (trusted) cart's currency, or ``currency_mismatch``.

    A cart valued at the catalogue's prices in another currency than the shop's needs the
    merchant's money guardrails in it, and a cost in it for every product of the cart
    with a known cost in the shop's currency: else the budget, the minimum or the margin
    floor could only be applied with an exchange rate (``plugin.offers.settings``).
    """
    if not priced_in_other_currency(shop_id, cart):
        return rails.in_currency(cart.currency), None
    own = rails.in_currency(cart.currency)
    if own.budget_currency is None:
        return rails, "currency_mismatch"
    costed = {str(ln["product_id"]) for ln in cart.lines} & set(rails.product_costs)
    if costed - set(own.product_costs):
        return rails, "currency_mismatch"
    return own, None


def _lines(shop_id: str, cart: CartIn, rails: Guardrails) -> tuple[Line, ...]:
    cats = categories_of(shop_id, [str(ln["product_id"]) for ln in cart.lines])
    return tuple(Line(product_id=str(ln["product_id"]), quantity=int(ln["quantity"]),
                      unit_price=Decimal(str(ln["price"])),
                      categories=cats.get(str(ln["product_id"]), ()),
                      cost=rails.product_costs.get(str(ln["product_id"])))
                 for ln in cart.lines)


def _recent_quote(shop_id: str, shopper_id: str, chash: str, now: datetime,
                  rails: Guardrails) -> Offer | None:
    """The same cart asked again within the offer's lifetime gets the same answer."""
    since = now - timedelta(minutes=rails.offer_ttl_minutes)
    row = db.session.scalar(sa.select(Offer).where(
        Offer.shop_id == shop_id, Offer.shopper_id == shopper_id, Offer.cart_hash == chash,
        Offer.created_at > since).order_by(Offer.id.desc()).limit(1))
    if row is None or row.status == "superseded":
        return None
    if row.status == "offered" and (row.expires_at is None or row.expires_at <= now):
        return None
    if row.status == "offered" and availability.off_sale(shop_id, row.product_ids or (), now):
        return None  # for a product no longer on sale: quoted again (and superseded)
    return row


def withdraw_unaccepted(shop_id: str) -> int:
    """Withdraw every standing offer, e.g. because the merchant changed the guardrails.

    An offer is checked against the guardrails when it is quoted; one quoted under a
    higher max discount or a lower margin floor must not become a discount after the
    merchant tightened them. Withdrawn offers read as superseded: accepting one is refused,
    and the shopper's next quote is made under the new guardrails. Returns how many.
    """
    result = db.session.execute(sa.update(Offer).where(
        Offer.shop_id == shop_id, Offer.status.in_(LIVE)).values(status="superseded"))
    return result.rowcount or 0


def _supersede_live(shop_id: str, shopper_id: str, now: datetime) -> None:
    """A changed cart replaces the shopper's unaccepted offer (no two live offers)."""
    db.session.execute(sa.update(Offer).where(
        Offer.shop_id == shop_id, Offer.shopper_id == shopper_id, Offer.status.in_(LIVE))
        .values(status="superseded"))


def _capped(shop_id: str, shopper_id: str, rails: Guardrails, now: datetime) -> bool:
    since = now - timedelta(days=rails.frequency_cap_days)
    return db.session.scalar(sa.select(sa.func.count(Offer.id)).where(
        Offer.shop_id == shop_id, Offer.shopper_id == shopper_id, Offer.status.in_(USED),
        Offer.accepted_at > since)) > 0


def _has_unused_discount(shop_id: str, shopper_id: str, now: datetime) -> bool:
    """An accepted discount that is still valid: a second one would stack."""
    return db.session.scalar(sa.select(sa.func.count(Offer.id)).where(
        Offer.shop_id == shop_id, Offer.shopper_id == shopper_id,
        Offer.status.in_(("accepting", "accepted")),
        Offer.expires_at > now - CHECKOUT_GRACE)) > 0
