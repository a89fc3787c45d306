"""The settings form saves against the settings the merchant SAW: a field left as shown
keeps what another tab or the worker stored meanwhile; a field changed here and there
too is a conflict, answered with the stored values and a message naming the field."""

from __future__ import annotations

import json
from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest
import sqlalchemy as sa

from plugin import localtime, shops
from plugin.admin import settings as admin_settings
from plugin.extensions import db
from plugin.models import AuditLog, Shop


class _SettingsForm(HTMLParser):
    """The fields of the page's "Save settings" form as a browser posts them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: list[tuple[str, str]] = []
        self._inside = False
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._inside = a.get("action") == "/admin/settings"
        elif self._inside and tag == "input" and "name" in a:
            if a.get("type") != "checkbox":
                self.fields.append((a["name"], a.get("value", "")))
            elif "checked" in a:
                self.fields.append((a["name"], a.get("value") or "on"))
        elif self._inside and tag == "textarea":
            self._textarea = a["name"]
            self.fields.append((a["name"], ""))

    def handle_data(self, data: str) -> None:
        if self._textarea:
            name, text = self.fields.pop()
            self.fields.append((name, text + data))

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._inside = False


class Tab:
    """One browser tab on the settings page: what it was shown, then the merchant's edits."""

    def __init__(self, client) -> None:
        self.client = client
        db.session.expire_all()  # requests here share the test's session: read afresh
        self.show(client.get("/admin/settings"))

    def show(self, page) -> None:
        parser = _SettingsForm()
        parser.feed(page.get_data(as_text=True))
        self.fields = parser.fields

    def value(self, name: str) -> str:
        return dict(self.fields)[name]

    def edit(self, name: str, value: str) -> Tab:
        self.fields = [(k, value if k == name else v) for k, v in self.fields]
        return self

    def without(self, *names: str) -> Tab:
        self.fields = [(k, v) for k, v in self.fields if k not in names]
        return self

    def save(self, **headers: str):
        data: dict[str, list[str]] = {}
        for k, v in self.fields:
            data.setdefault(k, []).append(unescape(v))
        db.session.expire_all()
        return self.client.post("/admin/settings", data=data, headers=headers)


def _stored(shop_id: str) -> dict[str, Any]:
    db.session.expire_all()
    return dict(db.session.get(Shop, shop_id).settings or {})


def _audited(shop_id: str) -> list[str]:
    return db.session.scalars(sa.select(AuditLog.action).filter_by(shop_id=shop_id)).all()


def test_two_tabs_editing_different_fields_both_land(admin, shop, monkeypatch):
    withdrawn: list[str] = []
    monkeypatch.setattr(admin_settings, "withdraw_unaccepted",
                        lambda shop_id: withdrawn.append(shop_id) or 1)
    client, _ = admin
    first, second = Tab(client), Tab(client)
    assert first.edit("offers.max_discount_pct", "12").save().status_code == 302
    assert second.edit("privacy.retention_days", "90").save().status_code == 302
    stored = _stored(shop.id)
    assert stored["offers"]["max_discount_pct"] == "12.00"  # not the 15 the second tab showed
    assert stored["retention_days"] == 90
    assert withdrawn == [shop.id]  # only the first save changed the guardrails
    assert _audited(shop.id).count("settings.changed") == 2
    assert _audited(shop.id).count("offers.withdrawn") == 1


def test_two_tabs_editing_the_same_field_the_second_gets_the_conflict(admin, shop):
    client, _ = admin
    first, second = Tab(client), Tab(client)
    assert first.edit("offers.max_discount_pct", "15.5").save().status_code == 302
    answer = second.edit("offers.max_discount_pct", "10") \
        .edit("privacy.retention_days", "90").save()
    assert answer.status_code == 409
    html = answer.get_data(as_text=True)
    assert "Max discount was changed to 15.50 % while you were editing" in html
    assert 'id="err-offers-max_discount_pct"' in html
    stored = _stored(shop.id)
    assert stored["offers"]["max_discount_pct"] == "15.50" and "retention_days" not in stored
    # the page shows the stored discount, keeps the merchant's other edit, and saves it
    second.show(answer)
    assert second.value("offers.max_discount_pct") == "15.50"
    assert second.value("privacy.retention_days") == "90"
    assert second.save().status_code == 302
    stored = _stored(shop.id)
    assert stored["offers"]["max_discount_pct"] == "15.50" and stored["retention_days"] == 90


def test_the_same_value_typed_in_both_tabs_is_no_conflict(admin, shop):
    client, _ = admin
    first, second = Tab(client), Tab(client)
    assert first.edit("privacy.retention_days", "90").save().status_code == 302
    assert second.edit("privacy.retention_days", "90").save().status_code == 302


