"""Saleor install: manifest from manifest.yaml, register with allow-list and token check."""

from __future__ import annotations

import json

import pytest
import responses

from connectors.saleor.queries import SUBSCRIPTIONS
from plugin import shops
from plugin.extensions import db
from tests.factories import make_shop
from tests.web.install_helpers import make_install_client

API_URL = "https://demo.saleor.io/graphql/"
APP_INFO = {"data": {"app": {"id": "QXBwOjE0", "webhooks": []},
                     "channels": [{"id": "Q2hhbm5lbDox", "slug": "default-channel"}]}}
CREATED = {"data": {"webhookCreate": {"webhook": {"id": "V2ViaG9vazox"}, "errors": []}}}



@pytest.fixture
def install_client(app):
    return make_install_client(app)

def register(client, token: str | None = "app-token-1", api_url: str = API_URL):
    body = {} if token is None else {"auth_token": token}
    return client.post("/api/register", json=body, headers={"Saleor-Api-Url": api_url})


def test_manifest_is_rendered_from_manifest_yaml(install_client) -> None:
    manifest = install_client.get("/api/manifest").get_json()
    assert manifest["name"] == "Shopkeeper"
    assert manifest["tokenTargetUrl"] == "https://sk.example/api/register"
    assert "MANAGE_DISCOUNTS" in manifest["permissions"]
    assert manifest["webhooks"] == []


def test_manifest_for_a_known_shop_lists_its_webhooks(install_client) -> None:
    shop = make_shop("saleor", "demo.saleor.io")
    manifest = install_client.get(f"/api/manifest?shop={shop.id}").get_json()
    assert {w["targetUrl"] for w in manifest["webhooks"]} == {
        f"https://sk.example/webhooks/saleor/{shop.id}"}
    generic = make_shop("generic")
    assert install_client.get(f"/api/manifest?shop={generic.id}").status_code == 404
    assert install_client.get("/api/manifest?shop=shp_nope").status_code == 404


def test_register_stores_token_and_subscribes_webhooks(install_client) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=APP_INFO)
        for _ in SUBSCRIPTIONS:
            rsps.post(API_URL, json=CREATED)
        response = register(install_client)
        sent = [json.loads(c.request.body) for c in rsps.calls]
    assert response.status_code == 200
    shop = shops.get_shop(response.get_json()["shop_id"])
    creds = shops.credentials_for(shop)
    assert (shop.platform, shop.domain) == ("saleor", "demo.saleor.io")
    assert creds.access_token == "app-token-1" and creds.api_url == API_URL
    assert creds.extra["channel"] == "default-channel"
    targets = {s["variables"]["input"]["targetUrl"] for s in sent[1:]}
    assert targets == {f"https://sk.example/webhooks/saleor/{shop.id}"}


def test_register_skips_webhooks_that_exist(install_client) -> None:
    info = json.loads(json.dumps(APP_INFO))
    info["data"]["app"]["webhooks"] = [{"name": name} for name in SUBSCRIPTIONS]
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=info)
        assert register(install_client).status_code == 200
        assert len(rsps.calls) == 1


def test_register_from_unlisted_domain_is_403_without_http(install_client) -> None:
    with responses.RequestsMock():
        response = register(install_client, api_url="https://evil.example/graphql/")
    assert response.status_code == 403
    assert db.session.scalar(db.select(shops.Shop).filter_by(platform="saleor")) is None


def test_register_refuses_rejected_token(install_client) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, status=401)
        response = register(install_client)
    assert response.status_code == 401
    assert db.session.scalar(db.select(shops.Shop).filter_by(platform="saleor")) is None


def test_register_requires_token_and_api_url(install_client) -> None:
    assert register(install_client, token=None).status_code == 422
    response = install_client.post("/api/register", json={"auth_token": "t"})
    assert response.status_code == 400


def test_plain_http_needs_an_explicit_allow_list_entry(install_client, app) -> None:
    app.config["SALEOR_ALLOWED_DOMAINS"] = ""
    with responses.RequestsMock():
        response = register(install_client, api_url="http://10.0.0.5/graphql/")
    assert response.status_code == 400


def test_install_endpoints_are_in_openapi(install_client) -> None:
    paths = install_client.get("/openapi.json").get_json()["paths"]
    assert {"get"} <= set(paths["/install/shopify"]) and "get" in paths["/api/manifest"]
    assert "get" in paths["/install/shopify/callback"]
    assert "post" in paths["/api/register"] and "post" in paths["/webhooks/shopify"]


def test_every_link_the_manifest_advertises_is_served(install_client, app) -> None:
    """Saleor shows the privacy policy, support link and logo in its app list."""
    from urllib.parse import urlsplit

    manifest = install_client.get("/api/manifest").get_json()
    base = app.config["PUBLIC_URL"].rstrip("/")
    links = {manifest["dataPrivacyUrl"], manifest["supportUrl"],
             manifest["brand"]["logo"]["default"], manifest["homepageUrl"]}
    for link in links:
        assert link.startswith(base), link
        r = install_client.get(urlsplit(link).path)
        assert r.status_code in (200, 302), (link, r.status_code)
    logo = install_client.get(urlsplit(manifest["brand"]["logo"]["default"]).path)
    assert logo.mimetype == "image/png" and logo.data.startswith(b"\x89PNG")
    policy = install_client.get("/privacy").get_data(as_text=True)
    assert "48 hours later" in policy and "order history" in policy
