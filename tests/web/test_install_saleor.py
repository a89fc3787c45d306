"""Saleor install: manifest from manifest.yaml, register with allow-list and token check."""

from __future__ import annotations

import json

import pytest
import responses

from connectors.errors import ConnectorError, TransientError
from connectors.saleor.queries import SUBSCRIPTIONS
from plugin import shops
from plugin.extensions import db
from tests.factories import make_shop
from tests.web.install_helpers import make_install_client

API_URL = "https://demo.saleor.io/graphql/"
IDENTIFIER = "org.shopkeeper.personalization"  # manifest.yaml app.id
APP_INFO = {"data": {"app": {"id": "QXBwOjE0", "identifier": IDENTIFIER, "webhooks": []},
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
    assert creds.extra["public_only"] is False  # the allow-list names this host
    targets = {s["variables"]["input"]["targetUrl"] for s in sent[1:]}
    assert targets == {f"https://sk.example/webhooks/saleor/{shop.id}"}


def test_register_skips_webhooks_that_exist(install_client) -> None:
    info = json.loads(json.dumps(APP_INFO))
    info["data"]["app"]["webhooks"] = [{"name": name} for name in SUBSCRIPTIONS]
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=info)
        assert register(install_client).status_code == 200
        assert len(rsps.calls) == 1


@pytest.mark.parametrize("answer", [None, "refused", {"webhook": None, "errors": []}])
def test_register_with_no_webhook_create_answer_is_not_an_install(install_client,
                                                                  answer) -> None:
    """A null ``webhookCreate``, or one naming no webhook, is no webhook made: read as
    one, the shop was stored without its events. The merchant is asked to install again
    (which skips those that exist) and nothing is stored. An answer that is no object is
    no more Saleor's refusal than null is: it told the merchant "Saleor refused our
    webhooks"."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(API_URL, json=APP_INFO)
        rsps.post(API_URL, json=CREATED)
        rsps.post(API_URL, json={"data": {"webhookCreate": answer}})
        response = register(install_client)
    assert response.status_code == 400
    text = response.get_json()["message"]
    assert "Could not create our webhooks" in text
    assert "could not be reached or answered unexpectedly; try the install again" in text
    assert db.session.scalar(db.select(shops.Shop).filter_by(platform="saleor")) is None


@pytest.mark.parametrize("answer, message", [
    ({"data": {"webhookCreate": {"webhook": None,
                                 "errors": [{"field": "targetUrl", "message": "bad"}]}}},
     "Saleor refused our webhooks."),
    ({"errors": [{"message": "You need one of the following permissions: MANAGE_APPS",
                  "extensions": {"exception": {"code": "PermissionDenied"}}}],
      "data": {"webhookCreate": None}},
     "Could not create our webhooks on Saleor; install again."),
])
def test_register_tells_a_refusal_from_trouble_reaching_saleor(install_client, answer,
                                                              message) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(API_URL, json=APP_INFO)
        rsps.post(API_URL, json=answer)
        response = register(install_client)
    assert response.status_code == 400
    assert response.get_json()["message"] == message


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
    icon = install_client.get("/favicon.ico")  # asked for by browsers on any page
    assert icon.status_code == 200 and icon.data.startswith(b"\x89PNG")
    policy = install_client.get("/privacy").get_data(as_text=True)
    assert "48 hours later" in policy and "order history" in policy
    assert '<link rel="icon" href="/static/logo.png">' in policy  # no /favicon.ico 404


# ---------------------------------------------------------------- whose token is it?
OURS, THEIRS, OUR_REINSTALL = "QXBwOjE0", "QXBwOjk5", "QXBwOjE1"


def app_info(app_id: str = OURS, identifier: str | None = IDENTIFIER) -> dict:
    """Saleor's answer to our app query; every webhook already exists (no more calls)."""
    info = json.loads(json.dumps(APP_INFO))
    info["data"]["app"].update(id=app_id, identifier=identifier,
                               webhooks=[{"name": n} for n in SUBSCRIPTIONS])
    return info


def bearer(token: str):
    return responses.matchers.header_matcher({"Authorization": f"Bearer {token}"})


def saleor_creds():
    shop = db.session.scalar(db.select(shops.Shop).filter_by(platform="saleor"))
    return shop, shops.credentials_for(shop)


def install_ours(client) -> str:
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=app_info(OURS), match=[bearer("our-token")])
        response = register(client, token="our-token")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["shop_id"]


