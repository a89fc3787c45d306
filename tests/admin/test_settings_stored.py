"""A value stored before a rule tightened (or written around the page) does not lock the
settings page: it shows with its error, the merchant's other edits save around it (it
stays as stored, still flagged), and it is corrected from the page like any field."""

from __future__ import annotations

import re
from html import unescape

import pytest
from marshmallow import ValidationError

from plugin import shops
from plugin.admin import forms
from plugin.admin import settings as settings_service
from plugin.extensions import db
from tests.admin.test_settings_conflicts import Tab
from tests.admin.test_settings_currencies import EUR, ROW, _selling

FLAGGED = r'id="err-offers-max_discount_pct" role="alert">Must be between 0 and 90'


def _stored(shop) -> dict:
    db.session.expire_all()
    return shops.get_shop(shop.id).settings


def _older_release(shop, **offers) -> None:
    """Settings an older release stored: a max discount the page now refuses."""
    shop.settings = {**(shop.settings or {}), "retention_days": 730,
                     "offers": {"max_discount_pct": "95", "daily_budget": "100", **offers}}
    db.session.commit()


@pytest.mark.parametrize("revision", [True, False], ids=["page", "cached-page"])
def test_other_edits_save_around_a_stored_refused_value_which_stays_flagged(admin, shop,
                                                                             revision):
    client, _ = admin
    _older_release(shop)
    tab = Tab(client)
    assert tab.value("offers.max_discount_pct") == "95"
    tab.edit("privacy.retention_days", "90").edit("offers.daily_budget", "120")
    if not revision:  # a page cached before it carried its revision
        tab.without("settings_rev", "settings_seen")
    r = tab.save()
    assert r.status_code == 302, r.get_data(as_text=True)
    stored = _stored(shop)
    assert stored["retention_days"] == 90 and stored["offers"]["daily_budget"] == "120.00"
    assert stored["offers"]["max_discount_pct"] == "95"  # neither applied nor replaced
    html = client.get("/admin/settings").get_data(as_text=True)
    assert re.search(FLAGGED, html)
    assert "Settings saved. Max discount is still as stored before, which these settings " \
        "no longer allow: correct the fields marked below." in html


def test_the_stored_refused_value_is_corrected_from_the_page(admin, shop):
    client, _ = admin
    _older_release(shop)
    assert Tab(client).edit("offers.max_discount_pct", "12").save().status_code == 302
    assert _stored(shop)["offers"]["max_discount_pct"] == "12.00"
    html = client.get("/admin/settings").get_data(as_text=True)
    assert not re.search(FLAGGED, html) and "Offers are paused" not in html


def test_changing_it_to_another_refused_value_is_refused_at_its_field(admin, shop):
    client, _ = admin
    _older_release(shop)
    r = Tab(client).edit("offers.max_discount_pct", "96").edit("privacy.retention_days",
                                                                "90").save()
    assert r.status_code == 422
    assert re.search(FLAGGED, r.get_data(as_text=True))
    assert _stored(shop)["offers"]["max_discount_pct"] == "95"
    assert _stored(shop)["retention_days"] == 730


def test_a_stored_refused_currency_row_left_as_shown_stays_and_the_rest_saves(admin, shop):
    client, _ = admin
    _selling(shop, "USD", "EUR", "GBP", offers={"currency_guardrails": {
        "EUR": {**EUR, "min_cart_value": "-5", "product_costs": {"p1": "3"}}}})
    tab = Tab(client).edit(f"{ROW}.GBP.daily_budget", "80").edit(
        f"{ROW}.GBP.monthly_budget", "900").edit(f"{ROW}.GBP.min_cart_value", "15")
    r = tab.edit("privacy.retention_days", "90").save()
    assert r.status_code == 302, r.get_data(as_text=True)
    rows = _stored(shop)["offers"]["currency_guardrails"]
    assert rows["EUR"] == {**EUR, "min_cart_value": "-5", "product_costs": {"p1": "3"}}
    assert rows["GBP"]["daily_budget"] == "80.00"
    assert "The EUR row of Other currencies is still as stored before" in client.get(
        "/admin/settings").get_data(as_text=True)
    assert _stored(shop)["retention_days"] == 90
    # a row changed but still refused is refused, at its input
    r = Tab(client).edit(f"{ROW}.EUR.daily_budget", "95").save()
    assert r.status_code == 422
    assert re.search(r'id="err-offers-currency_guardrails-EUR-min_cart_value" role="alert">',
                     r.get_data(as_text=True))


def test_the_settings_document_saves_other_sections_around_it_too(app, shop):
    """``save`` as an API calls it: a section without the refused value saves; one that
    sets it to another refused value is refused naming the field."""
    _older_release(shop)
    settings_service.save(shop, {"privacy": {"consent_required": True,
                                             "retention_days": 90}})
    assert _stored(shop)["retention_days"] == 90
    assert _stored(shop)["offers"]["max_discount_pct"] == "95"
    with pytest.raises(ValidationError) as refused:
        settings_service.save(shop, {"offers": {"max_discount_pct": "96"}})
    assert list(refused.value.messages) == ["offers.max_discount_pct"]
    assert settings_service.problems(shop, {"privacy": {"retention_days": 90}}) == {}