def test_the_platforms_zone_arriving_mid_edit_is_kept(app, admin, shop):
    client, _ = admin
    tab = Tab(client)
    assert tab.value("shop.timezone") == "UTC"  # no zone yet: the default is shown
    with app.app_context():  # the worker, in its own session
        assert localtime.adopt_platform_zone(db.session.get(Shop, shop.id), "Europe/Paris")
        db.session.commit()
    assert tab.edit("offers.max_discount_pct", "12").save().status_code == 302
    stored = _stored(shop.id)
    assert stored["timezone"] == "Europe/Paris"
    assert stored["offers"]["max_discount_pct"] == "12.00"


def test_a_zone_chosen_mid_edit_conflicts_with_another_typed_in(app, admin, shop):
    client, _ = admin
    tab = Tab(client)
    with app.app_context():
        localtime.adopt_platform_zone(db.session.get(Shop, shop.id), "Europe/Paris")
        db.session.commit()
    answer = tab.edit("shop.timezone", "America/New_York").save()
    assert answer.status_code == 409
    assert "Time zone was changed to Europe/Paris" in answer.get_data(as_text=True)
    assert _stored(shop.id)["timezone"] == "Europe/Paris"


def test_a_page_without_the_revision_saves_as_before(app, admin, shop):
    """An old page (cached before it carried the revision) still saves, every field as shown."""
    client, _ = admin
    tab = Tab(client).without("settings_rev", "settings_seen")
    other = Tab(client).without("settings_rev", "settings_seen")
    with app.app_context():
        localtime.adopt_platform_zone(db.session.get(Shop, shop.id), "Europe/Paris")
        db.session.commit()
    assert other.edit("privacy.retention_days", "90").save().status_code == 302
    assert tab.edit("privacy.retention_days", "120").save().status_code == 302
    stored = _stored(shop.id)
    assert stored["retention_days"] == 120  # the last save wins, as it did
    assert stored["timezone"] == "UTC"  # and the zone it showed is written back


def test_a_refused_form_carries_on_the_revision_it_was_shown(app, admin, shop):
    client, _ = admin
    tab = Tab(client)
    with app.app_context():
        shops.update_settings(shop.id, lambda s: {**s, "retention_days": 400})
        db.session.commit()
    refused = tab.edit("offers.max_discount_pct", "95").save()
    assert refused.status_code == 422
    tab.show(refused)
    assert tab.edit("offers.max_discount_pct", "12").save().status_code == 302
    stored = _stored(shop.id)
    assert stored["retention_days"] == 400  # the 730 the first page showed is not written
    assert stored["offers"]["max_discount_pct"] == "12.00"


def test_a_damaged_revision_is_refused(admin, shop):
    client, _ = admin
    for rev, seen in (("x", "{}"), ("3", "not json"), ("3", None), ("-1", "{}"),
                      ("3", json.dumps({"offers.max_discount_pct": "<script>"}))):
        tab = Tab(client).edit("privacy.retention_days", "90").edit("settings_rev", rev)
        tab = tab.without("settings_seen") if seen is None else tab.edit("settings_seen", seen)
        assert tab.save().status_code == 400, (rev, seen)
    assert "retention_days" not in _stored(shop.id)


def test_a_write_between_the_saves_read_and_its_write_is_a_conflict_too(app, shop):
    """The check runs on the settings as they are when written (``update_settings``)."""
    with app.test_request_context():
        page = admin_settings.shown(shop)
    merchant = db.session.get(Shop, shop.id)
    _ = merchant.settings  # the save read the settings before the other writer's commit
    with app.app_context():
        shops.update_settings(shop.id, lambda s: {**s, "retention_days": 400})
        db.session.commit()
    with pytest.raises(admin_settings.EditConflict) as conflict:
        admin_settings.save(merchant, {"privacy": {"consent_required": False,
                                                   "retention_days": 90}}, page)
    assert conflict.value.stored == {"privacy.retention_days": 400}
    assert "Retention days was changed to 400" in conflict.value.message
    db.session.rollback()
    assert _stored(shop.id)["retention_days"] == 400


def test_fingerprints_of_another_release_do_not_conflict_while_the_revision_is_current(admin,
                                                                                      shop):
    """Nothing was stored since the page: its revision says so, whatever its fingerprints."""
    client, _ = admin
    tab = Tab(client).edit("settings_seen", json.dumps({"offers.max_discount_pct": "0"}))
    assert tab.edit("offers.max_discount_pct", "10").save().status_code == 302
    assert _stored(shop.id)["offers"]["max_discount_pct"] == "10.00"


def test_a_json_caller_gets_the_conflict_as_409(admin, shop):
    client, _ = admin
    first, second = Tab(client), Tab(client)
    assert first.edit("privacy.retention_days", "90").save().status_code == 302
    answer = second.edit("privacy.retention_days", "120").save(Accept="application/json")
    assert answer.status_code == 409
    body = answer.get_json()
    assert "Retention days was changed to 90" in json.dumps(body)
    assert "privacy.retention_days" in json.dumps(body)
