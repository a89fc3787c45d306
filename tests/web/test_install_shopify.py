"""Shopify install: redirect with a state nonce, verified callback, stored credentials."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from connectors.base import Credentials
from connectors.shopify.client import API_VERSION
from connectors.shopify.install import oauth_hmac
from plugin import shops
from plugin.extensions import db
from tests.web.install_helpers import make_install_client

SHOP = "my-shop.myshopify.com"
SECRET = "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"
TOKEN_URL = f"https://{SHOP}/admin/oauth/access_token"
GRAPHQL = f"https://{SHOP}/admin/api/{API_VERSION}/graphql.json"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "shopify"



@pytest.fixture
def install_client(app):
    return make_install_client(app)

def start(client) -> str:
    response = client.get(f"/install/shopify?shop={SHOP}")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.netloc == SHOP and location.path == "/admin/oauth/authorize"
    query = parse_qs(location.query)
    assert query["redirect_uri"] == ["https://sk.example/install/shopify/callback"]
    return query["state"][0]


def callback_params(state: str, shop: str = SHOP, secret: str = SECRET,
                    at: float | None = None) -> dict[str, str]:
    params = {"code": "c0de", "shop": shop, "state": state,
              "timestamp": str(int(time.time() if at is None else at))}
    return {**params, "hmac": oauth_hmac(params, secret)}


SUBSCRIBED = {"data": {"webhookSubscriptionCreate": {
    "webhookSubscription": {"id": "gid://shopify/WebhookSubscription/1"}, "userErrors": []}}}


def mock_exchange(rsps, zone: str = "America/Los_Angeles") -> None:
    # an expiring offline token, as documented: an hour, with a 90-day refresh token
    rsps.post(TOKEN_URL, json={"access_token": "shpat_live", "scope": "read_products",
                               "expires_in": 3600, "refresh_token": "shprt_live",
                               "refresh_token_expires_in": 7776000})
    # Shop.currencyCode (CurrencyCode!) and Shop.ianaTimezone (String!), as documented
    rsps.post(GRAPHQL, json={"data": {"shop": {"currencyCode": "EUR", "ianaTimezone": zone}}})
    rsps.post(GRAPHQL, json=SUBSCRIBED)  # one per topic, same answer


def test_install_creates_shop_with_credentials(install_client, app) -> None:
    state = start(install_client)
    with responses.RequestsMock() as rsps:
        mock_exchange(rsps)
        response = install_client.get("/install/shopify/callback",
                                      query_string=callback_params(state))
        subscriptions = [json.loads(c.request.body)["variables"] for c in rsps.calls[2:]]
        shop_query = json.loads(rsps.calls[1].request.body)["query"]
        exchange = json.loads(rsps.calls[0].request.body)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"https://{SHOP}/admin/apps/")
    shop = db.session.scalar(db.select(shops.Shop).filter_by(platform="shopify", domain=SHOP))
    creds = shops.credentials_for(shop)
    assert creds.access_token == "shpat_live" and creds.webhook_secret == SECRET
    assert exchange["expiring"] == "1"  # an expiring offline token
    assert creds.extra["refresh_token"] == "shprt_live"
    assert {"access_token_expires_at", "refresh_token_expires_at"} <= set(creds.extra)
    assert creds.extra["currency"] == "EUR"
    assert shop.settings["timezone"] == "America/Los_Angeles"  # the dashboard's days
    assert "currencyCode" in shop_query and "ianaTimezone" in shop_query  # one query
    assert {v["sub"]["uri"] for v in subscriptions} == {
        f"https://sk.example/webhooks/shopify/{shop.id}"}
    topics = {v["topic"] for v in subscriptions}
    assert {"ORDERS_CREATE", "PRODUCTS_UPDATE", "APP_UNINSTALLED", "CHECKOUTS_UPDATE"} <= topics
    assert "CUSTOMERS_REDACT" not in topics  # compliance topics are app-wide (toml) only


REFUSED = "Shopify refused the webhook subscriptions."
#: an outage, or an answer that confirmed nothing: not Shopify saying no
UNREACHED = "could not be reached or answered unexpectedly"


@pytest.mark.parametrize("answer, status, message", [
    ({"webhookSubscription": None, "userErrors": [{"message": "Invalid"}]}, 200, REFUSED),
    # neither errors nor a subscription: it counted as subscribed, and the shop was
    # stored without its webhooks (a retried install answers "taken" for those made)
    ({"webhookSubscription": None, "userErrors": []}, 200, UNREACHED),
    (None, 200, UNREACHED),
    ({}, 520, UNREACHED),  # a CDN's error page, which the session does not retry
])
def test_refused_subscriptions_fail_the_install(install_client, answer, status,
                                                message) -> None:
    state = start(install_client)
    refused = {"data": {"webhookSubscriptionCreate": answer}}
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json={"access_token": "shpat_live", "scope": "read_products"})
        rsps.post(GRAPHQL, json={"data": {"shop": {"currencyCode": "EUR",
                                                   "ianaTimezone": "Europe/Berlin"}}})
        rsps.post(GRAPHQL, json=refused, status=status)
        response = install_client.get("/install/shopify/callback",
                                      query_string=callback_params(state))
    assert response.status_code == 502
    assert message in response.get_json()["message"]
    assert (REFUSED in response.get_json()["message"]) == (message == REFUSED)
    assert db.session.scalar(db.select(shops.Shop).filter_by(domain=SHOP)) is None


def test_wrong_state_is_refused_before_any_http(install_client) -> None:
    start(install_client)
    with responses.RequestsMock():  # any outbound call would fail here
        response = install_client.get("/install/shopify/callback",
                                      query_string=callback_params("forged-state"))
    assert response.status_code == 401
    assert db.session.scalar(db.select(shops.Shop).filter_by(domain=SHOP)) is None


def test_callback_without_install_session_is_refused(install_client) -> None:
    with responses.RequestsMock():
        response = install_client.get("/install/shopify/callback",
                                      query_string=callback_params("any"))
    assert response.status_code == 401
    assert response.get_json()["code"] == 401


def test_bad_hmac_is_refused(install_client) -> None:
    state = start(install_client)
    params = callback_params(state, secret="shpss_not_the_app_secret_0000000000")
    with responses.RequestsMock():
        response = install_client.get("/install/shopify/callback", query_string=params)
    assert response.status_code == 401


def test_a_callback_signed_days_ago_is_refused_before_any_http(install_client) -> None:
    """Its hmac still matches, but Shopify redirected the merchant two days ago."""
    state = start(install_client)
    params = callback_params(state, at=time.time() - 2 * 86400)
    with responses.RequestsMock():  # any outbound call would fail here
        response = install_client.get("/install/shopify/callback", query_string=params)
    assert response.status_code == 401
    assert db.session.scalar(db.select(shops.Shop).filter_by(domain=SHOP)) is None


def test_state_is_single_use(install_client) -> None:
    state = start(install_client)
    with responses.RequestsMock() as rsps:
        mock_exchange(rsps)
        assert install_client.get("/install/shopify/callback",
                                  query_string=callback_params(state)).status_code == 302
    with responses.RequestsMock():
        replay = install_client.get("/install/shopify/callback",
                                    query_string=callback_params(state))
    assert replay.status_code == 401


@pytest.mark.parametrize(
    "shop", ["evil.example", "x.myshopify.com.evil.example", "-a.myshopify.com"])
def test_invalid_shop_domain_is_400(install_client, shop: str) -> None:
    response = install_client.get("/install/shopify", query_string={"shop": shop})
    assert response.status_code == 400
    assert "shop" in response.get_json()["errors"]


def test_unconfigured_app_is_404(install_client, app) -> None:
    app.config["SHOPIFY_API_KEY"] = ""
    assert install_client.get(f"/install/shopify?shop={SHOP}").status_code == 404


def test_reinstall_reactivates_the_same_shop(install_client) -> None:
    state = start(install_client)
    with responses.RequestsMock() as rsps:
        mock_exchange(rsps)
        install_client.get("/install/shopify/callback", query_string=callback_params(state))
    shop = db.session.scalar(db.select(shops.Shop).filter_by(domain=SHOP))
    shops.mark_uninstalled(shop)
    db.session.commit()
    state = start(install_client)
    with responses.RequestsMock() as rsps:
        mock_exchange(rsps)
        install_client.get("/install/shopify/callback", query_string=callback_params(state))
    again = db.session.scalar(db.select(shops.Shop).filter_by(domain=SHOP))
    assert again.id == shop.id and again.status == "active"
    assert shops.credentials_for(again).access_token == "shpat_live"


def test_oauth_again_has_the_webhook_reconcile_check_the_shop_again(install_client) -> None:
    """A new OAuth may grant a scope a topic was skipped for: the job's last check is
    forgotten, so its next run reads the shop's subscriptions again."""
    from plugin.install import shopify_webhooks

    state = start(install_client)
    with responses.RequestsMock() as rsps:
        mock_exchange(rsps)
        install_client.get("/install/shopify/callback", query_string=callback_params(state))
    shop = db.session.scalar(db.select(shops.Shop).filter_by(domain=SHOP))
    shop.settings = {**shop.settings, shopify_webhooks.STATE: {
        "topics": [], "skipped": {"publications/delete": "read_publications"}}}
    db.session.commit()
    state = start(install_client)
    with responses.RequestsMock() as rsps:
        mock_exchange(rsps)
        install_client.get("/install/shopify/callback", query_string=callback_params(state))
    db.session.expire_all()
    again = db.session.scalar(db.select(shops.Shop).filter_by(domain=SHOP))
    assert shopify_webhooks.STATE not in again.settings
    assert again.settings["timezone"] == "America/Los_Angeles"  # the rest is kept


