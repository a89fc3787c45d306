"""Vendure backfill paging against a fake Admin API that answers list queries as Vendure 3.7
does (``ListQueryBuilder``): sort keys applied in schema order (``id`` first), ties in any
order (a new one per query), dates compared the way the database compares them.
"""

from __future__ import annotations

import copy
import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses

from connectors.base import Credentials
from connectors.errors import InvalidPayload
from connectors.vendure import VendureConnector
from connectors.vendure.paging import CURSOR_LIMIT, decode_cursor

FIXTURES = Path(__file__).parents[1] / "fixtures" / "vendure"
API_URL = "https://vendure.example/admin-api"
T0 = datetime(2026, 11, 24, 7, 48, 51, tzinfo=UTC)
#: the ``*SortParameter`` field order in Vendure's schema (the order keys are applied in)
SORT_ORDER = ("id", "createdAt", "updatedAt")
ROOTS = {"Products": "products", "Customers": "customers", "Orders": "orders"}


def _template(root: str) -> dict[str, Any]:
    if root == "products":
        raw = json.loads((FIXTURES / "admin_product.json").read_text())["data"]["product"]
        return {**copy.deepcopy(raw), "variants": []}
    if root == "orders":
        page = json.loads((FIXTURES / "admin_orders_page.json").read_text())
        return copy.deepcopy(page["data"]["orders"]["items"][0])
    return {"id": "1", "emailAddress": "a@example.com", "createdAt": "2026-01-01T00:00:00.000Z",
            "updatedAt": "2026-01-01T00:00:00.000Z"}


