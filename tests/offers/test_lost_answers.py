"""A discount create whose answer is lost must not leave a second, unaccounted code live.

The platforms are stateful fakes behind ``responses`` (payload shapes as in the connector
tests): a create is committed on the platform, then the connection resets and stays down
for the rest of that accept, so the shopper gets a 502. Retrying the accept asks for the
offer's same code and adopts the discount; without a retry, the reconciliation job finds
the code and deletes it. Until then the offer's budget stays reserved: the discount may
exist and be used.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
import responses
import sqlalchemy as sa

from connectors.base import Credentials
from connectors.http import make_session
from connectors.shopify.client import API_VERSION
from plugin import crypto
from plugin.errors import Conflict, Forbidden
from plugin.extensions import db
from plugin.models import Offer, OfferLedgerEntry
from plugin.offers import budget, keys, reconcile, service
from tests.offers.conftest import OTHER_SHOPPER, SHOPPER, cart_body, configure, make_idle
from tests.offers.test_discounts import _shop


class Platform:
    """Discounts by code; ``lose_next`` drops the next create's answer and every later call."""

    def __init__(self) -> None:
        self.discounts: dict[str, dict] = {}
        self.lose_next = False
        self.down = False
        self.creates = 0
        self.refuse = False  # the platform refuses the discount itself (an invalid field)

    def __call__(self, request: requests.PreparedRequest):
        if self.down:
            raise requests.ConnectionError("connection reset by peer")
        body = json.loads(request.body)
        return 200, {}, json.dumps({"data": self.answer(body["query"], body["variables"])})

    def created(self, code: str, **extra) -> str:
        """Record a new discount; raise (the answer lost) if asked to."""
        self.creates += 1
        ident = self.ID.format(n=self.creates)
        self.discounts[code] = {"id": ident, **extra}
        if self.lose_next:
            self.lose_next, self.down = False, True
            raise requests.ConnectionError("connection reset after commit")
        return ident

    def by_id(self, ident: str) -> str | None:
        return next((c for c, d in self.discounts.items() if d["id"] == ident), None)


class Shopify(Platform):
    ID = "gid://shopify/DiscountCodeNode/{n}"
    DOMAIN = "lost.myshopify.com"
    URL = f"https://{DOMAIN}/admin/api/{API_VERSION}/graphql.json"
    CREDENTIALS = Credentials(DOMAIN, access_token="shpat_x", webhook_secret="shpss_x")

    def answer(self, query: str, variables: dict) -> dict:
        if "discountCodeBasicCreate" in query:
            code = variables["input"]["code"]
            if code in self.discounts:
                return {"discountCodeBasicCreate": {"codeDiscountNode": None, "userErrors": [
                    {"field": ["basicCodeDiscount", "code"], "code": "TAKEN",
                     "message": "Code must be unique. Please try a different code."}]}}
            if self.refuse:
                return {"discountCodeBasicCreate": {"codeDiscountNode": None, "userErrors": [
                    {"field": ["basicCodeDiscount", "customerGets", "value"],
                     "code": "INVALID", "message": "Value is invalid"}]}}
            return {"discountCodeBasicCreate": {"codeDiscountNode": {
                "id": self.created(code)}, "userErrors": []}}
        if "codeDiscountNodeByCode" in query:
            found = self.discounts.get(variables["code"])
            return {"codeDiscountNodeByCode": found and {"id": found["id"]}}
        if "discountCodeDelete" in query:
            code = self.by_id(variables["id"])
            self.discounts.pop(code, None)
            return {"discountCodeDelete": {"deletedCodeDiscountId": variables["id"],
                                           "userErrors": []}}
        raise AssertionError(query)


