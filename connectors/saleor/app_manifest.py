"""Render Saleor's app manifest JSON (served at ``/api/manifest``) from ``manifest.yaml``."""

from __future__ import annotations

from typing import Any

from connectors.manifest import absolute_url
from connectors.saleor.queries import SUBSCRIPTIONS

__all__ = ["render_app_manifest", "webhook_definitions"]


def webhook_definitions(manifest: dict[str, Any], target_url: str) -> list[dict[str, Any]]:
    """Saleor webhook definitions: name, async events, subscription query, target."""
    saleor = manifest["platforms"]["saleor"]
    return [
        {
            "name": name,
            "asyncEvents": list(events),
            "query": SUBSCRIPTIONS[name],
            "targetUrl": target_url,
            "isActive": True,
        }
        for name, events in saleor["webhooks"].items()
    ]


def render_app_manifest(
    manifest: dict[str, Any], base_url: str, *, shop_id: str | None = None
) -> dict[str, Any]:
    """The manifest Saleor fetches on install.

    Webhook targets carry our shop id, so webhooks are listed only when the manifest is
    rendered for a known shop (``/api/manifest?shop=<id>``). Otherwise ``/api/register``
    creates the shop and subscribes them with ``webhookCreate``.
    """
    app, saleor, privacy = manifest["app"], manifest["platforms"]["saleor"], manifest["privacy"]

    def url(value: str) -> str:
        return absolute_url(base_url, value)

    rendered: dict[str, Any] = {
        "id": app["id"],
        "version": app["version"],
        "requiredSaleorVersion": saleor["required_saleor_version"],
        "name": app["name"],
        "author": app["author"],
        "about": app["about"],
        "permissions": list(saleor["scopes"]),
        "appUrl": url(manifest["urls"]["app"]),
        "tokenTargetUrl": url(saleor["urls"]["token_target"]),
        "dataPrivacyUrl": url(privacy["policy_url"]),
        "homepageUrl": url(app["homepage_url"]),
        "supportUrl": url(app["support_url"]),
        "brand": {"logo": {"default": url(app["logo_url"])}},
        "extensions": [
            {
                "label": ext["label"],
                "mount": ext["mount"],
                "target": ext["target"],
                "permissions": list(ext["permissions"]),
                "url": url(ext["url"]),
            }
            for ext in saleor.get("extensions", ())
        ],
        "webhooks": [],
    }
    if shop_id is not None:
        target = absolute_url(
            base_url, manifest["urls"]["webhooks"], connector="saleor", shop_id=shop_id
        )
        rendered["webhooks"] = webhook_definitions(manifest, target)
    return rendered
