"""manifest.yaml is the single source for topics and scopes: it must match every connector."""

from __future__ import annotations

import pytest

import connectors
from connectors.manifest import absolute_url, load_manifest

MANIFEST = load_manifest()


@pytest.mark.parametrize("key", connectors.available())
def test_every_registered_connector_is_in_the_manifest(key: str) -> None:
    meta = connectors.get(key).meta
    entry = MANIFEST["platforms"].get(key)
    assert entry is not None, f"add platforms.{key} to manifest.yaml"
    assert entry["name"] == meta.name
    assert tuple(entry["scopes"]) == meta.scopes
    if "webhooks" in entry:  # Saleor groups its events by webhook
        topics = {e.lower() for events in entry["webhooks"].values() for e in events}
        assert topics == set(meta.webhook_topics)
    else:
        assert tuple(entry["webhook_topics"]) == meta.webhook_topics


def test_manifest_lists_no_unknown_platform() -> None:
    assert set(MANIFEST["platforms"]) <= set(connectors.available())


def test_shopify_compliance_topics_are_subscribed() -> None:
    shopify = MANIFEST["platforms"]["shopify"]
    assert set(shopify["compliance_topics"]) == {
        "customers/data_request", "customers/redact", "shop/redact"}
    assert set(shopify["compliance_topics"]) <= set(shopify["webhook_topics"])


def test_app_identity_and_privacy_endpoints_present() -> None:
    app, privacy = MANIFEST["app"], MANIFEST["privacy"]
    for field in ("id", "name", "version", "author", "about", "homepage_url", "support_url"):
        assert app[field], field
    assert privacy["policy_url"] and privacy["retention_after_uninstall_hours"] == 48


def test_urls_resolve_against_base_url() -> None:
    hooks = MANIFEST["urls"]["webhooks"]
    assert absolute_url("https://sk.example/", hooks, connector="generic", shop_id="shp_1") == (
        "https://sk.example/webhooks/generic/shp_1")
    assert absolute_url("https://sk.example", "https://cdn.example/x") == "https://cdn.example/x"
