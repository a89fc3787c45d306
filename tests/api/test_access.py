"""Shop keys, CORS per shop, input validation and rate limits of ``/api/v1``."""

from __future__ import annotations

import pytest

from plugin.extensions import db
from plugin.models import Interaction
from tests.api.conftest import anon_id

ALLOWED = "https://store.example"
FOREIGN = "https://evil.example"


def _error_shape(response, code: int) -> dict:
    body = response.get_json()
    assert response.status_code == code
    assert set(body) == {"code", "status", "message", "errors"}
    assert body["code"] == code
    return body


# ------------------------------------------------------------------ shop key
def test_unknown_key_is_404(client, store):
    _error_shape(client.get("/api/v1/config?key=pk_nope"), 404)
    _error_shape(client.get("/api/v1/recommendations?placement=for_you"), 404)


def test_key_in_header_works(client, store):
    response = client.get("/api/v1/config", headers={"X-Shopkeeper-Key": store.widget_key})
    assert response.status_code == 200
    assert response.get_json()["shop_id"] == store.id


def test_uninstalled_shop_key_is_404(client, store):
    store.status = "uninstalled"
    db.session.commit()
    _error_shape(client.get(f"/api/v1/config?key={store.widget_key}"), 404)


def test_config_answers_the_contract(client, store):
    store.settings = {**store.settings, "consent_required": True,
                      "strings": {"for_you_title": "Für dich"}}
    db.session.commit()
    body = client.get(f"/api/v1/config?key={store.widget_key}").get_json()
    assert body["widgets"] == {"for_you": True, "shopping_for": False, "cart_offer": False}
    assert body["consent_required"] is True
    assert body["currency"] == "GBP"
    assert body["strings"]["for_you_title"] == "Für dich"
    assert body["strings"]["cart_title"]