def test_another_apps_token_cannot_take_over_the_shop(install_client) -> None:
    """Every app's token answers ``app { id }``; only ours carries our manifest id."""
    install_ours(install_client)
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=app_info(THEIRS, identifier="com.example.other-app"),
                  match=[bearer("their-token")])
        response = register(install_client, token="their-token")
    assert response.status_code == 403
    assert "another Saleor app" in response.get_json()["message"]
    _, creds = saleor_creds()
    assert (creds.access_token, creds.extra["app_id"]) == ("our-token", OURS)


@pytest.mark.parametrize("identifier", [None, "", "org.shopkeeper.personalization.evil"])
def test_a_token_without_our_identifier_never_installs(install_client, identifier) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=app_info(THEIRS, identifier=identifier))
        assert register(install_client).status_code == 403
    assert db.session.scalar(db.select(shops.Shop).filter_by(platform="saleor")) is None


def test_a_second_install_cannot_replace_an_active_one(install_client) -> None:
    """Same manifest id, another app install (older Saleor allowed duplicates): 409."""
    install_ours(install_client)
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=app_info(OUR_REINSTALL), match=[bearer("second-token")])
        rsps.post(API_URL, json=app_info(OURS), match=[bearer("our-token")])  # still alive
        response = register(install_client, token="second-token")
    assert response.status_code == 409
    body = response.get_json()
    assert "already installed" in body["message"] and body["errors"]["auth_token"]
    _, creds = saleor_creds()
    assert (creds.access_token, creds.extra["app_id"]) == ("our-token", OURS)


def test_another_api_url_on_the_same_host_cannot_replace_it(install_client) -> None:
    install_ours(install_client)
    other = "https://demo.saleor.io/tenant-b/graphql/"
    with responses.RequestsMock() as rsps:
        rsps.post(other, json=app_info(OURS), match=[bearer("tenant-b-token")])
        rsps.post(API_URL, json=app_info(OURS), match=[bearer("our-token")])
        response = register(install_client, token="tenant-b-token", api_url=other)
    assert response.status_code == 409
    _, creds = saleor_creds()
    assert (creds.access_token, creds.api_url) == ("our-token", API_URL)


def test_the_same_install_may_register_again(install_client) -> None:
    shop_id = install_ours(install_client)
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=app_info(OURS), match=[bearer("rotated-token")])
        response = register(install_client, token="rotated-token")
    assert response.status_code == 200 and response.get_json()["shop_id"] == shop_id
    assert saleor_creds()[1].access_token == "rotated-token"


def test_a_reinstall_after_uninstall_replaces_the_install(install_client) -> None:
    shop_id = install_ours(install_client)
    shop, _ = saleor_creds()
    shops.mark_uninstalled(shop)
    db.session.commit()
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=app_info(OUR_REINSTALL), match=[bearer("new-token")])
        response = register(install_client, token="new-token")
    assert response.status_code == 200 and response.get_json()["shop_id"] == shop_id
    shop, creds = saleor_creds()
    assert shop.status == "active" and creds.extra["app_id"] == OUR_REINSTALL


DENIED = {"errors": [{"message": "You need one of the following permissions",
                      "extensions": {"exception": {"code": "PermissionDenied"}}}]}


@pytest.mark.parametrize("old_token_answer", [{"status": 401},
                                              {"json": {"data": {"app": None}}},
                                              {"json": DENIED}],
                         ids=["401", "no-app", "permission-denied"])
def test_a_reinstall_whose_uninstall_webhook_was_lost_replaces_the_dead_install(
        install_client, old_token_answer) -> None:
    """APP_DELETED never arrived: the shop is still active but Saleor refuses its token."""
    install_ours(install_client)
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=app_info(OUR_REINSTALL), match=[bearer("new-token")])
        rsps.post(API_URL, **old_token_answer, match=[bearer("our-token")])
        response = register(install_client, token="new-token")
    assert response.status_code == 200
    assert saleor_creds()[1].extra["app_id"] == OUR_REINSTALL


