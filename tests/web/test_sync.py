"""Resumable backfill: stop mid-way, run again, nothing missing and nothing doubled."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import responses
import sqlalchemy as sa

import connectors
from connectors.base import Connector, ConnectorMeta
from connectors.errors import AuthFailed, NotSupported, RateLimited, TransientError
from connectors.records import LineItem, Order, Page, Product, Rejected
from plugin import shops
from plugin.extensions import db
from plugin.ingestion.sync import KEEP_REJECTED, run_sync, sync_progress
from plugin.models import Interaction, SyncState
from plugin.models import Product as ProductRow
from tests.factories import fake_lease_clock

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CATALOG = [Product(external_id=f"p{i}", title=f"Item {i}", updated_at=T0 + timedelta(minutes=i),
                   price=Decimal("2.50"), currency="GBP") for i in range(25)]


class PagedFakeConnector(Connector):
    """An in-memory platform with cursor pages of 10 and switchable faults."""

    meta = ConnectorMeta(key="pagedfake", name="Paged fake", webhook_topics=(), scopes=(),
                         capabilities=frozenset({"backfill"}))
    fail_after_pages: int | None = None
    fault: Exception | None = None
    calls: list[str | None] = []
    #: page number -> records on it the "platform" sent but could not be read
    rejected: dict[int, tuple[Rejected, ...]] = {}
    #: called with each page's number before it is sent (slow pages, a takeover meanwhile)
    before_page: Callable[[int], None] | None = None

    def verify_webhook(self, headers, raw_body, *, now=None):
        raise AssertionError("not used")

    def parse_webhook(self, headers, raw_body):
        raise AssertionError("not used")

    def iter_products(self, cursor=None):
        type(self).calls.append(cursor)
        start = int(cursor or 0)
        for pages, lo in enumerate(range(start, len(CATALOG), 10)):
            if self.fail_after_pages is not None and pages >= self.fail_after_pages:
                raise self.fault
            nxt = lo + 10
            if self.before_page is not None:
                type(self).before_page(lo // 10)
            yield Page(items=CATALOG[lo:nxt], next_cursor=str(nxt) if nxt < len(CATALOG) else None,
                       rejected=self.rejected.get(lo // 10, ()))

    def iter_orders(self, since=None, cursor=None):
        orders = [Order(external_id=f"o{i}", created_at=T0 + timedelta(days=i),
                        updated_at=T0 + timedelta(days=i), currency="GBP", customer_id="c1",
                        lines=(LineItem(product_id="p1", quantity=1, price=Decimal("2.50")),))
                  for i in range(5)]
        yield Page(items=[o for o in orders if since is None or o.updated_at > since],
                   next_cursor=None)


@pytest.fixture
def fake_shop(app, monkeypatch):
    connectors.available()  # load the built-ins first, then add the fake for this test only
    monkeypatch.setitem(connectors._registry, "pagedfake", PagedFakeConnector)
    PagedFakeConnector.fail_after_pages, PagedFakeConnector.fault = None, None
    PagedFakeConnector.calls = []
    PagedFakeConnector.rejected = {}
    PagedFakeConnector.before_page = None
    shop = shops.create_shop("pagedfake", "fake.example")
    db.session.commit()
    return shop


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_full_backfill_in_one_run(fake_shop):
    result = run_sync(fake_shop.id, "products")
    assert (result.records, result.pages, result.finished) == (25, 3, True)
    assert _count(ProductRow) == 25
    state = db.session.scalar(sa.select(SyncState))
    assert state.cursor is None and state.status == "idle" and state.watermark is not None


def test_interrupted_backfill_resumes_from_the_cursor(fake_shop):
    first = run_sync(fake_shop.id, "products", max_pages=1)  # the process "dies" here
    assert (first.records, first.finished) == (10, False)
    assert db.session.scalar(sa.select(SyncState)).cursor == "10"
    second = run_sync(fake_shop.id, "products")
    assert (second.records, second.finished) == (15, True)
    assert PagedFakeConnector.calls == [None, "10"]  # resumed, not restarted
    ids = sorted(db.session.scalars(sa.select(ProductRow.external_id)))
    assert ids == sorted(p.external_id for p in CATALOG)  # nothing missing, nothing doubled


def test_platform_error_mid_backfill_keeps_committed_pages_and_cursor(fake_shop):
    PagedFakeConnector.fail_after_pages = 2
    PagedFakeConnector.fault = RateLimited(retry_after=30)
    result = run_sync(fake_shop.id, "products")
    assert result.error and result.retry_after == 30 and result.records == 20
    state = db.session.scalar(sa.select(SyncState))
    assert state.status == "failed" and state.cursor == "20"
    PagedFakeConnector.fail_after_pages = None
    assert run_sync(fake_shop.id, "products").records == 5
    assert _count(ProductRow) == 25


def test_auth_failure_flags_the_installation(fake_shop):
    PagedFakeConnector.fail_after_pages = 0
    PagedFakeConnector.fault = AuthFailed("token revoked")
    result = run_sync(fake_shop.id, "products")
    assert "AuthFailed" in result.error
    db.session.expire_all()
    assert shops.get_shop(fake_shop.id).installation.auth_failed is True


def test_orders_sync_is_incremental_by_watermark(fake_shop):
    assert run_sync(fake_shop.id, "orders").records == 5
    assert _count(Interaction) == 5
    assert run_sync(fake_shop.id, "orders").records == 0  # nothing newer than the watermark


def test_progress_is_reported_per_resource(fake_shop):
    run_sync(fake_shop.id, "products", max_pages=2)
    [row] = sync_progress(fake_shop.id)
    assert row["resource"] == "products" and row["done"] == 20 and row["status"] == "paused"


def _live() -> list[str]:
    db.session.expire_all()
    return sorted(db.session.scalars(sa.select(ProductRow.external_id).where(
        ProductRow.deleted_at.is_(None))), key=lambda e: int(e[1:]))


def test_products_deleted_while_unheard_are_tombstoned_by_the_next_full_pass(
        fake_shop, monkeypatch):
    """A product deleted on the platform while its webhook never reached us (an outage;
    Vendure's soft delete) is no longer listed: a complete pass must stop it being sold."""
    full = CATALOG
    run_sync(fake_shop.id, "products")
    monkeypatch.setattr(sys.modules[__name__], "CATALOG", full[:20])
    result = run_sync(fake_shop.id, "products")
    assert result.tombstoned == 5
    assert _live() == [f"p{i}" for i in range(20)]
    gone = db.session.scalar(sa.select(ProductRow).filter_by(external_id="p24"))
    assert gone.available is False and gone.deleted_at is not None
    # listed again with a newer change (re-published): it is back
    back = replace(full[24], updated_at=full[24].updated_at + timedelta(days=1))
    monkeypatch.setattr(sys.modules[__name__], "CATALOG", [*full[:20], back])
    run_sync(fake_shop.id, "products")
    assert _live() == [*(f"p{i}" for i in range(20)), "p24"]


def test_a_pass_cut_off_every_run_still_tombstones_when_it_completes(fake_shop, monkeypatch):
    """The sweep ran only after a pass listed from its start in one run: a big catalogue
    whose pass is always cut off by its budget and resumed never tombstoned anything."""
    from plugin.ingestion.mapping import upsert_product

    run_sync(fake_shop.id, "products")
    gone = {"p5", "p24"}  # deleted on the platform, one from each end of the pass
    monkeypatch.setattr(sys.modules[__name__], "CATALOG",
                        [p for p in CATALOG if p.external_id not in gone])
    results = [run_sync(fake_shop.id, "products", max_pages=1)]
    # a webhook creates a product mid-pass, on a page the pass has already read
    upsert_product(fake_shop.id, replace(CATALOG[0], external_id="p99",
                                         updated_at=datetime.now(UTC)))
    db.session.commit()
    while not results[-1].finished:
        results.append(run_sync(fake_shop.id, "products", max_pages=1))
    assert [r.tombstoned for r in results] == [0, 0, 1 + 1]
    assert PagedFakeConnector.calls[-3:] == [None, "10", "20"]  # resumed, not restarted
    # p0-p4 and p6-p10 were listed only by the first run; p99 only by its webhook
    assert _live() == [f"p{i}" for i in range(24) if f"p{i}" not in gone] + ["p99"]


def test_a_partly_unread_pass_tombstones_nothing_even_when_resumed(fake_shop, monkeypatch):
    run_sync(fake_shop.id, "products")
    monkeypatch.setattr(sys.modules[__name__], "CATALOG", CATALOG[:20])
    PagedFakeConnector.rejected = {0: _bad(1)}  # listed but unreadable: maybe one of ours
    assert not run_sync(fake_shop.id, "products", max_pages=1).finished
    PagedFakeConnector.rejected = {}
    assert run_sync(fake_shop.id, "products").tombstoned == 0  # the rest of that pass
    PagedFakeConnector.rejected = {1: _bad(1)}
    assert run_sync(fake_shop.id, "products").tombstoned == 0  # in one run
    assert len(_live()) == 25


def test_a_second_sync_of_the_same_shop_and_resource_waits_for_the_first(fake_shop):
    """The CLI run beside the scheduled job read the same pages twice, doubled the
    progress count and, on PostgreSQL, collided inserting the same new rows."""
    from plugin import lease
    from plugin.ingestion.sync import LEASE_SECONDS, lease_name

    name = lease_name(fake_shop.id, "products")
    assert lease.acquire(name, "worker-a:1", LEASE_SECONDS)  # a sync is running there
    result = run_sync(fake_shop.id, "products")
    assert "another sync of products is running (worker-a:1)" in result.error
    assert PagedFakeConnector.calls == [] and result.records == 0
    assert sync_progress(fake_shop.id) == []  # its state is left to the running sync
    assert run_sync(fake_shop.id, "orders").records == 5  # other resources are free
    lease.release(name, "worker-a:1")
    assert run_sync(fake_shop.id, "products").records == 25
    assert run_sync(fake_shop.id, "products").records == 25  # released after each run


def test_a_killed_syncs_lease_lapses(fake_shop):
    from plugin import lease
    from plugin.ingestion.sync import LEASE_SECONDS, lease_name

    long_ago = datetime.now(UTC) - timedelta(seconds=LEASE_SECONDS + 60)
    assert lease.acquire(lease_name(fake_shop.id, "products"), "dead:1", LEASE_SECONDS,
                         now=long_ago)
    assert run_sync(fake_shop.id, "products").records == 25


def test_a_crashed_syncs_lease_lapses_within_minutes(fake_shop, monkeypatch):
    """The lease lasted 2 h: a sync killed mid-way blocked its shop and resource that long."""
    from plugin import lease
    from plugin.ingestion import sync
    from plugin.models import SchedulerLease

    monkeypatch.setattr(sync.lease, "release", lambda name, holder: None)  # kill -9
    PagedFakeConnector.fail_after_pages, PagedFakeConnector.fault = 1, RuntimeError("killed")
    with pytest.raises(RuntimeError):
        run_sync(fake_shop.id, "products")
    monkeypatch.undo()
    row = db.session.get(SchedulerLease, sync.lease_name(fake_shop.id, "products"))
    assert row.expires_at <= datetime.now(UTC) + timedelta(minutes=10)
    assert lease.acquire(row.name, "next:1", 60, now=datetime.now(UTC) + timedelta(minutes=10))


def test_a_sync_whose_process_died_shows_interrupted_not_running(fake_shop, monkeypatch):
    """Killed mid-run (or the database gone before the failure was written), the state said
    "running" on the dashboard until the next run; once its lease has lapsed it says so."""
    from plugin import lease
    from plugin.ingestion import sync

    seen: list[str] = []
    PagedFakeConnector.before_page = lambda n: seen.append(sync_progress(fake_shop.id)[0][
        "status"])
    release = sync.lease.release
    monkeypatch.setattr(sync.lease, "release", lambda name, holder: None)  # kill -9 ...
    PagedFakeConnector.fail_after_pages, PagedFakeConnector.fault = 1, SystemExit(9)
    with pytest.raises(SystemExit):  # ... between pages: nothing written after
        run_sync(fake_shop.id, "products")
    monkeypatch.setattr(sync.lease, "release", release)
    PagedFakeConnector.fail_after_pages, PagedFakeConnector.before_page = None, None
    assert seen == ["running"]  # while it ran
    assert sync_progress(fake_shop.id)[0]["status"] == "running"  # lease still live
    name = sync.lease_name(fake_shop.id, "products")
    db.session.execute(sa.update(lease.SchedulerLease).where(lease.SchedulerLease.name == name)
                       .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    db.session.commit()
    assert sync_progress(fake_shop.id)[0]["status"] == "interrupted"
    assert run_sync(fake_shop.id, "products").records == 15  # resumed from the cursor
    assert sync_progress(fake_shop.id)[0]["status"] == "idle"


def test_a_long_sync_renews_its_short_lease_with_each_page(fake_shop, monkeypatch):
    from plugin import lease
    from plugin.ingestion import sync

    monkeypatch.setattr(sync, "LEASE_SECONDS", 3)
    name, others = sync.lease_name(fake_shop.id, "products"), []
    clock = fake_lease_clock(monkeypatch)  # no real sleeps a loaded machine overruns

    def slow_page(n: int) -> None:
        clock.advance(1.2)  # three pages: 3.6 s on the lease's clock, longer than the lease
        others.append(lease.acquire(name, "other:1", 60))

    PagedFakeConnector.before_page = slow_page
    assert run_sync(fake_shop.id, "products").finished
    assert others == [False, False, False]


class RetriedPageConnector(PagedFakeConnector):
    """One page behind an HTTP call the platform answers 503, 503, then 200."""

    meta = ConnectorMeta(key="retriedfake", name="Retried fake", webhook_topics=(),
                         scopes=(), capabilities=frozenset({"backfill"}))

    def iter_products(self, cursor=None):
        self.session.get("https://platform.example/products").raise_for_status()
        yield Page(items=CATALOG[:10], next_cursor=None)


@responses.activate
def test_a_page_retried_for_longer_than_the_lease_keeps_it(app, monkeypatch):
    """Retries of one request (429s, 5xx: minutes with their back-off) yield no page, so the
    lease lapsed meanwhile and another run could take the shop's sync over."""
    from connectors.http import make_session
    from plugin import lease
    from plugin.ingestion import sync

    connectors.available()
    monkeypatch.setitem(connectors._registry, "retriedfake", RetriedPageConnector)
    shop = shops.create_shop("retriedfake", "retried.example")
    db.session.commit()
    for status in (503, 503, 200):
        responses.add(responses.GET, "https://platform.example/products", status=status)
    monkeypatch.setattr(sync, "LEASE_SECONDS", 3)
    name, others = sync.lease_name(shop.id, "products"), []
    clock = fake_lease_clock(monkeypatch)

    def wait(delay: float) -> None:  # the back-off, then another run tries its luck
        clock.advance(1.6)
        others.append(lease.acquire(name, "other:1", 60))

    result = run_sync(shop.id, "products", session=make_session(sleep=wait))
    assert result.finished and result.records == 10
    assert others == [False, False]  # 3.2 s of waits against a 3 s lease


def test_a_sync_that_lost_its_lease_writes_no_further_page(fake_shop):
    """A page that took longer than the lease (a slow platform) while another run took the
    lease over was still written beside that run's pages."""
    from plugin.ingestion.sync import lease_name
    from plugin.models import SchedulerLease

    def taken_over(n: int) -> None:
        if n == 1:  # while this run fetched page 1, its lease lapsed and another took it
            db.session.execute(sa.update(SchedulerLease).where(
                SchedulerLease.name == lease_name(fake_shop.id, "products")).values(
                holder="other:1", expires_at=datetime.now(UTC) + timedelta(minutes=5)))
            db.session.commit()

    PagedFakeConnector.before_page = taken_over
    result = run_sync(fake_shop.id, "products")
    assert result.error == "lost the sync lease to another run" and result.records == 10
    assert _count(ProductRow) == 10
    assert db.session.scalar(sa.select(SyncState)).cursor == "10"  # left to the other run


class TakenOverConnector(PagedFakeConnector):
    """One page, then another run takes the lease over, then the platform fails."""

    meta = ConnectorMeta(key="takenover", name="Taken over", webhook_topics=(), scopes=(),
                         capabilities=frozenset({"backfill"}))

    def iter_products(self, cursor=None):
        from plugin.ingestion.sync import lease_name
        from plugin.models import SchedulerLease

        yield Page(items=CATALOG[:10], next_cursor="10")
        shop_id = db.session.scalar(sa.select(SyncState.shop_id))
        db.session.execute(sa.update(SchedulerLease).where(
            SchedulerLease.name == lease_name(shop_id, "products")).values(
            holder="other:1", expires_at=datetime.now(UTC) + timedelta(minutes=5)))
        db.session.commit()
        raise TransientError("HTTP 503 after 6 attempts")


def test_a_failure_after_the_lease_was_lost_leaves_the_other_runs_state(app, monkeypatch):
    """A run that lost its lease and then met a platform error marked the sync failed,
    over the state of the run that holds the lease now."""
    connectors.available()
    monkeypatch.setitem(connectors._registry, "takenover", TakenOverConnector)
    shop = shops.create_shop("takenover", "takenover.example")
    db.session.commit()
    result = run_sync(shop.id, "products")
    assert result.error == "lost the sync lease to another run"
    db.session.expire_all()
    state = db.session.scalar(sa.select(SyncState))
    assert state.status == "running" and state.last_error is None  # the other run's
    assert state.cursor == "10" and _count(ProductRow) == 10  # the page before stays


def test_a_finished_pass_shows_a_full_progress_bar(app, client, fake_shop):
    from tests.admin.conftest import sign_in

    run_sync(fake_shop.id, "products", max_pages=1)
    [row] = sync_progress(fake_shop.id)
    assert (row["done"], row["total"]) == (10, None)  # unknown while it runs
    run_sync(fake_shop.id, "products")
    [row] = sync_progress(fake_shop.id)
    assert (row["status"], row["done"], row["total"]) == ("idle", 25, 25)
    sign_in(app, client, fake_shop)
    html = client.get("/admin/").get_data(as_text=True)
    assert 'max="25" value="25"' in html
    run_sync(fake_shop.id, "products", max_pages=1)  # the next pass: unknown again
    assert sync_progress(fake_shop.id)[0]["total"] is None


def test_platform_without_backfill_is_not_supported(shop):
    with pytest.raises(NotSupported):
        run_sync(shop.id, "products")


def test_unknown_resource_is_rejected(fake_shop):
    with pytest.raises(ValueError):
        run_sync(fake_shop.id, "widgets")


def _bad(n: int, start: int = 0) -> tuple[Rejected, ...]:
    return tuple(Rejected(f"bad{i}", "price is not a number") for i in range(start, start + n))


def test_unreadable_records_are_counted_named_and_do_not_stop_the_backfill(fake_shop):
    PagedFakeConnector.rejected = {0: _bad(2), 2: _bad(1, start=2)}
    result = run_sync(fake_shop.id, "products")
    assert (result.records, result.skipped, result.finished) == (25, 3, True)
    assert _count(ProductRow) == 25  # every readable record landed
    [row] = sync_progress(fake_shop.id)
    assert row["status"] == "idle" and row["skipped"] == 3
    assert [r["id"] for r in row["rejected"]] == ["bad0", "bad1", "bad2"]
    assert row["rejected"][0]["reason"] == "price is not a number"


def test_rejections_survive_a_resume_and_reset_on_the_next_pass(fake_shop):
    PagedFakeConnector.rejected = {0: _bad(1), 1: _bad(1, start=1)}
    run_sync(fake_shop.id, "products", max_pages=1)  # the process "dies" here
    run_sync(fake_shop.id, "products")  # resumes the same pass
    [row] = sync_progress(fake_shop.id)
    assert row["skipped"] == 2 and [r["id"] for r in row["rejected"]] == ["bad0", "bad1"]
    PagedFakeConnector.rejected = {}  # fixed at the source: the next pass is clean
    run_sync(fake_shop.id, "products")
    [row] = sync_progress(fake_shop.id)
    assert (row["skipped"], row["rejected"]) == (0, [])


def test_only_the_latest_rejections_are_named_but_all_are_counted(fake_shop):
    PagedFakeConnector.rejected = {0: _bad(15), 1: _bad(15, start=15)}
    run_sync(fake_shop.id, "products")
    [row] = sync_progress(fake_shop.id)
    assert row["skipped"] == 30 and len(row["rejected"]) == KEEP_REJECTED
    assert row["rejected"][-1]["id"] == "bad29" and row["rejected"][0]["id"] == "bad10"


def test_dashboard_names_skipped_records(app, client, fake_shop):
    from tests.admin.conftest import sign_in

    PagedFakeConnector.rejected = {0: (Rejected("gid://x/Product/9", "price is not a number"),)}
    run_sync(fake_shop.id, "products")
    sign_in(app, client, fake_shop)
    html = client.get("/admin/").get_data(as_text=True)
    assert "1 record skipped" in html and "gid://x/Product/9" in html
    data = client.get("/admin/progress.json").get_json()
    assert data["syncs"][0]["skipped"] == 1


def test_shopify_backfill_with_one_unreadable_product_stores_the_rest(app):
    """Real connector, real mapping, real database: only Shopify's HTTP is mocked."""
    import responses

    from connectors.base import Credentials
    from connectors.http import make_session
    from connectors.shopify.client import API_VERSION
    from tests.connectors.test_shopify import product_node

    domain = "skipper.myshopify.com"
    shop = shops.create_shop("shopify", domain, Credentials(
        domain, access_token="shpat_test", extra={"currency": "GBP"}))
    db.session.commit()
    nodes = [product_node("1"), {**product_node("2"), "updatedAt": "someday"}, product_node("3")]
    with responses.RequestsMock() as rsps:
        rsps.post(f"https://{domain}/admin/api/{API_VERSION}/graphql.json", json={"data": {
            "shop": {"currencyCode": "GBP"},
            "products": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": nodes}}})
        result = run_sync(shop.id, "products", session=make_session(sleep=lambda s: None))
    assert (result.records, result.skipped, result.finished) == (2, 1, True)
    stored = db.session.scalars(sa.select(ProductRow.external_id).filter_by(shop_id=shop.id))
    assert sorted(stored) == ["1", "3"]
    [row] = sync_progress(shop.id)
    assert row["rejected"] == [{"id": "gid://shopify/Product/2",
                                "reason": "updatedAt is not a datetime "
                                          "(updatedAt: not an ISO-8601 string)"}]


def test_a_backfill_page_with_lone_surrogates_stores_its_products(app):
    """A platform's JSON may carry "\\ud83d" (half an emoji cut by a JavaScript slice): no
    UTF-8 encodes it, so the page's upsert raised and the sync failed at that page on every
    run. Text loses the half character; an id holding one is the record's rejection."""
    import responses

    from connectors.base import Credentials
    from connectors.http import make_session
    from connectors.shopify.client import API_VERSION
    from tests.connectors.test_shopify import product_node

    domain = "halves.myshopify.com"
    shop = shops.create_shop("shopify", domain, Credentials(
        domain, access_token="shpat_test", extra={"currency": "GBP"}))
    db.session.commit()
    nodes = [{**product_node("1"), "title": "Tea \ud83d", "vendor": "\udc00Leaf",
              "tags": ["green\ud83d"]}, product_node("2\ud800")]
    with responses.RequestsMock() as rsps:
        rsps.post(f"https://{domain}/admin/api/{API_VERSION}/graphql.json", json={"data": {
            "shop": {"currencyCode": "GBP"},
            "products": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": nodes}}})
        result = run_sync(shop.id, "products", session=make_session(sleep=lambda s: None))
    assert (result.records, result.skipped, result.finished) == (1, 1, True)
    db.session.expire_all()
    [row] = db.session.scalars(sa.select(ProductRow).filter_by(shop_id=shop.id))
    assert (row.external_id, row.title, row.vendor, row.tags) == ("1", "Tea ", "Leaf", ["green"])
    [state] = sync_progress(shop.id)
    assert state["status"] == "idle"
    assert state["rejected"][0]["id"] == "gid://shopify/Product/2"  # shown on the dashboard


def test_sync_command_reports_skipped_records(runner, fake_shop):
    from plugin.cli import main

    PagedFakeConnector.rejected = {1: _bad(2)}
    r = runner.invoke(main, ["sync", "--shop", fake_shop.id, "--resource", "products"],
                      catch_exceptions=False)
    assert r.exit_code == 0
    assert "products: 25 records, 2 unreadable and skipped (see the dashboard)" in r.output


def test_an_unexpected_error_marks_the_sync_failed_and_is_raised(fake_shop, monkeypatch):
    """Not a connector error (a bug, the database): the state must not stay "running"."""
    from plugin.ingestion import sync

    def broken(shop_id, record):
        raise RuntimeError("boom")

    monkeypatch.setitem(sync.RESOURCES, "products", ("iter_products", broken))
    with pytest.raises(RuntimeError):
        run_sync(fake_shop.id, "products")
    [row] = sync_progress(fake_shop.id)
    assert row["status"] == "failed" and row["last_error"] == "RuntimeError: boom"


def test_one_shops_failing_sync_does_not_stop_the_other_shops(fake_shop, monkeypatch):
    """The reconciliation job goes on past a shop whose sync raises, then reports it."""
    from plugin import jobs
    from plugin.ingestion import sync

    second = shops.create_shop("pagedfake", "other.example")
    db.session.commit()
    real = sync.run_sync

    def run(shop_id, resource, **kwargs):
        if shop_id == fake_shop.id:
            raise RuntimeError("this shop's bug")
        return real(shop_id, resource, **kwargs)

    monkeypatch.setattr(sync, "run_sync", run)
    with pytest.raises(RuntimeError, match="this shop's bug"):
        jobs.sync_all_shops()
    synced = db.session.scalars(sa.select(SyncState.resource)
                                .filter_by(shop_id=second.id, status="idle"))
    assert sorted(synced) == ["orders", "products"]  # the fake has no customers API


def test_a_rate_limited_shop_is_left_for_the_next_run(fake_shop, monkeypatch):
    """Its other resources would only be refused too; the other shops still sync."""
    from plugin import jobs
    from plugin.ingestion import sync

    second = shops.create_shop("pagedfake", "other.example")
    db.session.commit()
    real, asked = sync.run_sync, []

    def run(shop_id, resource, **kwargs):
        asked.append((shop_id, resource))
        if shop_id == fake_shop.id:
            return sync.SyncResult(resource, retry_after=120.0)
        return real(shop_id, resource, **kwargs)

    monkeypatch.setattr(sync, "run_sync", run)
    jobs.sync_all_shops()
    assert [r for s, r in asked if s == fake_shop.id] == [next(iter(sync.RESOURCES))]
    assert len([r for s, r in asked if s == second.id]) == len(sync.RESOURCES)


# -- a Shopify shop installed before its time zone was read at install gets it at a sync
def _zoneless_shopify_shop(settings: dict | None = None):
    from connectors.base import Credentials

    domain = "zoneless.myshopify.com"
    shop = shops.create_shop("shopify", domain, Credentials(  # no extra["timezone"]
        domain, access_token="shpat_test", extra={"currency": "GBP"}))
    shop.settings = settings or {}
    db.session.commit()
    return shop


def _sync_shopify_customers(shop_id: str) -> list[str]:
    """One empty customers page from Shopify; returns the queries the sync sent."""
    import json

    import responses

    from connectors.http import make_session
    from connectors.shopify.client import API_VERSION

    def shopify(request):
        query = json.loads(request.body)["query"]
        if "customers" not in query:  # Shop.ianaTimezone (String!), as documented
            return 200, {}, json.dumps({"data": {"shop": {
                "currencyCode": "GBP", "ianaTimezone": "Europe/Berlin"}}})
        return 200, {}, json.dumps({"data": {"customers": {
            "pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": []}}})

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, "https://zoneless.myshopify.com/admin/api/"
                          f"{API_VERSION}/graphql.json", callback=shopify)
        assert run_sync(shop_id, "customers", session=make_session(sleep=lambda s: None)
                        ).finished
        sent = [json.loads(call.request.body)["query"] for call in rsps.calls]
    db.session.expire_all()
    return sent


def test_a_shopify_shop_installed_before_time_zones_gets_its_zone_at_the_next_sync(app):
    shop = _zoneless_shopify_shop()
    assert any("ianaTimezone" in q for q in _sync_shopify_customers(shop.id))
    assert shops.get_shop(shop.id).settings["timezone"] == "Europe/Berlin"  # dashboard's days
    assert shops.credentials_for(shop).extra["timezone"] == "Europe/Berlin"
    assert not any("ianaTimezone" in q for q in _sync_shopify_customers(shop.id))  # once


def test_a_sync_does_not_override_the_time_zone_the_merchant_chose(app):
    shop = _zoneless_shopify_shop({"timezone": "Europe/Paris"})
    assert not any("ianaTimezone" in q for q in _sync_shopify_customers(shop.id))  # not asked
    assert shops.get_shop(shop.id).settings["timezone"] == "Europe/Paris"


def test_prices_in_other_currencies_are_stored_with_the_product_and_its_variants(fake_shop):
    """A channel selling several currencies lists a price in each: kept beside the price in
    the product's currency, exactly, and dropped again when no longer listed."""
    from connectors.records import Variant
    from plugin.ingestion.mapping import upsert_product
    from plugin.models import Variant as VariantRow

    at = datetime(2026, 5, 1, tzinfo=UTC)
    eur = {"EUR": Decimal("18.05"), "USD": Decimal("19.99")}
    product = Product("m1", "Mug", at, price=Decimal("19.99"), currency="USD", prices=eur,
                      variants=(Variant("v1", price=Decimal("19.99"), prices=eur),))
    assert upsert_product(fake_shop.id, product)
    db.session.commit()
    row = db.session.scalar(sa.select(ProductRow).where(ProductRow.external_id == "m1"))
    variant = db.session.scalar(sa.select(VariantRow).where(VariantRow.external_id == "v1"))
    assert row.prices == variant.prices == {"EUR": "18.05", "USD": "19.99"}
    assert variant.price_in("eur") == Decimal("18.05") and variant.price_in("GBP") is None
    assert upsert_product(fake_shop.id, replace(product, updated_at=at + timedelta(1),
                                                prices={}, variants=()))
    db.session.commit()
    db.session.refresh(row)
    assert row.prices is None


def test_a_sync_stopped_by_a_lost_scheduler_lease_gives_its_sync_lease_up(
        app, fake_shop, monkeypatch, caplog, lease_takeover):
    """A scheduled sync whose worker lost the scheduler lease stops at its next commit
    (fenced), but the release of its own sync lease was fenced too: it stayed held for
    LEASE_SECONDS, and the new leader's run found "another sync of products is running"
    and left the shop to the next run, half an hour later. Given up outside the fence (and
    nothing of the page in hand with it), the new leader's run resumes the sync at once."""
    import logging

    from plugin import jobs, lease
    from plugin.ingestion import sync
    from plugin.models import JobRun

    # every lease on the pair's clock (the fence, checkpoints, the sync's own lease too),
    # hours off the real one: see tests/test_worker.py's fencing tests
    results = []

    def stall(page: int) -> None:  # w1 stalls before its second page; w2 takes over
        if two.running[-1] == "w1" and page == 1:
            two.take_over()

    PagedFakeConnector.before_page = stall
    monkeypatch.setattr(jobs, "SCHEDULED_JOBS", {"sync": (
        lambda: results.append(run_sync(fake_shop.id, "products")), 600)})
    two = lease_takeover()
    two.first.tick()
    with caplog.at_level(logging.INFO):
        two.run(two.first, "sync")
        assert lease.holder_of(sync.lease_name(fake_shop.id, "products")) is None
        assert _count(ProductRow) == 10  # w1's first page; its second, nothing
        two.run(two.second, "sync")
    runs = [(r.worker, r.status) for r in db.session.scalars(
        sa.select(JobRun).where(JobRun.job == "sync").order_by(JobRun.id))]
    assert runs == [("w1", "lease_lost"), ("w2", "ok")]
    assert [(r.records, r.finished, r.error) for r in results] == [(15, True, None)]
    assert _count(ProductRow) == 25
    assert "sync.lease_release_failed" not in [r.message for r in caplog.records]