class FakeVendure:
    """Rows ``id -> stored updatedAt`` on a ``sqlite`` (text, whole seconds) or ``postgres``
    (microseconds) clock."""

    def __init__(self, clock: str, stamps: dict[str, datetime], seed: int = 7) -> None:
        self.clock = clock
        self.stamps = dict(stamps)
        self.rng = random.Random(seed)
        self.calls: list[dict[str, Any]] = []

    def stored(self, rid: str) -> Any:
        at = self.stamps[rid]
        return at.strftime("%Y-%m-%d %H:%M:%S") if self.clock == "sqlite" else at

    def param(self, value: str) -> Any:
        """GraphQL DateTime -> JS Date (ms) -> TypeORM's ``YYYY-MM-DD HH:MM:SS.mmm``."""
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        at = at.astimezone(UTC).replace(microsecond=at.microsecond // 1000 * 1000)
        return at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if self.clock == "sqlite" else at

    def shown(self, rid: str) -> str:
        at = self.stamps[rid].replace(microsecond=self.stamps[rid].microsecond // 1000 * 1000)
        if self.clock == "sqlite":
            at = at.replace(microsecond=0)
        return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def matches(self, rid: str, flt: dict[str, Any]) -> bool:
        return all(self.holds(rid, field, op, arg)
                   for field, ops in flt.items() for op, arg in ops.items())

    def holds(self, rid: str, field: str, op: str, arg: Any) -> bool:
        if field == "updatedAt":
            value = self.stored(rid)
            if op == "between":
                return self.param(arg["start"]) <= value <= self.param(arg["end"])
            return value > self.param(arg) if op == "after" else value < self.param(arg)
        if field == "id":
            return (rid in arg) == (op == "in")
        assert field == "active", f"unexpected filter {field}"
        return op == "eq" and arg is False  # every fake order is placed

    def __call__(self, request) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        root = ROOTS[re.search(r"query (\w+)", body["query"]).group(1)]
        options = body["variables"]["options"]
        self.calls.append(options)
        rows = [rid for rid in self.stamps if self.matches(rid, options["filter"])]
        self.rng.shuffle(rows)  # ties: whatever order the database likes this time
        keys = [k for k in SORT_ORDER if k in options["sort"]]
        for key in reversed(keys):
            rows.sort(key=lambda r: int(r) if key == "id" else self.stored(r))
        page = rows[options["skip"]:options["skip"] + options["take"]]
        items = [{**_template(root), "id": rid, "updatedAt": self.shown(rid)} for rid in page]
        return 200, {}, json.dumps({"data": {root: {"totalItems": len(rows), "items": items}}})


def connector(page_size: int) -> VendureConnector:
    creds = Credentials("vendure.example", access_token="tok", api_url=API_URL)
    instance = VendureConnector(creds)
    instance.page_size = page_size
    return instance


def read_all(resource: str, page_size: int, *, one_page_per_run: bool,
             cursor: str | None = None) -> tuple[list[str], list[str]]:
    """Ids read and cursors written; ``one_page_per_run`` resumes from the cursor each page."""
    ids: list[str] = []
    cursors: list[str] = []
    for _ in range(2000):
        pages = getattr(connector(page_size), f"iter_{resource}")(cursor=cursor)
        for page in pages:
            ids += [record.external_id for record in page.items]
            cursor = page.next_cursor
            if cursor is None:
                return ids, cursors
            cursors.append(cursor)
            if one_page_per_run:
                break
    raise AssertionError("the backfill did not end")


def clustered(sizes: list[int], step: timedelta) -> dict[str, datetime]:
    """Runs of ``sizes`` rows sharing one time each, runs ``step`` apart."""
    stamps: dict[str, datetime] = {}
    for run, size in enumerate(sizes):
        for _ in range(size):
            stamps[str(len(stamps) + 1)] = T0 + run * step
    return stamps


@pytest.mark.parametrize("one_page_per_run", [False, True])
@pytest.mark.parametrize("resource", ["products", "customers", "orders"])
@pytest.mark.parametrize("clock", ["sqlite", "postgres"])
@responses.activate
def test_ties_across_page_boundaries_lose_nothing(clock, resource, one_page_per_run) -> None:
    stamps = clustered([1, 5, 7, 2, 9, 1, 4], timedelta(seconds=1))
    fake = FakeVendure(clock, stamps)
    responses.add_callback("POST", API_URL, callback=fake)
    ids, cursors = read_all(resource, 3, one_page_per_run=one_page_per_run)
    assert set(ids) == set(stamps)
    assert all(len(c) <= CURSOR_LIMIT for c in cursors)


@pytest.mark.parametrize("clock", ["sqlite", "postgres"])
@responses.activate
def test_run_longer_than_the_cursor_can_name_is_read_in_id_order(clock) -> None:
    stamps = clustered([3, 400, 2], timedelta(seconds=2))
    fake = FakeVendure(clock, stamps)
    responses.add_callback("POST", API_URL, callback=fake)
    ids, cursors = read_all("products", 25, one_page_per_run=True)
    assert set(ids) == set(stamps)
    assert all(len(c) <= CURSOR_LIMIT for c in cursors)
    assert any("scan" in json.loads(c) for c in cursors)
    assert len(fake.calls) < 2 * 405 / 25 + 6  # a bounded number of queries
    assert len(ids) - len(set(ids)) < 120  # re-reads: at most what one listed cursor named


@responses.activate
def test_microsecond_bulk_write_spanning_pages_ends() -> None:
    # PostgreSQL: one transaction stamps 120 rows with the same microsecond, 0.5 ms before
    # the next run; ``after T - 1ms`` lets the older run in again on every page.
    base = T0 + timedelta(microseconds=400)
    stamps = {str(i): base for i in range(1, 121)}
    stamps |= {str(i): base + timedelta(microseconds=700) for i in range(121, 241)}
    stamps |= {str(i): base + timedelta(milliseconds=5) for i in range(241, 246)}
    fake = FakeVendure("postgres", stamps)
    responses.add_callback("POST", API_URL, callback=fake)
    ids, _ = read_all("products", 10, one_page_per_run=False)
    assert set(ids) == set(stamps)
    assert any("between" in call["filter"]["updatedAt"] for call in fake.calls[1:])


@responses.activate
def test_row_edited_during_a_scan_does_not_hide_the_rest_of_the_run() -> None:
    stamps = clustered([300], timedelta(seconds=1))
    fake = FakeVendure("sqlite", stamps)
    responses.add_callback("POST", API_URL, callback=fake)
    ids: list[str] = []
    edited = False
    for page in connector(20).iter_products():
        ids += [record.external_id for record in page.items]
        scan = decode_cursor(page.next_cursor).scan if page.next_cursor else None
        if scan and scan[0] and int(scan[0]) > 30 and not edited:
            for rid in ("3", "5", "7"):  # read already; edited now: they leave the run
                fake.stamps[rid] = T0 + timedelta(minutes=5)
            edited = True
    assert edited and set(ids) == set(stamps)


@responses.activate
def test_cursor_from_before_the_id_lists_still_resumes() -> None:
    stamps = clustered([2, 6, 3], timedelta(seconds=1))
    fake = FakeVendure("sqlite", stamps)
    responses.add_callback("POST", API_URL, callback=fake)
    old = json.dumps({"after": (T0 + timedelta(seconds=1)).isoformat(), "skip": 4})
    ids, _ = read_all("products", 3, one_page_per_run=True, cursor=old)
    assert set(ids) == {rid for rid, at in stamps.items() if at >= T0 + timedelta(seconds=1)}


@pytest.mark.parametrize("bad", [
    '{"after":null,"seen":[1]}', '{"after":null,"scan":[null,0]}',
    '{"after":"2026-01-01T00:00:00Z","scan":["1",-1]}',
    '{"after":"2026-01-01T00:00:00Z","scan":[2,3]}',
])
def test_damaged_id_cursor_rejected(bad: str) -> None:
    with pytest.raises(InvalidPayload):
        decode_cursor(bad)


def test_page_size_below_two_refused() -> None:
    with pytest.raises(ValueError):
        next(iter(connector(1).iter_products()))