# ------------------------------------------------------------------ CORS
def test_preflight_from_allowed_origin(client, store):
    response = client.options(f"/api/v1/events?key={store.widget_key}", headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-shopkeeper-shopper"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "X-Shopkeeper-Shopper" in response.headers["Access-Control-Allow-Headers"]
    assert "Origin" in response.headers["Vary"]


def test_preflight_from_foreign_origin_is_refused(client, store):
    response = client.options(f"/api/v1/events?key={store.widget_key}", headers={
        "Origin": FOREIGN, "Access-Control-Request-Method": "POST"})
    _error_shape(response, 403)
    assert "Access-Control-Allow-Origin" not in response.headers


def test_simple_request_from_allowed_origin_gets_cors_headers(client, store):
    response = client.get(f"/api/v1/recommendations?key={store.widget_key}&placement=for_you",
                          headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_simple_request_from_foreign_origin_is_refused(client, store):
    response = client.get(f"/api/v1/recommendations?key={store.widget_key}&placement=for_you",
                          headers={"Origin": FOREIGN})
    _error_shape(response, 403)
    assert "Access-Control-Allow-Origin" not in response.headers


def test_beacon_from_foreign_origin_stores_nothing(client, store):
    response = client.post(f"/api/v1/events?key={store.widget_key}",
                           data='{"events": [{"type": "view", "product_id": "p1"}]}',
                           headers={"Origin": FOREIGN, "Content-Type": "text/plain",
                                    "X-Shopkeeper-Shopper": anon_id()})
    _error_shape(response, 403)
    assert db.session.query(Interaction).filter(Interaction.kind == "view").count() == 0


def test_beacon_text_plain_from_allowed_origin_is_stored(client, store):
    response = client.post(f"/api/v1/events?key={store.widget_key}",
                           data='{"events": [{"type": "view", "product_id": "p1"}]}',
                           headers={"Origin": ALLOWED, "Content-Type": "text/plain",
                                    "X-Shopkeeper-Shopper": anon_id()})
    assert response.status_code == 202
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert db.session.query(Interaction).filter(Interaction.kind == "view").count() == 1


def test_origin_of_another_shop_is_foreign(client, store):
    from tests.factories import make_shop

    other = make_shop()
    other.settings = {"allowed_origins": ["https://other.example"]}
    db.session.commit()
    response = client.get(f"/api/v1/config?key={store.widget_key}",
                          headers={"Origin": "https://other.example"})
    _error_shape(response, 403)


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(("params", "field"), [
    ({"placement": "everything"}, "placement"),
    ({}, "placement"),
    ({"placement": "for_you", "n": "0"}, "n"),
    ({"placement": "for_you", "n": "51"}, "n"),
    ({"placement": "for_you", "n": "many"}, "n"),
    ({"placement": "product"}, "product_id"),
    ({"placement": "cart", "cart": ",".join(f"p{i}" for i in range(101))}, "cart"),
])
def test_bad_recommendation_params_are_422_with_field_errors(api, params, field):
    response = api.client.get("/api/v1/recommendations",
                              query_string={"key": api.shop.widget_key, **params})
    body = _error_shape(response, 422)
    assert field in body["errors"]


@pytest.mark.parametrize(("events", "path"), [
    ([{"type": "teleport"}], ("events", "0", "type")),
    ([{"type": "view", "quantity": 0}], ("events", "0", "quantity")),
    ([{"type": "view", "at": "yesterday"}], ("events", "0", "at")),
    ([{"type": "view", "colour": "red"}], ("events", "0", "colour")),
    ([], ("events",)),
    ([{"type": "view"}] * 51, ("events",)),
])
def test_bad_events_are_422_with_field_errors(api, events, path):
    response = api.events(events, headers={"X-Shopkeeper-Shopper": anon_id()})
    errors = _error_shape(response, 422)["errors"]
    for part in path:
        errors = errors[part if part in errors else int(part)]
    assert errors
    assert db.session.query(Interaction).filter(Interaction.kind != "purchase").count() == 0


def test_events_body_that_is_not_json_is_400(api):
    response = api.client.post(f"/api/v1/events?key={api.shop.widget_key}", data="{oops",
                               headers={"X-Shopkeeper-Shopper": anon_id(),
                                        "Content-Type": "application/json"})
    _error_shape(response, 400)


def test_events_without_a_shopper_are_422(api):
    body = _error_shape(api.events([{"type": "view", "product_id": "p1"}]), 422)
    assert "X-Shopkeeper-Shopper" in body["errors"]


@pytest.mark.parametrize("granted", ["yes", 1, 0, "true", None])
def test_consent_must_be_a_real_boolean(api, granted):
    body = _error_shape(api.consent(granted, headers={"X-Shopkeeper-Shopper": anon_id()}), 422)
    assert "granted" in body["errors"]


@pytest.mark.parametrize("kind", ["view", "click", "add_to_cart", "purchase"])
def test_product_events_need_their_product(api, kind):
    body = _error_shape(api.events([{"type": kind}],
                                   headers={"X-Shopkeeper-Shopper": anon_id()}), 422)
    assert body["errors"]["events"]["0"]["product_id"] == [f"Required for a {kind} event."]


# ------------------------------------------------------------------ rate limits
def test_per_client_limit_answers_429_with_retry_after(app, api):
    app.config["API_RATE_LIMIT_PER_CLIENT"] = "3 per minute"
    for _ in range(3):
        assert api.recs().status_code == 200
    response = api.recs()
    _error_shape(response, 429)
    assert 0 < int(response.headers["Retry-After"]) <= 61
    # another client is not affected by this one's limit
    other = api.client.get("/api/v1/recommendations", environ_base={"REMOTE_ADDR": "10.0.0.9"},
                           query_string={"key": api.shop.widget_key, "placement": "for_you"})
    assert other.status_code == 200


def test_successful_answers_carry_no_retry_after(api):
    response = api.recs()
    assert response.status_code == 200
    assert "Retry-After" not in response.headers


def test_per_key_limit_spans_clients(app, api):
    app.config["API_RATE_LIMIT_PER_KEY"] = "4 per minute"
    codes = [api.client.get("/api/v1/config", query_string={"key": api.shop.widget_key},
                            environ_base={"REMOTE_ADDR": f"10.0.1.{k}"}).status_code
             for k in range(6)]
    assert codes == [200, 200, 200, 200, 429, 429]


def test_rate_limited_answer_is_readable_by_the_allowed_origin(app, api):
    app.config["API_RATE_LIMIT_PER_CLIENT"] = "1 per minute"
    api.recs(headers={"Origin": ALLOWED})
    response = api.recs(headers={"Origin": ALLOWED})
    assert response.status_code == 429
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]


def test_openapi_documents_the_shopper_api(client, store):
    paths = client.get("/openapi.json").get_json()["paths"]
    for path in ("/api/v1/config", "/api/v1/recommendations", "/api/v1/events",
                 "/api/v1/consent"):
        assert path in paths


def test_default_rate_limit_store_does_not_start_a_thread_per_hit(app, api):
    import threading

    from plugin.api.limits import SweptMemoryStorage, storage_of

    assert isinstance(storage_of(app), SweptMemoryStorage)
    api.recs()
    before = threading.active_count()
    for _ in range(20):
        assert api.recs().status_code == 200
    assert threading.active_count() <= before


def test_behind_a_balancer_each_shopper_has_their_own_client_limit(app, api):
    """With ``PROXY_HOPS`` the address comes from X-Forwarded-For; without it every shopper
    behind the balancer would share the balancer's one bucket."""
    from plugin import create_app, hot_reads

    def hits(client, forwarded_for: str) -> int:
        return client.get("/api/v1/config", query_string={"key": api.shop.widget_key},
                          headers={"X-Forwarded-For": forwarded_for},
                          environ_base={"REMOTE_ADDR": "10.0.0.5"}).status_code

    app.config["API_RATE_LIMIT_PER_CLIENT"] = "2 per minute"
    direct = [hits(api.client, f"203.0.113.{k}") for k in range(3)]
    assert direct == [200, 200, 429]  # hops 0: the header is not believed

    behind = create_app({k: v for k, v in app.config.items() if k.isupper()}
                        | {"PROXY_HOPS": 1, "API_RATE_LIMIT_PER_CLIENT": "2 per minute"})
    with behind.app_context():
        client = behind.test_client()
        assert [hits(client, "198.51.100.1") for _ in range(3)] == [200, 200, 429]
        assert hits(client, "198.51.100.2") == 200  # another shopper, own bucket
        # only the hop the balancer appended is trusted: a forged first entry is ignored
        assert hits(client, "198.51.100.7, 198.51.100.1") == 429
        # a forwarded value that is no IP address (a client writing the header itself,
        # or log-breaking text) counts as the connection's address, the balancer's here
        assert [hits(client, bad) for bad in ("x\\\"y", "unknown", "x\\\"y")] == [
            200, 200, 429]
        hot_reads.dispose(behind)
        db.session.remove()
        db.engine.dispose()  # its pool must not outlive the test (PostgreSQL truncates)
