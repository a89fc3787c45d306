"""Records hold only what the database can store: the one gate every connector passes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connectors.errors import InvalidPayload
from connectors.records import ID_MAX, LineItem, Order, Product, Variant

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_descriptive_text_is_cut_to_its_column_and_loses_nul():
    p = Product("p1", "T" * 600, AT, description="a\x00b", url="https://x/" + "u" * 2000,
                vendor="v" * 300, tags=("ok", "n\x00ul", "t" * 400), categories=("Tea",))
    assert len(p.title) == 500 and p.description == "ab" and len(p.url) == 1000
    assert len(p.vendor) == ID_MAX and p.tags == ("ok", "nul", "t" * ID_MAX)


def test_descriptive_text_loses_lone_surrogates_but_keeps_whole_characters():
    p = Product("p1", "Tea \ud83d", AT, description="\U0001f375 hot\udc00",
                tags=("green\ud800",), vendor="\udfffLeaf")
    assert (p.title, p.description, p.tags, p.vendor) == ("Tea ", "\U0001f375 hot",
                                                          ("green",), "Leaf")


@pytest.mark.parametrize("change", [
    {"external_id": "x" * (ID_MAX + 1)},  # cutting an id would merge two products
    {"external_id": "p\x001"},
    {"external_id": "p\ud83d"},
    {"external_id": ""},
    {"title": ["a list"]},
    {"tags": ("ok", 5)},
    {"price": Decimal("1e12")},
    {"currency": "pounds"},
    {"prices": {"EURO": Decimal(1)}},
    {"prices": {"EUR": Decimal("1e12")}},
    {"prices": {"EUR": 1.5}},  # a float loses cents: connectors pass Decimals
    {"prices": [("EUR", Decimal(1))]},
])
def test_what_cannot_be_stored_faithfully_is_an_invalid_payload(change):
    with pytest.raises(InvalidPayload):
        Product(**{"external_id": "p1", "title": "Tea", "updated_at": AT, **change})


@pytest.mark.parametrize("quantity", [0, -1, 10**7, True, 1.5])
def test_line_quantities_are_whole_and_in_range(quantity):
    with pytest.raises(InvalidPayload) as info:
        LineItem("p1", quantity, Decimal("1.00"))
    assert list(info.value.errors) == ["quantity"]


def test_an_inventory_count_the_column_cannot_hold_is_unknown():
    assert Variant("v1", inventory_qty=2**40).inventory_qty is None
    assert Variant("v1", inventory_qty=True).inventory_qty is None
    assert Variant("v1", inventory_qty=-3).inventory_qty == -3  # oversold is a real count


def test_orders_need_a_currency_code_and_text_discount_codes():
    line = LineItem("p1", 1, Decimal("2.00"))
    assert Order("o1", AT, AT, "GBP", (line,), discount_codes=("SK-1",)).currency == "GBP"
    for bad in ({"currency": None}, {"currency": "A\x00B"}, {"currency": "£12"},
                {"currency": "GBPS"}, {"discount_codes": (7,)}, {"total": Decimal(-(10**10))}):
        with pytest.raises(InvalidPayload):
            Order(**{"external_id": "o1", "created_at": AT, "updated_at": AT,
                     "currency": "GBP", "lines": (line,), **bad})


def test_prices_by_currency_are_upper_case_and_read_only():
    v = Variant("v1", prices={"eur": Decimal("18.00")})
    p = Product("p1", "Tea", AT, prices={"EUR": Decimal("18.00")}, variants=(v,))
    assert dict(v.prices) == dict(p.prices) == {"EUR": Decimal("18.00")}
    with pytest.raises(TypeError):
        p.prices["USD"] = Decimal(1)  # type: ignore[index]
    assert Product("p2", "Tea", AT).prices == {}