def test_an_unreachable_stored_install_is_kept(install_client, monkeypatch) -> None:
    """Only Saleor's own refusal of the old token frees the shop; silence does not."""
    from plugin.install import saleor as saleor_install

    monkeypatch.setitem(saleor_install.REGISTER_HTTP, "sleep", lambda s: None)
    install_ours(install_client)
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=app_info(OUR_REINSTALL), match=[bearer("new-token")])
        rsps.post(API_URL, status=503, match=[bearer("our-token")])
        rsps.post(API_URL, status=503, match=[bearer("our-token")])
        response = register(install_client, token="new-token")
    assert response.status_code == 409
    assert saleor_creds()[1].extra["app_id"] == OURS


def test_a_shop_added_from_the_cli_is_filled_in_by_its_first_registration(
        install_client) -> None:
    shop = make_shop("saleor", "demo.saleor.io")
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=app_info(OURS))
        response = register(install_client)
    assert response.status_code == 200 and response.get_json()["shop_id"] == shop.id


@pytest.mark.parametrize("status", [400, 200])
def test_a_saleor_without_app_identifier_is_refused_clearly(install_client, status) -> None:
    too_old = {"errors": [{"message": 'Cannot query field "identifier" on type "App".',
                           "locations": [{"line": 1, "column": 20}]}]}
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=too_old, status=status)
        response = register(install_client)
    assert response.status_code == 400
    message = response.get_json()["message"]
    assert "too old" in message and ">=3.20 <4" in message and "App.identifier" in message
    assert db.session.scalar(db.select(shops.Shop).filter_by(platform="saleor")) is None


# ---------------------------------------------------------------- where we call, and how
def fake_dns(monkeypatch, *addresses: str) -> list[str]:
    """``socket.getaddrinfo`` answering ``addresses`` (none: the name does not resolve)."""
    import socket

    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize("address", ["10.0.0.5", "127.0.0.1", "169.254.169.254", "::1",
                                     "fe80::1", "fd12:3456::1", "224.0.0.1", "240.0.0.1",
                                     "100.64.0.1", "::ffff:127.0.0.1"])
def test_without_an_allow_list_names_resolving_to_internal_addresses_are_refused(
        install_client, app, monkeypatch, address) -> None:
    app.config["SALEOR_ALLOWED_DOMAINS"] = ""
    asked = fake_dns(monkeypatch, "93.184.215.14", address)
    with responses.RequestsMock():  # any call would fail the test
        response = register(install_client, api_url="https://saleor.attacker.example/graphql/")
    assert asked == ["saleor.attacker.example"]
    assert response.status_code == 400
    assert response.get_json()["message"] == "Saleor-Api-Url must name a public host."


@pytest.mark.parametrize("api_url", ["https://10.0.0.5:8443/graphql/", "https://[::1]/graphql/",
                                     "https://169.254.169.254/", "https://93.184.215.14/graphql/",
                                     "https://2130706433/graphql/"])
def test_without_an_allow_list_ip_literals_are_refused(install_client, app, monkeypatch,
                                                       api_url) -> None:
    app.config["SALEOR_ALLOWED_DOMAINS"] = ""
    fake_dns(monkeypatch, "127.0.0.1")  # what 2130706433 resolves to
    with responses.RequestsMock():
        response = register(install_client, api_url=api_url)
    assert response.status_code == 400
    assert response.get_json()["message"] == "Saleor-Api-Url must name a public host."


def test_without_an_allow_list_an_unresolvable_name_looks_like_a_private_one(
        install_client, app, monkeypatch) -> None:
    app.config["SALEOR_ALLOWED_DOMAINS"] = ""
    fake_dns(monkeypatch)
    with responses.RequestsMock():
        unresolved = register(install_client, api_url="https://nowhere.example/graphql/")
    fake_dns(monkeypatch, "10.1.1.1")
    with responses.RequestsMock():
        private = register(install_client, api_url="https://internal.example/graphql/")
    assert unresolved.status_code == private.status_code == 400
    assert unresolved.get_json() == private.get_json()
    assert private.get_json()["message"] == "Saleor-Api-Url must name a public host."