def _label_texts(html: str) -> dict[str, str]:
    """Each settings field's label on the page, by field name (tags dropped)."""
    out = {}
    for name, text in re.findall(r'<label for="([^"]+)">(.*?)</label>', html, re.S):
        out[name] = text
    for text_before, name, text in re.findall(
            r'<label class="sk-check">()<input type="checkbox" name="([^"]+)"[^>]*>(.*?)'
            r"</label>", html, re.S):
        out.setdefault(name, text_before + text)
    for name, text in re.findall(r'<(?:p|legend) id="label-([^"]+)">(.*?)</(?:p|legend)>',
                                 html, re.S):
        out[name] = text
    return {name: unescape(re.sub(r"<[^>]+>", "", text)).strip()
            for name, text in out.items()}


def test_the_page_labels_each_field_as_its_messages_name_it(admin, shop):
    """One source for both: a conflict or refusal names a field as its label reads."""
    client, _ = admin
    _selling(shop, "USD", "EUR")  # the currency table shows
    html = client.get("/admin/settings").get_data(as_text=True)
    labels = _label_texts(html)
    for name, label in forms.LABELS.items():
        if name == forms.CURRENCY_ROWS:
            continue  # a table, named by its caption
        assert name in labels, name
        assert labels[name].startswith(label), (name, labels[name])
    assert f"<caption>{forms.LABELS[forms.CURRENCY_ROWS]}</caption>" in html
    page_fields = set(re.findall(r'name="((?:shop|widgets|recommendations|subprofiles|offers|'
                                 r'privacy|origins)\.[a-z_]+)"', html))
    assert page_fields <= set(forms.LABELS) | {"offers.currency_guardrails"}


def test_a_conflict_on_the_currency_rows_names_them_as_the_page_does(admin, shop):
    client, _ = admin
    _selling(shop, "USD", "EUR")
    tab = Tab(client)
    settings_service.save(shop, {"offers": {"currency_guardrails": {"EUR": EUR}}})
    r = tab.edit(f"{ROW}.EUR.daily_budget", "80").edit(f"{ROW}.EUR.monthly_budget", "900") \
        .edit(f"{ROW}.EUR.min_cart_value", "15").save()
    assert r.status_code == 409
    assert "Other currencies were changed (now EUR) while you were editing" in unescape(
        r.get_data(as_text=True))


def test_a_refused_value_of_a_top_level_setting_is_kept_the_same_way(admin, shop):
    """``retention_days`` is stored at the top of the settings, not in a section."""
    client, _ = admin
    shop.settings = {**(shop.settings or {}), "retention_days": 5}
    db.session.commit()
    r = Tab(client).edit("offers.max_discount_pct", "12").save()
    assert r.status_code == 302
    assert _stored(shop)["retention_days"] == 5
    assert _stored(shop)["offers"]["max_discount_pct"] == "12.00"
    html = client.get("/admin/settings").get_data(as_text=True)
    assert re.search(r'id="err-privacy-retention_days" role="alert">Must be', html)
    assert "Retention days is still as stored before" in html


#: Text-box lists an older release stored, each with a line the page now refuses
RULES = [{"action": "pin", "field": "product", "value": "p1", "weight": 1.0},
         {"action": "boost", "field": "tag", "value": "sale", "weight": 50},
         {"action": "exclude", "field": "product", "value": "x" * 300, "weight": 1.0},
         {"action": "exclude", "field": "product", "value": "p9", "weight": 1.0}]
OVERRIDES = [{"field": "category", "value": "Coffee", "kind": "consumable", "cycle_days": 0},
             {"field": "product", "value": "p2", "kind": "durable", "cycle_days": None}]


def _older_lists(shop, rules=RULES, overrides=OVERRIDES) -> None:
    shop.settings = {**(shop.settings or {}), "merchandising": rules,
                     "repurchase_overrides": overrides}
    db.session.commit()


def test_a_refused_line_shows_in_its_text_box_at_its_place_with_its_error(admin, shop):
    client, _ = admin
    _older_lists(shop)
    tab = Tab(client)
    assert tab.value("merchandising").splitlines() == [
        "pin product p1", "boost tag sale 50", f"exclude product {'x' * 300}",
        "exclude product p9"]
    assert tab.value("repurchase_overrides").splitlines() == [
        "category Coffee consumable 0", "product p2 durable"]
    html = client.get("/admin/settings").get_data(as_text=True)
    assert re.search(r'id="err-merchandising" role="alert">line 2: weight: Must be .*'
                     r"<br>line 3: value: Longer than 255 characters.</span>", html)
    assert re.search(r'id="err-repurchase_overrides" role="alert">line 1: cycle_days: ', html)


