"""Offers stop while Shopify holds the store back (402 frozen, 423 locked): the shopper gets
no offer, not an error asking them to try again.

Shopify's ``discountCodeBasicCreate`` is behind ``responses``, answering as documented at
https://shopify.dev/docs/api/usage/response-codes with the bodies reported from the field
(see tests/connectors/test_shopify_unavailable.py).
"""

from __future__ import annotations

import pytest
import responses
import sqlalchemy as sa

from connectors.base import Credentials
from connectors.shopify.client import API_VERSION
from plugin import shop_unavailable, shops
from plugin.extensions import db
from plugin.models import Installation, Offer
from plugin.offers import service
from tests.offers.conftest import accept, quote
from tests.offers.test_discounts import _shop

DOMAIN = "offers.myshopify.com"
GRAPHQL = f"https://{DOMAIN}/admin/api/{API_VERSION}/graphql.json"
BODIES = {402: '{"errors":"Unavailable Shop"}', 423: '{"errors":"This store is unavailable"}'}


@pytest.mark.parametrize("status", [402, 423])
@responses.activate
def test_an_accept_meeting_a_held_back_store_withdraws_and_offers_stop(client, app, status):
    shop = _shop("shopify", DOMAIN, Credentials(DOMAIN, access_token="shpat_x",
                                                webhook_secret="shpss_x"))
    responses.post(GRAPHQL, status=status, body=BODIES[status],
                   content_type="application/json")
    offer = quote(client, shop).get_json()["offer"]
    assert offer is not None
    res = accept(client, shop, offer["token"])
    assert res.status_code == 409, res.get_json()  # no offer, not "try again" (502)
    assert res.get_json()["message"] == service.PAUSED  # and no discount code
    db.session.expire_all()
    row = db.session.scalar(sa.select(Offer).filter_by(public_id=offer["id"]))
    assert row.status == "superseded"  # withdrawn, its reservation released
    assert not db.session.get(Installation, shop.id).auth_failed
    assert shop_unavailable.state(shops.get_shop(shop.id))["status"] == status
    asked = len(responses.calls)
    res = quote(client, shop)
    assert res.status_code == 200
    body = res.get_json()
    assert body["offer"] is None and body["reason_code"] == shop_unavailable.REASON
    assert len(responses.calls) == asked  # the platform was not asked


@responses.activate
def test_an_offer_quoted_before_the_store_froze_is_withdrawn_on_accept(client, app):
    from connectors.errors import ShopUnavailable

    shop = _shop("shopify", DOMAIN, Credentials(DOMAIN, access_token="shpat_x",
                                                webhook_secret="shpss_x"))
    offer = quote(client, shop).get_json()["offer"]
    assert offer is not None
    shop_unavailable.record(shop, ShopUnavailable(status=402, reason="frozen"))
    db.session.commit()
    res = accept(client, shop, offer["token"])
    assert res.status_code == 409
    assert len(responses.calls) == 0  # not asked while it is known to be frozen
