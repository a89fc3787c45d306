"""Shopify and Saleor GraphQL answers of an unexpected shape are connector errors.

A GraphQL answer's ``errors`` and ``extensions`` are outside the schema: a proxy or a broken
server can give them any shape, and an entry or an ``extensions`` that was no object (or a
code that was a list) raised AttributeError or TypeError, a crash instead of a platform
fault (a sync then lost its cursor's meaning of "try again next run")."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from connectors.errors import ConnectorError, InvalidPayload
from connectors.saleor.client import SaleorGraphQL
from connectors.shopify.client import ShopifyGraphQL, throttle_delay


def _answer(body: Any, status: int = 200) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    return response


class _Session:
    throttle_hint = "set"  # not None: the Shopify client leaves it alone

    def __init__(self, body: Any) -> None:
        self.body = body

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        return _answer(self.body)


ODD_ERRORS = [
    {"errors": [{"message": "boom", "extensions": "internal"}]},
    {"errors": [{"message": "boom", "extensions": ["code", "X"]}]},
    {"errors": [{"message": "boom", "extensions": {"code": ["X"]}}]},
    {"errors": ["boom", 3, None]},
    {"errors": "boom"},
    {"errors": {"message": "boom"}},
]


@pytest.mark.parametrize("body", [*ODD_ERRORS, {"data": ["shop"]}])
def test_a_shopify_answer_of_an_unexpected_shape_is_a_connector_error(body) -> None:
    client = ShopifyGraphQL(_Session(body), "x.myshopify.com", "token")
    with pytest.raises(ConnectorError):
        client.execute("query { shop { id } }")


@pytest.mark.parametrize("extensions", ["cost", {"cost": ["x"]}])
def test_a_shopify_answer_with_odd_extensions_is_still_read(extensions) -> None:
    body = {"data": {"shop": {"id": "1"}}, "extensions": extensions}
    client = ShopifyGraphQL(_Session(body), "x.myshopify.com", "token")
    assert client.execute("query { shop { id } }") == {"shop": {"id": "1"}}


@pytest.mark.parametrize("extensions", ["cost", {"cost": "x"}, {"cost": {"throttleStatus": 1}}])
def test_a_shopify_throttle_with_odd_extensions_waits_a_second(extensions) -> None:
    throttled = {"errors": [{"extensions": {"code": "THROTTLED"}}], "extensions": extensions}
    assert throttle_delay(_answer(throttled)) == 1.0


@pytest.mark.parametrize("body", [
    *ODD_ERRORS,
    {"errors": [{"message": "boom", "extensions": {"exception": "PermissionDenied"}}]},
    {"errors": [{"message": "boom", "extensions": {"exception": {"code": ["X"]}}}]},
    {"data": ["shop"]},
])
def test_a_saleor_answer_of_an_unexpected_shape_is_a_connector_error(body) -> None:
    client = SaleorGraphQL(_Session(body), "https://saleor.example/graphql/", "token")
    with pytest.raises(ConnectorError):
        client.execute("query { shop { name } }")


@pytest.mark.parametrize("result", ["refused", {"errors": ["boom"]}, {"errors": "boom"}])
def test_a_saleor_mutation_answer_of_an_unexpected_shape_is_invalid_payload(result) -> None:
    client = SaleorGraphQL(_Session({"data": {"voucherDelete": result}}),
                           "https://saleor.example/graphql/", "token")
    with pytest.raises(InvalidPayload):
        client.mutate("mutation { voucherDelete }", {}, "voucherDelete")