def test_reinstall_keeps_the_time_zone_the_merchant_chose(install_client) -> None:
    _install(install_client)
    shop = db.session.scalar(db.select(shops.Shop).filter_by(domain=SHOP))
    assert shop.settings["timezone"] == "America/Los_Angeles"
    shop.settings = {**shop.settings, "timezone": "Europe/Paris"}  # the merchant's choice
    shops.mark_uninstalled(shop)
    db.session.commit()
    _install(install_client)
    db.session.expire_all()
    assert shops.get_shop(shop.id).settings["timezone"] == "Europe/Paris"


def test_a_time_zone_zoneinfo_does_not_know_is_not_stored(install_client) -> None:
    state = start(install_client)
    with responses.RequestsMock() as rsps:
        mock_exchange(rsps, zone="Pacific/Atlantis")
        assert install_client.get("/install/shopify/callback",
                                  query_string=callback_params(state)).status_code == 302
    shop = db.session.scalar(db.select(shops.Shop).filter_by(domain=SHOP))
    assert "timezone" not in (shop.settings or {})  # the dashboard stays on UTC
    _install(install_client)  # a reinstall that reads a known zone fills it in
    db.session.expire_all()
    assert shops.get_shop(shop.id).settings["timezone"] == "America/Los_Angeles"


