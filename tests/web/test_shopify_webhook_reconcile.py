"""Installed Shopify shops get the webhook topics a release added, without a new OAuth.

Only Shopify's HTTP is mocked (``responses``), with a fake that keeps the shop's
subscriptions; payloads as documented: ``webhookSubscriptions`` (nodes ``id topic uri``,
``pageInfo``), ``currentAppInstallation.accessScopes`` (``handle``),
``webhookSubscriptionCreate`` and ``webhookSubscriptionUpdate`` (``webhookSubscription``,
``userErrors``) and ``webhookSubscriptionDelete`` (``deletedWebhookSubscriptionId``,
``userErrors``).
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
              "write_discounts", "read_publications", "write_app_proxy"]
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
        self.updated: list[dict] = []
        self.deleted: list[str] = []
        self.queries = 0
        self.down = False

    def __call__(self, request: requests.PreparedRequest):
        if self.down:
            return 401, {}, json.dumps({"errors": "[API] Invalid API key or access token"})
        body = json.loads(request.body)
        if "webhookSubscriptionUpdate" in body["query"]:
            return self.update(body["variables"])
        if "webhookSubscriptionDelete" in body["query"]:
            return self.delete(body["variables"])
        if "webhookSubscriptionCreate" in body["query"]:
            variables = body["variables"]
            if self.taken(variables["topic"], variables["sub"]["uri"]):
                return self.refused("webhookSubscriptionCreate", TAKEN)
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


    def taken(self, topic: str, uri: str) -> bool:
        return any(s["topic"] == topic and s["uri"] == uri for s in self.subs)

    @staticmethod
    def refused(root: str, message: str):
        empty = "deletedWebhookSubscriptionId" if root.endswith("Delete") \
            else "webhookSubscription"
        field = ["id"] if message == GONE else ["webhookSubscription"]  # as Shopify says
        return 200, {}, json.dumps({"data": {root: {empty: None, "userErrors": [
            {"field": field, "message": message}]}}})

    def update(self, variables: dict):
        """Moves the subscription (its topic stays); the address must be free for it."""
        self.updated.append(variables)
        sub = next((s for s in self.subs if s["id"] == variables["id"]), None)
        if sub is None:
            return self.refused("webhookSubscriptionUpdate", GONE)
        if self.taken(sub["topic"], variables["sub"]["uri"]):
            return self.refused("webhookSubscriptionUpdate", TAKEN)
        sub["uri"] = variables["sub"]["uri"]
        return 200, {}, json.dumps({"data": {"webhookSubscriptionUpdate": {
            "webhookSubscription": {"id": sub["id"], "uri": sub["uri"]}, "userErrors": []}}})

    def delete(self, variables: dict):
        self.deleted.append(variables["id"])
        if not any(s["id"] == variables["id"] for s in self.subs):
            return self.refused("webhookSubscriptionDelete", GONE)
        self.subs = [s for s in self.subs if s["id"] != variables["id"]]
        return 200, {}, json.dumps({"data": {"webhookSubscriptionDelete": {
            "deletedWebhookSubscriptionId": variables["id"], "userErrors": []}}})


TAKEN = "Address for this topic has already been taken"
GONE = "Webhook subscription does not exist"


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
    assert _audits(shop) == [{"created": ["publications/delete"], "skipped": {},
                              "moved": [], "removed": [], "dropped": []}]
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
    done = shopify_webhooks.reconcile(shop, now=NOW)
    assert done.created == ["publications/delete"]
    assert done.moved == done.removed == [] and fake.updated == fake.deleted == []
    assert {"id": "gid://shopify/WebhookSubscription/98", "topic": "PUBLICATIONS_DELETE",
            "uri": "https://old.example/hooks"} in fake.subs  # another path: left alone


def _former(shop, base: str = "https://old.example") -> str:
    """The shop's webhook address under a former PUBLIC_URL."""
    return f"{base}/webhooks/shopify/{shop.id}"