class Saleor(Platform):
    ID = "Vm91Y2hlcjo{n}"
    garble_listing = False
    DOMAIN = "lost.saleor.cloud"
    URL = f"https://{DOMAIN}/graphql/"
    CREDENTIALS = Credentials(DOMAIN, access_token="tok", api_url=URL, extra={
        "channel": "default-channel", "channel_id": "Q2hhbm5lbDox"})

    def answer(self, query: str, variables: dict) -> dict:
        if "voucherCreate" in query:
            code = variables["input"]["addCodes"][0]
            if code in self.discounts:
                return {"voucherCreate": {"voucher": None, "errors": [
                    {"field": "addCodes", "code": "ALREADY_EXISTS",
                     "message": "Voucher with this code already exists."}]}}
            return {"voucherCreate": {"voucher": {"id": self.created(code, listed=False)},
                                      "errors": []}}
        if "voucherChannelListingUpdate" in query:
            if self.garble_listing:  # a proxy's answer, once: the voucher exists, unlisted
                self.garble_listing = False
                return {"voucherChannelListingUpdate": "updated"}
            if self.refuse:  # the second step: the voucher exists, without its value
                return {"voucherChannelListingUpdate": {"voucher": None, "errors": [
                    {"field": "addChannels", "code": "INVALID",
                     "message": "Currency is not sold in this channel."}]}}
            self.discounts[self.by_id(variables["id"])]["listed"] = True
            return {"voucherChannelListingUpdate": {"voucher": {"id": variables["id"]},
                                                    "errors": []}}
        if "vouchers(" in query:
            edges = [{"node": {"id": d["id"], "codes": {"edges": [{"node": {"code": c}}]}}}
                     for c, d in self.discounts.items() if variables["code"] in c]
            return {"vouchers": {"edges": edges}}
        if "voucherDelete" in query:
            self.discounts.pop(self.by_id(variables["id"]), None)
            return {"voucherDelete": {"voucher": {"id": variables["id"]}, "errors": []}}
        raise AssertionError(query)


PLATFORMS = {"shopify": Shopify, "saleor": Saleor}


@pytest.fixture(params=list(PLATFORMS))
def platform(request, app):
    """(shop, fake platform) with the fake answering every GraphQL POST."""
    fake = PLATFORMS[request.param]()
    shop = _shop(request.param, fake.DOMAIN, fake.CREDENTIALS)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, fake.URL, callback=fake)
        yield shop, fake


def _session() -> requests.Session:
    return make_session(retries=2, sleep=lambda _: None)


def _cart() -> service.CartIn:
    c = cart_body()
    return service.CartIn(currency=c["currency"], lines=c["lines"])


def _quoted(shop) -> dict:
    offer = service.quote(shop, SHOPPER, _cart())["offer"]
    assert offer is not None
    return offer


def _lost_create(shop, fake: Platform) -> dict:
    """A quoted offer whose accept made the discount on the platform and lost the answer
    (the shopper got a 502); the platform answers again afterwards."""
    offer = _quoted(shop)
    fake.lose_next = True
    with pytest.raises(service.DiscountUnavailable):
        service.accept(shop, SHOPPER, offer["token"], _cart(), session=_session())
    fake.down = False
    return offer


def _row(offer: dict) -> Offer:
    row = db.session.scalar(sa.select(Offer).where(Offer.public_id == offer["id"]))
    db.session.refresh(row)
    return row


def _reserved() -> Decimal:
    return Decimal(str(db.session.scalar(sa.select(
        sa.func.coalesce(sa.func.sum(OfferLedgerEntry.amount), 0)))))


def test_a_retry_after_a_lost_answer_adopts_the_discount_instead_of_a_second(platform):
    shop, fake = platform
    offer = _quoted(shop)
    fake.lose_next = True
    with pytest.raises(service.DiscountUnavailable):
        service.accept(shop, SHOPPER, offer["token"], _cart(), session=_session())
    assert len(fake.discounts) == 1 and _row(offer).status == "offered"
    fake.down = False  # the platform answers again; the shopper retries
    out = service.accept(shop, SHOPPER, offer["token"], _cart(), session=_session())
    assert list(fake.discounts) == [out["code"]]  # exactly one live code, the one handed out
    live = fake.discounts[out["code"]]
    row = _row(offer)
    assert (row.status, row.code, row.platform_ref) == ("accepted", out["code"], live["id"])
    assert row.creating_since is None
    assert live.get("listed", True)  # Saleor: the adopted voucher got its value too
    assert _reserved() == Decimal(offer["amount"])


def test_a_lost_answer_nobody_retries_is_found_and_deleted(platform):
    shop, fake = platform
    offer = _lost_create(shop, fake)
    row = _row(offer)
    # the discount may exist: its budget stays reserved while the outcome is unknown
    assert row.creating_since is not None and _reserved() == Decimal(offer["amount"])
    # while the offer stands the shopper may still retry (and adopt): it is left alone
    assert reconcile.settle_creations(shop, now=row.creating_since + reconcile.SETTLE,
                                      session=_session()) == 0
    assert len(fake.discounts) == 1 and _reserved() == Decimal(offer["amount"])
    later = row.expires_at + reconcile.CLAIM_MARGIN
    assert reconcile.settle_creations(shop, now=later, session=_session()) == 1
    assert fake.discounts == {} and _row(offer).creating_since is None
    assert _reserved() == 0  # deleted unused: the reservation is released
    assert reconcile.settle_creations(shop, now=later, session=_session()) == 0