def post_app_webhook(client, topic: str, body: bytes, secret: str = SECRET):
    from tests.connectors.test_shopify import shopify_headers

    headers = {**shopify_headers(topic, body, secret), "X-Shopify-Shop-Domain": SHOP}
    return client.post("/webhooks/shopify", data=body, headers=headers)


def installed_shop():
    creds = Credentials(SHOP, access_token="shpat_x", webhook_secret=SECRET)
    shop = shops.create_shop("shopify", SHOP, creds)
    db.session.commit()
    return shop


def test_app_wide_compliance_webhook_reaches_the_inbox(install_client) -> None:
    from plugin.models import WebhookDelivery

    shop = installed_shop()
    body = b'{"shop_id":954889,"shop_domain":"my-shop.myshopify.com","customer":{"id":191167,' \
           b'"email":"john@example.com"},"orders_to_redact":[299938]}'
    response = post_app_webhook(install_client, "customers/redact", body)
    assert response.status_code == 200 and response.get_json()["status"] == "accepted"
    stored = db.session.scalar(db.select(WebhookDelivery).filter_by(shop_id=shop.id))
    assert stored.topic == "customers/redact"


@pytest.mark.parametrize("topic", ["customers/data_request", "customers/redact", "shop/redact"])
def test_app_wide_webhook_bad_hmac_is_401(install_client, topic: str) -> None:
    installed_shop()
    response = post_app_webhook(install_client, topic, b'{"shop_id":1}',
                                secret="shpss_wrong_secret_00000000000000")
    assert response.status_code == 401


