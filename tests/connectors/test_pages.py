"""One unreadable record is set aside with its id and reason; a page of them fails."""

from __future__ import annotations

import pytest

from connectors.errors import InvalidPayload
from connectors.pages import MAX_REASON, convert_nodes
from connectors.parsing import to_decimal


def price_of(node: dict) -> str:
    return str(to_decimal(node["price"], field="price"))


def test_good_records_pass_and_bad_ones_are_named_with_their_reason():
    nodes = [{"id": "a", "price": "1.50"}, {"id": 7, "price": "lots"}, {"id": "c"},
             "not an object", {"id": "e", "price": "2"}]
    items, rejected = convert_nodes(nodes, price_of, what="products")
    assert items == ["1.50", "2"]
    assert [r.record_id for r in rejected] == ["7", "c", None]
    assert rejected[0].reason.startswith("price is not a number")
    assert rejected[1].reason == "KeyError: 'price'"
    assert rejected[2].reason.startswith("TypeError")


def test_relay_edges_are_named_by_their_node():
    edges = [{"node": {"id": "UHJvZHVjdDo3Mg==", "price": None}}, {"node": {"id": "b", "price": 1}}]
    items, rejected = convert_nodes(edges, lambda e: price_of(e["node"]), what="products")
    assert items == ["1"] and rejected[0].record_id == "UHJvZHVjdDo3Mg=="


def test_a_page_where_nothing_reads_fails_as_a_whole():
    with pytest.raises(InvalidPayload) as err:
        convert_nodes([{"id": "a"}, {"id": "b", "price": "x"}], price_of, what="orders")
    assert "a: KeyError" in err.value.errors["orders"][0]


@pytest.mark.parametrize("nodes", [None, {"id": "a"}, "abc"])
def test_a_page_that_is_not_a_list_fails(nodes):
    with pytest.raises(InvalidPayload):
        convert_nodes(nodes, price_of, what="orders")


def test_an_empty_page_is_fine():
    assert convert_nodes([], price_of, what="orders") == ([], ())


def test_ids_and_reasons_are_bounded_and_free_of_nul():
    node = {"id": "x\x00" + "y" * 400, "price": "z" * 1000 + "\x00"}
    _, [rejected] = convert_nodes([node, {"id": "ok", "price": "1"}], price_of, what="p")
    assert "\x00" not in rejected.record_id and len(rejected.record_id) == 255
    assert "\x00" not in rejected.reason and len(rejected.reason) <= MAX_REASON


@pytest.mark.parametrize("raw_id", [True, 1.5, {"a": 1}, ["x"], ""])
def test_ids_that_are_not_text_or_integers_are_not_guessed(raw_id):
    _, [rejected] = convert_nodes([{"id": raw_id}, {"id": "ok", "price": "1"}], price_of,
                                  what="products")
    assert rejected.record_id is None