def test_an_accept_that_died_mid_call_is_undone_and_a_retry_adopts_its_discount(platform):
    shop, fake = platform
    offer = _quoted(shop)
    row = _row(offer)
    started = service.utcnow()
    # what a worker killed between the platform's commit and ours leaves behind
    row.status, row.creating_since = "accepting", started
    budget.reserve(row, started)
    db.session.commit()
    fake.discounts[keys.discount_code(row)] = {"id": fake.ID.format(n=99), "listed": True}
    assert reconcile.settle_creations(shop, now=started + reconcile.SETTLE,
                                      session=_session()) == 0
    row = _row(offer)
    assert row.status == "offered"  # the claim is undone; the reservation is held
    assert _reserved() == Decimal(offer["amount"])
    assert len(fake.discounts) == 1  # kept: the offer stands, a retry adopts it
    out = service.accept(shop, SHOPPER, offer["token"], _cart(), session=_session())
    assert list(fake.discounts) == [out["code"]]
    assert _row(offer).platform_ref == fake.ID.format(n=99)
    assert _reserved() == Decimal(offer["amount"])


def test_a_secret_key_rotation_cannot_change_the_code_a_lost_answer_left(app, platform,
                                                                         monkeypatch):
    shop, fake = platform
    offer = _lost_create(shop, fake)
    [first] = fake.discounts
    # the test's credentials key is derived from SECRET_KEY; production sets its own
    fernet = crypto._fernet()
    monkeypatch.setattr(crypto, "_fernet", lambda: fernet)
    app.config["SECRET_KEY"] = "rotated-" + app.config["SECRET_KEY"]
    row = _row(offer)
    assert row.code == first  # stored at the first attempt, not derived again
    assert service.discount_spec(row, shop.platform, customer_id=None).code == first
    later = row.expires_at + reconcile.CLAIM_MARGIN
    assert reconcile.settle_creations(shop, now=later, session=_session()) == 1
    assert fake.discounts == {}  # found under the stored code, not left live


def test_a_lost_answers_reservation_counts_against_others_but_not_its_own_retry(
        platform, monkeypatch):
    # one day for every accept: the lost one's reservation at 23:59:59.9 was yesterday's
    # for another accepted just after midnight, which then fit a whole day's budget
    now = service.utcnow()
    monkeypatch.setattr(service, "utcnow", lambda: now)
    shop, fake = platform
    first = _quoted(shop)
    configure(shop, daily_budget=float(first["amount"]))  # room for one discount only
    make_idle(shop.id, OTHER_SHOPPER)
    other = service.quote(shop, OTHER_SHOPPER, _cart())["offer"]
    assert other is not None  # quoted before the budget was claimed
    fake.lose_next = True
    with pytest.raises(service.DiscountUnavailable):
        service.accept(shop, SHOPPER, first["token"], _cart(), session=_session())
    fake.down = False
    with pytest.raises(Conflict):  # the first discount may exist: no room for a second
        service.accept(shop, OTHER_SHOPPER, other["token"], _cart(), session=_session())
    out = service.accept(shop, SHOPPER, first["token"], _cart(), session=_session())
    assert list(fake.discounts) == [out["code"]]
    assert _reserved() == Decimal(first["amount"])


def test_a_creation_the_platform_never_settles_is_released_after_the_horizon(platform):
    shop, fake = platform
    offer = _quoted(shop)
    fake.lose_next = True
    with pytest.raises(service.DiscountUnavailable):
        service.accept(shop, SHOPPER, offer["token"], _cart(), session=_session())
    row = _row(offer)  # the platform stays down: no lookup ever answers
    later = row.expires_at + reconcile.CLAIM_MARGIN
    assert reconcile.settle_creations(shop, now=later, session=_session()) == 0
    assert _reserved() == Decimal(offer["amount"])
    horizon = row.creating_since + reconcile.GIVE_UP_AFTER
    assert reconcile.settle_creations(shop, now=horizon, session=_session()) == 1
    assert _reserved() == 0 and _row(offer).creating_since is None