@pytest.mark.parametrize("body", [
    b'{"shop_domain":"my-shop.myshopify.com","customer":{"email":"a\\u0000@b.c"}}',
    b'{"a":' * 100 + b"1" + b"}" * 100,
], ids=["nul", "deep"])
def test_app_wide_webhook_bad_hmac_is_401_whatever_the_body(install_client, body) -> None:
    """The body is judged after the signature, as on the per-shop endpoint: Shopify
    requires a 401 for every delivery it did not sign (not a 400 about its contents)."""
    installed_shop()
    response = post_app_webhook(install_client, "customers/redact", body,
                                secret="shpss_wrong_secret_00000000000000")
    assert response.status_code == 401
    signed = post_app_webhook(install_client, "customers/redact", body)
    assert signed.status_code == 400  # signed but unusable: refused before it is stored


def test_shop_redact_after_uninstall_erases_and_acknowledges(install_client) -> None:
    shop = installed_shop()
    shops.mark_uninstalled(shop)
    db.session.commit()
    response = post_app_webhook(install_client, "shop/redact", REDACT_SHOP)
    assert response.status_code == 200
    assert db.session.get(shops.Shop, shop.id) is None


#: Shopify's documented shop/redact body
REDACT_SHOP = b'{"shop_id":954889,"shop_domain":"my-shop.myshopify.com"}'


def test_a_body_signed_for_one_shop_cannot_redact_another(install_client) -> None:
    """The shop header is not signed; a shop/redact Shopify signed for another shop (the
    app secret is the same for every shop) must not erase this one."""
    shop = installed_shop()
    shops.mark_uninstalled(shop)
    db.session.commit()
    other = b'{"shop_id":1,"shop_domain":"someone-else.myshopify.com"}'
    response = post_app_webhook(install_client, "shop/redact", other)
    assert response.status_code == 400
    assert db.session.get(shops.Shop, shop.id) is not None


def test_unknown_shop_is_acknowledged(install_client) -> None:
    body = b'{"shop_id":2,"shop_domain":"my-shop.myshopify.com","customer":{"id":1}}'
    response = post_app_webhook(install_client, "customers/data_request", body)
    assert response.status_code == 200


def test_an_unreachable_shopify_is_a_502_not_a_500(install_client, monkeypatch) -> None:
    from connectors import http
    from connectors.shopify import ShopifyConnector

    real = ShopifyConnector.for_app.__func__

    def no_wait(cls, *args, **kwargs):  # the retrying session, without its real sleeps
        connector = real(cls, *args, **kwargs)
        connector._session = http.make_session(sleep=lambda seconds: None)
        return connector

    monkeypatch.setattr(ShopifyConnector, "for_app", classmethod(no_wait))
    state = start(install_client)
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, status=503)
        response = install_client.get("/install/shopify/callback",
                                      query_string=callback_params(state))
    assert response.status_code == 502
    assert "try again" in response.get_json()["message"]
    assert db.session.scalar(db.select(shops.Shop).filter_by(domain=SHOP)) is None


