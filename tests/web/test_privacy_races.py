"""A redaction and an order update of the same shop at once (PostgreSQL: SQLite lets one
writer in at a time). Whichever runs first, the redacted order or erased customer's
purchases must not be left behind."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from connectors import records as rec
from connectors.shopify.mapping import order_from_rest
from plugin import privacy
from plugin.extensions import db
from plugin.ingestion import mapping
from plugin.models import Customer, Interaction, Order
from tests.conftest import BACKENDS
from tests.factories import make_shop
from tests.web.test_privacy_guest_orders import order


@pytest.fixture(params=["postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """PostgreSQL only: on SQLite one writer at a time makes these races impossible, so
    there is no SQLite variant to skip. Without PostgreSQL they are skipped, except in CI
    (``.ci/run`` starts it), where that is a failure."""
    if "postgresql" not in BACKENDS:
        if os.environ.get("CI"):
            pytest.fail("CI runs the privacy race tests on PostgreSQL; none is configured")
        pytest.skip("needs PostgreSQL (SHOPKEEPER_TEST_DATABASES=sqlite,postgresql)")
    return request.getfixturevalue("postgres_url")


def _waiting_on_a_lock(timeout: float = 10.0) -> bool:
    """True once some session of this database waits for a lock (the order update)."""
    with db.engine.connect() as conn:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE "
                                    "wait_event_type = 'Lock' AND "
                                    "datname = current_database()")).scalar():
                return True
            conn.rollback()
            time.sleep(0.05)
    return False


def _in_own_session(app, job: Callable[[], None], failures: list[Exception],
                    finished: threading.Event, *, commit: bool = False) -> None:
    """Run ``job`` in a session of its own (a thread's), keeping what it raised for the
    test to report and setting ``finished`` whatever happened."""
    with app.app_context():
        try:
            job()
            if commit:
                db.session.commit()
        except Exception as err:
            failures.append(err)
        finally:
            finished.set()
            db.session.remove()


def _race(app, first: Callable[[], None], second: Callable[[], None]) -> list[Exception]:
    """Run ``first`` in a session of its own up to its flush, then ``second`` in another;
    once ``second`` waits on a lock, commit ``first``. Returns what either raised."""
    started, go, failures = threading.Event(), threading.Event(), []

    def run(job: Callable[[], None], holds: bool) -> None:
        with app.app_context():  # a session of its own
            try:
                if not holds:
                    started.wait(30)
                job()
                db.session.flush()
                if holds:  # done, not committed: the other runs now
                    started.set()
                    go.wait(30)
                db.session.commit()
            except Exception as err:  # the test reports what went wrong
                failures.append(err)
            finally:
                started.set()
                db.session.remove()

    threads = [threading.Thread(target=run, args=(first, True)),
               threading.Thread(target=run, args=(second, False))]
    for t in threads:
        t.start()
    started.wait(30)
    assert _waiting_on_a_lock()  # the second waits for the first's transaction
    go.set()
    for t in threads:
        t.join(60)
    return failures


@pytest.mark.parametrize("first", ["redaction", "update"])
@pytest.mark.parametrize("case", ["redacted-order", "erased-customer"])
def test_an_order_update_and_a_redaction_at_once_leave_no_purchases(app, case, first):
    """One transaction has done its part but not committed when the other starts. A
    redaction first: the update checked before it committed, found the order live, and
    wrote it after it committed (its purchases back as a guest's, or linked to the erased
    customer again). An update first: the redaction did not see the purchases the update
    filed meanwhile, and left them. ``redacted-order``: a guest order the redaction lists;
    ``erased-customer``: an order of the erased customer that the redaction does not list."""
    shop_id = make_shop().id
    customer = None if case == "redacted-order" else 5151
    mapping.upsert_order(shop_id, order_from_rest(order(1001, customer)))
    mapping.upsert_order(shop_id, order_from_rest(order(1002, customer)))
    db.session.commit()
    late = order_from_rest(order(1002, customer, updated_at="2022-01-05T10:00:00Z"))

    def redaction() -> None:
        if customer is None:
            privacy.redact_orders(shop_id, ["1002"])
        else:
            privacy.erase_customer(shop_id, str(customer), order_ids=["1001"])

    def update() -> None:
        mapping.upsert_order(shop_id, late)

    jobs = {"redaction": redaction, "update": update}
    second = "update" if first == "redaction" else "redaction"
    assert _race(app, jobs[first], jobs[second]) == []
    db.session.expire_all()
    assert db.session.scalars(sa.select(Interaction.shopper_id).filter_by(
        shop_id=shop_id, order_external_id="1002")).all() == []
    assert db.session.scalar(sa.select(Order.customer_external_id).filter_by(
        shop_id=shop_id, external_id="1002")) is None


@pytest.mark.parametrize("first", ["erasure", "update"])
@pytest.mark.parametrize("case", ["known", "unseen"])
def test_a_customer_update_and_their_erasure_at_once_leave_them_erased(app, case, first):
    """As for orders: an erasure first, the update checked before it committed, found the
    customer live, waited on the row and wrote the email hash back over the tombstone
    (``known``), or failed on the tombstone it had not seen (``unseen``); an update
    first of a customer never seen, the erasure failed on the row it had not seen."""
    shop_id = make_shop().id
    if case == "known":
        mapping.upsert_customer(shop_id, rec.Customer(
            "5151", datetime(2022, 1, 1, tzinfo=UTC), email="a@example.com"))
        db.session.commit()
    late = rec.Customer("5151", datetime(2022, 1, 5, tzinfo=UTC), email="b@example.com")

    def erasure() -> None:  # deleted on the platform before the update's time
        privacy.erase_customer(shop_id, "5151", deleted_at=datetime(2022, 1, 3, tzinfo=UTC))

    def update() -> None:
        mapping.upsert_customer(shop_id, late)

    jobs = {"erasure": erasure, "update": update}
    second = "update" if first == "erasure" else "erasure"
    assert _race(app, jobs[first], jobs[second]) == []
    db.session.expire_all()
    [row] = db.session.scalars(sa.select(Customer).filter_by(shop_id=shop_id))
    assert row.deleted_at is not None and row.email_hash is None


@pytest.mark.parametrize("first", ["erasure", "switch"])
def test_a_saleor_channel_switch_and_an_erasure_at_once_both_finish(app, first):
    """Both change the shop's purchases in bulk. The erasure deletes its customer's
    purchases, then a guest order's it names; the switch deletes every mirrored purchase
    in one statement. Without a shared lock, an erasure between the two found the switch
    holding the guest order's purchase while waiting on the customer's: a deadlock, and
    one of the two failed (the merchant's switch, or a redaction that must be retried)."""
    import responses

    from plugin.admin import channel
    from plugin.models import Shop
    from tests.admin.test_saleor_channel import API, CHANNELS
    from tests.admin.test_saleor_channel import _shop as saleor_shop

    shop_id = saleor_shop().id
    # the guest order's purchase first: a scan of the table meets it before the customer's
    mapping.upsert_order(shop_id, order_from_rest(order(1001)))
    mapping.upsert_order(shop_id, order_from_rest(order(1002, 5151)))
    db.session.commit()
    paused, go, failures = threading.Event(), threading.Event(), []

    def pause(fn: Callable) -> Callable:
        def paused_then(*args, **kwargs):  # holding its locks, not committed
            paused.set()
            go.wait(30)
            return fn(*args, **kwargs)
        return paused_then

    def erasure() -> None:
        privacy.erase_customer(shop_id, "5151", order_ids=["1001"])
        db.session.commit()

    def switch() -> None:
        channel.choose(db.session.get(Shop, shop_id), "channel-pln")

    def run(job: Callable[[], None]) -> None:
        _in_own_session(app, job, failures, paused)

    # the erasure pauses with its customer's purchases deleted, before the guest order's;
    # the switch with every purchase deleted and orders marked, before its commit
    held = (privacy, "_forget_orders") if first == "erasure" else (channel, "withdraw_unaccepted")
    original = getattr(*held)
    jobs = {"erasure": erasure, "switch": switch}
    second = "switch" if first == "erasure" else "erasure"
    with pytest.MonkeyPatch.context() as mp, responses.RequestsMock() as rsps:
        mp.setattr(*held, pause(original))
        rsps.add(responses.POST, API, json=CHANNELS)
        threads = [threading.Thread(target=run, args=(jobs[first],))]
        threads[0].start()
        assert paused.wait(30)
        threads.append(threading.Thread(target=run, args=(jobs[second],)))
        threads[1].start()
        assert _waiting_on_a_lock()  # the second waits for the first's transaction
        go.set()
        for t in threads:
            t.join(60)
    assert failures == []
    db.session.expire_all()
    assert db.session.scalars(sa.select(Interaction.order_external_id).filter_by(
        shop_id=shop_id)).all() == []
    assert db.session.scalar(sa.select(Order.customer_external_id).filter_by(
        shop_id=shop_id, external_id="1002")) is None
    assert db.session.get(Shop, shop_id).settings["saleor_channel"] == "channel-pln"


def test_a_subprofile_deletion_and_its_owners_erasure_at_once_both_finish(app):
    """The deletion deletes the sub-profile's browsing events, then marks its purchases;
    the erasure deletes all of the owner's events in one statement. Without the shared
    lock, an erasure between the two locked the purchase and waited on a browsing event
    the deletion had deleted, while the deletion waited on the purchase: a deadlock, and
    one of the two failed (the shopper's deletion, or a redaction that must be retried)."""
    from sqlalchemy import event

    from plugin.models import Shop, SubProfile
    from plugin.subprofiles import service

    shop_id = make_shop().id
    sub = service.create_subprofile(db.session.get(Shop, shop_id), "5151", "Maya")
    at = datetime(2022, 1, 1, tzinfo=UTC)
    for kind in ("purchase", "view"):  # the purchase first: the erasure's scan meets it first
        db.session.add(Interaction(shop_id=shop_id, shopper_id="5151", subprofile_id=sub.id,
                                   product_external_id="p1", kind=kind, occurred_at=at,
                                   context={}))
    db.session.commit()
    sub_id, paused, go, failures = sub.id, threading.Event(), threading.Event(), []
    deleting: list[threading.Thread] = []

    def pause(conn, cursor, statement, *args) -> None:  # browsing deleted, purchases next
        if threading.current_thread() in deleting and statement.startswith(
                "UPDATE interactions"):
            paused.set()
            go.wait(30)

    def deletion() -> None:
        service.delete_subprofile(db.session.get(Shop, shop_id), "5151", sub_id)

    def erasure() -> None:
        privacy.erase_customer(shop_id, "5151")
        db.session.commit()

    def run(job: Callable[[], None]) -> None:
        _in_own_session(app, job, failures, paused)

    event.listen(db.engine, "before_cursor_execute", pause)
    try:
        deleting.append(threading.Thread(target=run, args=(deletion,)))
        threads = [deleting[0], threading.Thread(target=run, args=(erasure,))]
        threads[0].start()
        assert paused.wait(30)
        threads[1].start()
        assert _waiting_on_a_lock()  # the erasure waits for the deletion's transaction
        go.set()
        for t in threads:
            t.join(60)
    finally:
        event.remove(db.engine, "before_cursor_execute", pause)
    assert failures == []
    db.session.expire_all()
    assert db.session.scalars(sa.select(Interaction.id).filter_by(shop_id=shop_id)).all() == []
    assert db.session.get(SubProfile, sub_id) is None


class _Hold:
    """Where the first job stops (its hook calls this), holding what it did uncommitted,
    until the second waits on a lock or is done."""

    def __init__(self) -> None:
        self.reached, self.go = threading.Event(), threading.Event()
        self.thread: threading.Thread | None = None

    def __call__(self) -> None:
        if threading.current_thread() is self.thread and not self.go.is_set():
            self.reached.set()
            self.go.wait(30)


def _race_held(app, first: Callable[[], None], second: Callable[[], None],
               hold: _Hold) -> list[Exception]:
    """Run ``first`` in a session of its own up to ``hold``, then ``second`` in another;
    ``first`` goes on once ``second`` waits on a lock or has finished (without a shared
    lock it may not wait at all). Returns what either raised."""
    failures: list[Exception] = []

    def run(job: Callable[[], None]) -> None:
        _in_own_session(app, job, failures, hold.reached, commit=True)

    hold.thread = threading.Thread(target=run, args=(first,))
    hold.thread.start()
    assert hold.reached.wait(30)
    later = threading.Thread(target=run, args=(second,))
    later.start()
    deadline = time.monotonic() + 10
    while later.is_alive() and time.monotonic() < deadline:
        if _waiting_on_a_lock(timeout=0.2):
            break
    hold.go.set()
    for t in (hold.thread, later):
        t.join(60)
    return failures


def _on_statement(hold: _Hold, prefix: str, nth: int = 1):
    """An engine hook calling ``hold`` before the first job's ``nth`` statement starting
    with ``prefix``."""
    seen = [0]

    def hook(conn, cursor, statement, *args) -> None:
        if threading.current_thread() is hold.thread and statement.startswith(prefix):
            seen[0] += 1
            if seen[0] == nth:
                hold()
    return hook


def _held_race(app, first, second, hold: _Hold, prefix: str, nth: int = 1) -> list[Exception]:
    from sqlalchemy import event

    hook = _on_statement(hold, prefix, nth)
    event.listen(db.engine, "before_cursor_execute", hook)
    try:
        return _race_held(app, first, second, hold)
    finally:
        event.remove(db.engine, "before_cursor_execute", hook)


def _left_of(shop_id: str, *shopper_ids: str) -> dict[str, list]:
    """What is kept under these shopper ids after the race (nothing, for an erased one)."""
    from plugin.models import AnonymousLink, PromptState, SubProfile

    db.session.expire_all()
    return {
        "events": db.session.scalars(sa.select(Interaction.product_external_id).where(
            Interaction.shop_id == shop_id, Interaction.shopper_id.in_(shopper_ids))).all(),
        "links": db.session.scalars(sa.select(AnonymousLink.anonymous_id).where(
            AnonymousLink.shop_id == shop_id,
            AnonymousLink.customer_id.in_(shopper_ids))).all(),
        "subprofiles": db.session.scalars(sa.select(SubProfile.name).where(
            SubProfile.shop_id == shop_id, SubProfile.owner_id.in_(shopper_ids))).all(),
        "prompt_states": db.session.scalars(sa.select(PromptState.shopper_id).where(
            PromptState.shop_id == shop_id, PromptState.shopper_id.in_(shopper_ids))).all(),
    }


_NOTHING = {"events": [], "links": [], "subprofiles": [], "prompt_states": []}


def _event(shop_id: str, shopper_id: str, product: str, kind: str = "view",
           subprofile_id: int | None = None) -> None:
    from plugin.models.types import utcnow

    db.session.add(Interaction(shop_id=shop_id, shopper_id=shopper_id, kind=kind,
                               subprofile_id=subprofile_id, product_external_id=product,
                               occurred_at=utcnow(), context={}))


def test_a_sign_in_linking_browsing_and_the_customers_erasure_at_once_leave_nothing(app):
    """The sign-in links the browser's id to the customer and moves its anonymous events
    to them. Without the shared lock, an erasure between the two did not see the link
    (not committed) and committed first: the events then moved to the erased customer,
    linked to them for good."""
    from plugin.api import linking
    from plugin.api.identity import ShopperIdentity
    from plugin.models import Shop

    shop_id, anon = make_shop().id, "anon_race0000000000000001"
    _event(shop_id, anon, "p1")
    db.session.commit()

    def sign_in() -> None:
        assert linking.link(db.session.get(Shop, shop_id),
                            ShopperIdentity(anonymous_id=anon, customer_id="5151"))

    def erasure() -> None:
        privacy.erase_customer(shop_id, "5151")

    # the sign-in stops with the link written, before it moves the events
    assert _held_race(app, sign_in, erasure, _Hold(), "UPDATE interactions") == []
    assert _left_of(shop_id, "5151", anon) == _NOTHING


def test_a_merge_on_identify_and_the_customers_erasure_at_once_both_finish(app):
    """On identify the browser's sub-profiles (and their events) move to the customer.
    Without the shared lock, an erasure between the merge's read of them and its writes
    deleted them, and the merge failed on rows gone (the customer's request: a 500)."""
    from plugin.api import linking
    from plugin.api.identity import ShopperIdentity
    from plugin.models import Shop
    from plugin.subprofiles import service

    shop_id, anon = make_shop().id, "anon_race0000000000000002"
    sub = service.create_subprofile(db.session.get(Shop, shop_id), anon, "Maya")
    _event(shop_id, anon, "p1", subprofile_id=sub.id)
    db.session.commit()
    assert linking.link(db.session.get(Shop, shop_id),
                        ShopperIdentity(anonymous_id=anon, customer_id="5151"))

    def merge() -> None:
        assert service.merge_identity(db.session.get(Shop, shop_id), anon, "5151") == 1

    def erasure() -> None:
        privacy.erase_customer(shop_id, "5151")

    # the merge stops having read the browser's sub-profiles, before it moves them
    assert _held_race(app, merge, erasure, _Hold(), "UPDATE interactions") == []
    assert _left_of(shop_id, "5151", anon) == _NOTHING


@pytest.mark.parametrize("first", ["erasure", "apply"])
def test_tagging_pending_purchases_and_an_erasure_at_once_both_finish(app, first):
    """``apply_pending`` tags each shopper's new purchases to the sub-profile their
    answer named, one shopper after another. Without the shared lock: an erasure first
    deleted the answers the tagging had read, which then failed dropping an expired one;
    the tagging first (the worker's pass over the shop) held the customer's purchases
    while the erasure, waiting on them, held those of the customer's linked browser that
    the tagging went on to: a deadlock, and one of the two failed."""
    from datetime import timedelta

    from plugin.models import AnonymousLink, PromptState, Shop
    from plugin.models.types import utcnow
    from plugin.subprofiles import prompt, service

    shop_id, anon, now = make_shop().id, "anon_race0000000000000003", utcnow()
    pending = {"since": (now - timedelta(hours=2)).isoformat(),
               "until": (now - timedelta(minutes=1)).isoformat(), "items": ["p1"]}
    for owner in ("5151", anon):  # the customer's answer first: the pass meets it first
        sub = service.create_subprofile(db.session.get(Shop, shop_id), owner, "Maya")
        db.session.add(PromptState(shop_id=shop_id, shopper_id=owner, never_ask=False,
                                   pending={**pending, "subprofile_id": sub.id}))
        _event(shop_id, owner, "p1", kind="add_to_cart")
    db.session.add(AnonymousLink(shop_id=shop_id, anonymous_id=anon, customer_id="5151",
                                 linked_at=now))
    db.session.commit()

    def tagging() -> None:
        prompt.apply_pending(shop_id, now=now)

    def erasure() -> None:
        privacy.erase_customer(shop_id, "5151")

    if first == "apply":  # stops before tagging the browser's purchases
        failures = _held_race(app, tagging, erasure, _Hold(), "UPDATE interactions", nth=2)
    else:  # stops with everything deleted, not committed
        failures = _held_race(app, erasure, tagging, _Hold(), "INSERT INTO audit_log")
    assert failures == []
    assert _left_of(shop_id, "5151", anon) == _NOTHING


@pytest.mark.parametrize("first", ["erasure", "export"])
def test_a_data_request_and_the_customers_erasure_at_once_list_nothing_erased(app, first):
    """A data request reads what is kept on the customer, then writes the export. Without
    the shared lock: the export first, the erasure looked for the customer's exports
    before the file was written, and the merchant was then offered it, with the erased
    data; the erasure first, the export read what the erasure was deleting (not yet
    committed) and was listed after it."""
    import json

    shop_id = make_shop().id
    _event(shop_id, "5151", "p1")
    db.session.commit()
    hold = _Hold()

    def export() -> None:
        privacy.record_data_request(shop_id, "5151")

    def erasure() -> None:
        privacy.erase_customer(shop_id, "5151")

    with pytest.MonkeyPatch.context() as mp:
        if first == "export":  # stops with the customer's data read, the file not written
            original = privacy.export_customer

            def read_then_hold(*args, **kwargs):
                found = original(*args, **kwargs)
                hold()
                return found
            mp.setattr(privacy, "export_customer", read_then_hold)
            failures = _race_held(app, export, erasure, hold)
        else:  # stops with everything deleted, not committed
            failures = _held_race(app, erasure, export, hold, "INSERT INTO audit_log")
    assert failures == []
    db.session.expire_all()
    listed = [json.loads(privacy.data_request_file(shop_id, r["name"]).read_text())
              for r in privacy.data_requests(shop_id)]
    assert [e["interactions"] for e in listed] == ([[]] if first == "erasure" else [])
