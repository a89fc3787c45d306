"""Installed Shopify shops get the webhook topics a release added, without a new OAuth.

Only Shopify's HTTP is mocked (``responses``), with a fake that keeps the shop's
subscriptions; payloads as documented: ``webhookSubscriptions`` (nodes ``id topic uri``,
``pageInfo``), ``currentAppInstallation.accessScopes`` (``handle``) and
``webhookSubscriptionCreate`` (``webhookSubscription { id }``, ``userErrors``).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses
import sqlalchemy as sa

from connectors.base import Credentials
from connectors.errors import ConnectorError
from connectors.shopify.client import API_VERSION
from connectors.shopify.webhooks import SHOP_TOPICS, TOPIC_SCOPES
from plugin import jobs, shops
from plugin.extensions import db
from plugin.install import shopify_webhooks
from plugin.models import AuditLog

DOMAIN = "reconcile.myshopify.com"
GRAPHQL = f"https://{DOMAIN}/admin/api/{API_VERSION}/graphql.json"
ALL_SCOPES = ["read_products", "read_customers", "read_orders", "read_inventory",
              "write_discounts", "read_publications"]
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def _enum(topic: str) -> str:
    return topic.upper().replace("/", "_")


class Shopify:
    """The shop's subscriptions and granted scopes; ``down`` answers 401 to everything."""

    def __init__(self, scopes: list[str], subscribed: set[str], uri: str) -> None:
        self.scopes = scopes
        self.subs = [{"id": f"gid://shopify/WebhookSubscription/{n}", "topic": _enum(t),
                      "uri": uri} for n, t in enumerate(sorted(subscribed), 1)]
        self.created: list[dict] = []
        self.queries = 0
        self.down = False

    def __call__(self, request: requests.PreparedRequest):
        if self.down:
            return 401, {}, json.dumps({"errors": "[API] Invalid API key or access token"})
        body = json.loads(request.body)
        if "webhookSubscriptionCreate" in body["query"]:
            variables = body["variables"]
            self.created.append(variables)
            sub = {"id": f"gid://shopify/WebhookSubscription/{100 + len(self.created)}",
                   "topic": variables["topic"], "uri": variables["sub"]["uri"]}
            self.subs.append(sub)
            return 200, {}, json.dumps({"data": {"webhookSubscriptionCreate": {
                "webhookSubscription": {"id": sub["id"]}, "userErrors": []}}})
        assert "webhookSubscriptions(" in body["query"], body["query"]
        self.queries += 1
        # two pages, to read past the first
        start = int(body["variables"].get("after") or 0)
        nodes = self.subs[start:start + 10]
        more = start + 10 < len(self.subs)
        return 200, {}, json.dumps({"data": {
            "currentAppInstallation": {"accessScopes": [{"handle": h} for h in self.scopes]},
            "webhookSubscriptions": {
                "pageInfo": {"hasNextPage": more, "endCursor": str(start + 10) if more else None},
                "nodes": nodes}}})


def _shop(app):
    shop = shops.create_shop("shopify", DOMAIN, Credentials(
        DOMAIN, access_token="shpat_x", webhook_secret="shpss_x",
        extra={"scope": ",".join(ALL_SCOPES)}))
    db.session.commit()
    return shop


@pytest.fixture
def shopify(app):
    """(shop, fake Shopify) for a shop installed before ``publications/delete`` was added."""
    shop = _shop(app)
    before = set(SHOP_TOPICS) - {"publications/delete"}
    fake = Shopify(ALL_SCOPES, before, shopify_webhooks.webhook_uri(shop.id))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, GRAPHQL, callback=fake)
        fake.mock = rsps
        yield shop, fake


def _audits(shop) -> list[dict]:
    return [a.detail for a in db.session.scalars(sa.select(AuditLog).where(
        AuditLog.shop_id == shop.id, AuditLog.action == "install.webhooks_reconciled"))]