def test_a_refused_line_left_as_shown_is_kept_as_stored_and_still_flagged(admin, shop):
    client, _ = admin
    _older_lists(shop)
    r = Tab(client).edit("privacy.retention_days", "90").save()
    assert r.status_code == 302, r.get_data(as_text=True)
    stored = _stored(shop)
    assert stored["retention_days"] == 90
    assert stored["merchandising"] == RULES and stored["repurchase_overrides"] == OVERRIDES
    assert stored.get("exclude_products", ["p9"]) == ["p9"]  # the refused one never applies
    html = client.get("/admin/settings").get_data(as_text=True)
    assert "err-merchandising" in html and "err-repurchase_overrides" in html
    assert "Lines of Merchandising rules and Lines of Repurchase overrides are still as " \
        "stored before" in html


def test_other_lines_change_around_a_refused_line(admin, shop):
    client, _ = admin
    _older_lists(shop)
    tab = Tab(client)
    text = tab.value("merchandising").replace("pin product p1", "pin product p7")
    assert tab.edit("merchandising", text + "\nboost vendor Acme 2").save().status_code == 302
    assert _stored(shop)["merchandising"] == [
        {"action": "pin", "field": "product", "value": "p7", "weight": 1.0}, *RULES[1:],
        {"action": "boost", "field": "vendor", "value": "Acme", "weight": 2.0}]
    assert _stored(shop)["exclude_products"] == ["p9"]


def test_a_refused_line_is_corrected_or_deleted_from_its_box(admin, shop):
    client, _ = admin
    _older_lists(shop)
    tab = Tab(client)
    rules = tab.value("merchandising").replace("boost tag sale 50", "boost tag sale 5")
    rules = "\n".join(line for line in rules.splitlines() if "xxx" not in line)
    overrides = tab.value("repurchase_overrides").replace("consumable 0", "consumable 30")
    r = tab.edit("merchandising", rules).edit("repurchase_overrides", overrides).save()
    assert r.status_code == 302, r.get_data(as_text=True)
    stored = _stored(shop)
    assert stored["merchandising"] == [RULES[0], {**RULES[1], "weight": 5.0}, RULES[3]]
    assert stored["repurchase_overrides"][0]["cycle_days"] == 30
    assert "still as stored" not in client.get("/admin/settings").get_data(as_text=True)


def test_a_refused_line_changed_to_another_refused_one_is_refused_at_its_line(admin, shop):
    client, _ = admin
    _older_lists(shop)
    tab = Tab(client)
    rules = tab.value("merchandising").replace("boost tag sale 50", "boost tag sale 60")
    r = tab.edit("merchandising", rules).edit("privacy.retention_days", "90").save()
    assert r.status_code == 422
    assert re.search(r'id="err-merchandising" role="alert">line 2: weight: ',
                     r.get_data(as_text=True))
    assert _stored(shop)["merchandising"] == RULES and "retention_days" not in _stored(shop)


@pytest.mark.parametrize("line", ["pin product", {"action": "pin"}, {}, "", None, 7],
                         ids=["words", "no-field", "empty-rule", "empty", "null", "number"])
def test_a_stored_line_of_any_shape_is_shown_and_kept(admin, shop, line):
    """Not even a rule: its own line still (never an empty one, which a save would drop)."""
    client, _ = admin
    _older_lists(shop, rules=[RULES[0], line, RULES[3]], overrides=[])
    tab = Tab(client)
    assert len(tab.value("merchandising").splitlines()) == 3
    assert tab.edit("privacy.retention_days", "90").save().status_code == 302
    assert _stored(shop)["merchandising"] == [RULES[0], line, RULES[3]]


def test_a_list_refused_whole_is_shown_whole_and_kept(admin, shop):
    """Longer than the schema allows (500 lines): every line shows, none is lost."""
    client, _ = admin
    rules = [{"action": "pin", "field": "product", "value": f"p{i}", "weight": 1.0}
             for i in range(501)]
    _older_lists(shop, rules=rules, overrides=[])
    tab = Tab(client)
    assert len(tab.value("merchandising").splitlines()) == 501
    assert tab.edit("privacy.retention_days", "90").save().status_code == 302
    assert _stored(shop)["merchandising"] == rules and _stored(shop)["retention_days"] == 90


def test_the_settings_document_keeps_a_refused_line_sent_back_as_stored(app, shop):
    _older_lists(shop)
    settings_service.save(shop, {"merchandising": [*RULES, RULES[0]]})
    assert _stored(shop)["merchandising"] == [*RULES, RULES[0]]
    with pytest.raises(ValidationError) as refused:
        settings_service.save(shop, {"merchandising": [{**RULES[1], "weight": 60}]})
    assert list(refused.value.messages) == ["merchandising"]