def test_without_an_allow_list_a_public_saleor_installs(install_client, app,
                                                       monkeypatch) -> None:
    app.config["SALEOR_ALLOWED_DOMAINS"] = ""
    fake_dns(monkeypatch, "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    api_url = "https://shop.saleor.cloud/graphql/"
    with responses.RequestsMock() as rsps:
        rsps.post(api_url, json=app_info())
        response = register(install_client, api_url=api_url)
        assert response.status_code == 200
    # registered as a public host, so its later calls (syncs, JWKS) check every peer too
    connector = shops.connector_for(shops.get_shop(response.get_json()["shop_id"]))
    assert connector.public_only
    assert connector.session.public_only and connector.jwks_session().public_only


def test_register_does_not_follow_redirects(install_client) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(API_URL, status=307,
                  headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        rsps.post("http://169.254.169.254/latest/meta-data/", json=app_info())
        response = register(install_client)
        assert [c.request.url for c in rsps.calls] == [API_URL]
    assert response.status_code == 401


def _connection_refused():
    import requests

    return requests.ConnectionError("connection refused")


@pytest.mark.parametrize("answer", [
    {"status": 401}, {"status": 403}, {"status": 404}, {"status": 502},
    {"status": 302, "headers": {"Location": "https://elsewhere.example/"}},
    {"body": "<html>admin console</html>"}, {"json": {"data": {"app": None}}},
    {"json": {"data": {"app": {"id": 5, "identifier": IDENTIFIER}}}},
    {"json": ["not", "an", "object"]}, {"json": {"errors": [{"message": "boom"}]}},
    {"body": b"x" * 1_000_001}, {"body": _connection_refused()},
], ids=["401", "403", "404", "502", "302", "html", "null-app", "odd-id", "list", "errors",
        "too-large", "unreachable"])
def test_every_unconfirmed_answer_gets_the_same_refusal(install_client, monkeypatch,
                                                        answer) -> None:
    """A probe learns nothing from the answer: one status, one message."""
    from plugin.install import saleor as saleor_install

    monkeypatch.setitem(saleor_install.REGISTER_HTTP, "sleep", lambda s: None)  # 502's retry
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(API_URL, **answer)
        response = register(install_client)
    assert response.status_code == 401
    assert response.get_json()["message"] == (
        "The Saleor API at Saleor-Api-Url did not confirm this app token.")
    assert response.get_json()["errors"] == {}


def test_register_call_is_bounded(install_client) -> None:
    """(3, 10) s timeouts, one retry, redirects off, the body read under a cap."""
    from connectors.guarded_http import GuardedSession
    from plugin.install import saleor as saleor_install

    assert saleor_install.REGISTER_HTTP["deadline"] == saleor_install.REGISTER_DEADLINE == 15.0
    assert saleor_install.REGISTER_HTTP["max_body"] == 1_000_000
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, status=503)
        rsps.post(API_URL, status=503)
        response = register(install_client)
        sent = [c.request.req_kwargs for c in rsps.calls]
    assert response.status_code == 401
    assert len(sent) == 2  # one try and one retry, not six
    assert all(k["timeout"] == (3.0, 10.0) and k["stream"] is True for k in sent)
    assert issubclass(GuardedSession, type(saleor_install.make_guarded_session()))


def test_a_slow_saleor_cannot_hold_the_request_past_the_deadline(install_client, app,
                                                                  monkeypatch) -> None:
    """A server that drips a byte every 0.2 s never trips a read timeout; the deadline ends it."""
    import contextlib
    import socket
    import threading

    from plugin.install import saleor as saleor_install

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop, dripped_out = threading.Event(), []

    def drip() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000\r\n\r\n")
        for _ in range(60):  # at least 12 s, so the unfixed code fails instead of hanging
            if stop.wait(0.2):
                break
            with contextlib.suppress(OSError):  # hung up on: drips on regardless
                conn.sendall(b" ")
        else:
            dripped_out.append(True)
        conn.close()

    threading.Thread(target=drip, daemon=True).start()
    app.config["SALEOR_ALLOWED_DOMAINS"] = "127.0.0.1"  # listed: plain http is allowed
    monkeypatch.setitem(saleor_install.REGISTER_HTTP, "deadline", 1.5)
    monkeypatch.setitem(saleor_install.REGISTER_HTTP, "budget", 1.5)
    try:
        response = register(install_client,
                            api_url=f"http://127.0.0.1:{listener.getsockname()[1]}/graphql/")
    finally:
        stop.set()
        listener.close()
    # answered while the server still dripped: no stopwatch (< 4 s), which a loaded CI
    # machine overran; guarded_http's own tests pin the cut-off to the deadline's timer
    assert dripped_out == []
    assert response.status_code == 401


def _installed_saleor_shop(install_client):
    """A shop registered through /api/register with all webhooks created."""
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=APP_INFO)
        for _ in SUBSCRIPTIONS:
            rsps.post(API_URL, json=CREATED)
        response = register(install_client)
    assert response.status_code == 200
    return shops.get_shop(response.get_json()["shop_id"])