def _state(shop) -> dict:
    db.session.expire_all()
    return shops.get_shop(shop.id).settings[shopify_webhooks.STATE]


def test_every_shop_topic_names_the_scope_it_needs() -> None:
    """A release adding a topic must say its scope, or the job cannot skip it rightly."""
    assert set(SHOP_TOPICS) <= set(TOPIC_SCOPES)
    assert TOPIC_SCOPES["publications/delete"] == "read_publications"


def test_the_job_subscribes_an_installed_shop_to_the_topic_a_release_added(shopify) -> None:
    shop, fake = shopify
    assert jobs.SCHEDULED_JOBS["shopify_webhooks"] == (jobs.reconcile_shopify_webhooks, 3600)
    assert jobs.reconcile_shopify_webhooks() == 1
    assert fake.created == [{"topic": "PUBLICATIONS_DELETE", "sub": {
        "uri": f"http://127.0.0.1:5000/webhooks/shopify/{shop.id}", "format": "JSON"}}]
    assert fake.queries == 2  # both pages of subscriptions were read
    assert _audits(shop) == [{"created": ["publications/delete"], "skipped": {}}]
    state = _state(shop)
    assert state["topics"] == sorted(SHOP_TOPICS) and state["skipped"] == {}


def test_a_shop_already_subscribed_gets_nothing_created(shopify) -> None:
    shop, fake = shopify
    fake.subs.append({"id": "gid://shopify/WebhookSubscription/99",
                      "topic": "PUBLICATIONS_DELETE", "uri": shopify_webhooks.webhook_uri(shop.id)})
    done = shopify_webhooks.reconcile(shop, now=NOW)
    db.session.commit()
    assert done.created == [] and sorted(done.present) == sorted(SHOP_TOPICS)
    assert fake.created == [] and _audits(shop) == []


def test_a_subscription_to_another_address_does_not_count(shopify) -> None:
    """Shopify delivers to the address subscribed: one for another URL (an old PUBLIC_URL,
    another app install) does not bring this one's events."""
    shop, fake = shopify
    fake.subs.append({"id": "gid://shopify/WebhookSubscription/98",
                      "topic": "PUBLICATIONS_DELETE", "uri": "https://old.example/hooks"})
    assert shopify_webhooks.reconcile(shop, now=NOW).created == ["publications/delete"]


def test_a_topic_whose_scope_was_not_granted_is_skipped_and_logged(shopify, caplog) -> None:
    shop, fake = shopify
    fake.scopes = [s for s in ALL_SCOPES if s != "read_publications"]
    with caplog.at_level(logging.WARNING, logger="shopkeeper.install"):
        done = shopify_webhooks.reconcile(shop, now=NOW)
    db.session.commit()
    assert done.created == [] and done.skipped == {"publications/delete": "read_publications"}
    assert fake.created == []  # Shopify would refuse it
    [record] = [r for r in caplog.records if r.message == "install.shopify.webhooks_scope_missing"]
    assert record.skipped == {"publications/delete": "read_publications"}
    assert _audits(shop) == [{"created": [], "skipped": {"publications/delete":
                                                         "read_publications"}}]
    assert _state(shop)["skipped"] == {"publications/delete": "read_publications"}
    # said once: the next day's check finds the same and neither logs nor audits it again
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="shopkeeper.install"):
        shopify_webhooks.reconcile(shop, now=NOW + shopify_webhooks.RECHECK)
    db.session.commit()
    assert not [r for r in caplog.records if "scope_missing" in r.message]
    assert len(_audits(shop)) == 1


def test_a_write_scope_grants_its_read_topics(shopify) -> None:
    shop, fake = shopify
    fake.scopes = [s for s in ALL_SCOPES if s != "read_publications"] + ["write_publications"]
    assert shopify_webhooks.reconcile(shop, now=NOW).created == ["publications/delete"]


