"""HTTP statuses the retrying session hands on to the GraphQL clients.

The session retries 429/500/502/503/504 itself and raises ``TransientError`` when they
outlive its tries; any other server or gateway failure (501, 505, a CDN's 520-530, a 408)
reaches the client. Those say the server failed, not that it refused us: each of the three
GraphQL clients must call them ``TransientError`` (retried later), while a 4xx stays
something else."""

from __future__ import annotations

import pytest
import requests
import responses

from connectors.errors import ConnectorError, TransientError
from connectors.http import RETRY_STATUSES, make_session, server_trouble
from connectors.saleor.client import SaleorGraphQL
from connectors.shopify.client import API_VERSION, ShopifyGraphQL
from connectors.vendure.client import AdminClient

SALEOR = "https://saleor.example/graphql/"
SHOPIFY_DOMAIN = "x.myshopify.com"
SHOPIFY = f"https://{SHOPIFY_DOMAIN}/admin/api/{API_VERSION}/graphql.json"
VENDURE = "https://vendure.example/admin-api"
#: statuses of server trouble that the session does not retry
UNRETRIED = [408, 501, 505, 520, 524, 530]


def _session() -> requests.Session:
    return make_session(retries=1, sleep=lambda _s: None)


#: a gateway's bodies: a page, and JSON that is no GraphQL answer
BODIES = ["<html>gateway</html>", '{"message": "upstream failed"}']


def _run(platform: str, status: int, body: str = BODIES[0]) -> None:
    """One query to ``platform`` that every try answers with ``status`` and ``body``; the
    mock must have been what answered."""
    url = {"saleor": SALEOR, "shopify": SHOPIFY, "vendure": VENDURE}[platform]
    with responses.RequestsMock() as rsps:
        rsps.post(url, status=status, body=body)
        try:
            if platform == "saleor":
                SaleorGraphQL(_session(), SALEOR, "token").execute("query { shop { name } }")
            elif platform == "shopify":
                ShopifyGraphQL(_session(), SHOPIFY_DOMAIN, "token").execute(
                    "query { shop { id } }")
            else:
                AdminClient(_session(), VENDURE, token="t").execute(
                    "query Shop { shop { id } }")
        finally:
            answered = [getattr(call.response, "status_code", None) for call in rsps.calls]
            assert answered and set(answered) == {status}, "the mock was not what answered"


def test_the_unretried_statuses_are_server_trouble_and_not_retried_by_the_session() -> None:
    assert all(server_trouble(s) and s not in RETRY_STATUSES for s in UNRETRIED)
    assert not any(server_trouble(s) for s in (400, 402, 404, 409, 413, 422))


@pytest.mark.parametrize("platform", ["saleor", "shopify", "vendure"])
@pytest.mark.parametrize("status", UNRETRIED)
@pytest.mark.parametrize("body", BODIES)
def test_server_trouble_the_session_passes_on_is_transient(platform, status, body) -> None:
    with pytest.raises(TransientError):
        _run(platform, status, body)


@pytest.mark.parametrize("platform", ["saleor", "shopify", "vendure"])
@pytest.mark.parametrize("status", [502, 503, 504])
def test_server_trouble_the_session_retried_is_transient(platform, status) -> None:
    with pytest.raises(TransientError):
        _run(platform, status)


@pytest.mark.parametrize("platform", ["saleor", "shopify"])
def test_a_client_error_status_is_not_transient(platform) -> None:
    with pytest.raises(ConnectorError) as caught:
        _run(platform, 404)
    assert not isinstance(caught.value, TransientError)
