"""Resumable skip/take paging over Vendure list queries, ordered by ``updatedAt``.

The cursor is a watermark plus an offset: ``{"after": <updatedAt of the last item seen>,
"skip": <items already seen with exactly that updatedAt>}``. Each query asks for
``updatedAt >= after`` (as ``after - 1 ms``, Vendure's ``after`` being strict) and skips the
seen ones. Unlike a plain offset, a record edited mid-backfill cannot shift the unseen rows
past us: it moves behind the watermark's group and is simply read again later.

The sort names ``updatedAt`` alone. Vendure orders by the sort keys in the order its
``*SortParameter`` type declares them (graphql-js rebuilds input objects in schema order),
and ``id`` comes first there: ``{updatedAt, id}`` meant ``ORDER BY id, updatedAt``, so a
watermark taken from a recently edited record skipped every older one after it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

from connectors.errors import InvalidPayload
from connectors.pages import convert_nodes
from connectors.parsing import parse_datetime
from connectors.records import Page

__all__ = ["decode_cursor", "encode_cursor", "iter_pages"]

T = TypeVar("T")
Execute = Callable[[dict[str, Any]], dict[str, Any]]


def encode_cursor(after: datetime | None, skip: int) -> str:
    """Opaque to callers, but plain JSON so an operator can read a stored cursor."""
    stamp = None if after is None else after.isoformat(timespec="milliseconds")
    return json.dumps({"after": stamp, "skip": skip}, separators=(",", ":"))


def decode_cursor(cursor: str) -> tuple[datetime | None, int]:
    """Inverse of ``encode_cursor``; a damaged cursor is an ``InvalidPayload``."""
    try:
        data = json.loads(cursor)
        after = None if data["after"] is None else parse_datetime(data["after"], field="cursor")
        skip = int(data["skip"])
    except (ValueError, KeyError, TypeError, InvalidPayload):
        raise InvalidPayload("unreadable backfill cursor", {"cursor": [cursor[:80]]}) from None
    if skip < 0:
        raise InvalidPayload("unreadable backfill cursor", {"cursor": ["negative skip"]})
    return after, skip


def _ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def iter_pages(
    fetch: Execute,
    mapper: Callable[[dict[str, Any]], T],
    *,
    page_size: int,
    base_filter: dict[str, Any] | None = None,
    since: datetime | None = None,
    cursor: str | None = None,
) -> Iterator[Page[T]]:
    """Yield pages until a short one; ``fetch(options)`` returns ``{"items": [...]}``."""
    after, skip = decode_cursor(cursor) if cursor else (since, 0)
    while True:
        filters = dict(base_filter or {})
        if after is not None:
            floor = _ms(after) - timedelta(milliseconds=1)
            filters["updatedAt"] = {"after": floor.isoformat(timespec="milliseconds")}
        options = {
            "skip": skip,
            "take": page_size,
            "sort": {"updatedAt": "ASC"},  # not ``id``: see the module docstring
            "filter": filters,
        }
        raw_items = fetch(options)["items"]
        items, rejected = convert_nodes(raw_items, mapper, what="items")
        if len(raw_items) < page_size:
            yield Page(items=items, next_cursor=None, rejected=rejected)
            return
        # the watermark comes from the last raw item (Vendure sorted by it); a rejected
        # record elsewhere on the page only counts if its time can be read
        last = _ms(parse_datetime(_field(raw_items[-1], "updatedAt"), field="updatedAt"))
        same = sum(1 for raw in raw_items if _updated_or_none(raw) == last)
        skip = skip + same if after is not None and _ms(after) == last else same
        after = last
        yield Page(items=items, next_cursor=encode_cursor(after, skip), rejected=rejected)


def _field(raw: Any, name: str) -> Any:
    if not isinstance(raw, dict):
        raise InvalidPayload("unexpected page item", {name: ["expected an object"]})
    return raw.get(name)


def _updated_or_none(raw: Any) -> datetime | None:
    try:
        return _ms(parse_datetime(_field(raw, "updatedAt"), field="updatedAt"))
    except InvalidPayload:
        return None