def _shopify_delivery(client, shop, topic: str, body: dict, webhook_id: str, *,
                      app_wide: bool = False):
    from tests.connectors.test_shopify import shopify_headers

    raw = json.dumps(body).encode()
    headers = {**shopify_headers(topic, raw, SECRET), "X-Shopify-Webhook-Id": webhook_id,
               "X-Shopify-Shop-Domain": SHOP}
    url = "/webhooks/shopify" if app_wide else f"/webhooks/shopify/{shop.id}"
    response = client.post(url, data=raw, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response


def test_shop_redact_for_an_active_shop_is_erased_by_the_worker(install_client, app) -> None:
    """app/uninstalled was lost, so shop/redact went through the inbox: erase_shop deleted
    the row being processed, marking it done raised StaleDataError and rolled the erasure
    back on every attempt until the delivery was dead."""
    from plugin.models import Product, WebhookDelivery
    from plugin.models.types import utcnow
    from plugin.webhooks import inbox

    shop = installed_shop()
    db.session.add(Product(shop_id=shop.id, external_id="p1", title="Tea", categories=[],
                           tags=[], source_updated_at=utcnow()))
    db.session.commit()
    _shopify_delivery(install_client, shop, "shop/redact",
                      {"shop_id": 954889, "shop_domain": SHOP}, "redact-1", app_wide=True)
    assert db.session.scalar(db.select(WebhookDelivery)).status == "pending"
    with responses.RequestsMock() as rsps:  # the uninstall revoked the token
        rsps.post(GRAPHQL, status=401, json={"errors": "[API] Invalid API key or access "
                                                      "token (unrecognized login or wrong "
                                                      "password)"})
        result = inbox.process_inbox()
    assert (result.done, result.failed, result.dead) == (1, 0, 0)
    db.session.expire_all()
    assert db.session.get(shops.Shop, shop.id) is None
    for model in (Product, WebhookDelivery):
        assert db.session.scalar(db.select(db.func.count()).select_from(model)) == 0
    # Shopify sending it again finds nothing left to erase
    _shopify_delivery(install_client, shop, "shop/redact",
                      {"shop_id": 954889, "shop_domain": SHOP}, "redact-1", app_wide=True)
    assert inbox.process_inbox().total == 0


def test_shop_redact_after_a_reinstall_keeps_the_shop(install_client) -> None:
    """shop/redact comes 48 h after an uninstall. A merchant who installed the app again
    meanwhile has a working grant: the request is about the old installation, and wiping
    the live shop would erase what the new one is using."""
    from plugin.models import Product, WebhookDelivery
    from plugin.models.types import utcnow
    from plugin.webhooks import inbox

    shop = installed_shop()
    db.session.add(Product(shop_id=shop.id, external_id="p1", title="Tea", categories=[],
                           tags=[], source_updated_at=utcnow()))
    db.session.commit()
    _shopify_delivery(install_client, shop, "shop/redact",
                      {"shop_id": 954889, "shop_domain": SHOP}, "redact-2", app_wide=True)
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, json={"data": {"shop": {"id": "gid://shopify/Shop/954889"}}})
        result = inbox.process_inbox()
        assert b"shop" in rsps.calls[0].request.body
    assert (result.done, result.failed, result.dead) == (1, 0, 0)
    db.session.expire_all()
    assert db.session.get(shops.Shop, shop.id).status == "active"
    assert db.session.scalar(db.select(db.func.count()).select_from(Product)) == 1
    assert db.session.scalar(db.select(WebhookDelivery.status)) == "done"


def test_shop_redact_is_retried_when_shopify_cannot_say(install_client, monkeypatch) -> None:
    """Neither erased nor dropped on a Shopify outage: the delivery waits for a retry."""
    from connectors import http
    from plugin.models import WebhookDelivery
    from plugin.webhooks import inbox

    real = shops.connector_for
    monkeypatch.setattr(shops, "connector_for", lambda shop, session=None: real(
        shop, session=http.make_session(sleep=lambda seconds: None)))  # no real backoff
    shop = installed_shop()
    _shopify_delivery(install_client, shop, "shop/redact",
                      {"shop_id": 954889, "shop_domain": SHOP}, "redact-3", app_wide=True)
    with responses.RequestsMock() as rsps:
        rsps.post(GRAPHQL, status=503)
        result = inbox.process_inbox()
    assert result.done == 0
    db.session.expire_all()
    assert db.session.get(shops.Shop, shop.id) is not None
    assert db.session.scalar(db.select(WebhookDelivery.status)) in ("pending", "failed")


