"""What the widgets send through Shopify's app proxy: only what Shopify documents it
forwards (the method of a GET or POST, the signed query, the body; its own headers), so a
sub-profile PATCH or DELETE is a POST naming ``_method`` and the anonymous shopper id is
``?shopper=``, not a header (``plugin.api.proxy_methods``)."""

from __future__ import annotations

import sqlalchemy as sa

from plugin.api.shopify_proxy import PROXY_URL
from plugin.extensions import db
from plugin.models import SubProfile
from tests.api.conftest import anon_id
from tests.api.test_app_proxy import _refused, proxied
from tests.api.test_app_proxy_widgets import ALICE, PRIVATE, Door, _app_secret, sub_shop

__all__ = ["_app_secret", "sub_shop"]  # fixtures, used by name


def _rows() -> list[tuple[str, str]]:
    return [tuple(r) for r in db.session.execute(sa.select(SubProfile.owner_id,
                                                           SubProfile.name))]


def test_a_post_naming_patch_or_delete_is_one_for_a_signed_in_customer(client, sub_shop):
    alice = Door(client, ALICE)
    maya = alice.create("Maya")
    renamed = alice.open("POST", f"/subprofiles/{maya}", {"name": "My daughter"},
                         _method="PATCH")
    assert renamed.status_code == 200 and renamed.headers["Cache-Control"] == PRIVATE
    assert _rows() == [(ALICE, "My daughter")]
    assert alice.open("POST", f"/subprofiles/{maya}", _method="delete").status_code == 204
    assert _rows() == []


def test_an_anonymous_shopper_is_named_in_the_query_with_no_header_at_all(client, sub_shop):
    shopper = anon_id()
    door = Door(client)  # no X-Shopkeeper-Shopper: Shopify does not say it forwards one
    leo = door.open("POST", "/subprofiles", {"name": "Leo"}, shopper=shopper)
    assert leo.status_code == 201, leo.get_json()
    leo_id = leo.get_json()["id"]
    assert door.open("POST", f"/subprofiles/{leo_id}", {"name": "Leon"}, shopper=shopper,
                     _method="PATCH").status_code == 200
    assert _rows() == [(shopper, "Leon")]
    assert door.open("POST", f"/subprofiles/{leo_id}", shopper=shopper,
                     _method="DELETE").status_code == 204
    assert _rows() == []


def test_only_a_signed_proxied_post_to_put_patch_or_delete_is_overridden(client, sub_shop):
    alice = Door(client, ALICE)
    maya = alice.create("Maya")
    assert alice.open("POST", f"/subprofiles/{maya}", _method="GET").status_code == 405
    assert alice.open("GET", "/subprofiles/active", _method="DELETE").status_code == 405
    # added by a page after Shopify signed the query: the signature no longer holds
    signed = proxied({}, customer=ALICE)
    _refused(client.post(f"{PROXY_URL}/subprofiles/{maya}?{signed}&_method=DELETE"), 401)
    # the direct API is untouched: a POST stays a POST there
    direct = client.post(f"/api/v1/subprofiles/{maya}?key={sub_shop.widget_key}"
                         "&_method=DELETE")
    assert direct.status_code == 405
    assert _rows() == [(ALICE, "Maya")]