def test_subscriptions_to_a_former_public_url_are_moved_here(shopify, caplog) -> None:
    """After PUBLIC_URL changes, Shopify would deliver to the old address too (dead, or
    another host's): each subscription of this shop's webhook path at another base URL
    is moved to the current address, its topic kept."""
    shop, fake = shopify
    here = shopify_webhooks.webhook_uri(shop.id)
    old = {"https://old.example", "http://10.0.0.5:8000/shopkeeper"}
    for n, sub in enumerate(fake.subs):  # under two former base URLs, one with a path
        sub["uri"] = _former(shop, sorted(old)[n % 2])
    with caplog.at_level(logging.INFO, logger="shopkeeper.install"):
        assert shopify_webhooks.reconcile_due(now=NOW) == len(SHOP_TOPICS)
    assert {(s["topic"], s["uri"]) for s in fake.subs} == {(_enum(t), here)
                                                           for t in SHOP_TOPICS}
    assert len(fake.subs) == len(SHOP_TOPICS)
    assert all(u["sub"] == {"uri": here} for u in fake.updated)
    assert len(fake.updated) == len(SHOP_TOPICS) - 1 and fake.deleted == []
    [audit] = _audits(shop)
    assert audit["created"] == ["publications/delete"] and audit["removed"] == []
    assert sorted(audit["moved"]) == sorted(set(SHOP_TOPICS) - {"publications/delete"})
    assert any(r.message == "install.shopify.webhooks_moved" for r in caplog.records)
    # the next check finds them here: nothing moved again
    assert shopify_webhooks.reconcile(shop, now=NOW + shopify_webhooks.RECHECK).moved == []


def test_a_former_address_beside_the_current_one_is_deleted(shopify) -> None:
    """A topic subscribed both here and at a former address is delivered twice: the
    former one goes (moving it would be 'taken'). Other paths, another shop id and
    non-HTTP endpoints are not this shop's address and stay."""
    shop, fake = shopify
    others = [{"id": f"gid://shopify/WebhookSubscription/{90 + n}", "topic": "ORDERS_PAID",
               "uri": uri} for n, uri in enumerate([
                   "https://old.example/webhooks/shopify/shp_000000000000",
                   f"https://old.example/webhooks/shopify/{shop.id}/extra",
                   f"https://old.example/other/shopify/{shop.id}",
                   "pubsub://project:topic"])]
    stale = {"id": "gid://shopify/WebhookSubscription/80", "topic": "ORDERS_PAID",
             "uri": _former(shop)}
    fake.subs += [*others, stale]
    done = shopify_webhooks.reconcile(shop, now=NOW)
    db.session.commit()
    assert done.removed == ["orders/paid"] and done.moved == []
    assert fake.deleted == [stale["id"]] and fake.updated == []
    assert stale not in fake.subs and all(o in fake.subs for o in others)
    assert _audits(shop)[0]["removed"] == ["orders/paid"]


def test_a_new_public_url_makes_the_shop_due_at_once(shopify, app, monkeypatch) -> None:
    shop, fake = shopify
    assert shopify_webhooks.reconcile_due(now=NOW) == 1
    assert not shopify_webhooks.due(shops.get_shop(shop.id), NOW + timedelta(hours=1))
    old = shopify_webhooks.webhook_uri(shop.id)
    monkeypatch.setitem(app.config, "PUBLIC_URL", "https://new.example/sk/")
    assert shopify_webhooks.due(shops.get_shop(shop.id), NOW + timedelta(hours=1))
    assert shopify_webhooks.reconcile_due(now=NOW + timedelta(hours=1)) == len(SHOP_TOPICS)
    assert {s["uri"] for s in fake.subs} == {
        f"https://new.example/sk/webhooks/shopify/{shop.id}"} != {old}


@pytest.mark.parametrize("answer", [
    {"webhookSubscriptionUpdate": {"webhookSubscription": None, "userErrors": [
        {"field": ["webhookSubscription", "uri"], "message": "Address is invalid"}]}},
    {"webhookSubscriptionUpdate": None},
    {"webhookSubscriptionUpdate": {"webhookSubscription": None, "userErrors": []}},
])
def test_a_move_shopify_refuses_or_does_not_confirm_backs_off(app, answer) -> None:
    """Refused, or answered with neither errors nor the subscription (a proxy's): not
    taken for moved; the check fails and is asked again after the back-off."""
    shop = _shop(app)
    listed = {"data": {
        "currentAppInstallation": {"accessScopes": [{"handle": h} for h in ALL_SCOPES]},
        "webhookSubscriptions": {"pageInfo": {"hasNextPage": False, "endCursor": None},
                                 "nodes": [{"id": "gid://shopify/WebhookSubscription/1",
                                            "topic": "PRODUCTS_CREATE",
                                            "uri": _former(shop)}]}}}
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=listed)
        rsps.post(GRAPHQL, json={"data": answer})
        with pytest.raises(ConnectorError, match=r"webhookSubscriptionUpdate|refused to move"):
            shopify_webhooks.reconcile(shop, now=NOW)
    assert shop.settings[shopify_webhooks.STATE]["failures"] == 1  # the caller commits