def test_a_checked_shop_is_asked_again_a_day_later_or_when_a_release_adds_a_topic(
        shopify, monkeypatch) -> None:
    shop, fake = shopify
    assert shopify_webhooks.reconcile_due(now=NOW) == 1
    assert shopify_webhooks.reconcile_due(now=NOW + timedelta(hours=23)) == 0
    assert fake.queries == 2  # not asked again within the day
    # a subscription deleted meanwhile (Shopify drops one that keeps failing) comes back
    fake.subs = [s for s in fake.subs if s["topic"] != "ORDERS_PAID"]
    assert shopify_webhooks.reconcile_due(now=NOW + shopify_webhooks.RECHECK) == 1
    assert fake.created[-1]["topic"] == "ORDERS_PAID"
    # a release adding a topic: asked at the next run, however recent the last check
    monkeypatch.setattr(shopify_webhooks, "SHOP_TOPICS", (*SHOP_TOPICS, "orders/fulfilled"))
    assert shopify_webhooks.due(shops.get_shop(shop.id),
                                NOW + shopify_webhooks.RECHECK + timedelta(minutes=1))


def test_a_failing_shop_backs_off_and_the_others_are_still_asked(shopify) -> None:
    shop, fake = shopify
    other = shops.create_shop("shopify", "other.myshopify.com", Credentials(
        "other.myshopify.com", access_token="shpat_y", webhook_secret="shpss_y"))
    db.session.commit()
    other_url = f"https://other.myshopify.com/admin/api/{API_VERSION}/graphql.json"
    other_fake = Shopify(ALL_SCOPES, set(SHOP_TOPICS), shopify_webhooks.webhook_uri(other.id))
    fake.mock.add_callback(responses.POST, other_url, callback=other_fake)
    fake.down = True
    with pytest.raises(ConnectorError):
        shopify_webhooks.reconcile_due(now=NOW)
    assert other_fake.queries > 0  # asked, whatever the order
    state = _state(shop)
    assert state["failures"] == 1
    assert datetime.fromisoformat(state["retry_at"]) == NOW + shopify_webhooks.BACKOFF
    asked = len(fake.mock.calls)
    # within the back-off the failing shop is not called again
    assert shopify_webhooks.reconcile_due(now=NOW + timedelta(minutes=59)) == 0
    assert len(fake.mock.calls) == asked
    # after it, asked again; failing again, it waits twice as long
    with pytest.raises(ConnectorError):
        shopify_webhooks.reconcile_due(now=NOW + timedelta(hours=1))
    assert len(fake.mock.calls) > asked
    state = _state(shop)
    assert state["failures"] == 2
    assert datetime.fromisoformat(state["retry_at"]) == NOW + timedelta(hours=3)
    # Shopify answers again: the topic is subscribed, the failures forgotten
    fake.down = False
    assert shopify_webhooks.reconcile_due(now=NOW + timedelta(hours=3)) == 1
    assert "failures" not in _state(shop) and "retry_at" not in _state(shop)


def test_a_shop_whose_credentials_shopify_refused_is_left_to_its_oauth(shopify) -> None:
    shop, fake = shopify
    shop.installation.auth_failed = True
    db.session.commit()
    assert shopify_webhooks.reconcile_due(now=NOW) == 0
    assert fake.queries == 0


@pytest.mark.parametrize("answer", [
    {"data": {"webhookSubscriptions": {"nodes": []}}},  # no scopes read
    {"data": {"currentAppInstallation": {"accessScopes": []},
              "webhookSubscriptions": "none"}},
])
def test_an_unreadable_subscriptions_answer_creates_nothing(app, answer) -> None:
    """Read as "no subscriptions" or "no scopes", every topic would be created again or
    skipped: it is a connector error, retried after the back-off."""
    shop = _shop(app)
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=answer)
        with pytest.raises(ConnectorError, match="webhookSubscriptions"):
            shopify_webhooks.reconcile(shop, now=NOW)
        assert len(rsps.calls) == 1
