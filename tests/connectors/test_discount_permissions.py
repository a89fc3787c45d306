"""Each platform's documented permission refusal is ``PermissionDenied``, and each connector
lists the discount permissions its credentials lack (``missing_discount_permissions``).

Refusals: Shopify ``ACCESS_DENIED`` (shopify.dev changelog "New error messages for GraphQL
operations without necessary access scopes", 2020-07: message and ``requiredAccess``),
Saleor ``PermissionDenied`` (saleor/core/exceptions.py's message, the code under
``extensions.exception``), Vendure ``FORBIDDEN`` (tests/fixtures/vendure/admin_forbidden.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses

import connectors
from connectors.base import Credentials
from connectors.errors import AuthFailed, PermissionDenied, TransientError
from connectors.http import make_session
from connectors.shopify.client import API_VERSION

SHOPIFY = f"https://perm.myshopify.com/admin/api/{API_VERSION}/graphql.json"
SALEOR = "https://perm.saleor.io/graphql/"
VENDURE = "https://perm.vendure.example/admin-api"
FORBIDDEN = json.loads((Path(__file__).parents[1] / "fixtures" / "vendure"
                        / "admin_forbidden.json").read_text())


def _connector(platform: str, **extra: str):
    session = make_session(retries=0, sleep=lambda _: None)
    credentials = {
        "shopify": Credentials("perm.myshopify.com", access_token="shpat_x"),
        "saleor": Credentials("perm.saleor.io", access_token="tok", api_url=SALEOR,
                              extra={"channel_id": "Q2hhbm5lbDox", **extra}),
        "vendure": Credentials("perm.vendure.example", access_token="tok", api_url=VENDURE,
                               extra=extra),
    }[platform]
    return connectors.get(platform)(credentials, session=session)


def _ask(platform: str, call: str = "find_discount", **extra: str):
    connector = _connector(platform, **extra)
    return connector.find_discount("SK-1") if call == "find_discount" \
        else connector.missing_discount_permissions()


@responses.activate
def test_shopify_access_denied_names_the_scope() -> None:
    responses.post(SHOPIFY, json={"data": {"codeDiscountNodeByCode": None}, "errors": [{
        "message": "Access denied for codeDiscountNodeByCode field. Required access: "
                   "`read_discounts` access scope.",
        "locations": [{"line": 2, "column": 3}], "path": ["codeDiscountNodeByCode"],
        "extensions": {"code": "ACCESS_DENIED",
                       "documentation": "https://shopify.dev/api/usage/access-scopes",
                       "requiredAccess": "`read_discounts` access scope."}}]})
    with pytest.raises(PermissionDenied) as raised:
        _ask("shopify")
    assert raised.value.permission == "read_discounts"


@responses.activate
def test_shopify_403_is_a_permission_refusal_and_401_is_not() -> None:
    responses.post(SHOPIFY, status=403, body="Forbidden")
    with pytest.raises(PermissionDenied):
        _ask("shopify")
    responses.replace("POST", SHOPIFY, status=401, body="Unauthorized")
    with pytest.raises(AuthFailed) as raised:
        _ask("shopify")
    assert not isinstance(raised.value, PermissionDenied)


@responses.activate
def test_shopify_lists_the_missing_discount_scope() -> None:
    responses.post(SHOPIFY, json={"data": {"currentAppInstallation": {"accessScopes": [
        {"handle": "read_products"}, {"handle": "read_orders"}]}}})
    assert _ask("shopify", "missing") == ("write_discounts",)
    responses.replace("POST", SHOPIFY, json={"data": {"currentAppInstallation": {
        "accessScopes": [{"handle": "read_products"}, {"handle": "write_discounts"}]}}})
    assert _ask("shopify", "missing") == ()
    responses.replace("POST", SHOPIFY, json={"data": {"currentAppInstallation": None}})
    with pytest.raises(TransientError):  # no answer is not "everything is missing"
        _ask("shopify", "missing")


@responses.activate
def test_saleor_permission_denied_names_the_permission_token_errors_do_not() -> None:
    responses.post(SALEOR, json={"data": {"vouchers": None}, "errors": [{
        "message": "To access this path, you need one of the following permissions: "
                   "MANAGE_DISCOUNTS", "path": ["vouchers"],
        "extensions": {"exception": {"code": "PermissionDenied"}}}]})
    with pytest.raises(PermissionDenied) as raised:
        _ask("saleor")
    assert raised.value.permission == "MANAGE_DISCOUNTS"
    responses.replace("POST", SALEOR, json={"data": None, "errors": [{
        "message": "Signature has expired",
        "extensions": {"exception": {"code": "ExpiredSignatureError"}}}]})
    with pytest.raises(AuthFailed) as expired:
        _ask("saleor")
    assert not isinstance(expired.value, PermissionDenied)


@responses.activate
def test_saleor_lists_the_apps_missing_discount_permission() -> None:
    responses.post(SALEOR, json={"data": {"app": {"permissions": [
        {"code": "MANAGE_PRODUCTS"}, {"code": "MANAGE_ORDERS"}]}}})
    assert _ask("saleor", "missing") == ("MANAGE_DISCOUNTS",)
    responses.replace("POST", SALEOR, json={"data": {"app": {"permissions": [
        {"code": "MANAGE_DISCOUNTS"}]}}})
    assert _ask("saleor", "missing") == ()
    responses.replace("POST", SALEOR, json={"data": {"app": None}})
    with pytest.raises(AuthFailed):  # a token that is no app's: dead, not short of rights
        _ask("saleor", "missing")


@responses.activate
def test_vendure_forbidden_is_a_permission_refusal() -> None:
    responses.post(VENDURE, json=FORBIDDEN)
    with pytest.raises(PermissionDenied):
        _ask("vendure")


def _me(*channels: tuple[str, str, list[str]]) -> dict:
    return {"data": {"me": {"channels": [{"code": code, "token": token, "permissions": perms}
                                         for code, token, perms in channels]}}}


@responses.activate
def test_vendure_lists_the_roles_missing_permissions_on_the_shops_channel() -> None:
    old_readme = ["Authenticated", "ReadCatalog", "ReadCustomer", "ReadOrder",
                  "CreatePromotion", "CreateCustomerGroup"]
    everything = [*old_readme, "ReadPromotion", "DeletePromotion", "DeleteCustomerGroup"]
    responses.post(VENDURE, json=_me(("__default_channel__", "t-default", old_readme),
                                     ("uk", "t-uk", everything)))
    assert _ask("vendure", "missing") == ("ReadPromotion", "DeletePromotion",
                                          "DeleteCustomerGroup")
    assert _ask("vendure", "missing", channel_token="t-uk") == ()
    responses.replace("POST", VENDURE, json=_me(("__default_channel__", "t", ["SuperAdmin"])))
    assert _ask("vendure", "missing") == ()
    forbidden = {**FORBIDDEN, "data": {"me": None}}
    responses.replace("POST", VENDURE, json=forbidden)  # an expired session: not listed
    with pytest.raises(AuthFailed):
        _ask("vendure", "missing")