def _saleor_webhooks(shop, *, old_queries: set[str] = frozenset(), missing: set[str] = frozenset(),
                     inactive: set[str] = frozenset()):
    """Saleor's answer to ``app { webhooks }``: ours as registered, some with an older query,
    some deactivated."""
    from plugin.install.saleor import our_webhooks

    hooks = []
    for i, d in enumerate(our_webhooks(shop.id)):
        if d["name"] in missing:
            continue
        query = d["query"].replace("issuedAt ", "") if d["name"] in old_queries else d["query"]
        hooks.append({"id": f"V2ViaG9vazo{i}", "name": d["name"], "targetUrl": d["targetUrl"],
                      "isActive": d["name"] not in inactive,
                      # Saleor echoes the query with its own whitespace
                      "subscriptionQuery": "\n  ".join(query.split()),
                      "asyncEvents": [{"eventType": e} for e in d["asyncEvents"]]})
    return {"data": {"app": {"webhooks": hooks}}}


def test_refresh_updates_webhooks_registered_by_an_older_version(install_client) -> None:
    """Saleor keeps the queries given at install: an upgrade reaches a shop by webhookUpdate."""
    from plugin.install.saleor import refresh_webhooks
    from plugin.models import AuditLog

    shop = _installed_saleor_shop(install_client)
    updated = {"data": {"webhookUpdate": {"webhook": {"id": "x"}, "errors": []}}}
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=_saleor_webhooks(shop, old_queries={"shopkeeper-products"},
                                                missing={"shopkeeper-orders"}))
        rsps.post(API_URL, json=updated)
        rsps.post(API_URL, json=CREATED)
        with install_client.application.test_request_context():
            done = refresh_webhooks(shop)
        sent = [json.loads(c.request.body) for c in rsps.calls]
    assert done == {"created": ["shopkeeper-orders"], "updated": ["shopkeeper-products"],
                    "reactivated": []}
    update = next(s for s in sent if "webhookUpdate" in s["query"])
    assert update["variables"]["id"].startswith("V2ViaG9vaz")
    assert "issuedAt" in update["variables"]["input"]["query"]
    assert update["variables"]["input"]["query"] == SUBSCRIPTIONS["shopkeeper-products"]
    create = next(s for s in sent if "webhookCreate" in s["query"])
    assert create["variables"]["input"]["name"] == "shopkeeper-orders"
    assert db.session.query(AuditLog).filter_by(
        shop_id=shop.id, action="install.webhooks_refreshed").count() == 1


def test_refresh_leaves_current_webhooks_alone(install_client) -> None:
    from plugin.install.saleor import refresh_webhooks

    shop = _installed_saleor_shop(install_client)
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=_saleor_webhooks(shop))
        with install_client.application.test_request_context():
            assert refresh_webhooks(shop) == {"created": [], "updated": [], "reactivated": []}
        assert len(rsps.calls) == 1  # one read, no mutation


def test_refresh_reactivates_a_webhook_deactivated_in_the_dashboard(install_client,
                                                                     caplog) -> None:
    """A webhook switched off in the Dashboard is otherwise unchanged, so only its
    ``isActive`` tells: it is switched back on (events are lost while it is off), with a
    warning, an audit entry and a gauge on /metrics."""
    from plugin.install.saleor import refresh_webhooks

    shop = _installed_saleor_shop(install_client)
    answer = _saleor_webhooks(shop, inactive={"shopkeeper-orders"})
    hook_id = next(h["id"] for h in answer["data"]["app"]["webhooks"]
                   if h["name"] == "shopkeeper-orders")
    updated = {"data": {"webhookUpdate": {"webhook": {"id": hook_id}, "errors": []}}}
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=answer)
        rsps.post(API_URL, json=updated)
        with install_client.application.test_request_context():
            done = refresh_webhooks(shop)
        sent = [json.loads(c.request.body) for c in rsps.calls]
    assert "isActive" in sent[0]["query"]  # asked, or a deactivated one looks current
    assert done == {"created": [], "updated": ["shopkeeper-orders"],
                    "reactivated": ["shopkeeper-orders"]}
    assert sent[1]["variables"]["id"] == hook_id
    assert sent[1]["variables"]["input"]["isActive"] is True
    assert any(r.message == "install.saleor.webhooks_reactivated" for r in caplog.records)
    text = install_client.get("/metrics").get_data(as_text=True)
    assert f'shopkeeper_saleor_webhooks_reactivated_24h{{shop="{shop.id}"}} 1.0' in text


