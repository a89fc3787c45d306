"""connectors/parsing.py: the strict converters every platform mapping shares."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connectors.errors import InvalidPayload
from connectors.parsing import (
    MAX_AMOUNT,
    holds_nul,
    load_json_object,
    parse_datetime,
    to_decimal,
)


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
    ("2026-03-01T12:00:00+02:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
    ("2026-03-01T10:00:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),  # naive means UTC
])
def test_datetimes_come_out_aware_utc(value, expected):
    parsed = parse_datetime(value)
    assert parsed == expected and parsed.tzinfo == UTC


@pytest.mark.parametrize("value", [
    "0001-01-01T00:00:00+01:00",  # no UTC datetime exists: it was an OverflowError (a 500)
    "9999-12-31T23:00:00-05:00",
    "yesterday", "", None, 1700000000,
])
def test_bad_or_unrepresentable_datetimes_are_invalid_payloads(value):
    with pytest.raises(InvalidPayload) as info:
        parse_datetime(value, field="created_at")
    assert list(info.value.errors) == ["created_at"]


def test_money_is_exact_and_never_a_bool_or_infinite():
    assert to_decimal("12.50") == Decimal("12.50") and to_decimal(3) == Decimal(3)
    for bad in (True, None, "twelve", "NaN", "Infinity"):
        with pytest.raises(InvalidPayload):
            to_decimal(bad, field="price")


@pytest.mark.parametrize("body", [b"[]", b'"x"', b"{", b"\xff", b'{"id": "p\\u0000"}',
                                  b'{"lines": [{"\\u0000": 1}]}'])
def test_a_body_must_be_a_json_object(body):
    with pytest.raises(InvalidPayload):
        load_json_object(body)


def test_holds_nul_walks_nested_values_and_keys():
    assert holds_nul({"a": [1, {"b": "x\x00"}]})
    assert holds_nul({"k\x00": None})
    assert not holds_nul({"a": [1, 2.5, None, True, {"b": "x"}]})
    assert not holds_nul(None)


def test_holds_nul_also_finds_lone_surrogates_which_no_database_can_store():
    assert holds_nul({"a": ["x\ud800"]}) and holds_nul({"\udfff": 1})
    assert not holds_nul({"a": "ünïcødé ✓ 😀"})  # a proper pair decodes to one character
    with pytest.raises(InvalidPayload, match="lone surrogate"):
        load_json_object(b'{"id": "\\ud83d"}')  # half of a pair
    assert load_json_object(b'{"id": "\\ud83d\\ude00"}') == {"id": "\U0001f600"}


def test_amounts_beyond_what_the_money_columns_hold_are_refused():
    """Acknowledged, they failed on apply on PostgreSQL (numeric(14,4)) until dead."""
    assert to_decimal("1000000000") == MAX_AMOUNT
    for bad in ("1000000000.01", "1e12", -(10**10)):
        with pytest.raises(InvalidPayload) as info:
            to_decimal(bad, field="price")
        assert "out of range" in str(info.value)
    assert to_decimal("1e12", bounded=False) == Decimal("1e12")  # the caller scales first


def test_vendure_minor_units_are_bounded_after_scaling():
    from connectors.vendure.mapping import MappingOptions

    money = MappingOptions().money
    assert money(100_000_000_000) == MAX_AMOUNT  # 1e11 pence is 1e9 pounds: in range
    with pytest.raises(InvalidPayload):
        money(100_000_000_001)
