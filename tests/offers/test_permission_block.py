"""A platform that refuses to create discounts for a missing permission blocks offers.

The platforms are fakes behind ``responses`` answering with their documented refusals:
Shopify's ``ACCESS_DENIED`` ("Access denied for discountCodeBasicCreate field. Required
access: `write_discounts` access scope.", shopify.dev changelog 2020-07), Saleor's
``PermissionDenied`` ("To access this path, you need one of the following permissions:
MANAGE_DISCOUNTS", saleor/core/exceptions.py) and Vendure's ``FORBIDDEN`` (captured in
tests/fixtures/vendure/admin_forbidden.json). Each lists the credentials' permissions when
asked (Shopify ``currentAppInstallation.accessScopes``, Saleor ``app.permissions``, Vendure
``me.channels.permissions``), which is what tells a missing permission from a dead token.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import responses
import sqlalchemy as sa

from connectors.base import Credentials
from connectors.http import make_session
from connectors.shopify.client import API_VERSION
from plugin.errors import Conflict
from plugin.extensions import db
from plugin.models import Installation, Offer, OfferLedgerEntry
from plugin.offers import permissions, service
from plugin.offers.jobs import run_offer_jobs
from tests.admin.conftest import sign_in
from tests.offers.conftest import OTHER_SHOPPER as OTHER
from tests.offers.conftest import SHOPPER, accept, cart_body, make_idle, quote
from tests.offers.test_discounts import _shop

VENDURE_FIXTURES = Path(__file__).parents[1] / "fixtures" / "vendure"


def _fixture(name: str) -> dict:
    return json.loads((VENDURE_FIXTURES / name).read_text())


def _gql_error(message: str, path: str, extensions: dict) -> dict:
    return {"message": message, "locations": [{"line": 3, "column": 3}], "path": [path],
            "extensions": extensions}


class Platform:
    """Answers every GraphQL POST; ``granted`` are the credentials' permissions, ``dead``
    answers as a revoked or unknown token does, ``failure`` breaks every call."""

    GRANTED: tuple[str, ...] = ()
    NEEDED: tuple[str, ...] = ()
    GRANT: tuple[str, ...] = ()
    #: what the block names: what creating discounts needs of ``GRANT``
    BLOCKING: tuple[str, ...] | None = None

    def __init__(self) -> None:
        self.granted = set(self.GRANTED)
        self.dead = False
        self.failure: str | None = None
        self.created = 0
        self.deleted = 0
        self.calls = 0

    def __call__(self, request: requests.PreparedRequest):
        self.calls += 1
        if self.failure == "timeout":
            raise requests.ReadTimeout("read timed out")
        if self.failure == "5xx":
            return 503, {}, "upstream unavailable"
        body = json.loads(request.body)
        return 200, {}, json.dumps(self.answer(body["query"], body.get("variables") or {}))

    def missing(self) -> bool:
        return self.dead or not set(self.NEEDED) <= self.granted


class Shopify(Platform):
    DOMAIN = "perm.myshopify.com"
    URL = f"https://{DOMAIN}/admin/api/{API_VERSION}/graphql.json"
    CREDENTIALS = Credentials(DOMAIN, access_token="shpat_x", webhook_secret="shpss_x")
    GRANTED = ("read_products", "read_orders", "read_customers")
    NEEDED = ("write_discounts",)
    GRANT = ("write_discounts",)

    def __call__(self, request):
        if self.dead and self.failure is None:  # a revoked token: 401 to everything
            return 401, {}, json.dumps({"errors": "[API] Invalid API key or access token"})
        return super().__call__(request)

    def answer(self, query: str, variables: dict) -> dict:
        if "currentAppInstallation" in query:
            return {"data": {"currentAppInstallation": {"accessScopes": [
                {"handle": h} for h in sorted(self.granted)]}}}
        if "discountCodeBasicCreate" in query:
            if self.missing():
                return {"data": {"discountCodeBasicCreate": None}, "errors": [_gql_error(
                    "Access denied for discountCodeBasicCreate field. Required access: "
                    "`write_discounts` access scope.", "discountCodeBasicCreate",
                    {"code": "ACCESS_DENIED",
                     "documentation": "https://shopify.dev/api/usage/access-scopes",
                     "requiredAccess": "`write_discounts` access scope."})]}
            self.created += 1
            return {"data": {"discountCodeBasicCreate": {"codeDiscountNode": {
                "id": f"gid://shopify/DiscountCodeNode/{self.created}"}, "userErrors": []}}}
        raise AssertionError(query)


class Saleor(Platform):
    DOMAIN = "perm.saleor.cloud"
    URL = f"https://{DOMAIN}/graphql/"
    CREDENTIALS = Credentials(DOMAIN, access_token="tok", api_url=URL, webhook_secret="whsec_s",
                              extra={"channel": "default-channel", "channel_id": "Q2hhbm5lbDox"})
    GRANTED = ("MANAGE_PRODUCTS", "MANAGE_ORDERS", "MANAGE_USERS", "MANAGE_CHECKOUTS")
    NEEDED = ("MANAGE_DISCOUNTS",)
    GRANT = ("MANAGE_DISCOUNTS",)

    def denied(self, path: str, needs: str) -> dict:
        return {"data": {path: None}, "errors": [_gql_error(
            f"To access this path, you need one of the following permissions: {needs}",
            path, {"exception": {"code": "PermissionDenied"}})]}

    def answer(self, query: str, variables: dict) -> dict:
        if "permissions" in query and "app" in query:
            if self.dead:  # Saleor reads an unknown token as no app at all
                return self.denied("app", "AUTHENTICATED_STAFF_USER, AUTHENTICATED_APP")
            return {"data": {"app": {"permissions": [
                {"code": c} for c in sorted(self.granted)]}}}
        if "voucherCreate" in query:
            if self.missing():
                return self.denied("voucherCreate", "MANAGE_DISCOUNTS")
            self.created += 1
            return {"data": {"voucherCreate": {"voucher": {"id": f"Vm91Y2hlcjo{self.created}"},
                                               "errors": []}}}
        if "voucherChannelListingUpdate" in query:
            return {"data": {"voucherChannelListingUpdate": {"voucher": {"id": variables["id"]},
                                                             "errors": []}}}
        raise AssertionError(query)


class Vendure(Platform):
    """A role made from the old README: no ReadPromotion, DeletePromotion,
    DeleteCustomerGroup."""

    DOMAIN = "perm.vendure.example"
    URL = f"https://{DOMAIN}/admin-api"
    CREDENTIALS = Credentials(DOMAIN, access_token="tok", webhook_secret="whsec_v", api_url=URL)
    GRANTED = ("Authenticated", "ReadCatalog", "ReadCustomer", "ReadOrder", "CreatePromotion",
               "CreateCustomerGroup")
    NEEDED = ("ReadPromotion", "CreatePromotion")
    GRANT = ("ReadPromotion", "DeletePromotion", "DeleteCustomerGroup")
    BLOCKING = ("ReadPromotion",)  # the deletes only clean up: noted, not blocking

    def forbidden(self, path: str) -> dict:
        return {"errors": [_gql_error("You are not currently authorized to perform this action",
                                      path, {"code": "FORBIDDEN"})], "data": {path: None}}

    def answer(self, query: str, variables: dict) -> dict:
        if "CurrentPermissions" in query:
            if self.dead:
                return self.forbidden("me")
            return {"data": {"me": {"channels": [
                {"code": "__default_channel__", "token": "default-token",
                 "permissions": sorted(self.granted)}]}}}
        if "promotions(" in query:
            if self.missing():
                return self.forbidden("promotions")
            return _fixture("admin_promotions_by_code_none.json")
        if "TaxSetup" in query:
            setup = _fixture("admin_tax_setup.json")
            setup["data"]["activeChannel"].update(defaultCurrencyCode="GBP",
                                                  availableCurrencyCodes=["GBP"])
            return setup
        if "createPromotion" in query:
            self.created += 1
            return _fixture("admin_create_promotion.json")
        if "deletePromotion" in query:
            if "DeletePromotion" not in self.granted:
                return self.forbidden("deletePromotion")
            self.deleted += 1
            return {"data": {"deletePromotion": {"result": "DELETED", "message": None}}}
        if "customerGroups(" in query:
            return {"data": {"customerGroups": {"items": []}}}
        raise AssertionError(query)


PLATFORMS = {"shopify": Shopify, "saleor": Saleor, "vendure": Vendure}


@pytest.fixture(params=list(PLATFORMS))
def platform(request, app):
    """(shop, fake platform) with the fake answering every GraphQL POST."""
    fake = PLATFORMS[request.param]()
    shop = _shop(request.param, fake.DOMAIN, fake.CREDENTIALS)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, fake.URL, callback=fake)
        yield shop, fake


def _session() -> requests.Session:
    return make_session(retries=1, sleep=lambda _: None)


def _cart() -> service.CartIn:
    c = cart_body()
    return service.CartIn(currency=c["currency"], lines=c["lines"])


def _row(offer: dict) -> Offer:
    row = db.session.scalar(sa.select(Offer).where(Offer.public_id == offer["id"]))
    db.session.refresh(row)
    return row


def _reserved() -> Decimal:
    return Decimal(str(db.session.scalar(sa.select(
        sa.func.coalesce(sa.func.sum(OfferLedgerEntry.amount), 0)))))


def _refused(client, shop) -> dict:
    """A quoted offer whose accept the platform refused for the missing permission."""
    offer = quote(client, shop).get_json()["offer"]
    assert offer is not None
    res = accept(client, shop, offer["token"])
    assert res.status_code == 409, res.get_json()
    return offer


def test_a_documented_permission_refusal_blocks_offers_and_tells_the_merchant(
        app, client, platform):
    shop, fake = platform
    offer = _refused(client, shop)
    db.session.refresh(shop)
    assert permissions.blocked(shop)["missing"] == list(fake.BLOCKING or fake.GRANT)
    # the offer was withdrawn and its reservation released: no "try again" churn
    assert _row(offer).status == "superseded" and _reserved() == 0
    assert fake.created == 0
    # shoppers are promised nothing while it lasts, and told why in the answer
    body = quote(client, shop, cart_body(quantity=3)).get_json()
    assert body["offer"] is None and body["reason_code"] == "platform_permission"
    # the credentials still work for the sync: they are not marked failed
    assert db.session.get(Installation, shop.id).auth_failed is False
    # the merchant sees what to grant, on the settings page and the dashboard
    sign_in(app, client, shop)
    for page, names in (("/admin/settings", fake.GRANT), ("/admin/", fake.BLOCKING or fake.GRANT)):
        html = client.get(page).get_data(as_text=True)
        assert "refused creating discounts: missing permission" in html, page
        for name in names:
            assert name in html, (page, name)


def test_an_offer_quoted_before_the_block_is_withdrawn_without_asking_the_platform(
        client, platform):
    shop, fake = platform
    make_idle(shop.id, OTHER)
    standing = quote(client, shop, cart_body(quantity=3), shopper=OTHER).get_json()["offer"]
    assert standing is not None
    _refused(client, shop)
    assert _row(standing).status == "superseded"  # withdrawn with the block
    calls = fake.calls
    res = accept(client, shop, standing["token"], cart_body(quantity=3),
                 shopper=OTHER)
    assert res.status_code == 409
    assert fake.calls == calls


def test_the_offer_job_lifts_the_block_once_the_permission_is_granted(client, platform):
    shop, fake = platform
    _refused(client, shop)
    run_offer_jobs()  # still missing: stays blocked
    db.session.refresh(shop)
    assert permissions.blocked(shop) is not None
    fake.granted |= set(fake.GRANT)
    run_offer_jobs()
    db.session.refresh(shop)
    assert permissions.blocked(shop) is None
    assert permissions.note(shop) is None
    offer = quote(client, shop, cart_body(quantity=4)).get_json()["offer"]
    assert offer is not None
    res = accept(client, shop, offer["token"], cart_body(quantity=4))
    assert res.status_code == 200, res.get_json()
    assert fake.created == 1


@pytest.mark.parametrize("failure", ["timeout", "5xx", "dead"])
def test_other_failures_keep_the_offer_open_and_offers_running(platform, failure):
    """A timeout, an outage or dead credentials (which Saleor and Vendure refuse like a
    missing permission, but then refuse the permission listing too) block nothing."""
    shop, fake = platform
    offer = service.quote(shop, SHOPPER, _cart())["offer"]
    assert offer is not None
    if failure == "dead":
        fake.dead = True
    else:
        fake.failure = failure
    with pytest.raises(service.DiscountUnavailable):
        service.accept(shop, SHOPPER, offer["token"], _cart(), session=_session())
    db.session.refresh(shop)
    assert permissions.blocked(shop) is None
    assert _row(offer).status == "offered"  # open for a retry, as before
    fake.failure, fake.dead = None, False
    fake.granted |= set(fake.GRANT)
    out = service.accept(shop, SHOPPER, offer["token"], _cart(), session=_session())
    assert out["code"]


def test_a_block_stays_through_a_failed_recheck(platform):
    shop, fake = platform
    offer = service.quote(shop, SHOPPER, _cart())["offer"]
    with pytest.raises(Conflict):
        service.accept(shop, SHOPPER, offer["token"], _cart(), session=_session())
    fake.granted |= set(fake.GRANT)
    fake.failure = "5xx"
    assert permissions.recheck(shop, session=_session()) is False
    db.session.commit()
    db.session.refresh(shop)
    assert permissions.blocked(shop) is not None
    fake.failure = None
    assert permissions.recheck(shop, session=_session()) is True


@pytest.fixture
def vendure(app):
    """(shop, fake Vendure) whose role may create promotions (the old README's plus
    ReadPromotion) but not delete them or their customer groups."""
    fake = Vendure()
    fake.granted.add("ReadPromotion")
    shop = _shop("vendure", fake.DOMAIN, fake.CREDENTIALS)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, fake.URL, callback=fake)
        yield shop, fake


def _expire(offer: dict) -> Offer:
    row = _row(offer)
    row.status, row.expires_at = "expired", row.expires_at - timedelta(days=1)
    db.session.commit()
    return row


def test_a_role_missing_only_the_delete_permissions_is_told_and_not_blocked(app, client,
                                                                             vendure):
    shop, fake = vendure
    offer = quote(client, shop).get_json()["offer"]
    assert accept(client, shop, offer["token"]).status_code == 200  # creates work
    _expire(offer)
    run_offer_jobs()  # its cleanup is refused: the merchant is told what is missing
    db.session.refresh(shop)
    assert permissions.blocked(shop) is None
    assert permissions.cleanup_refused(shop)["missing"] == ["DeletePromotion",
                                                            "DeleteCustomerGroup"]
    sign_in(app, client, shop)
    html = client.get("/admin/settings").get_data(as_text=True)
    assert 'id="offer-cleanup-note"' in html
    assert "Spent offers stay on Vendure" in html and "DeleteCustomerGroup" in html
    assert "Offers are blocked" not in html
    assert quote(client, shop, cart_body(quantity=3)).get_json()["offer"] is not None
    fake.granted |= {"DeletePromotion", "DeleteCustomerGroup"}
    run_offer_jobs()  # granted: the note goes and the spent discount is removed
    db.session.refresh(shop)
    assert permissions.cleanup_refused(shop) is None and permissions.cleanup_note(shop) is None
    assert fake.deleted == 1 and _row(offer).platform_ref is None


def test_the_block_lifts_once_creating_is_granted_while_cleanup_stays_noted(client, vendure):
    shop, fake = vendure
    fake.granted.discard("ReadPromotion")  # the old README's role
    _refused(client, shop)
    db.session.refresh(shop)
    assert permissions.blocked(shop)["missing"] == ["ReadPromotion"]
    fake.granted.add("ReadPromotion")  # what creating needs, not the deletes
    run_offer_jobs()
    db.session.refresh(shop)
    assert permissions.blocked(shop) is None
    assert permissions.cleanup_refused(shop)["missing"] == ["DeletePromotion",
                                                            "DeleteCustomerGroup"]
    offer = quote(client, shop, cart_body(quantity=4)).get_json()["offer"]
    assert accept(client, shop, offer["token"], cart_body(quantity=4)).status_code == 200