def test_refresh_moves_webhooks_to_a_new_target_and_event_list(install_client) -> None:
    """INSTALLING.md: a webhook whose target (e.g. an older SHOPKEEPER_PUBLIC_URL) or event
    list differs from this version's is updated, not only one whose query differs."""
    from plugin.install.saleor import our_webhooks, refresh_webhooks

    shop = _installed_saleor_shop(install_client)
    answer = _saleor_webhooks(shop)
    hooks = {h["name"]: h for h in answer["data"]["app"]["webhooks"]}
    hooks["shopkeeper-orders"]["targetUrl"] = "http://127.0.0.1:5000/webhooks/saleor/x"
    hooks["shopkeeper-products"]["asyncEvents"] = hooks["shopkeeper-products"][
        "asyncEvents"][:1]
    updated = {"data": {"webhookUpdate": {"webhook": {"id": "x"}, "errors": []}}}
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=answer)
        rsps.post(API_URL, json=updated)
        rsps.post(API_URL, json=updated)
        with install_client.application.test_request_context():
            done = refresh_webhooks(shop)
        sent = [json.loads(c.request.body) for c in rsps.calls[1:]]
    assert sorted(done["updated"]) == ["shopkeeper-orders", "shopkeeper-products"]
    assert done["created"] == []
    wanted = {d["name"]: d for d in our_webhooks(shop.id)}
    inputs = {h["id"]: s["variables"]["input"] for s in sent for h in hooks.values()
              if h["id"] == s["variables"]["id"]}
    assert inputs[hooks["shopkeeper-orders"]["id"]]["targetUrl"] == \
        wanted["shopkeeper-orders"]["targetUrl"]
    assert inputs[hooks["shopkeeper-products"]["id"]]["asyncEvents"] == \
        wanted["shopkeeper-products"]["asyncEvents"]


@pytest.mark.parametrize("result", [None, {"webhook": None, "errors": []}])
@pytest.mark.parametrize("mutation", ["webhookUpdate", "webhookCreate"])
def test_refresh_with_no_mutation_answer_fails_and_records_nothing(install_client,
                                                                   mutation, result) -> None:
    """A null ``webhookUpdate`` or ``webhookCreate``, or one naming no webhook, is no
    webhook changed: the refresh fails (the daily job tries again) instead of auditing a
    change Saleor may not have."""
    from plugin.install.saleor import refresh_webhooks
    from plugin.models import AuditLog

    shop = _installed_saleor_shop(install_client)
    answer = (_saleor_webhooks(shop, old_queries={"shopkeeper-products"})
              if mutation == "webhookUpdate"
              else _saleor_webhooks(shop, missing={"shopkeeper-orders"}))
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=answer)
        rsps.post(API_URL, json={"data": {mutation: result}})
        with install_client.application.test_request_context(), \
                pytest.raises(TransientError, match=f"{mutation} answer"):
            refresh_webhooks(shop)
    assert db.session.query(AuditLog).filter_by(
        shop_id=shop.id, action="install.webhooks_refreshed").count() == 0


