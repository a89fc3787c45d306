"""A caller that asks for JSON (``Accept: application/json``) gets every refusal of the
settings page as the app's JSON error (``plugin.errors.error_response``), not an HTML page."""

from __future__ import annotations

import responses

from plugin import shops
from plugin.extensions import db
from tests.admin.conftest import sign_in
from tests.admin.test_saleor_channel import API, CHANNELS
from tests.admin.test_saleor_channel import _shop as _saleor_shop
from tests.admin.test_settings_conflicts import Tab

JSON = {"Accept": "application/json"}


def _error(answer, code: int) -> dict:
    """The app's one JSON error shape, checked; its body."""
    assert answer.status_code == code, answer.get_data(as_text=True)
    assert answer.mimetype == "application/json"
    body = answer.get_json()
    assert set(body) == {"code", "status", "message", "errors"}
    assert body["code"] == code
    return body


def _stored(shop) -> dict:
    db.session.expire_all()
    return shops.get_shop(shop.id).settings or {}


def test_a_refused_form_answers_422_as_json_naming_each_field(admin, shop):
    client, _ = admin
    answer = Tab(client).edit("offers.max_discount_pct", "96").edit(
        "privacy.retention_days", "5").save(**JSON)
    body = _error(answer, 422)
    assert body["status"] == "Unprocessable Entity"
    assert body["message"].startswith("Nothing was saved")
    assert body["errors"]["offers.max_discount_pct"] == ["Must be between 0 and 90."]
    assert body["errors"]["privacy.retention_days"][0].startswith("Must be")
    assert "max_discount_pct" not in (_stored(shop).get("offers") or {})


def test_a_refused_line_of_a_text_box_is_named_by_its_line(admin, shop):
    client, _ = admin
    answer = Tab(client).edit("merchandising", "pin product p1\nboost tag sale 50").save(**JSON)
    body = _error(answer, 422)
    assert body["errors"] == {"merchandising": ["line 2: weight: Must be greater than or "
                                                "equal to 0 and less than or equal to 10."]}


def test_a_rule_across_fields_answers_422_as_json(admin, shop):
    client, _ = admin
    answer = Tab(client).edit("offers.daily_budget", "500").edit(
        "offers.monthly_budget", "100").save(**JSON)
    assert _error(answer, 422)["errors"] == {
        "offers.monthly_budget": ["The monthly budget cannot be below the daily budget."]}


def test_a_page_still_gets_the_page(admin, shop):
    client, _ = admin
    answer = Tab(client).edit("offers.max_discount_pct", "96").save(
        Accept="text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8")
    assert answer.status_code == 422 and answer.mimetype == "text/html"


def test_an_expired_form_answers_400_as_json(admin, shop):
    client, _ = admin
    answer = Tab(client).edit("csrf_token", "expired").save(**JSON)
    assert "form expired" in _error(answer, 400)["message"]


def test_a_refused_channel_answers_422_as_json(app, client):
    csrf = sign_in(app, client, _saleor_shop())
    with responses.RequestsMock() as rsps:
        rsps.post(API, json=CHANNELS)
        answer = client.post("/admin/settings/saleor-channel", headers=JSON,
                             data={"saleor_channel": "channel-gbp", "csrf_token": csrf})
    body = _error(answer, 422)
    assert "Saleor has: default-channel, channel-pln" in str(body["errors"]["saleor_channel"])