def test_a_retry_by_another_identity_is_refused_before_the_platform_is_asked(platform):
    """Pins why adopting the first attempt's customer scope is harmless (``accept``)."""
    shop, fake = platform
    offer = _quoted(shop)
    fake.lose_next = True
    with pytest.raises(service.DiscountUnavailable):
        service.accept(shop, SHOPPER, offer["token"], _cart(), session=_session())
    fake.down, creates = False, fake.creates
    # another anonymous shopper; the same browser signed in as a customer (its key is then
    # the customer id); a customer claiming the anonymous shopper's id
    for shopper, customer in ((OTHER_SHOPPER, None), ("cust-42", "cust-42"),
                              (SHOPPER, "cust-42")):
        with pytest.raises(Forbidden):
            service.accept(shop, shopper, offer["token"], _cart(), customer_id=customer,
                           session=_session())
    assert fake.creates == creates and _row(offer).status == "offered"


def test_a_retry_that_began_before_expiry_keeps_the_discount_it_adopts(platform):
    """The job leaves an expired offer's lost create alone for ``CLAIM_MARGIN``: a retry
    that passed the expiry check a moment before still claims after it, and deleting
    the discount then would hand the shopper a code that no longer exists."""
    shop, fake = platform
    offer = _lost_create(shop, fake)
    row = _row(offer)
    expired = row.expires_at
    just_after = expired + timedelta(minutes=1)
    assert reconcile.settle_creations(shop, now=just_after, session=_session()) == 0
    assert len(fake.discounts) == 1 and _reserved() == Decimal(offer["amount"])
    out = service.accept(shop, SHOPPER, offer["token"], _cart(), session=_session(),
                         now=expired - timedelta(seconds=1))
    assert list(fake.discounts) == [out["code"]] and fake.creates == 1  # adopted
    assert reconcile.settle_creations(shop, now=expired + reconcile.CLAIM_MARGIN,
                                      session=_session()) == 0
    assert list(fake.discounts) == [out["code"]] and _reserved() == Decimal(offer["amount"])


def test_a_claim_landing_after_expiry_is_refused(platform):
    """The claim itself checks the expiry, not only the request's start."""
    from plugin.offers import reservation

    shop, _fake = platform
    offer = _quoted(shop)
    row = _row(offer)
    assert reservation.claim(row, service.guardrails_for(shop), row.expires_at,
                             grace=service.CHECKOUT_GRACE) == "used"
    assert _row(offer).status == "offered" and _reserved() == 0


def test_a_discount_the_platform_refuses_withdraws_the_offer_and_releases_its_budget(
        platform):
    """A refusal is the platform's answer, not a lost one: asked again, it says the same.
    Left offered, the offer held its budget until the job settled it, and every retry was
    refused again; withdrawn, the budget is free at once. What a create of several steps
    left (Saleor: the voucher, refused its value) is still deleted by the job."""
    shop, fake = platform
    offer = _quoted(shop)
    fake.refuse = True
    with pytest.raises(Conflict, match="withdrawn"):
        service.accept(shop, SHOPPER, offer["token"], _cart(), session=_session())
    row = _row(offer)
    assert row.status == "superseded" and _reserved() == 0
    fake.refuse = False
    with pytest.raises(Conflict, match="already used or withdrawn"):  # not retried
        service.accept(shop, SHOPPER, offer["token"], _cart(), session=_session())
    assert reconcile.settle_creations(shop, now=row.creating_since + reconcile.SETTLE,
                                      session=_session()) == 1
    assert fake.discounts == {} and _reserved() == 0


def test_a_garbled_saleor_listing_answer_leaves_the_offer_open_and_its_retry_adopts(app):
    """Saleor makes a voucher in two calls. A second answer of no readable shape withdrew
    the offer for good (read as Saleor's refusal) though the voucher existed; it is
    transient now, and the retry adopts that voucher (its code is taken) and lists it."""
    fake = Saleor()
    shop = _shop("saleor", fake.DOMAIN, fake.CREDENTIALS)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, fake.URL, callback=fake)
        offer = _quoted(shop)
        fake.garble_listing = True
        with pytest.raises(service.DiscountUnavailable):
            service.accept(shop, SHOPPER, offer["token"], _cart(), session=_session())
        row = _row(offer)
        assert row.status == "offered" and row.creating_since is not None
        [(code, voucher)] = fake.discounts.items()
        assert voucher["listed"] is False  # made, without its value yet
        out = service.accept(shop, SHOPPER, offer["token"], _cart(), session=_session())
    assert out["code"] == code and fake.creates == 1  # adopted, not made twice
    assert fake.discounts == {code: {**voucher, "listed": True}}
    row = _row(offer)
    assert (row.status, row.platform_ref) == ("accepted", voucher["id"])
    assert _reserved() == Decimal(offer["amount"])