def test_the_daily_job_refreshes_every_saleor_shop_even_if_one_fails(install_client) -> None:
    """One unreachable shop must not stop the others. Two shops are down (with a token, so
    their Saleor is really called and answers 401) and every shop must be asked: the job's
    query has no order, so with a single broken shop a job that stopped at the first
    failure still passed whenever that shop came last, as it did on SQLite and PostgreSQL.
    With two, whatever the order, stopping early leaves one shop unasked."""
    from plugin.jobs import SCHEDULED_JOBS, refresh_saleor_webhooks

    assert SCHEDULED_JOBS["saleor_webhooks"] == (refresh_saleor_webhooks, 86400)

    def broken_shop(host: str) -> str:
        broken = make_shop("saleor", host)
        creds = shops.credentials_for(broken)
        creds.api_url, creds.access_token = f"https://{host}/graphql/", "app-token"
        shops.save_credentials(broken, creds)
        db.session.commit()
        return creds.api_url

    down = [broken_shop("down1.saleor.example")]
    shop = _installed_saleor_shop(install_client)
    down.append(broken_shop("down2.saleor.example"))
    updated = {"data": {"webhookUpdate": {"webhook": {"id": "x"}, "errors": []}}}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        for url in down:
            rsps.post(url, status=401)
        rsps.post(API_URL, json=_saleor_webhooks(shop, old_queries={"shopkeeper-orders"}))
        rsps.post(API_URL, json=updated)
        with install_client.application.app_context(), pytest.raises(ConnectorError):
            refresh_saleor_webhooks()  # the failure is reported, after the others ran
        asked = [c.request.url for c in rsps.calls]
        assert any("webhookUpdate" in (c.request.body or b"").decode()
                   for c in rsps.calls if c.request.url == API_URL)
    assert all(url in asked for url in down), asked  # both failing shops were tried


# ---------------------------------------------------------------- which channel?
def _channel(slug: str, n: int, *, active: bool = True, currency: str = "USD") -> dict:
    return {"id": f"Q2hhbm5lbDo{n}", "slug": slug, "name": slug.title(),
            "currencyCode": currency, "isActive": active}


def _install_with_channels(client, channels: list[dict]):
    info = app_info(OURS)
    info["data"]["channels"] = channels
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=info)
        assert register(client, token="our-token").status_code == 200
    return saleor_creds()


def test_install_prefers_saleors_default_channel_to_the_first_listed(install_client) -> None:
    """Saleor lists channels by slug: the first is often a wholesale or regional one."""
    _, creds = _install_with_channels(install_client, [
        _channel("a-wholesale", 2, currency="EUR"), _channel("default-channel", 1)])
    assert (creds.extra["channel"], creds.extra["channel_id"]) == (
        "default-channel", "Q2hhbm5lbDo1")


def test_install_skips_an_inactive_channel(install_client) -> None:
    _, creds = _install_with_channels(install_client, [
        _channel("default-channel", 1, active=False), _channel("b-shop", 2)])
    assert (creds.extra["channel"], creds.extra["channel_id"]) == ("b-shop", "Q2hhbm5lbDo2")


def test_a_reinstall_keeps_the_channel_the_merchant_chose(install_client) -> None:
    shop_id = install_ours(install_client)
    shop, _ = saleor_creds()
    shop.settings = {**(shop.settings or {}), "saleor_channel": "channel-pln"}
    shops.mark_uninstalled(shop)
    db.session.commit()
    info = app_info(OUR_REINSTALL)
    info["data"]["channels"] = [_channel("default-channel", 1),
                                _channel("channel-pln", 2, currency="PLN")]
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=info, match=[bearer("new-token")])
        assert register(install_client, token="new-token").get_json()["shop_id"] == shop_id
    assert saleor_creds()[1].extra["channel"] == "channel-pln"