def test_customers_redact_drops_the_customers_kept_deliveries(install_client) -> None:
    """A failed delivery keeps its body for retries; the customer's redaction must take it,
    whether it names the customer or is one of the orders to redact (a guest checkout)."""
    from plugin.models import WebhookDelivery
    from plugin.webhooks import inbox

    shop = installed_shop()
    order = json.loads((FIXTURES / "orders_create.json").read_text())
    customer_id = str(order["customer"]["id"])
    guest = {**order, "id": 4242, "customer": None, "email": "guest@example.com"}
    other = {**order, "id": 4343, "customer": {**order["customer"], "id": 777},
             "email": "other@example.com"}
    for hook_id, body in (("o-mine", order), ("o-guest", guest), ("o-other", other)):
        _shopify_delivery(install_client, shop, "orders/create", body, hook_id)
    # they failed until dead (e.g. Shopify unreachable): their bodies are kept for a retry
    db.session.execute(db.update(WebhookDelivery).values(status="dead", last_error="boom"))
    db.session.commit()
    redact = {"shop_id": 954889, "shop_domain": SHOP,
              "customer": {"id": int(customer_id), "email": order["email"]},
              "orders_to_redact": [4242]}
    _shopify_delivery(install_client, shop, "customers/redact", redact, "redact-c",
                      app_wide=True)
    assert inbox.process_inbox().done == 1
    db.session.expire_all()
    rows = {r.delivery_id: r for r in db.session.scalars(db.select(WebhookDelivery))}
    for hook_id in ("o-mine", "o-guest", "redact-c"):
        assert (rows[hook_id].status, rows[hook_id].body, rows[hook_id].headers) == (
            "done", b"", {}), hook_id
    assert rows["o-mine"].last_error == inbox.ERASED_NOT_APPLIED
    assert rows["o-other"].status == "dead" and b"other@example.com" in rows["o-other"].body
    # a redelivery of an erased order is a duplicate: its personal data does not come back
    response = _shopify_delivery(install_client, shop, "orders/create", order, "o-mine")
    assert response.get_json()["status"] == "duplicate"


@pytest.mark.parametrize("shop", ["evil.myshopify.com%0A", "evil.myshopify.com%0D%0ALocation:x",
                                  "%0Aevil.myshopify.com"])
