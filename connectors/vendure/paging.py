"""Resumable paging over Vendure list queries, ordered by ``updatedAt``.

Vendure cannot break ``updatedAt`` ties: it applies sort keys in the order its
``*SortParameter`` type declares them (graphql-js rebuilds input objects in schema order) and
``id`` comes first there, so ``{updatedAt, id}`` means ``ORDER BY id, updatedAt``. Rows
sharing one ``updatedAt`` come back in any order, different on every query, so an offset into
them can skip rows. SQLite (the stock setup) keeps whole seconds: such runs are common.

So the cursor names the rows read in a tie instead of counting them:

- *list*, ``{"after": T, "seen": [ids]}``: every row shown before ``T`` is read, and of those
  shown at ``T`` the listed ids. The next page asks for ``updatedAt >= T`` minus those ids.
- *scan*, ``{"after": T, "scan": [last id, position]}``: a run at ``T`` too long to list within
  ``CURSOR_LIMIT`` is read alone, sorted by ``id`` only (a total order), resuming after the
  last id read. The position is a hint for ``skip``, checked against the id it should land on.

A cursor of the old ``{"after", "skip"}`` form resumes as a list with nothing seen at ``T``:
that run is read again, which upserts make harmless.

Clocks: the API shows milliseconds, SQLite stores whole seconds as text (``"..:53"`` sorts
before the ``"..:53.000"`` Vendure compares it with) and PostgreSQL microseconds. "At ``T``"
means "shown as ``T``", asked as ``after T - 1ms`` (and ``before T + 1ms`` for a run). On a
finer clock that also lets in rows shown just before ``T``: they are dropped here, and when a
whole page is made of them ``between T and _FAR`` (exact on such a clock) is asked instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from connectors.errors import InvalidPayload
from connectors.pages import convert_nodes
from connectors.parsing import parse_datetime
from connectors.records import Page

__all__ = ["CURSOR_LIMIT", "Cursor", "decode_cursor", "encode_cursor", "iter_pages"]

T = TypeVar("T")
Execute = Callable[[dict[str, Any]], dict[str, Any]]

#: Longest cursor written: ``SyncState.cursor`` is a ``String(512)``.
CURSOR_LIMIT = 512
_MS = timedelta(milliseconds=1)
_FAR = "9999-12-31T23:59:59.999Z"


@dataclass(frozen=True)
class Cursor:
    """Where a backfill stands; ``scan`` is ``(last id read or None, skip hint)``."""

    after: datetime | None
    seen: tuple[str, ...] = ()
    scan: tuple[str | None, int] | None = None


def encode_cursor(cursor: Cursor) -> str:
    """Opaque to callers, but plain JSON so an operator can read a stored cursor."""
    stamp = None if cursor.after is None else _iso(cursor.after)
    data: dict[str, Any] = {"after": stamp}
    if cursor.scan is not None:
        data["scan"] = list(cursor.scan)
    else:
        data["seen"] = list(cursor.seen)
    return json.dumps(data, separators=(",", ":"))


def decode_cursor(cursor: str) -> Cursor:
    """Inverse of ``encode_cursor`` (old ``skip`` cursors too); damage is ``InvalidPayload``."""
    try:
        data = json.loads(cursor)
        stamp = data["after"]
        after = None if stamp is None else _ms(parse_datetime(stamp, field="cursor"))
        if "scan" in data:
            last, pos = data["scan"]
            if after is None or not (last is None or isinstance(last, str)) or int(pos) < 0:
                raise ValueError
            return Cursor(after, scan=(last, int(pos)))
        if "seen" in data:
            if not all(isinstance(i, str) for i in data["seen"]):
                raise ValueError
            return Cursor(after, tuple(data["seen"]))
        if int(data["skip"]) < 0:
            raise ValueError
        return Cursor(after)  # written before ids were kept: re-read the run at ``after``
    except (ValueError, KeyError, TypeError, InvalidPayload):
        raise InvalidPayload("unreadable backfill cursor", {"cursor": [cursor[:80]]}) from None


def iter_pages(
    fetch: Execute,
    mapper: Callable[[dict[str, Any]], T],
    *,
    page_size: int,
    base_filter: dict[str, Any] | None = None,
    since: datetime | None = None,
    cursor: str | None = None,
) -> Iterator[Page[T]]:
    """Yield pages until the last; ``fetch(options)`` returns ``{"items": [...]}``.

    A page may be empty (a run re-read in id order); ``page_size`` must be at least 2, as a
    scan reads its last id again to check where it stands.
    """
    if page_size < 2:
        raise ValueError("page_size must be at least 2")
    state = decode_cursor(cursor) if cursor else Cursor(None if since is None else _ms(since))
    base = dict(base_filter or {})
    while True:
        if state.scan is None:
            raw, nxt = _list_page(fetch, state, page_size, base)
        else:
            raw, nxt = _scan_page(fetch, state, page_size, base)
        items, rejected = convert_nodes(raw, mapper, what="items")
        yield Page(items=items, next_cursor=None if nxt is None else encode_cursor(nxt),
                   rejected=rejected)
        if nxt is None:
            return
        state = nxt


def _list_page(
    fetch: Execute, state: Cursor, size: int, base: dict[str, Any]
) -> tuple[list[Any], Cursor | None]:
    """Rows from ``state.after`` on in ``updatedAt`` order, minus the ids seen at it."""
    at, filters = state.after, dict(base)
    if at is not None:
        filters["updatedAt"] = {"after": _iso(at - _MS)}
        if state.seen:
            filters["id"] = {"notIn": list(state.seen)}
    raw = _query(fetch, filters, {"updatedAt": "ASC"}, 0, size)
    if at is not None and len(raw) == size and all(_before(item, at) for item in raw):
        filters["updatedAt"] = {"between": {"start": _iso(at), "end": _FAR}}
        raw = _query(fetch, filters, {"updatedAt": "ASC"}, 0, size)
    fresh = [item for item in raw if at is None or not _before(item, at)]
    if len(raw) < size:
        return fresh, None
    last = _shown(raw[-1])
    if at is not None and last < at:
        raise InvalidPayload("Vendure ignored the updatedAt filter", {"updatedAt": [_iso(last)]})
    run = [_id(item) for item in raw if _shown_or_none(item) == last]
    seen = tuple(dict.fromkeys((state.seen if last == at else ()) + tuple(run)))
    nxt = Cursor(last, seen)
    if len(encode_cursor(nxt)) <= CURSOR_LIMIT:
        return fresh, nxt
    # too many ties to name: the run at ``last`` is read on its own, in id order
    return [item for item in fresh if _shown_or_none(item) != last], Cursor(last, scan=(None, 0))


def _scan_page(
    fetch: Execute, state: Cursor, size: int, base: dict[str, Any]
) -> tuple[list[Any], Cursor | None]:
    """The next rows of the run at ``state.after`` in id order, after the last id read."""
    at = state.after
    assert at is not None and state.scan is not None
    last, pos = state.scan
    filters = {**base, "updatedAt": {"after": _iso(at - _MS), "before": _iso(at + _MS)}}
    skip = pos - 1 if last is not None and pos > 0 else 0
    raw = _query(fetch, filters, {"id": "ASC"}, skip, size)
    if skip and last is not None and (not raw or _key(_id(raw[0])) > _key(last)):
        skip = 0  # rows before the hint left the run (edited): start it over
        raw = _query(fetch, filters, {"id": "ASC"}, 0, size)
    fresh = [item for item in raw if _shown_or_none(item) in (at, None) and _after_id(item, last)]
    if len(raw) < size:
        return fresh, Cursor(at + _MS)  # the run is read: on to everything shown after it
    top = _id(raw[-1])
    if last is not None and _key(top) < _key(last):
        top = last
    return fresh, Cursor(at, scan=(top, skip + len(raw)))


def _query(
    fetch: Execute, filters: dict[str, Any], sort: dict[str, str], skip: int, take: int
) -> list[Any]:
    items = fetch({"skip": skip, "take": take, "sort": sort, "filter": filters})["items"]
    if not isinstance(items, list):
        raise InvalidPayload("unexpected items page", {"items": ["expected a list of records"]})
    return items


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")


def _ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _field(raw: Any, name: str) -> Any:
    if not isinstance(raw, dict):
        raise InvalidPayload("unexpected page item", {name: ["expected an object"]})
    return raw.get(name)


def _shown(raw: Any) -> datetime:
    """The ``updatedAt`` the API shows (milliseconds)."""
    return _ms(parse_datetime(_field(raw, "updatedAt"), field="updatedAt"))


def _shown_or_none(raw: Any) -> datetime | None:
    try:
        return _shown(raw)
    except InvalidPayload:
        return None


def _before(raw: Any, at: datetime) -> bool:
    shown = _shown_or_none(raw)
    return shown is not None and shown < at


def _id(raw: Any) -> str:
    value = _field(raw, "id")
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise InvalidPayload("unexpected page item", {"id": ["expected an id"]})
    return str(value)


def _key(value: str) -> tuple[int, int | str]:
    """Vendure's id order: numbers (the default id strategy) numerically, others as text."""
    return (0, int(value)) if value.isascii() and value.isdigit() else (1, value)


def _after_id(raw: Any, last: str | None) -> bool:
    if last is None:
        return True
    try:
        return _key(_id(raw)) > _key(last)
    except InvalidPayload:
        return True  # unreadable: let the mapper reject it