@pytest.mark.parametrize("answer", [
    {"webhookSubscriptionCreate": None},
    {"webhookSubscriptionCreate": {"webhookSubscription": None, "userErrors": []}},
])
def test_a_create_shopify_does_not_confirm_backs_off(app, answer) -> None:
    """Neither errors nor the subscription (a proxy's answer): it counted as created and
    the shop was checked for a day with the topic unsubscribed. Now the check fails and
    is asked again after the back-off (a subscription that was made answers "taken")."""
    shop = _shop(app)
    listed = {"data": {
        "currentAppInstallation": {"accessScopes": [{"handle": h} for h in ALL_SCOPES]},
        "webhookSubscriptions": {"pageInfo": {"hasNextPage": False, "endCursor": None},
                                 "nodes": []}}}
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=listed)
        rsps.post(GRAPHQL, json={"data": answer})
        with pytest.raises(ConnectorError, match=r"confirmed no \w+/?\w* subscription"):
            shopify_webhooks.reconcile(shop, now=NOW)
    assert shop.settings[shopify_webhooks.STATE]["failures"] == 1  # the caller commits


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
                                                         "read_publications"},
                              "moved": [], "removed": [], "dropped": []}]
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
    {"data": {"currentAppInstallation": {"accessScopes": "read_products"},
              "webhookSubscriptions": {"nodes": []}}},
    {"data": {"currentAppInstallation": {"accessScopes": []},
              "webhookSubscriptions": {"nodes": None}}},
    *({"data": {"currentAppInstallation": {"accessScopes": [{"handle": h} for h in ALL_SCOPES]},
                "webhookSubscriptions": {"nodes": [node]}}} for node in (
        "gid://shopify/WebhookSubscription/1", None,
        {"id": "gid://shopify/WebhookSubscription/1", "topic": "PRODUCTS_CREATE"},
        {"id": "gid://shopify/WebhookSubscription/1", "uri": "https://old.example/hooks"},
        {"id": "gid://shopify/WebhookSubscription/1", "topic": ["PRODUCTS_CREATE"],
         "uri": "https://old.example/hooks"})),
])
def test_an_unreadable_subscriptions_answer_creates_nothing(app, answer) -> None:
    """Read as "no subscriptions" or "no scopes", every topic would be created again or
    skipped. It is no refusal either (Shopify's own are its ``errors``): a transient
    error, retried after the back-off. So is a listing with an entry that is no
    subscription (no object, no topic or address): acting on the rest, a topic it held
    would be subscribed again, or one at a former address or of a dropped topic kept."""
    from connectors.errors import TransientError

    shop = _shop(app)
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json=answer)
        with pytest.raises(TransientError, match="webhookSubscriptions"):
            shopify_webhooks.reconcile(shop, now=NOW)
        assert len(rsps.calls) == 1


# -- topics a release dropped -----------------------------------------------------------------
def _dropped(shop, fake) -> dict[str, dict]:
    """Subscriptions to topics this version no longer wants: two at the shop's address
    (now and under a former PUBLIC_URL), and the same topic at addresses that are not
    ours (another app's, another shop's path), which must stay."""
    here = shopify_webhooks.webhook_uri(shop.id)
    subs = {
        "here": {"id": "gid://shopify/WebhookSubscription/70", "topic": "ORDERS_FULFILLED",
                 "uri": here},
        "former": {"id": "gid://shopify/WebhookSubscription/71", "topic": "ORDERS_EDITED",
                   "uri": _former(shop)},
        "theirs": {"id": "gid://shopify/WebhookSubscription/72", "topic": "ORDERS_FULFILLED",
                   "uri": "https://erp.example/shopify/orders"},
        "other-shop": {"id": "gid://shopify/WebhookSubscription/73",
                       "topic": "ORDERS_FULFILLED",
                       "uri": "https://old.example/webhooks/shopify/shp_000000000000"},
        "pubsub": {"id": "gid://shopify/WebhookSubscription/74", "topic": "ORDERS_EDITED",
                   "uri": "pubsub://project:topic"},
    }
    fake.subs += list(subs.values())
    return subs


