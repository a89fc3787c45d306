"""A sync the platform refuses for a missing read permission stops that resource only, says
what to grant, and leaves the credentials good (except on Shopify, where OAuth re-grants).

The platforms are fakes behind ``responses`` with their documented refusals: Vendure's
``FORBIDDEN`` (tests/fixtures/vendure/admin_forbidden.json), Saleor's ``PermissionDenied``
("To access this path, you need one of the following permissions: MANAGE_ORDERS",
saleor/core/exceptions.py) and Shopify's ``ACCESS_DENIED`` (shopify.dev changelog
2020-07: "Access denied for customers field. Required access: `read_customers` access
scope."). Each lists the credentials' permissions when asked, which is what tells a
missing permission from a dead token.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import responses

from connectors.base import Credentials
from connectors.http import make_session
from connectors.shopify.client import API_VERSION
from plugin import jobs, shops
from plugin.extensions import db
from plugin.ingestion.sync import run_sync, sync_progress

FORBIDDEN = json.loads((Path(__file__).parents[1] / "fixtures" / "vendure"
                        / "admin_forbidden.json").read_text())
VENDURE = "https://sync-perm.vendure.example/admin-api"
SALEOR = "https://sync-perm.saleor.cloud/graphql/"
SHOPIFY_DOMAIN = "sync-perm.myshopify.com"
SHOPIFY = f"https://{SHOPIFY_DOMAIN}/admin/api/{API_VERSION}/graphql.json"
#: Vendure's list query of each resource and the permission it needs (README table)
VENDURE_READS = {"Products": ("products", "ReadCatalog"),
                 "Customers": ("customers", "ReadCustomer"),
                 "Orders": ("orders", "ReadOrder")}


class Vendure:
    """A Vendure Admin API whose role holds ``granted`` on the default channel; ``dead``
    answers as an expired session does (FORBIDDEN to everything, ``me`` included)."""

    def __init__(self, granted: set[str]) -> None:
        self.granted = granted
        self.dead = False

    def __call__(self, request: requests.PreparedRequest):
        query = json.loads(request.body)["query"]
        return 200, {}, json.dumps(self.answer(query))

    def answer(self, query: str) -> dict:
        if "CurrentPermissions" in query:
            if self.dead:
                return {**FORBIDDEN, "data": {"me": None}}
            return {"data": {"me": {"channels": [{
                "code": "__default_channel__", "token": "t",
                "permissions": ["Authenticated", *sorted(self.granted)]}]}}}
        for name, (root, needed) in VENDURE_READS.items():
            if f"query {name}(" in query:
                if self.dead or needed not in self.granted:
                    return {**FORBIDDEN, "data": {root: None}}
                return {"data": {root: {"items": [], "totalItems": 0}}}
        return {**FORBIDDEN, "data": None}  # the channel's currencies: not this test's


def _vendure_shop(granted: set[str]):
    shop = shops.create_shop("vendure", "sync-perm.vendure.example", Credentials(
        "sync-perm.vendure.example", access_token="tok", api_url=VENDURE,
        webhook_secret="s", extra={"timezone": "UTC"}))
    db.session.commit()
    return shop, Vendure(granted)


def _sync(shop_id: str, resource: str, platform, url: str = VENDURE):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, url, callback=platform)
        result = run_sync(shop_id, resource,
                          session=make_session(retries=0, sleep=lambda s: None))
    db.session.expire_all()
    return result


def _state(shop_id: str, resource: str) -> dict:
    return next(s for s in sync_progress(shop_id) if s["resource"] == resource)


def test_a_vendure_role_without_read_order_stops_the_orders_sync_only(app):
    shop, vendure = _vendure_shop({"ReadCatalog", "ReadCustomer"})
    result = _sync(shop.id, "orders", vendure)
    state = _state(shop.id, "orders")
    assert state["status"] == "refused"
    assert state["last_error"].startswith(
        "Vendure refused reading orders: missing permission ReadOrder.")
    assert "add ReadOrder to the role" in state["last_error"]
    assert result.error == state["last_error"]
    assert shops.get_shop(shop.id).installation.auth_failed is False  # credentials are good
    assert _sync(shop.id, "products", vendure).finished  # the other resources go on
    assert _state(shop.id, "products")["status"] == "idle"


def test_the_refusal_stays_shown_until_a_page_is_read_again(app):
    shop, vendure = _vendure_shop({"ReadCatalog", "ReadCustomer"})
    _sync(shop.id, "orders", vendure)
    _sync(shop.id, "orders", vendure)  # still refused: still said
    assert _state(shop.id, "orders")["status"] == "refused"
    vendure.granted.add("ReadOrder")
    assert _sync(shop.id, "orders", vendure).finished
    state = _state(shop.id, "orders")
    assert (state["status"], state["last_error"]) == ("idle", None)


def test_an_expired_vendure_session_still_flags_the_credentials(app):
    shop, vendure = _vendure_shop({"ReadCatalog", "ReadCustomer", "ReadOrder"})
    vendure.dead = True
    result = _sync(shop.id, "orders", vendure)
    assert "PermissionDenied" in result.error
    assert _state(shop.id, "orders")["status"] == "failed"
    assert shops.get_shop(shop.id).installation.auth_failed is True


def test_the_scheduled_sync_goes_on_with_the_readable_resources(app, monkeypatch):
    shop, vendure = _vendure_shop({"ReadCatalog", "ReadOrder"})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, VENDURE, callback=vendure)
        monkeypatch.setattr(shops, "connector_for", _no_retries(shops.connector_for))
        assert jobs.sync_all_shops() == 3
    db.session.expire_all()
    statuses = {s["resource"]: s["status"] for s in sync_progress(shop.id)}
    assert statuses == {"products": "idle", "customers": "refused", "orders": "idle"}
    assert shops.get_shop(shop.id).installation.auth_failed is False


def _no_retries(connector_for):
    def wrapped(shop, session=None):
        return connector_for(shop, session=session or make_session(retries=0,
                                                                   sleep=lambda s: None))
    return wrapped


def test_dashboard_says_which_permission_to_grant(app, client):
    from tests.admin.conftest import sign_in

    shop, vendure = _vendure_shop({"ReadCatalog", "ReadOrder"})
    _sync(shop.id, "customers", vendure)
    sign_in(app, client, shop)
    html = client.get("/admin/").get_data(as_text=True)
    assert "Vendure refused reading customers: missing permission ReadCustomer." in html
    assert "authorisation failing" not in html
    data = client.get("/admin/progress.json").get_json()
    assert data["auth_failing"] is False
    assert [s["status"] for s in data["syncs"]] == ["refused"]


class Saleor:
    """A Saleor app granted ``granted``; its orders need MANAGE_ORDERS."""

    def __init__(self, granted: set[str]) -> None:
        self.granted = granted

    def __call__(self, request: requests.PreparedRequest):
        query = json.loads(request.body)["query"]
        if "permissions" in query and "app" in query:
            body = {"data": {"app": {"permissions": [{"code": c} for c in self.granted]}}}
        elif "query Channels" in query:  # the currencies the shop sells (any app may ask)
            body = {"data": {"channels": [{"id": "Q2hhbm5lbDox", "slug": "default-channel",
                                           "name": "Default channel", "currencyCode": "USD",
                                           "isActive": True}]}}
        elif "orders" in query and "MANAGE_ORDERS" not in self.granted:
            body = {"data": {"orders": None}, "errors": [{
                "message": "To access this path, you need one of the following "
                           "permissions: MANAGE_ORDERS", "path": ["orders"],
                "extensions": {"exception": {"code": "PermissionDenied"}}}]}
        else:
            pytest.fail(f"unexpected query: {query}")
        return 200, {}, json.dumps(body)


def test_a_saleor_app_without_manage_orders_stops_the_orders_sync_only(app):
    shop = shops.create_shop("saleor", "sync-perm.saleor.cloud", Credentials(
        "sync-perm.saleor.cloud", access_token="tok", api_url=SALEOR, webhook_secret="s",
        extra={"channel_id": "Q2hhbm5lbDox", "channel": "default-channel",
               "timezone": "UTC", "currency": "USD"}))
    db.session.commit()
    _sync(shop.id, "orders", Saleor({"MANAGE_PRODUCTS", "MANAGE_USERS"}), SALEOR)
    state = _state(shop.id, "orders")
    assert state["status"] == "refused"
    assert state["last_error"].startswith(
        "Saleor refused reading orders: missing permission MANAGE_ORDERS.")
    assert "grant MANAGE_ORDERS to the Shopkeeper app" in state["last_error"]
    assert shops.get_shop(shop.id).installation.auth_failed is False


def _shopify(request: requests.PreparedRequest):
    query = json.loads(request.body)["query"]
    if "currentAppInstallation" in query:
        body = {"data": {"currentAppInstallation": {"accessScopes": [
            {"handle": "read_products"}, {"handle": "read_orders"}]}}}
    else:
        body = {"data": {"customers": None}, "errors": [{
            "message": "Access denied for customers field. Required access: "
                       "`read_customers` access scope.",
            "locations": [{"line": 2, "column": 3}], "path": ["customers"],
            "extensions": {"code": "ACCESS_DENIED",
                           "documentation": "https://shopify.dev/api/usage/access-scopes",
                           "requiredAccess": "`read_customers` access scope."}}]}
    return 200, {}, json.dumps(body)


def test_a_shopify_token_without_the_scope_names_it_and_keeps_the_oauth_path(app):
    shop = shops.create_shop("shopify", SHOPIFY_DOMAIN, Credentials(
        SHOPIFY_DOMAIN, access_token="shpat_x",
        extra={"currency": "GBP", "timezone": "UTC"}))
    db.session.commit()
    _sync(shop.id, "customers", _shopify, SHOPIFY)
    state = _state(shop.id, "customers")
    assert state["status"] == "refused"
    assert state["last_error"].startswith(
        "Shopify refused reading customers: missing permission read_customers.")
    # approving the app's access again is what grants a scope: the launch goes via OAuth
    assert shops.get_shop(shop.id).installation.auth_failed is True
