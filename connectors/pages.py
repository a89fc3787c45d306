"""Turn one backfill page's raw nodes into records, setting the unreadable ones aside.

A shop with 10,000 products and one whose price is garbage should get 9,999 products and
a note naming the bad one, not a backfill that fails on that page forever. But a page on
which *nothing* parses says the platform changed shape (or our mapping is wrong):
skipping it would advance the cursor past real data, so that still fails the page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from connectors.errors import InvalidPayload
from connectors.records import Rejected, storable_text

__all__ = ["MAX_REASON", "RECORD_ERRORS", "convert_nodes"]

T = TypeVar("T")

#: Errors a mapper raises for one malformed record (missing keys, wrong types, bad values).
RECORD_ERRORS = (InvalidPayload, KeyError, TypeError, ValueError, AttributeError)
#: Longest reason kept per rejected record (they are shown on the admin page).
MAX_REASON = 200


def convert_nodes(
    nodes: Iterable[Any], convert: Callable[[Any], T], *, what: str
) -> tuple[list[T], tuple[Rejected, ...]]:
    """``convert`` each node; a node that raises a record error is rejected, not fatal.

    Raises ``InvalidPayload`` when ``nodes`` is not a list or when every node of a
    non-empty page was rejected.
    """
    if not isinstance(nodes, list):
        raise InvalidPayload(f"unexpected {what} page", {what: ["expected a list of records"]})
    items: list[T] = []
    rejected: list[Rejected] = []
    for node in nodes:
        try:
            items.append(convert(node))
        except RECORD_ERRORS as exc:
            rejected.append(Rejected(_node_id(node), _reason(exc)))
    if rejected and not items:
        raise InvalidPayload(
            f"no {what} on the page could be read",
            {what: [f"{r.record_id}: {r.reason}" for r in rejected[:3]]},
        )
    return items, tuple(rejected)


def _node_id(node: Any) -> str | None:
    if isinstance(node, dict) and isinstance(node.get("node"), dict):  # a relay edge
        node = node["node"]
    value = node.get("id") if isinstance(node, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = storable_text(str(value))
    return text[:255] or None


def _reason(exc: Exception) -> str:
    if isinstance(exc, InvalidPayload):
        fields = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in exc.errors.items())
        text = f"{exc.message} ({fields})" if fields else exc.message
    else:
        text = f"{type(exc).__name__}: {exc}"
    return storable_text(text)[:MAX_REASON]