def test_shop_domain_with_a_line_break_is_400_not_500(install_client, app, shop) -> None:
    """``$`` also matched before a final newline: Werkzeug then refused the Location (500)."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = install_client.get(f"/install/shopify?shop={shop}")
    assert response.status_code == 400
    assert response.get_json()["errors"] == {"shop": ["must be <name>.myshopify.com"]}


def test_the_callback_refuses_a_line_break_in_the_shop_too(install_client, app) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    state = start(install_client)
    params = callback_params(state, shop=SHOP + "\n")
    with responses.RequestsMock():  # nothing is exchanged
        response = install_client.get("/install/shopify/callback", query_string=params)
    assert 400 <= response.status_code < 500


def test_webhooks_signed_with_a_rotated_client_secret_are_accepted(install_client, app) -> None:
    """Shopify signs every webhook with the app's client secret, one for all shops. After
    the operator rotates it (and sets the new one in SHOPIFY_API_SECRET) Shopify signs with
    the new secret, but each shop was verified against the copy stored at its install: every
    shop's webhooks, and the mandatory compliance ones, answered 401 until reinstalled.
    Shopify's rotation guide: accept webhooks signed with the new and with the old secret
    until the old one is revoked (shopify.dev, Rotate or revoke client credentials)."""
    from plugin.models import WebhookDelivery
    from tests.connectors.test_shopify import shopify_headers

    shop = installed_shop()  # stored at install: the secret of the day
    rotated = "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"
    app.config["SHOPIFY_API_SECRET"] = rotated
    product = (FIXTURES / "products_update.json").read_bytes()
    for number, secret in enumerate((rotated, SECRET)):  # new, and old until revoked
        headers = {**shopify_headers("products/update", product, secret),
                   "X-Shopify-Webhook-Id": f"rotation-{number}"}
        response = install_client.post(f"/webhooks/shopify/{shop.id}", data=product,
                                       headers=headers)
        assert response.status_code == 200, (secret, response.get_json())
    redact = b'{"shop_id":954889,"shop_domain":"my-shop.myshopify.com","customer":{"id":1,' \
             b'"email":"a@example.com"},"orders_to_redact":[]}'
    assert post_app_webhook(install_client, "customers/redact", redact,
                            secret=rotated).status_code == 200
    assert post_app_webhook(install_client, "customers/redact", redact,
                            secret="shpss_wrong_secret_00000000000000").status_code == 401
    assert db.session.scalar(db.select(db.func.count()).select_from(WebhookDelivery)
                             .filter_by(shop_id=shop.id)) == 3


def _uninstall_delivery(client, shop, webhook_id: str, triggered_at: str):
    from tests.connectors.test_shopify import shopify_headers

    body = json.loads((FIXTURES / "app_uninstalled.json").read_text())
    raw = json.dumps({**body, "myshopify_domain": SHOP}).encode()
    headers = {**shopify_headers("app/uninstalled", raw, SECRET), "X-Shopify-Webhook-Id":
               webhook_id, "X-Shopify-Triggered-At": triggered_at}
    response = client.post(f"/webhooks/shopify/{shop.id}", data=raw, headers=headers)
    assert response.status_code == 200, response.get_json()


def _install(client) -> None:
    state = start(client)
    with responses.RequestsMock() as rsps:
        mock_exchange(rsps)
        assert client.get("/install/shopify/callback",
                          query_string=callback_params(state)).status_code == 302


def _iso(at: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def test_an_uninstall_applied_after_a_reinstall_leaves_the_new_install_alone(
        install_client) -> None:
    """The merchant uninstalled and installed again before the worker reached the uninstall
    (a backlog, a worker restart, or Shopify retrying a delivery our endpoint failed): the
    stale uninstall must not wipe the new install's token and have the shop erased 48 h
    later while Shopkeeper is installed."""
    from plugin.webhooks import inbox

    _install(install_client)
    shop = db.session.scalar(db.select(shops.Shop).filter_by(domain=SHOP))
    _uninstall_delivery(install_client, shop, "uninstall-1", _iso(time.time() - 1))
    _install(install_client)  # the reinstall, before the worker ran
    # Shopify retrying an uninstall from before the reinstall (its first try failed here)
    _uninstall_delivery(install_client, shop, "uninstall-0", _iso(time.time() - 3600))
    assert inbox.process_inbox().done == 2
    db.session.expire_all()
    again = shops.get_shop(shop.id)
    assert again.status == "active" and again.uninstalled_at is None
    assert shops.credentials_for(again).access_token == "shpat_live"


def test_an_uninstall_after_the_install_still_uninstalls(install_client) -> None:
    from plugin.webhooks import inbox

    _install(install_client)
    shop = db.session.scalar(db.select(shops.Shop).filter_by(domain=SHOP))
    _uninstall_delivery(install_client, shop, "uninstall-2", _iso(time.time()))
    assert inbox.process_inbox().done == 1
    db.session.expire_all()
    assert shops.get_shop(shop.id).status == "uninstalled"


def test_a_customer_redacted_while_uninstalled_is_gone_after_a_reinstall(install_client,
                                                                         app) -> None:
    """Uninstalled shops keep their rows for the grace period (UNINSTALL_RETENTION_HOURS),
    and a reinstall within it keeps them: a customers/redact acknowledged but not applied
    meanwhile left that customer's data with the reinstalled shop. It is verified with the
    app secret, so the revoked token does not matter; a data request is recorded too."""
    from plugin import privacy
    from plugin.models import Customer, Interaction, Order
    from plugin.webhooks import inbox

    _install(install_client)
    shop = db.session.scalar(db.select(shops.Shop).filter_by(domain=SHOP))
    order = {**json.loads((FIXTURES / "orders_create.json").read_text()),
             "cancelled_at": None, "cancel_reason": None}  # the sample is a cancelled one
    customer_id = str(order["customer"]["id"])
    _shopify_delivery(install_client, shop, "orders/create", order, "order-1")
    _uninstall_delivery(install_client, shop, "uninstall-3", _iso(time.time()))
    assert inbox.process_inbox().done == 2
    db.session.expire_all()
    assert shops.get_shop(shop.id).status == "uninstalled"
    assert db.session.scalar(db.select(Interaction).filter_by(shopper_id=customer_id))
    # Shopify's documented bodies (shopify.dev, privacy law compliance)
    asked = {"shop_id": 954889, "shop_domain": SHOP, "orders_requested": [order["id"]],
             "customer": {"id": int(customer_id), "email": order["email"]},
             "data_request": {"id": 9999}}
    redact = {"shop_id": 954889, "shop_domain": SHOP,
              "customer": {"id": int(customer_id), "email": order["email"]},
              "orders_to_redact": [order["id"]]}
    _shopify_delivery(install_client, shop, "customers/data_request", asked, "asked-1",
                      app_wide=True)
    assert inbox.process_inbox().done == 1
    assert [r["customer_id"] for r in privacy.data_requests(shop.id)] == [customer_id]
    _shopify_delivery(install_client, shop, "customers/redact", redact, "redact-u",
                      app_wide=True)
    with responses.RequestsMock():  # no token, no call to Shopify
        assert inbox.process_inbox().done == 1
    _install(install_client)  # within the grace period: the shop and its rows come back
    db.session.expire_all()
    assert shops.get_shop(shop.id).status == "active"
    assert db.session.scalar(db.select(Interaction).filter_by(shopper_id=customer_id)) is None
    customer = db.session.scalar(db.select(Customer).filter_by(external_id=customer_id))
    assert customer.deleted_at is not None and customer.email_hash is None
    kept = db.session.scalar(db.select(Order).filter_by(external_id=str(order["id"])))
    assert kept.customer_external_id is None
    assert privacy.data_requests(shop.id) == []  # the export went with the erasure


@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversized_app_wide_webhook_gets_413(install_client, app, chunked) -> None:
    """The app-wide endpoint read any body whole; a chunked one (no Content-Length) was
    cut at MAX_CONTENT_LENGTH and failed its HMAC: 401 instead of the 413 every other
    webhook endpoint answers."""
    import io

    from plugin.models import WebhookDelivery
    from tests.connectors.test_shopify import shopify_headers

    installed_shop()
    limit = app.config["WEBHOOK_MAX_BYTES"]
    body = (b'{"shop_id":954889,"shop_domain":"my-shop.myshopify.com","customer":{"id":1,'
            b'"email":"' + b"x" * (limit + 10) + b'@example.com"},"orders_to_redact":[]}')
    headers = {**shopify_headers("customers/redact", body, SECRET),
               "X-Shopify-Shop-Domain": SHOP, "Content-Type": "application/json"}
    if chunked:  # as gunicorn hands it over: no Content-Length, the stream ends with the body
        response = install_client.post(
            "/webhooks/shopify", input_stream=io.BytesIO(body),
            headers={**headers, "Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""})
    else:
        response = install_client.post("/webhooks/shopify", data=body, headers=headers)
    assert response.status_code == 413, response.get_json()
    assert response.get_json()["code"] == 413
    assert db.session.scalar(db.select(db.func.count()).select_from(WebhookDelivery)) == 0
