"""Settings: CSRF, validation of every field, audit log, key rotation."""

from __future__ import annotations

import html as html_lib
import json
import re

import pytest
import sqlalchemy as sa

from plugin import shops
from plugin.extensions import db
from plugin.models import AuditLog
from tests.admin.conftest import sign_in


def _post(client, token, **fields):
    return client.post("/admin/settings", data={"csrf_token": token, **fields})


def test_post_without_csrf_token_is_refused(admin, shop):
    client, _ = admin
    r = client.post("/admin/settings", data={"_section": "privacy",
                                             "privacy.retention_days": "90"})
    assert r.status_code == 400
    db.session.expire_all()
    assert "retention_days" not in (shops.get_shop(shop.id).settings or {})


def test_csrf_token_of_another_session_is_refused(app, shop):
    first, second = app.test_client(), app.test_client()
    token_a = sign_in(app, first, shop)
    sign_in(app, second, shop)
    r = _post(second, token_a, _section="privacy", **{"privacy.retention_days": "90"})
    assert r.status_code == 400


def test_cross_site_origin_is_refused_even_with_a_token(admin):
    client, token = admin
    r = client.post("/admin/settings", data={"csrf_token": token, "_section": "privacy",
                                             "privacy.retention_days": "90"},
                    headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


BAD_VALUES = [
    ("offers", "max_discount_pct", "95"),
    ("offers", "max_discount_pct", "ten"),
    ("offers", "margin_floor_pct", "-1"),
    ("offers", "default_margin_pct", "0"),
    ("offers", "daily_budget", "-5"),
    ("offers", "frequency_cap_days", "1.5"),
    ("offers", "min_cart_value", "lots"),
    ("offers", "free_shipping_threshold", "-1"),
    ("recommendations", "diversity", "1.5"),
    ("recommendations", "holdout_share", "0.9"),
    ("subprofiles", "threshold", "0"),
    ("subprofiles", "cooldown_days", "-3"),
    ("privacy", "retention_days", "5"),
    ("origins", "allowed_origins", "ftp://shop.example"),
    ("origins", "allowed_origins", "https://shop.example/path"),
    ("origins", "admin_origin", "not a url"),
    # the admin origin goes into a CSP header: a ";" or a space starts another directive
    ("origins", "admin_origin", "https://admin.example; script-src *"),
    ("origins", "admin_origin", "https://admin.example;report-uri"),
    ("origins", "admin_origin", "https://admin example"),
    ("origins", "admin_origin", "https://user@admin.example"),
    ("origins", "allowed_origins", "https://shop.example:abc"),
    ("origins", "allowed_origins", "https://shop.example:99999"),
    ("origins", "allowed_origins", "https://shop_example"),
]


@pytest.mark.parametrize(("section", "field", "value"), BAD_VALUES)
def test_each_bad_value_gets_a_field_error_and_nothing_is_saved(admin, shop, section, field,
                                                                  value):
    client, token = admin
    before = dict(shops.get_shop(shop.id).settings or {})
    r = _post(client, token, _section=section, **{f"{section}.{field}": value})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert f'id="err-{section}-{field}"' in html and 'aria-invalid="true"' in html
    assert value.split("/")[0] in html  # what the admin typed is kept in the form
    db.session.expire_all()
    assert (shops.get_shop(shop.id).settings or {}) == before


def test_cross_field_rule_monthly_budget_below_daily(admin):
    client, token = admin
    r = _post(client, token, _section="offers", **{"offers.daily_budget": "200",
                                                   "offers.monthly_budget": "100"})
    assert r.status_code == 422 and "err-offers-monthly_budget" in r.get_data(as_text=True)


@pytest.mark.parametrize("rule", ["pin product", "explode product p1", "boost colour red"])
def test_bad_merchandising_rules_are_refused(admin, rule):
    client, token = admin
    r = _post(client, token, merchandising=rule)
    assert r.status_code == 422 and "err-merchandising" in r.get_data(as_text=True)


def test_consumable_override_needs_a_cycle(admin):
    client, token = admin
    r = _post(client, token, repurchase_overrides="category Tea consumable")
    assert r.status_code == 422


def test_valid_settings_are_saved_where_serving_reads_them_and_audited(admin, shop):
    client, token = admin
    r = _post(client, token, _section=["offers", "origins", "widgets", "privacy"],
              **{"offers.max_discount_pct": "12.5", "offers.daily_budget": "50",
                 "offers.monthly_budget": "900",
                 "origins.allowed_origins": "https://Shop.example:443\nhttp://localhost:3000",
                 "widgets.for_you_enabled": "on", "widgets.offers_enabled": "on",
                 "widgets.placements": ["for_you", "cart"],
                 "privacy.consent_required": "on", "privacy.retention_days": "365"},
              merchandising="exclude product p9\npin tag gifts\nboost vendor Acme 2",
              repurchase_overrides="category Tea consumable 14\nproduct p1 durable")
    assert r.status_code == 302
    db.session.expire_all()
    s = shops.get_shop(shop.id).settings
    assert s["offers"]["max_discount_pct"] == "12.50"
    assert s["allowed_origins"] == ["https://shop.example", "http://localhost:3000"]
    assert s["offers_enabled"] is True and s["subprofiles_enabled"] is False
    assert s["placements"] == ["for_you", "cart"]
    assert s["consent_required"] is True and s["retention_days"] == 365
    assert s["exclude_products"] == ["p9"]
    assert {"action": "boost", "field": "vendor", "value": "Acme", "weight": 2.0} in \
        s["merchandising"]
    assert {"field": "category", "value": "Tea", "kind": "consumable", "cycle_days": 14} in \
        s["repurchase_overrides"]
    entry = db.session.scalars(sa.select(AuditLog).filter_by(
        shop_id=shop.id, action="settings.changed")).one()
    assert {"offers", "allowed_origins", "consent_required", "merchandising"} <= set(
        entry.detail["keys"])
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "exclude product p9" in page and "category Tea consumable 14" in page


def test_keys_of_other_features_inside_a_section_survive_a_save(admin, shop):
    client, token = admin
    shop.settings = {**(shop.settings or {}), "offers": {"stages": {"browsing": ["bundle"]}}}
    db.session.commit()
    _post(client, token, _section="offers", **{"offers.max_discount_pct": "10"})
    db.session.expire_all()
    offers = shops.get_shop(shop.id).settings["offers"]
    assert offers["stages"] == {"browsing": ["bundle"]} and offers["max_discount_pct"] == "10.00"


def test_rotating_the_widget_key_retires_the_old_one(admin, shop):
    client, token = admin
    old = shop.widget_key
    assert client.post("/admin/keys/widget", data={"csrf_token": token}).status_code == 302
    db.session.expire_all()
    new = shops.get_shop(shop.id).widget_key
    assert new != old
    assert client.get(f"/api/v1/config?key={old}").status_code == 404
    assert client.get(f"/api/v1/config?key={new}").status_code == 200


def test_rotating_the_webhook_secret_changes_what_verifies(admin, shop, shop_secret):
    from tests.factories import post_webhook, product_body

    client, token = admin
    r = client.post("/admin/keys/webhook", data={"csrf_token": token}, follow_redirects=True)
    new = shops.credentials_for(shops.get_shop(shop.id)).webhook_secret
    assert new != shop_secret and new in r.get_data(as_text=True)  # shown once
    assert post_webhook(client, shop.id, shop_secret, "products/upsert",
                        product_body()).status_code == 401
    assert post_webhook(client, shop.id, new, "products/upsert",
                        product_body()).status_code == 200
    actions = set(db.session.scalars(sa.select(AuditLog.action).filter_by(shop_id=shop.id)))
    assert "keys.webhook_secret_rotated" in actions


def test_a_rotated_webhook_secret_never_sits_readable_in_the_session_cookie(app, admin, shop):
    """Flask's session cookie is signed, not encrypted, and the webhook secret is also the
    shop's admin secret: a copy of the cookie must not keep it after sign-out."""
    client, token = admin
    r = client.post("/admin/keys/webhook", data={"csrf_token": token})
    assert r.status_code == 302
    new = shops.credentials_for(shops.get_shop(shop.id)).webhook_secret
    cookie = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session")).value
    readable = json.dumps(app.session_interface.get_signing_serializer(app).loads(cookie))
    assert new not in readable and new not in cookie
    page = client.get("/admin/settings").get_data(as_text=True)
    assert new in page  # shown once, on the page the rotation leads to
    assert new not in client.get("/admin/settings").get_data(as_text=True)


def test_a_shopify_shop_has_no_webhook_secret_of_ours_to_rotate(app, client):
    """Shopify signs webhooks with the app's secret: replacing the stored one would only
    make every delivery fail verification."""
    from connectors.base import Credentials
    from tests.admin.conftest import sign_in

    shop = shops.create_shop("shopify", "rotate-me.myshopify.com", Credentials(
        "rotate-me.myshopify.com", access_token="shpat_x", webhook_secret="app-secret"))
    db.session.commit()
    token = sign_in(app, client, shop)
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "Rotate webhook secret" not in page and "signed by Shopify itself" in page
    r = client.post("/admin/keys/webhook", data={"csrf_token": token},
                    headers={"Accept": "application/json"})
    assert r.status_code == 400 and "signs its webhooks itself" in r.get_json()["message"]
    assert shops.credentials_for(shops.get_shop(shop.id)).webhook_secret == "app-secret"


# One bad value for every field the settings schema validates, and the message it must show.
# Checkboxes (booleans) cannot fail: unchecked means False.
EVERY_FIELD = {
    ("widgets", "placements"): (["for_you", "sidebar"], "line 2: Must be one of"),
    ("recommendations", "sources"): ([], "Pick at least one source."),
    ("recommendations", "diversity"): ("2", "Must be greater than or equal to 0"),
    ("recommendations", "holdout_share"): ("half", "Not a valid number."),
    ("subprofiles", "threshold"): ("1", "Must be greater than or equal to 0.05"),
    ("subprofiles", "cooldown_days"): ("999", "less than or equal to 365"),
    ("offers", "max_discount_pct"): ("91", "Must be between 0 and 90."),
    ("offers", "margin_floor_pct"): ("x", "Not a valid number."),
    ("offers", "default_margin_pct"): ("101", "Must be between 1 and 100."),
    ("offers", "daily_budget"): ("1e30", "Must be between 0 and 10000000."),
    ("offers", "monthly_budget"): ("-1", "Must be between 0 and 100000000."),
    ("offers", "frequency_cap_days"): ("week", "Not a valid integer."),
    ("offers", "min_cart_value"): ("-2", "Must be between 0 and 1000000."),
    ("offers", "free_shipping_threshold"): ("free", "Not a valid number."),
    ("offers", "excluded_products"): ("p1\n" + "x" * 300, "line 2: Longer than 255 characters."),
    ("offers", "excluded_categories"): ("y" * 300, "line 1: Longer than 255 characters."),
    ("privacy", "retention_days"): ("1", "greater than or equal to 30"),
    ("origins", "allowed_origins"): ("https://ok.example\nshop", "line 2: 'shop' is not an"),
    ("origins", "admin_origin"): ("ftp://x.example", "is not an origin"),
    ("shop", "timezone"): ("America/Los Angeles", "is not a time zone name; use an IANA"),
}


@pytest.mark.parametrize(("section", "field"), sorted(EVERY_FIELD))
def test_every_refused_field_has_its_message_next_to_it(admin, section, field):
    from plugin.admin import forms

    # the offers' currency table has an input per currency and figure: its messages are
    # checked in test_settings_currencies.py; the keys set in the settings JSON only have
    # no input (their flags: tests/offers/test_stored_stages_and_urls.py)
    json_only = {tuple(name.split(".")) for name in forms.JSON_ONLY}
    assert set(EVERY_FIELD) | {("offers", "currency_guardrails")} | json_only == {
        (s, name) for s, schema in forms.SECTIONS.items()
        for name in schema().fields if name not in forms.BOOLEANS}
    client, token = admin
    value, message = EVERY_FIELD[(section, field)]
    r = _post(client, token, _section=section, **{f"{section}.{field}": value})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    slot = re.search(rf'id="err-{section}-{field}" role="alert">([^<]*)<', html)
    assert slot and message in html_lib.unescape(slot[1])
    assert f'aria-describedby="err-{section}-{field}"' in html


def test_origins_are_stored_normalised_with_an_idna_host(admin, shop):
    client, token = admin
    r = _post(client, token, _section="origins", **{
        "origins.allowed_origins": "https://Bücher.example:443/\nhttp://[::1]:3000",
        "origins.admin_origin": "HTTPS://Admin.Bücher.example:8443"})
    assert r.status_code == 302
    db.session.expire_all()
    settings = shops.get_shop(shop.id).settings
    assert settings["allowed_origins"] == ["https://xn--bcher-kva.example", "http://[::1]:3000"]
    assert settings["admin_origin"] == "https://admin.xn--bcher-kva.example:8443"


def test_every_bad_origin_is_reported(admin):
    client, token = admin
    r = _post(client, token, _section="origins",
              **{"origins.allowed_origins": "ftp://a.example\nhttps://ok.example\nnope"})
    html = r.get_data(as_text=True)
    assert "line 1: &#39;ftp://a.example&#39; is not an origin" in html
    assert "line 3: &#39;nope&#39; is not an origin" in html


def test_unchecking_every_source_asks_for_one(admin):
    client, token = admin
    html = _post(client, token, _section="recommendations").get_data(as_text=True)
    assert "Pick at least one source." in html and "Shorter than minimum length" not in html


def test_a_boost_weight_is_optional_and_values_may_have_spaces(admin, shop):
    client, token = admin
    r = _post(client, token, merchandising="boost category Home Decor\n"
                                           "boost tag Summer Sale 2.5\npin vendor Acme Co 2")
    assert r.status_code == 302
    db.session.expire_all()
    rules = shops.get_shop(shop.id).settings["merchandising"]
    assert rules == [
        {"action": "boost", "field": "category", "value": "Home Decor", "weight": 1.0},
        {"action": "boost", "field": "tag", "value": "Summer Sale", "weight": 2.5},
        {"action": "pin", "field": "vendor", "value": "Acme Co 2", "weight": 1.0}]


def test_every_bad_rule_line_is_reported_in_one_save(admin, shop):
    client, token = admin
    r = _post(client, token, merchandising="boost tag xmas 99\npin product\n\nfoo bar baz\n"
                                           "exclude product p1",
              repurchase_overrides="product p1 durable\ncategory Tea consumable 0\nshelf x durable")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    merch = re.search(r'id="err-merchandising" role="alert">(.*?)</span>', html)[1]
    assert merch.split("<br>") == [
        "line 1: weight: Must be greater than or equal to 0 and less than or equal to 10.",
        "line 2: write &#39;pin|boost|exclude product|tag|category|vendor VALUE [WEIGHT]&#39;",
        "line 4: action: Must be one of: pin, boost, exclude.",
        "line 4: field: Must be one of: product, tag, category, vendor."]
    overrides = re.search(r'id="err-repurchase_overrides" role="alert">(.*?)</span>', html)[1]
    assert "line 2: cycle_days:" in overrides and "line 3: field:" in overrides
    assert "line 1" not in overrides
    assert "boost tag xmas 99\npin product" in html  # what the admin typed is kept
    db.session.expire_all()
    assert "merchandising" not in (shops.get_shop(shop.id).settings or {})


def test_a_bad_rule_line_and_a_bad_section_field_are_reported_together(admin, shop):
    client, token = admin
    r = _post(client, token, merchandising="pin product", _section="offers",
              **{"offers.max_discount_pct": "95"})
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert re.search(r'id="err-merchandising" role="alert">line 1: write', html)
    assert re.search(r'id="err-offers-max_discount_pct" role="alert">Must be between 0 and 90',
                     html)


def test_an_excluded_category_with_a_comma_is_kept_whole(admin, shop):
    """The box says "one a line": a category named with a comma is one category (it was
    split in two at the comma, so neither half excluded anything)."""
    client, token = admin
    r = _post(client, token, _section="offers", **{
        "offers.excluded_categories": "Bags, Purses & Wallets\nHome Decor",
        "offers.excluded_products": "p1, p2\np3"})
    assert r.status_code == 302
    db.session.expire_all()
    offers = shops.get_shop(shop.id).settings["offers"]
    assert offers["excluded_categories"] == ["Bags, Purses & Wallets", "Home Decor"]
    assert offers["excluded_products"] == ["p1", "p2", "p3"]  # ids hold no comma
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "Bags, Purses &amp; Wallets\nHome Decor</textarea>" in page


def test_a_boost_weight_with_a_decimal_comma_is_refused_not_read_into_the_value(admin, shop):
    """"boost tag Summer 1,5" was saved as a boost of the tag "Summer 1,5" at weight 1
    (the comma made the weight no number, so it was read as the end of the value)."""
    client, token = admin
    r = _post(client, token, merchandising="boost tag Summer 1,5\nboost tag size 42,5 1\n"
                                           "pin tag 2,5")
    assert r.status_code == 422
    html = html_lib.unescape(r.get_data(as_text=True))
    assert "line 1: weight: write 1,5 with a decimal point (1.5)" in html
    assert "line 2" not in html and "line 3" not in html  # a weight after it; no boost
    assert "settings.changed" not in {e.action for e in db.session.scalars(
        sa.select(AuditLog).filter_by(shop_id=shop.id))}
    r = _post(client, token, merchandising="boost tag Summer 1.5\nboost tag size 42,5 1")
    assert r.status_code == 302
    db.session.expire_all()
    assert shops.get_shop(shop.id).settings["merchandising"] == [
        {"action": "boost", "field": "tag", "value": "Summer", "weight": 1.5},
        {"action": "boost", "field": "tag", "value": "size 42,5", "weight": 1.0}]


def test_too_many_rule_lines_are_counted_in_lines_not_characters(admin, shop):
    """501 rules said "Longer than maximum length 500." next to the box: a merchant cut
    the text to 500 characters. It counts lines."""
    client, token = admin
    r = _post(client, token, merchandising="\n".join(f"pin product p{i}" for i in range(501)),
              repurchase_overrides="\n".join(f"product p{i} durable" for i in range(501)))
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert re.search(r'id="err-merchandising" role="alert">At most 500 lines: one entry a '
                     r"line, blank lines not counted\.</span>", html)
    assert 'id="err-repurchase_overrides" role="alert">At most 500 lines' in html
    assert "maximum length" not in html