def test_subscriptions_to_topics_a_release_dropped_are_deleted_at_our_address_only(
        shopify, caplog) -> None:
    """A release that stops handling a topic left its subscription in place: Shopify kept
    delivering it (each one answered, counted, and a failing one dropping the rest). The
    job deletes those at this shop's address, now or under a former PUBLIC_URL; the same
    topic at any other address belongs to someone else and stays."""
    shop, fake = shopify
    subs = _dropped(shop, fake)
    with caplog.at_level(logging.INFO, logger="shopkeeper.install"):
        done = shopify_webhooks.reconcile(shop, now=NOW)
    db.session.commit()
    assert sorted(fake.deleted) == sorted([subs["here"]["id"], subs["former"]["id"]])
    assert sorted(done.dropped) == ["ORDERS_EDITED", "ORDERS_FULFILLED"]
    assert all(subs[k] in fake.subs for k in ("theirs", "other-shop", "pubsub"))
    wanted = {_enum(t) for t in SHOP_TOPICS}
    assert {s["topic"] for s in fake.subs if s["uri"] == subs["here"]["uri"]} == wanted
    [audit] = _audits(shop)
    assert sorted(audit["dropped"]) == ["ORDERS_EDITED", "ORDERS_FULFILLED"]
    assert any(r.message == "install.shopify.webhooks_dropped" for r in caplog.records)
    # the next check finds nothing more to delete
    assert shopify_webhooks.reconcile(shop, now=NOW + shopify_webhooks.RECHECK).dropped == []
    assert len(fake.deleted) == 2


def test_compliance_topics_are_never_dropped(shopify) -> None:
    """Shopify's mandatory topics are not subscribed by the job, but are still ours."""
    shop, fake = shopify
    here = shopify_webhooks.webhook_uri(shop.id)
    fake.subs.append({"id": "gid://shopify/WebhookSubscription/75", "topic": "SHOP_REDACT",
                      "uri": here})
    assert shopify_webhooks.reconcile(shop, now=NOW).dropped == []
    assert fake.deleted == []


@pytest.mark.parametrize("answer", [
    {"webhookSubscriptionDelete": None},
    {"webhookSubscriptionDelete": "deleted"},
    {"webhookSubscriptionDelete": {"deletedWebhookSubscriptionId": None, "userErrors": []}},
], ids=["null", "text", "no-id"])
def test_a_drop_shopify_does_not_confirm_is_retried_next_hour(shopify, answer) -> None:
    """``webhookSubscriptionDelete`` answers the deleted id or its ``userErrors``; neither
    (a proxy's answer) is no deletion: the check fails as transient, and the next hourly
    run after the back-off deletes it."""
    from connectors.errors import TransientError

    shop, fake = shopify
    subs = _dropped(shop, fake)
    confirmed = fake.delete
    fake.delete = lambda variables: (200, {}, json.dumps({"data": answer}))
    with pytest.raises(TransientError, match="webhookSubscriptionDelete"):
        shopify_webhooks.reconcile_due(now=NOW)
    state = _state(shop)
    assert state["failures"] == 1
    assert datetime.fromisoformat(state["retry_at"]) == NOW + timedelta(hours=1)
    assert subs["here"] in fake.subs
    fake.delete = confirmed
    assert shopify_webhooks.reconcile_due(now=NOW + timedelta(minutes=59)) == 0
    shopify_webhooks.reconcile_due(now=NOW + timedelta(hours=1))
    assert subs["here"] not in fake.subs and subs["theirs"] in fake.subs
    assert "failures" not in _state(shop)


def test_a_drop_shopify_refuses_is_a_refusal_and_backs_off(shopify) -> None:
    shop, fake = shopify
    _dropped(shop, fake)
    fake.delete = lambda variables: Shopify.refused("webhookSubscriptionDelete",
                                                    "Access denied")
    with pytest.raises(ConnectorError, match="refused to delete") as caught:
        shopify_webhooks.reconcile_due(now=NOW)
    from connectors.errors import TransientError

    assert not isinstance(caught.value, TransientError)
    assert _state(shop)["failures"] == 1


def test_a_subscription_already_gone_when_deleted_counts_as_deleted(shopify) -> None:
    """Deleted between the listing and the delete (by the merchant, another run, or a run
    whose answer was lost), Shopify answers "Webhook subscription does not exist": the
    outcome wanted, not a refusal to back off from (asked again, it answers the same)."""
    shop, fake = shopify
    subs = _dropped(shop, fake)
    stale = {"id": "gid://shopify/WebhookSubscription/80", "topic": "ORDERS_PAID",
             "uri": _former(shop)}
    fake.subs.append(stale)
    delete = fake.delete

    def gone_meanwhile(variables: dict):
        fake.subs = [s for s in fake.subs if s["id"] != variables["id"]]
        return delete(variables)

    fake.delete = gone_meanwhile
    assert shopify_webhooks.reconcile_due(now=NOW) == 1
    assert sorted(fake.deleted) == sorted([subs["here"]["id"], subs["former"]["id"],
                                           stale["id"]])
    assert "failures" not in _state(shop) and "retry_at" not in _state(shop)
    [audit] = _audits(shop)
    assert audit["removed"] == ["orders/paid"]
    assert sorted(audit["dropped"]) == ["ORDERS_EDITED", "ORDERS_FULFILLED"]
