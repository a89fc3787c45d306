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