def test_register_is_rate_limited_per_client_before_calling_out(install_client, app) -> None:
    """/api/register is unauthenticated and makes this server call (and wait up to 15 s on)
    whatever Saleor-Api-Url names: one address cannot keep the workers' threads busy."""
    app.config["SALEOR_REGISTER_PER_CLIENT"] = "3 per minute"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(API_URL, status=401)
        answers = [register(install_client).status_code for _ in range(3)]
        calls = len(rsps.calls)
        refused = register(install_client)
        assert len(rsps.calls) == calls  # refused before any outbound call
    assert answers == [401, 401, 401]
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    other = install_client.post("/api/register", json={"auth_token": "t"},
                                headers={"Saleor-Api-Url": API_URL},
                                environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert other.status_code != 429  # counted per client address


def test_register_is_rate_limited_by_default(install_client) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(API_URL, status=401)
        codes = [register(install_client).status_code for _ in range(30)]
    assert 429 in codes


def test_a_slow_dns_answer_is_a_503_and_does_not_hold_the_worker(install_client, app,
                                                                 monkeypatch) -> None:
    """Anyone can point Saleor-Api-Url at a name whose resolver answers slowly: the
    pre-check gives up after SALEOR_REGISTER_DNS_TIMEOUT_SECONDS."""
    import socket
    import threading

    app.config.update(SALEOR_ALLOWED_DOMAINS="", SALEOR_REGISTER_DNS_TIMEOUT_SECONDS=0.3)
    answer, answered = threading.Event(), []

    def slow_getaddrinfo(host, port, *args, **kwargs):
        answer.wait(30)  # until the test lets it answer (30 s: unbounded code fails, not hangs)
        answered.append(host)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    try:
        with responses.RequestsMock():  # nothing is called
            response = register(install_client, api_url="https://slow.example/graphql/")
        # answered while the resolver still had not: no stopwatch (< 2 s), which a loaded
        # CI machine overran
        assert answered == []
    finally:
        answer.set()
    assert response.status_code == 503
    body = response.get_json()
    assert body["message"] == ("The Saleor-Api-Url host did not resolve within 0.3 s; "
                               "retry later.")
    assert "Saleor-Api-Url" in body["errors"]
    assert db.session.scalar(db.select(shops.Shop).filter_by(platform="saleor")) is None


def test_the_registration_connects_to_the_pre_checked_addresses(install_client, app,
                                                                 monkeypatch) -> None:
    """The pre-check's lookup is bounded; the connection uses its answer instead of
    resolving the name again without a time limit (or to another address)."""
    from urllib3.util import connection as urllib3_connection

    app.config["SALEOR_ALLOWED_DOMAINS"] = ""
    asked = fake_dns(monkeypatch, "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    connected: list[tuple[str, int]] = []

    def create_connection(address, *args, **kwargs):
        connected.append(address)
        raise ConnectionRefusedError(111, "Connection refused")  # no network in tests

    monkeypatch.setattr(urllib3_connection, "create_connection", create_connection)
    response = register(install_client, api_url="https://shop.saleor.cloud/graphql/")
    assert response.status_code == 401  # unreachable: not confirmed
    assert asked == ["shop.saleor.cloud"]  # the pre-check only
    assert connected and set(connected) == {("93.184.215.14", 443),
                                            ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", 443)}


@pytest.mark.parametrize("listed", [
    None, "none", {"name": "shopkeeper-products"}, ["shopkeeper-products"], [None], "missing",
], ids=["null", "text", "object", "names-as-text", "entry-null", "missing"])
def test_a_garbled_webhook_listing_creates_nothing_and_asks_to_install_again(
        install_client, listed) -> None:
    """``app.webhooks`` is the list of the app's webhooks (``[Webhook!]!``, here by
    name). Anything else was read as "none there", so every webhook was created again
    beside the ones Saleor has: each event delivered twice. It says nothing, so the
    install is refused with the retryable answer and nothing is created or stored."""
    info = json.loads(json.dumps(APP_INFO))
    if listed == "missing":
        del info["data"]["app"]["webhooks"]
    else:
        info["data"]["app"]["webhooks"] = listed
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(API_URL, json=info)
        rsps.post(API_URL, json=CREATED)
        response = register(install_client)
        assert len(rsps.calls) == 1  # no webhookCreate
    assert response.status_code == 400
    assert "try the install again" in response.get_json()["message"]
    assert db.session.scalar(db.select(shops.Shop).filter_by(platform="saleor")) is None


def test_only_the_webhooks_saleor_lists_are_skipped(install_client) -> None:
    """Saleor's own listing, entries of other apps' names or without one among ours:
    the missing webhooks are created, those listed are not."""
    info = json.loads(json.dumps(APP_INFO))
    have, *missing = SUBSCRIPTIONS
    info["data"]["app"]["webhooks"] = [{"name": have}, {"name": None}, {"name": "other"}]
    with responses.RequestsMock() as rsps:
        rsps.post(API_URL, json=info)
        for _ in missing:
            rsps.post(API_URL, json=CREATED)
        response = register(install_client)
        made = [json.loads(c.request.body)["variables"]["input"]["name"]
                for c in rsps.calls[1:]]
    assert response.status_code == 200
    assert sorted(made) == sorted(missing)
