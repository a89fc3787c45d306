"""A frozen or locked Shopify store is ``ShopUnavailable``, not refused credentials.

Shopify documents (https://shopify.dev/docs/api/usage/response-codes) "402 Payment
Required: The requested shop is currently frozen. The shop owner needs to log in to the
shop's admin and pay the outstanding balance to unfreeze the shop." and "423 Locked: The
requested shop is currently locked" (Admin API, since the 2018-08-30 changelog "Admin API
requests to locked stores will return a 423 status code instead of 420"). The bodies are
the ones reported from the field: ``{"errors":"Unavailable Shop"}`` (Shopify/shopify-cli
#1770) and ``{"errors":"This store is unavailable"}`` (community.shopify.dev, 2026-03).
"""

from __future__ import annotations

import pytest
import responses

from connectors.errors import AuthFailed, ShopUnavailable
from connectors.http import make_session
from connectors.shopify import install
from connectors.shopify.client import API_VERSION, ShopifyGraphQL

DOMAIN = "frozen.myshopify.com"
GRAPHQL = f"https://{DOMAIN}/admin/api/{API_VERSION}/graphql.json"
#: status -> (body Shopify sends, the reason the error names)
HELD_BACK = {402: ('{"errors":"Unavailable Shop"}', "frozen"),
             423: ('{"errors":"This store is unavailable"}', "locked")}


def _session():
    return make_session(retries=2, sleep=lambda _s: None)


@pytest.mark.parametrize("status", sorted(HELD_BACK))
def test_the_admin_graphql_api_of_a_held_back_store_raises_shop_unavailable(status) -> None:
    body, reason = HELD_BACK[status]
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, status=status, body=body, content_type="application/json")
        with pytest.raises(ShopUnavailable) as caught:
            ShopifyGraphQL(_session(), DOMAIN, "shpat_x").execute("query { shop { id } }")
        assert len(rsps.calls) == 1  # no retry loop: it will not pass in seconds
    assert not isinstance(caught.value, AuthFailed)  # the shop must not re-authorize
    assert (caught.value.status, caught.value.reason) == (status, reason)


@pytest.mark.parametrize("status", sorted(HELD_BACK))
def test_a_held_back_stores_token_endpoint_raises_shop_unavailable(status) -> None:
    body, reason = HELD_BACK[status]
    with responses.RequestsMock() as rsps:
        rsps.post(f"https://{DOMAIN}/admin/oauth/access_token", status=status, body=body,
                  content_type="application/json")
        with pytest.raises(ShopUnavailable) as caught:
            install.refresh_access_token(_session(), DOMAIN, api_key="k", api_secret="s",
                                         refresh_token="shprt_x")
    assert not isinstance(caught.value, AuthFailed)
    assert caught.value.reason == reason

