"""Merchandising rules as stored: a line the settings page refuses (kept there, flagged,
for the merchant to fix) is skipped by serving and logged, the shop's other rules still
apply, and the list never fails for it."""

from __future__ import annotations

import logging

import pytest

from plugin.api.access import forget_shops
from plugin.extensions import db
from tests.api.conftest import anon_id, ids

REFUSED_PINS = [{"action": "pin"}, {"action": "pin", "value": "p5"}, "pin product p5",
                ["pin", "product", "p5"], None]


def _rules(shop, rules) -> None:
    shop.settings = {**shop.settings, "merchandising": rules}
    db.session.commit()
    forget_shops()


def _recs(api, **params) -> list[str]:
    r = api.recs(headers={"X-Shopkeeper-Shopper": ANON}, **params)
    assert r.status_code == 200, r.get_data(as_text=True)
    return ids(r)


ANON = anon_id()


@pytest.mark.parametrize("refused", REFUSED_PINS, ids=range(len(REFUSED_PINS)))
def test_a_refused_pin_line_is_skipped_and_the_valid_rules_still_apply(api, trained, caplog,
                                                                       refused):
    before = _recs(api)
    assert before[0] != "p8" and "p5" not in before[:1]
    _rules(trained, [{"action": "pin", "field": "product", "value": "p8"}, refused,
                     {"action": "exclude", "field": "product", "value": before[0]}])
    with caplog.at_level(logging.WARNING, logger="shopkeeper.merchandising"):
        shown = _recs(api)
    assert shown[0] == "p8" and shown[1] != "p5" and before[0] not in shown
    assert [(r.message, r.line) for r in caplog.records] == [
        ("merchandising.rule_refused", 2)]


def test_a_boost_weight_the_page_refuses_is_not_applied(api, trained, caplog):
    before = _recs(api)
    last = before[-1]
    assert len(before) > 3
    _rules(trained, [{"action": "boost", "field": "product", "value": last, "weight": 50}])
    with caplog.at_level(logging.WARNING, logger="shopkeeper.merchandising"):
        assert _recs(api) == before
    assert "merchandising.rule_refused" in caplog.text
    _rules(trained, [{"action": "boost", "field": "product", "value": last, "weight": 50},
                     {"action": "boost", "field": "product", "value": before[1],
                      "weight": 2}])
    assert _recs(api)[:2] == [before[1], before[0]]  # the valid boost still applies


def test_a_pin_with_a_refused_weight_is_not_applied(api, trained):
    """The page refuses the whole line (a weight over 10), whatever the action."""
    _rules(trained, [{"action": "pin", "field": "product", "value": "p8", "weight": 50}])
    assert _recs(api)[0] != "p8"
    _rules(trained, [{"action": "pin", "field": "product", "value": "p8", "weight": 5}])
    assert _recs(api)[0] == "p8"


def test_stored_rules_that_are_no_list_are_skipped(api, trained, caplog):
    before = _recs(api)
    _rules(trained, {"action": "exclude", "field": "product", "value": before[0]})
    with caplog.at_level(logging.WARNING, logger="shopkeeper.merchandising"):
        assert _recs(api) == before
    assert "merchandising.rules_refused" in caplog.text


def test_a_long_rule_list_is_checked_once_per_version_not_on_each_request(api, trained,
                                                                         caplog, monkeypatch):
    """Serving checked each of up to 500 stored lines with the page's schema on every
    request; now once per version of the stored list (whoever wrote it)."""
    from plugin import merchandising
    from plugin.admin.schemas import RuleSchema
    from plugin.shops import update_settings

    loads: list[object] = []

    class Counting(RuleSchema):
        def load(self, data, **kwargs):
            loads.append(data)
            return super().load(data, **kwargs)

    monkeypatch.setattr(merchandising, "RuleSchema", Counting)
    before = _recs(api)
    filler = [{"action": "boost" if k % 2 else "exclude", "field": "tag",
               "value": f"tag{k}", "weight": 2} for k in range(497)]
    rules = [{"action": "exclude", "field": "product", "value": before[0]},
             {"action": "pin"}, *filler, {"action": "pin", "field": "product", "value": "p8"}]
    assert len(rules) == 500  # the most the settings page stores
    _rules(trained, rules)
    with caplog.at_level(logging.WARNING, logger="shopkeeper.merchandising"):
        for _ in range(5):
            forget_shops()  # the shop read afresh: a new settings dict each time
            shown = _recs(api)
            assert shown[0] == "p8" and before[0] not in shown
    assert len(loads) == 500  # each line once, for five requests
    assert [(r.message, r.line) for r in caplog.records] == [
        ("merchandising.rule_refused", 2)]

    def unpin(settings):
        settings["merchandising"] = settings["merchandising"][:-1]
        return settings

    update_settings(trained.id, unpin)
    db.session.commit()
    forget_shops()
    assert _recs(api)[0] != "p8" and len(loads) == 999  # the new version, checked once
    _recs(api)
    assert len(loads) == 999
