"""A frozen (402) or locked (423) Shopify store pauses the shop; it is no broken install.

Only Shopify's HTTP is mocked (``responses``), answering as documented at
https://shopify.dev/docs/api/usage/response-codes ("402 Payment Required: The requested
shop is currently frozen", "423 Locked: The requested shop is currently locked") with the
bodies reported from the field (see tests/connectors/test_shopify_unavailable.py). The
shop's credentials, cursors and installation stay as they were; syncs wait an hour instead
of retrying in seconds, and the admin page says what Shopify reports instead of
"reinstall".
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
import responses
import sqlalchemy as sa

from connectors.base import Credentials
from connectors.http import make_session
from connectors.shopify.client import API_VERSION
from plugin import jobs, shop_unavailable, shops
from plugin.extensions import db
from plugin.ingestion.sync import run_sync
from plugin.install import shopify_webhooks
from plugin.models import Installation, SyncState
from plugin.models import Product as ProductRow
from plugin.models.types import utcnow
from tests.connectors.test_shopify import product_node

DOMAIN = "frozen.myshopify.com"
GRAPHQL = f"https://{DOMAIN}/admin/api/{API_VERSION}/graphql.json"
BODIES = {402: '{"errors":"Unavailable Shop"}', 423: '{"errors":"This store is unavailable"}'}
FROZEN_NOTE = ("Shopify reports the store as frozen (HTTP 402): syncing resumes once it is "
               "active again")


class Shopify:
    """The shop's Admin GraphQL endpoint: products in two pages (cursor ``c1`` between),
    no customers or orders; ``held_back`` answers every call with that status."""

    def __init__(self) -> None:
        self.held_back: int | None = None
        self.product_cursors: list[str | None] = []

    def __call__(self, request: requests.PreparedRequest):
        if self.held_back is not None:
            return self.held_back, {"Content-Type": "application/json"}, BODIES[self.held_back]
        body = json.loads(request.body)
        query, variables = body["query"], body.get("variables") or {}
        if "SoldCurrencies" in query:
            data = {"shop": {"currencyCode": "GBP", "enabledPresentmentCurrencies": ["GBP"]}}
        elif "products(" in query:
            after = variables.get("after")
            self.product_cursors.append(after)
            data = {"shop": {"currencyCode": "GBP"}, "products": {
                "pageInfo": {"hasNextPage": after is None, "endCursor": "c1" if after is None
                             else None},
                "nodes": [product_node("1" if after is None else "2")]}}
        else:
            root = "customers" if "customers(" in query else "orders"
            data = {root: {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": []}}
        return 200, {}, json.dumps({"data": data})


@pytest.fixture
def shopify(app):
    fake = Shopify()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, GRAPHQL, callback=fake)
        fake.rsps = rsps
        yield fake


@pytest.fixture
def frozen_shop(app):
    shop = shops.create_shop("shopify", DOMAIN, Credentials(
        DOMAIN, access_token="shpat_kept", webhook_secret="shpss_x",
        extra={"currency": "GBP", "timezone": "Europe/London"}))
    db.session.commit()
    return shop


def _sync(shop_id: str, **kwargs):
    return run_sync(shop_id, "products", session=make_session(sleep=lambda _s: None), **kwargs)


def _state() -> SyncState:
    db.session.expire_all()
    return db.session.scalar(sa.select(SyncState).filter_by(resource="products"))


@pytest.mark.parametrize("status", [402, 423])
def test_a_sync_meeting_a_held_back_store_pauses_with_its_cursor_and_no_reauth(
        shopify, frozen_shop, status):
    assert _sync(frozen_shop.id, max_pages=1).records == 1
    assert _state().cursor == "c1"
    shopify.held_back = status
    result = _sync(frozen_shop.id)
    assert result.error and result.retry_after == 3600  # an hour, not seconds
    state = _state()
    assert (state.status, state.cursor) == ("paused", "c1")  # not failed; resumes from c1
    assert not db.session.get(Installation, frozen_shop.id).auth_failed
    assert shops.credentials_for(frozen_shop).access_token == "shpat_kept"
    held = shop_unavailable.state(shops.get_shop(frozen_shop.id))
    assert held["status"] == status
    assert held["reason"] == {402: "frozen", 423: "locked"}[status]


def test_the_scheduled_sync_waits_out_the_hour_then_resumes_from_the_cursor(
        shopify, frozen_shop):
    _sync(frozen_shop.id, max_pages=1)
    shopify.held_back = 402
    _sync(frozen_shop.id)
    asked = len(shopify.rsps.calls)
    jobs.sync_all_shops()  # within the hour: Shopify is not asked at all
    assert len(shopify.rsps.calls) == asked
    shops.update_settings(frozen_shop.id, lambda s: {**s, shop_unavailable.KEY: {
        **s[shop_unavailable.KEY], "retry_at": (utcnow() - timedelta(seconds=1)).isoformat()}})
    db.session.commit()
    shopify.held_back = None  # paid: the store is active again
    jobs.sync_all_shops()
    assert shopify.product_cursors == [None, "c1"]  # resumed, not restarted
    state = _state()
    assert (state.status, state.cursor) == ("idle", None)
    assert sorted(db.session.scalars(sa.select(ProductRow.external_id))) == ["1", "2"]
    assert shop_unavailable.state(shops.get_shop(frozen_shop.id)) is None  # cleared


def test_the_admin_page_says_the_store_is_frozen_not_reinstall(app, client, shopify,
                                                               frozen_shop):
    from tests.admin.conftest import sign_in

    shopify.held_back = 402
    _sync(frozen_shop.id)
    sign_in(app, client, frozen_shop)
    html = client.get("/admin/").get_data(as_text=True)
    assert FROZEN_NOTE in html
    assert "reinstall from your platform" not in html
    data = client.get("/admin/progress.json").get_json()
    assert data["auth_failing"] is False and data["unavailable"].startswith(FROZEN_NOTE)
    shopify.held_back = None  # the next sync that reads a page clears the message
    _sync(frozen_shop.id)
    assert FROZEN_NOTE not in client.get("/admin/").get_data(as_text=True)


def test_the_webhook_reconcile_job_waits_for_a_frozen_store_without_failing(
        shopify, frozen_shop):
    shopify.held_back = 402
    assert jobs.reconcile_shopify_webhooks() == 0  # raised nothing: no failed job run
    shop = shops.get_shop(frozen_shop.id)
    stored = shop.settings[shopify_webhooks.STATE]
    assert "failures" not in stored  # no back-off doubling towards a day
    assert not shopify_webhooks.due(shop, utcnow() + timedelta(minutes=59))
    assert shopify_webhooks.due(shop, utcnow() + timedelta(minutes=61))
    assert not db.session.get(Installation, frozen_shop.id).auth_failed
    assert shop_unavailable.state(shop)["status"] == 402


@pytest.mark.parametrize("status", [402, 423])
def test_a_held_back_stores_token_refresh_marks_nothing_for_reauth(app, status):
    from connectors.errors import ShopUnavailable
    from tests.web import test_shopify_tokens as tokens

    shop = tokens.make_shop(app, expires_in=timedelta(minutes=-1))
    with responses.RequestsMock() as rsps:
        rsps.post(tokens.TOKEN_URL, status=status, body=BODIES[status],
                  content_type="application/json")
        with pytest.raises(ShopUnavailable):
            shops.connector_for(shop).find_discount("SK-1")
    db.session.expire_all()
    assert shops.get_shop(shop.id).installation.auth_failed is False  # no OAuth again
    assert tokens.stored(shop).extra["refresh_token"] == "shprt_old"  # kept for later


#: What a sync state kept when an earlier release met a frozen store (``AuthFailed``).
LEGACY = {"graphql": "AuthFailed: shop is not accessible (HTTP 402)",
          "token": "AuthFailed: token refresh refused (HTTP 402)"}


def _flagged_earlier(shop_id: str, errors: dict[str, tuple[str, str]]) -> None:
    """The installation flagged ``auth_failed`` and each resource's state (status, error)
    as an earlier release left them."""
    db.session.get(Installation, shop_id).auth_failed = True
    for resource, (status, error) in errors.items():
        state = SyncState(shop_id=shop_id, resource=resource)
        state.status, state.last_error = status, error
        db.session.add(state)
    db.session.commit()


def _auth_failed(shop_id: str) -> bool:
    db.session.expire_all()
    return db.session.get(Installation, shop_id).auth_failed


@pytest.mark.parametrize("kept", ["graphql", "token"])
def test_a_shop_an_earlier_release_flagged_for_a_402_recovers_on_its_next_page(
        shopify, frozen_shop, kept):
    """Before ShopUnavailable, a frozen store's 402 marked the installation auth_failed,
    which only an OAuth cleared: the dashboard said "reinstall" and the webhook reconcile
    left the shop out long after the bill was paid. The sync states' errors still tell
    that 402; the next page read lifts the flag, no OAuth needed."""
    _flagged_earlier(frozen_shop.id, {r: ("failed", LEGACY[kept])
                                      for r in ("products", "customers", "orders")})
    shopify.held_back = 402  # still frozen: the flag waits for an answer
    _sync(frozen_shop.id)
    assert _auth_failed(frozen_shop.id)
    shopify.held_back = None  # paid; the products state's own error is gone by now
    assert _sync(frozen_shop.id).records == 2
    assert not _auth_failed(frozen_shop.id)
    assert shop_unavailable.state(shops.get_shop(frozen_shop.id)) is None


@pytest.mark.parametrize("errors", [
    # flagged for another reason (a refused token refresh), though the pages read
    {"orders": ("failed", "AuthFailed: token refresh refused (HTTP 401)")},
    # a 402 met, but also a scope only authorising again grants (Shopify flags both)
    {"customers": ("failed", LEGACY["graphql"]),
     "orders": ("refused", "Shopify refused reading orders: grant read_orders")},
], ids=["not-a-402", "a-scope-missing-too"])
def test_a_flag_no_402_explains_stays_for_the_merchants_oauth(shopify, frozen_shop, errors):
    _flagged_earlier(frozen_shop.id, errors)
    assert _sync(frozen_shop.id).records == 2
    assert _auth_failed(frozen_shop.id)
