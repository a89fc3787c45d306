"""One active scheduler via a database lease; failover after kill -9; graceful shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from plugin import lease
from plugin.extensions import db
from plugin.jobs import Worker
from plugin.models import JobRun, WebhookDelivery
from plugin.models.types import utcnow
from plugin.webhooks import inbox
from tests.factories import FakeClock, post_webhook, product_body, wait_until

ROOT = Path(__file__).resolve().parents[1]


def test_lease_is_exclusive_until_it_expires(app):
    t0 = utcnow()
    assert lease.acquire("s", "a", 30, now=t0)
    assert not lease.acquire("s", "b", 30, now=t0 + timedelta(seconds=10))
    assert lease.acquire("s", "a", 30, now=t0 + timedelta(seconds=20))  # renewal
    assert not lease.acquire("s", "b", 30, now=t0 + timedelta(seconds=49))
    assert lease.acquire("s", "b", 30, now=t0 + timedelta(seconds=51))  # a stopped renewing
    assert lease.holder_of("s", now=t0 + timedelta(seconds=52)) == "b"
    assert not lease.acquire("s", "a", 30, now=t0 + timedelta(seconds=52))


def test_a_renewal_extends_only_a_live_lease_of_its_holder(app):
    t0 = utcnow()
    assert lease.acquire("s", "a", 30, now=t0)
    assert not lease.renew("s", "b", 30, now=t0 + timedelta(seconds=10))  # not b's
    assert lease.renew("s", "a", 30, now=t0 + timedelta(seconds=20))
    assert lease.holder_of("s", now=t0 + timedelta(seconds=49)) == "a"  # to 50 s
    assert not lease.renew("s", "a", 30, now=t0 + timedelta(seconds=51))  # lapsed: lost
    assert lease.holder_of("s", now=t0 + timedelta(seconds=51)) is None


def test_released_lease_is_free_at_once(app):
    assert lease.acquire("s", "a", 30)
    lease.release("s", "a")
    assert lease.acquire("s", "b", 30)


def test_only_the_leader_resumes_its_scheduler(app):
    first, second = Worker(app, name="w1"), Worker(app, name="w2")
    for w in (first, second):
        w.scheduler.start(paused=True)
    try:
        first.tick()
        second.tick()
        assert (first.leader, second.leader) == (True, False)
    finally:
        for w in (first, second):
            w.scheduler.shutdown(wait=True)


def test_graceful_stop_releases_unstarted_claims(app, client, shop, shop_secret):
    for i in range(3):
        post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(f"p{i}"))
    ids = inbox.claim_batch()
    seen = []

    def handler(row):
        seen.append(row.id)

    stop_after_first = lambda: len(seen) >= 1  # noqa: E731  (SIGTERM arrives mid-batch)
    result = inbox.process_claimed(ids, handler, should_stop=stop_after_first)
    assert result.done == 1
    rows = {r.id: r for r in db.session.scalars(sa.select(WebhookDelivery))}
    assert rows[seen[0]].status == "done"
    released = [r for r in rows.values() if r.id != seen[0]]
    assert all(r.status == "pending" and r.attempts == 0 for r in released)
    assert inbox.process_inbox().done == 2


def test_a_delivery_that_erases_its_own_row_ends_done(app, client, shop, shop_secret):
    """shop/redact: erase_shop deletes every row of the shop, the delivery's own included.
    Marking that row done raised StaleDataError and rolled the erasure back, every attempt."""
    from plugin import shops
    from plugin.models import Product, Shop

    shop_id = shop.id
    post_webhook(client, shop.id, shop_secret, "products/upsert", product_body())
    assert inbox.process_inbox().done == 1
    for pid in ("p2", "p3"):
        post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(pid))
    ids = inbox.claim_batch()
    # the rest of the batch went with the shop: skipped, not failed
    result = inbox.process_claimed(ids, lambda row: shops.erase_shop(row.shop_id))
    assert (result.done, result.failed, result.dead) == (1, 0, 0)
    db.session.expire_all()
    assert db.session.get(Shop, shop_id) is None  # the erasure committed
    for model in (Product, WebhookDelivery):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(model)) == 0


def _spawn_worker(env: dict[str, str], name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "plugin.cli", "worker"], cwd=ROOT,
                            env={**env, "SHOPKEEPER_WORKER_NAME": name},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _lease_expiry(app):
    """The scheduler lease's expiry, read in a session of its own (the caller's may hold
    an older snapshot)."""
    from plugin.jobs import LEASE_NAME
    from plugin.models import SchedulerLease

    with app.app_context():
        try:
            return db.session.scalar(sa.select(SchedulerLease.expires_at)
                                     .where(SchedulerLease.name == LEASE_NAME))
        finally:
            db.session.remove()


def _renewed_at(app, at, ttl: float) -> bool:
    """Whether the worker's renewing thread renews the lease at ``at`` on the fake clock
    (a bounded wait for its next beat: the lease itself cannot lapse meanwhile)."""
    return wait_until(lambda: _lease_expiry(app) >= at + timedelta(seconds=ttl), 10)


def _holder_at(app, at):
    from plugin.jobs import LEASE_NAME

    with app.app_context():
        try:
            return lease.holder_of(LEASE_NAME, now=at)
        finally:
            db.session.remove()


def _acquire_at(app, holder: str, ttl: float, at) -> bool:
    """``holder`` (a standby) tries for the scheduler lease at ``at``."""
    from plugin.jobs import LEASE_NAME

    with app.app_context():
        try:
            return lease.acquire(LEASE_NAME, holder, ttl, now=at)
        finally:
            db.session.remove()


@pytest.mark.slow
def test_standby_takes_over_after_kill_9(app, database_url, tmp_path):
    """Two real worker processes; SIGKILL the active one; the standby runs the next job."""
    from plugin import migrate

    if database_url.startswith("postgresql"):
        url = database_url
    else:
        url = f"sqlite:///{tmp_path / 'workers.db'}"
        app.config["SQLALCHEMY_DATABASE_URI"] = url
    env = {**os.environ, "SHOPKEEPER_SQLALCHEMY_DATABASE_URI": url,
           "SHOPKEEPER_INSTANCE_DIR": str(tmp_path), "SHOPKEEPER_SCHEDULER_LEASE_SECONDS": "3",
           "SHOPKEEPER_WORKER_POLL_SECONDS": "0.5", "SHOPKEEPER_LOG_LEVEL": "WARNING",
           # the worker refuses the development keys, like `shopkeeper serve`
           "SHOPKEEPER_SECRET_KEY": "k" * 48, "SHOPKEEPER_CREDENTIALS_KEY": "A" * 43 + "=",
           "SHOPKEEPER_PUBLIC_URL": "https://recs.example.com"}
    engine = sa.create_engine(url)
    if not database_url.startswith("postgresql"):
        from plugin import create_app

        with create_app({"SQLALCHEMY_DATABASE_URI": url,
                         "INSTANCE_DIR": str(tmp_path)}).app_context():
            migrate.upgrade()

    def holder():
        with engine.connect() as c:
            return c.execute(sa.text("SELECT holder FROM scheduler_leases WHERE name='scheduler' "
                                     "AND expires_at > :now"), {"now": utcnow().replace(
                                         tzinfo=None)}).scalar()

    def heartbeats_by(worker):
        with engine.connect() as c:
            return c.execute(sa.text("SELECT count(*) FROM job_runs WHERE job='heartbeat' "
                                     "AND worker LIKE :w"), {"w": f"%{worker}%"}).scalar()

    a = _spawn_worker(env, "worker-a")
    b = None
    try:
        assert wait_until(lambda: holder() is not None, 90), "no worker became leader"
        b = _spawn_worker(env, "worker-b")
        time.sleep(2)
        first = holder()
        active = a if "worker-a" in first else b
        standby_name = "worker-b" if active is a else "worker-a"
        assert wait_until(lambda: heartbeats_by(first) >= 1, 60), "leader ran no job"
        assert heartbeats_by(standby_name) == 0  # the standby runs no scheduled job
        active.send_signal(signal.SIGKILL)
        active.wait(5)
        assert wait_until(lambda: holder() and standby_name in holder(), 60), "no failover"
        assert wait_until(lambda: heartbeats_by(standby_name) >= 1, 60), "standby ran no job"
        survivor = b if active is a else a
        survivor.send_signal(signal.SIGTERM)  # graceful: gives the lease up at once
        assert survivor.wait(60) == 0
        assert holder() is None
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(10)
        engine.dispose()
    assert all(p.returncode is not None for p in (a, b))


def test_every_scheduled_job_runs_and_is_recorded(app):
    """Each leader job runs once against an empty shop without failing."""
    from plugin.jobs import SCHEDULED_JOBS, run_recorded
    from tests.factories import make_shop

    make_shop()
    for name, (fn, _trigger) in SCHEDULED_JOBS.items():
        run_recorded(app, name, fn)
    runs = {r.job: r for r in db.session.scalars(sa.select(JobRun))}
    assert set(runs) == set(SCHEDULED_JOBS)
    failed = {name: r.error for name, r in runs.items() if r.status != "ok"}
    assert failed == {}


def test_retention_purge_drops_old_events_but_keeps_purchases(app):
    from plugin.jobs import purge_expired_events
    from plugin.models import Impression, Interaction
    from tests.factories import make_shop

    shop = make_shop()
    shop.settings = {"retention_days": 30}
    old, new = utcnow() - timedelta(days=40), utcnow() - timedelta(days=5)
    for kind, at in (("view", old), ("view", new), ("purchase", old)):
        db.session.add(Interaction(shop_id=shop.id, shopper_id="c1", kind=kind,
                                   product_external_id="p1", occurred_at=at, context={}))
    db.session.add(Impression(shop_id=shop.id, rec_id="r-old", placement="for_you", items=[],
                              sources=[], created_at=old))
    db.session.commit()
    assert purge_expired_events() == 2
    kinds = sorted(i.kind for i in db.session.scalars(sa.select(Interaction)))
    assert kinds == ["purchase", "view"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Impression)) == 0


def test_retention_purge_drops_payloads_of_deliveries_applied_before_the_fix(app):
    """Rows applied before payloads were dropped on success still held emails/signatures."""
    from plugin.jobs import purge_expired_events
    from tests.factories import make_shop

    shop = make_shop()
    body = b'{"id": "c1", "email": "ada@example.com"}'
    for delivery_id, status in (("applied", "done"), ("stuck", "dead")):
        db.session.add(WebhookDelivery(
            shop_id=shop.id, connector="generic", topic="customers/upsert",
            delivery_id=delivery_id, headers={"X-Shopkeeper-Signature": "v1=..."},
            body=body, status=status, processed_at=utcnow() - timedelta(days=2)))
    db.session.commit()
    assert purge_expired_events() == 1
    rows = {r.delivery_id: r for r in db.session.scalars(sa.select(WebhookDelivery))}
    assert (rows["applied"].status, rows["applied"].body, rows["applied"].headers) == (
        "done", b"", {})
    assert rows["stuck"].body == body  # kept for the admin's retry


def test_a_dead_delivery_does_not_keep_its_payload_past_the_retention_period(app):
    """Nobody retried it in time: the emails in it must not outlive the shop's period."""
    from plugin.privacy import purge_expired
    from tests.factories import make_shop

    shop = make_shop()
    body = b'{"id": "c1", "email": "ada@example.com"}'
    now = utcnow()
    for delivery_id, age in (("old", 40), ("recent", 5)):
        db.session.add(WebhookDelivery(
            shop_id=shop.id, connector="generic", topic="customers/upsert",
            delivery_id=delivery_id, headers={"X-Shopkeeper-Signature": "v2=..."}, body=body,
            status="dead", received_at=now - timedelta(days=age)))
    db.session.commit()
    purge_expired(shop.id, retention_days=30, now=now)
    db.session.commit()
    rows = {r.delivery_id: r for r in db.session.scalars(sa.select(WebhookDelivery))}
    assert (rows["old"].status, rows["old"].body, rows["old"].headers) == ("done", b"", {})
    assert "retention" in rows["old"].last_error
    assert (rows["recent"].status, rows["recent"].body) == ("dead", body)  # still retryable


def test_a_worker_that_lost_the_lease_runs_no_scheduled_job(app):
    from plugin.jobs import LEASE_NAME, run_recorded

    calls = []
    assert lease.acquire(LEASE_NAME, "new-leader", 30)
    run_recorded(app, "heartbeat", lambda: calls.append("old"), holder="old-leader")
    run_recorded(app, "heartbeat", lambda: calls.append("new"), holder="new-leader")
    assert calls == ["new"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(JobRun)) == 1


def test_one_tick_processes_one_batch_so_the_lease_is_renewed_often(app, client, shop,
                                                                    shop_secret):
    app.config["INBOX_BATCH_SIZE"] = 2
    for i in range(5):
        post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(f"p{i}"))
    worker = Worker(app, name="w1")
    worker.scheduler.start(paused=True)
    try:
        assert worker.tick().done == 2  # one batch per turn, then the lease again
        renewed = db.session.scalar(sa.select(sa.text("expires_at FROM scheduler_leases")))
        assert worker.tick().done == 2
        assert db.session.scalar(sa.select(sa.text("expires_at FROM scheduler_leases"))) \
            >= renewed
    finally:
        worker.scheduler.shutdown(wait=True)


def test_schedule_state_survives_a_new_leader(app):
    """A job that ran recently is not run again by a worker that just took over."""
    from plugin.jobs import job_is_due, run_if_due

    calls = []
    run_if_due(app, "daily", lambda: calls.append(1), 86400)
    run_if_due(app, "daily", lambda: calls.append(2), 86400)  # e.g. after a failover
    assert calls == [1]
    assert job_is_due("daily", 86400, now=utcnow() + timedelta(days=1))
    assert not job_is_due("daily", 86400, now=utcnow() + timedelta(hours=23))


def test_a_worker_whose_clock_runs_fast_does_not_rerun_a_job_that_just_ran(app, monkeypatch):
    """Run times were stamped with the worker's clock and judged against it: a worker two
    hours fast took an hourly job another worker had just run for overdue, and a slow
    one's runs looked like the future. Both now use the database's clock."""
    from plugin import jobs

    calls = []
    jobs.run_if_due(app, "hourly", lambda: calls.append("leader"), 3600)
    monkeypatch.setattr(jobs, "utcnow", lambda: utcnow() + timedelta(hours=2))
    jobs.run_if_due(app, "hourly", lambda: calls.append("fast clock"), 3600)
    assert calls == ["leader"]
    run = db.session.scalar(sa.select(JobRun).where(JobRun.job == "hourly"))
    assert abs(run.started_at - utcnow()) < timedelta(minutes=1)
    assert timedelta(0) <= run.finished_at - run.started_at < timedelta(minutes=1)


def test_retention_purge_drops_old_carts_and_nudges_and_unlinks_old_quotes(app):
    from decimal import Decimal

    from plugin.jobs import purge_expired_events
    from plugin.models import Cart, Nudge, Offer
    from plugin.offers.privacy import ERASED
    from tests.factories import make_shop

    shop = make_shop()
    shop.settings = {"retention_days": 30}
    old, new = utcnow() - timedelta(days=40), utcnow() - timedelta(days=5)
    for i, at in enumerate((old, new)):
        db.session.add(Cart(shop_id=shop.id, external_id=f"cart{i}", shopper_id="c1",
                            currency="GBP", lines=[], source_updated_at=at))
        db.session.add(Nudge(shop_id=shop.id, shopper_id="c1", stage="idle_cart",
                             delivery_id=f"ndg_{i}", status="sent", created_at=at))
        db.session.add(Offer(public_id=f"of_{i}", shop_id=shop.id, shopper_id="c1",
                             cart_hash="h", stage="idle_cart", status="none",
                             currency="GBP", cart_value=Decimal("50"),
                             features={"orders_before": 3}, created_at=at))
    db.session.commit()
    assert purge_expired_events() == 3
    assert [c.external_id for c in db.session.scalars(sa.select(Cart))] == ["cart1"]
    assert [n.delivery_id for n in db.session.scalars(sa.select(Nudge))] == ["ndg_1"]
    offers = {o.public_id: o for o in db.session.scalars(sa.select(Offer))}
    # unlinked; its features, with no id, describe no one and keep the uplift model fed
    assert (offers["of_0"].shopper_id, offers["of_0"].features) == (ERASED, {"orders_before": 3})
    assert (offers["of_1"].shopper_id, offers["of_1"].features) == ("c1", {"orders_before": 3})
    assert purge_expired_events() == 0  # an unlinked quote is not counted again


def test_old_job_runs_are_purged_but_each_jobs_last_success_is_kept(app):
    """job_runs gained a row every 5 s (heartbeat) and was never purged: the due check and
    every /metrics scrape read all of it (76 ms per heartbeat check after a month on
    PostgreSQL, growing without bound)."""
    from plugin.jobs import SCHEDULED_JOBS, job_is_due, purge_job_runs

    assert "job_runs_purge" in SCHEDULED_JOBS
    now = utcnow()
    old = now - timedelta(days=30)
    for minutes in range(3):  # a month-old heartbeat history
        t = old + timedelta(minutes=minutes)
        db.session.add(JobRun(job="heartbeat", worker="w", started_at=t, finished_at=t,
                              status="ok"))
    db.session.add(JobRun(job="retention_purge", worker="w", started_at=old, finished_at=old,
                          status="ok"))  # its only success: must stay
    db.session.add(JobRun(job="retention_purge", worker="w", started_at=old, finished_at=old,
                          status="failed", error="boom"))
    db.session.add(JobRun(job="heartbeat", worker="w", started_at=now, finished_at=now,
                          status="ok"))
    db.session.commit()
    assert purge_job_runs(now=now) == 4  # 3 old heartbeats, the old failure
    kept = sorted((r.job, r.status, r.finished_at == now)
                  for r in db.session.scalars(sa.select(JobRun)))
    assert kept == [("heartbeat", "ok", True), ("retention_purge", "ok", False)]
    assert not job_is_due("heartbeat", 5, now=now)


def test_the_leader_keeps_its_lease_through_a_batch_longer_than_the_lease(
        app, client, shop, shop_secret, monkeypatch):
    """The lease was renewed only between batches: a batch of slow rows (platform
    fetch-backs) outlasted it, a standby took over, and the jobs already running here ran
    beside the new leader's."""
    from plugin.ingestion import apply as apply_mod

    app.config.update(SCHEDULER_LEASE_SECONDS=3, WORKER_POLL_SECONDS=0.05,
                      INBOX_BATCH_SIZE=4)
    for i in range(4):
        post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(f"p{i}"))
    clock, seen = FakeClock(), []

    def slow_apply(row):  # 1 s a row on the lease's clock: 4 s for one batch, lease 3 s
        at = clock.advance(1.0)
        renewed = _renewed_at(app, at, 3)
        seen.append((renewed, _holder_at(app, at), _acquire_at(app, "standby", 3, at)))

    monkeypatch.setattr(apply_mod, "apply_delivery", slow_apply)
    worker = Worker(app, name="w1", clock=clock)
    worker.scheduler.start(paused=True)
    try:
        assert worker.tick().done == 4
    finally:
        worker.scheduler.shutdown(wait=True)
    assert seen == [(True, "w1", False)] * 4
    assert worker.leader


def test_a_failing_job_is_retried_at_a_quarter_of_its_interval_not_every_check(app):
    """A job that fails (the daily Saleor webhook refresh when one shop's Saleor is down
    or removed the app) was due again at the next 60 s check, since only successes
    counted: the whole fleet's daily job then ran every minute, forever."""
    from plugin.jobs import job_is_due, run_if_due

    def boom():
        raise RuntimeError("one Saleor shop answered 401")

    calls = []
    run_if_due(app, "daily", lambda: calls.append(1) or boom(), 86400)
    run_if_due(app, "daily", lambda: calls.append(2), 86400)  # the next check, a minute on
    assert calls == [1]
    assert not job_is_due("daily", 86400, now=utcnow() + timedelta(hours=5))
    assert job_is_due("daily", 86400, now=utcnow() + timedelta(hours=6))
    run_if_due(app, "never-ran", lambda: calls.append(3), 86400)  # no history: due now
    assert calls == [1, 3]


def test_a_killed_jobs_run_is_recorded_as_abandoned_at_the_jobs_next_check(app):
    """A run whose worker was killed mid-job (kill -9, OOM) stayed "running" forever."""
    from plugin.db_clock import db_utcnow
    from plugin.jobs import RUN_ABANDONED_SECONDS, run_if_due

    started = utcnow() - timedelta(hours=1)
    runs = {
        "dead": JobRun(job="offers", worker="w-gone", started_at=started, status="running",
                       heartbeat_at=db_utcnow(-RUN_ABANDONED_SECONDS - 60)),
        "alive": JobRun(job="offers", worker="w-busy", started_at=started, status="running",
                        heartbeat_at=db_utcnow(-5)),  # a long run still beating elsewhere
        "older": JobRun(job="offers", worker="w-old", started_at=started, status="running"),
        "other": JobRun(job="heartbeat", worker="w-gone", started_at=started, status="running",
                        heartbeat_at=db_utcnow(-RUN_ABANDONED_SECONDS - 60)),
    }
    db.session.add_all(runs.values())
    db.session.commit()
    ids = {key: run.id for key, run in runs.items()}
    calls = []
    run_if_due(app, "offers", lambda: calls.append(1), 600)
    db.session.expire_all()
    got = {key: db.session.get(JobRun, i) for key, i in ids.items()}
    assert {key: r.status for key, r in got.items()} == {
        "dead": "abandoned", "alive": "running", "older": "abandoned", "other": "running"}
    assert got["dead"].finished_at == got["dead"].heartbeat_at  # when it was last alive
    assert got["older"].finished_at == started  # from before heartbeats: its start
    assert "no heartbeat" in got["dead"].error
    assert calls == [1]  # and the job itself still ran, recorded as usual
    assert db.session.scalar(sa.select(JobRun.status).where(JobRun.job == "offers")
                             .order_by(JobRun.id.desc()).limit(1)) == "ok"


def test_a_job_whose_worker_died_backs_off_like_a_failure(app):
    """A daily job that kills its worker (out of memory) was due again at the next check
    of the worker that took over, and killed that one too: a crash loop over the fleet.
    Its abandoned run now counts as a failure, for the retry back-off and the metric."""
    from plugin.db_clock import db_utcnow
    from plugin.jobs import RUN_ABANDONED_SECONDS, job_is_due, run_if_due
    from plugin.metrics import DatabaseCollector

    db.session.add(JobRun(job="daily", worker="w-oom", started_at=utcnow() - timedelta(
        minutes=20), status="running", heartbeat_at=db_utcnow(-RUN_ABANDONED_SECONDS - 60)))
    db.session.commit()
    calls = []
    run_if_due(app, "daily", lambda: calls.append(1), 86400)  # the takeover's first check
    assert calls == []
    assert db.session.scalar(sa.select(JobRun.status).where(JobRun.job == "daily")) \
        == "abandoned"
    assert not job_is_due("daily", 86400, now=utcnow() + timedelta(hours=5))
    assert job_is_due("daily", 86400, now=utcnow() + timedelta(hours=6))
    with app.app_context():
        families = {f.name: f for f in DatabaseCollector(app).collect()}
    samples = {s.labels.get("job"): s.value
               for s in families["shopkeeper_job_failures_24h"].samples}
    assert samples.get("daily") == 1


def test_a_long_jobs_heartbeat_keeps_it_from_being_taken_for_abandoned(app, monkeypatch):
    from plugin import jobs

    monkeypatch.setattr(jobs, "RUN_HEARTBEAT_SECONDS", 0.2)
    monkeypatch.setattr(jobs, "RUN_ABANDONED_SECONDS", 1.5)  # wide: a loaded CI machine
    swept = []

    def long_job():
        time.sleep(3.2)  # outlives the threshold more than twice
        swept.append(jobs.mark_abandoned_runs("long"))  # the next check, meanwhile

    jobs.run_recorded(app, "long", long_job)
    assert swept == [0]
    run = db.session.scalar(sa.select(JobRun).where(JobRun.job == "long"))
    assert run.status == "ok" and run.heartbeat_at > run.started_at + timedelta(seconds=1)


def test_sigterm_during_a_job_keeps_the_lease_until_the_job_has_finished(app, monkeypatch):
    """On SIGTERM the worker waits for the running job, but stopped renewing the lease
    while it waited: a job longer than the lease then ran a second time in the standby
    that took over."""
    import threading

    from plugin import jobs

    app.config.update(SCHEDULER_LEASE_SECONDS=3, WORKER_POLL_SECONDS=0.05)
    started, release = threading.Event(), threading.Event()

    def slow_job():
        started.set()
        release.wait(30)

    monkeypatch.setattr(jobs, "SCHEDULED_JOBS", {"slow": (slow_job, 1)})
    clock = FakeClock()
    worker = Worker(app, name="w1", clock=clock)
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    try:
        assert started.wait(15), "the job never started"
        worker.stop()  # SIGTERM while the job runs
        seen = []
        for _ in range(6):  # 6 s on the lease's clock: twice the lease
            at = clock.advance(1.0)
            seen.append((_renewed_at(app, at, 3), _holder_at(app, at)))
        assert seen == [(True, "w1")] * 6
    finally:
        release.set()
        runner.join(15)
    assert not runner.is_alive()
    assert _holder_at(app, clock()) is None  # released once the job finished


def test_sigterm_in_the_middle_of_a_batch_hands_the_rest_back(app, client, shop, shop_secret,
                                                               monkeypatch):
    """The worker's per-row hook renews the lease and must still say 'stop' once SIGTERM
    came: the row in hand is finished, the rest of the batch goes back to pending with its
    attempt uncounted, instead of the stopping worker working through the whole batch."""
    from plugin.ingestion import apply as apply_mod

    app.config.update(INBOX_BATCH_SIZE=4)
    for i in range(4):
        post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(f"p{i}"))
    worker = Worker(app, name="w1")
    applied = []

    def apply_then_sigterm(row):
        applied.append(row.id)
        worker.stop()  # SIGTERM arrives while the first row is being applied

    monkeypatch.setattr(apply_mod, "apply_delivery", apply_then_sigterm)
    worker.scheduler.start(paused=True)
    try:
        assert worker.tick().done == 1
    finally:
        worker.scheduler.shutdown(wait=True)
    assert len(applied) == 1
    db.session.expire_all()
    rows = db.session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [(r.status, r.attempts) for r in rows] == [("done", 1)] + [("pending", 0)] * 3


@pytest.mark.parametrize("fails_at", ["start", "end"])
def test_a_run_the_database_cannot_record_does_not_raise(app, monkeypatch, caplog, fails_at):
    """run_recorded is the scheduler's "never raising" entry point, but the database gone
    as it recorded a run's start or end raised out of it (the job's end then stays
    "running" until the abandoned-run sweep)."""
    from plugin import jobs

    real = jobs.db_utcnow
    calls = []

    def clock(*args):
        calls.append(1)  # the start reads it twice, the end once
        if (fails_at == "start") == (len(calls) <= 2):
            raise sa.exc.OperationalError("SELECT now()", {}, Exception("connection refused"))
        return real(*args)

    monkeypatch.setattr(jobs, "db_utcnow", clock)
    ran = []
    jobs.run_recorded(app, "flaky_db", lambda: ran.append(1))
    assert ran == ([] if fails_at == "start" else [1])
    assert [r.message for r in caplog.records if r.levelname == "ERROR"] == [
        "jobs.record_failed"]
    monkeypatch.undo()
    runs = db.session.scalars(sa.select(JobRun).where(JobRun.job == "flaky_db")).all()
    assert [r.status for r in runs] == ([] if fails_at == "start" else ["running"])


def test_a_database_outage_logs_one_traceback_then_a_line_per_poll_then_recovery(
        app, monkeypatch, caplog):
    """Every poll of a long outage logged a whole traceback: the first failure keeps it,
    the next ones are one line with their count, and the recovery says after how long."""
    import logging
    import threading

    from plugin.webhooks.inbox import BatchResult

    app.config["WORKER_POLL_SECONDS"] = 0.01
    worker = Worker(app, name="w1")
    ticks = []

    def tick():
        ticks.append(1)
        if len(ticks) <= 3:
            raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
        if len(ticks) == 5:
            worker.stop()
        return BatchResult()

    monkeypatch.setattr(worker, "tick", tick)
    caplog.set_level(logging.INFO, logger="shopkeeper.jobs")
    thread = threading.Thread(target=worker.run)  # not the main thread: no signal handlers
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    logged = [(r.message, r.exc_info is not None, getattr(r, "failures", None))
              for r in caplog.records if r.message.startswith(("worker.tick", "worker.rec"))]
    assert logged == [("worker.tick_failed", True, None),
                      ("worker.tick_still_failing", False, 2),
                      ("worker.tick_still_failing", False, 3),
                      ("worker.recovered", False, 3)]


def test_the_leader_keeps_its_lease_through_one_row_longer_than_the_lease(
        app, client, shop, shop_secret, monkeypatch):
    """The lease was renewed only between rows: one row slower than the lease (a platform
    fetch with its retries takes minutes) let it lapse, and a standby took leadership over
    while the leader's jobs still ran."""
    from plugin.ingestion import apply as apply_mod

    app.config.update(SCHEDULER_LEASE_SECONDS=2, WORKER_POLL_SECONDS=0.05)
    post_webhook(client, shop.id, shop_secret, "products/upsert", product_body("p1"))
    clock, renewed, standby_took_it = FakeClock(), [], []

    def slow_apply(row):  # one row of 3.5 s on the lease's clock, lease 2 s
        for _ in range(7):
            renewed.append(_renewed_at(app, clock.advance(0.5), 2))
        standby_took_it.append(_acquire_at(app, "standby", 2, clock()))  # as the row ends

    monkeypatch.setattr(apply_mod, "apply_delivery", slow_apply)
    worker = Worker(app, name="w1", clock=clock)
    worker.scheduler.start(paused=True)
    try:
        assert worker.tick().done == 1
    finally:
        worker.scheduler.shutdown(wait=True)
    assert renewed == [True] * 7 and standby_took_it == [False]
    assert _holder_at(app, clock()) == "w1" and worker.leader


def test_a_leader_that_lost_the_lease_mid_row_does_not_renew_it_over_the_new_one(
        app, client, shop, shop_secret, monkeypatch):
    """Renewing from a thread must stop once the lease is lost (it lapsed, the database
    was slow, and a standby took it): the old leader pauses its scheduler instead of
    holding the lease over the new leader's."""
    from apscheduler.schedulers.base import STATE_PAUSED

    from plugin.ingestion import apply as apply_mod

    app.config.update(SCHEDULER_LEASE_SECONDS=2, WORKER_POLL_SECONDS=0.05)
    clock, holders, noticed = FakeClock(), [], []

    def slow_apply(row):
        assert _acquire_at(app, "standby", 2, clock.advance(3))  # the lease lapsed
        noticed.append(wait_until(lambda: not worker.leader, 10))  # the renewing thread's beat
        for _ in range(4):  # the standby renews it; the old leader must not
            at = clock.advance(1)
            holders.append(_holder_at(app, at))
            assert _acquire_at(app, "standby", 2, at)

    monkeypatch.setattr(apply_mod, "apply_delivery", slow_apply)
    worker = Worker(app, name="w1", clock=clock)
    worker.scheduler.start(paused=True)
    try:
        worker.tick()  # the leader, with nothing to do yet
        assert worker.leader and worker.scheduler.state != STATE_PAUSED
        post_webhook(client, shop.id, shop_secret, "products/upsert", product_body("p1"))
        assert worker.tick().done == 1
        assert (worker.leader, worker.scheduler.state) == (False, STATE_PAUSED)
    finally:
        worker.scheduler.shutdown(wait=True)
    assert noticed == [True]
    assert holders == ["standby"] * 4
    assert _holder_at(app, clock()) == "standby"


@pytest.mark.parametrize("clock", ["db_utcnow", "db_now"])  # the sweep, the due check
def test_a_database_outage_in_a_jobs_check_logs_like_the_worker_and_does_not_raise(
        app, monkeypatch, caplog, clock):
    """run_if_due swept abandoned runs and checked the schedule outside run_recorded's
    protection: an outage raised into APScheduler, which logged a traceback every minute
    for every job. It logs like the worker's polls now, and the job runs once it is due."""
    import logging

    from plugin import jobs

    monkeypatch.setattr(jobs, "_CHECK_FAILURES", {}, raising=False)  # fresh streaks
    assert lease.acquire(jobs.LEASE_NAME, "w1", 60)
    real, checks = getattr(jobs, clock), []

    def outage(*args):
        if len(checks) <= 3:
            raise sa.exc.OperationalError("SELECT now()", {}, Exception("connection refused"))
        return real(*args)

    monkeypatch.setattr(jobs, clock, outage)
    caplog.set_level(logging.INFO, logger="shopkeeper.jobs")
    ran = []
    for _ in range(5):
        checks.append(1)
        jobs.run_if_due(app, "hourly", lambda: ran.append(1), 3600, "w1")
    assert ran == [1]  # at the first check the database answered
    logged = [(r.message, r.exc_info is not None, getattr(r, "failures", None))
              for r in caplog.records if r.message.startswith("jobs.check")]
    assert logged == [("jobs.check_failed", True, None),
                      ("jobs.check_still_failing", False, 2),
                      ("jobs.check_still_failing", False, 3),
                      ("jobs.check_recovered", False, 3)]
    assert {getattr(r, "job", None) for r in caplog.records
            if r.message.startswith("jobs.check")} == {"hourly"}


def test_two_workers_of_one_process_do_not_take_each_others_claims(
        app, client, shop, shop_secret, monkeypatch):
    """Claims were made in the process's name (host:pid), not the worker's: with two
    workers in one process (the demo's thread and a CLI worker), a row the second took
    over from the first (its claim lapsed) still looked like the first's own, and the
    first applied it too while the second was at it."""
    import threading

    from plugin.ingestion import apply as apply_mod

    app.config.update(INBOX_BATCH_SIZE=2)
    for i in range(2):
        post_webhook(client, shop.id, shop_secret, "products/upsert", product_body(f"p{i}"))
    first, second = Worker(app, name="w1"), Worker(app, name="w2")
    applied, second_at_it, release = [], threading.Event(), threading.Event()
    results = []
    loop = threading.Thread(target=lambda: results.append(second.tick()), name="w2-loop")

    def apply(row):
        if threading.current_thread() is loop:  # the second worker, still at the row
            applied.append(("w2", row.id))
            second_at_it.set()
            release.wait(15)
            return
        applied.append(("w1", row.id))
        if len(applied) == 1:  # slow: its claim on the next row lapses, and the other
            with app.app_context():  # worker takes that row over
                db.session.execute(sa.update(WebhookDelivery).where(
                    WebhookDelivery.id != row.id).values(claimed_at=utcnow() - timedelta(
                        seconds=app.config["INBOX_CLAIM_TIMEOUT_SECONDS"] + 1)))
                db.session.commit()
                db.session.remove()
            loop.start()
            assert second_at_it.wait(15)

    monkeypatch.setattr(apply_mod, "apply_delivery", apply)
    for w in (first, second):
        w.scheduler.start(paused=True)
    try:
        assert first.tick().done == 1  # the row taken over is the other's now
    finally:
        release.set()
        loop.join(15)
        for w in (first, second):
            w.scheduler.shutdown(wait=True)
    db.session.expire_all()
    rows = db.session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert applied == [("w1", rows[0].id), ("w2", rows[1].id)] and results[0].done == 1
    assert [(r.status, r.attempts, r.claimed_by) for r in rows] == [
        ("done", 1, "w1"), ("done", 1, "w2")]


def test_a_job_run_records_the_lease_holder_that_ran_it(app):
    """``JobRun.worker`` was the process name (host:pid), which the lease table never
    holds for a worker named otherwise (the demo's ``host:pid:demo``, a test's): an
    operator could not tell which holder ran what."""
    from plugin.jobs import LEASE_NAME

    worker = Worker(app, name="shop-7:123:demo")
    worker.scheduler.start(paused=True)
    try:
        worker.tick()
        job = worker.scheduler.get_job("heartbeat")
        job.func(*job.args)  # as APScheduler runs it
    finally:
        worker.scheduler.shutdown(wait=True)
    run = db.session.scalar(sa.select(JobRun).where(JobRun.job == "heartbeat"))
    assert run.status == "ok"
    assert run.worker == lease.holder_of(LEASE_NAME) == "shop-7:123:demo"


@pytest.mark.parametrize("lost", ["lapsed", "taken"])
def test_a_job_running_when_its_worker_loses_the_lease_stops_and_the_new_leader_runs_it(
        app, shop, monkeypatch, caplog, lease_takeover, lost):
    """The lease was checked only when a job started: one still running when its worker
    lost the lease ran on beside the new leader's run of the same job. It now stops at its
    next unit of work, committing nothing more, recorded as stopped (not failed); the new
    leader runs it. "lapsed": the old leader's renewal finds it lapsed (nobody has it yet:
    the lease row alone cannot tell); "taken": the new leader took it before the old one
    renewed (only the lease row tells)."""
    from apscheduler.schedulers.base import STATE_PAUSED

    from plugin import jobs
    from plugin.leadership import checkpoint
    from plugin.metrics import REGISTRY
    from plugin.models import AuditLog
    from plugin.shops import audit

    def lose_the_lease():  # as the old leader's first two units are committed
        if lost == "lapsed":
            two.stall()
            with app.app_context():
                assert not first._keep_lease()  # its renewing thread's next beat
                db.session.remove()
        else:
            two.take_over()

    def units():  # three units of work, each committed
        for n in range(3):
            checkpoint()
            audit(shop.id, "test.unit", unit=n, by=two.running[-1])
            db.session.commit()
            if two.running[-1] == "w1" and n == 1:
                lose_the_lease()

    monkeypatch.setattr(jobs, "SCHEDULED_JOBS", {"units": (units, 600)})
    two = lease_takeover()  # every lease read on its clock, hours off the real one
    first, second = two.first, two.second
    first.tick()
    second.tick()
    assert (first.leader, second.leader) == (True, False)
    two.run(first, "units")
    if lost == "lapsed":
        assert (first.leader, first.scheduler.state) == (False, STATE_PAUSED)
        second.tick()
    assert second.leader
    two.run(second, "units")
    done = [(a.detail["by"], a.detail["unit"]) for a in db.session.scalars(
        sa.select(AuditLog).where(AuditLog.action == "test.unit").order_by(AuditLog.id))]
    assert done == [("w1", 0), ("w1", 1), ("w2", 0), ("w2", 1), ("w2", 2)]
    runs = [(r.worker, r.status, r.error) for r in db.session.scalars(
        sa.select(JobRun).where(JobRun.job == "units").order_by(JobRun.id))]
    assert runs == [("w1", "lease_lost", "w1 lost the scheduler lease; stopped between "
                     "units of work"), ("w2", "ok", None)]
    assert [r.message for r in caplog.records if r.message.startswith("jobs.")] \
        == ["jobs.stopped_lease_lost"]  # a warning, no traceback of a failure
    assert not REGISTRY.get_sample_value("shopkeeper_job_failures_total", {"job": "units"})


@pytest.mark.parametrize("job", ["sync_all_shops", "saleor_webhooks", "subprofile_answers",
                                 "retention_purge", "offers", "retrain_due_shops",
                                 "shopify_token_migration", "shopify_webhooks"])
def test_each_job_over_shops_stops_between_shops_once_the_lease_is_lost(app, job):
    """Each job that works shop by shop checks the lease before the next shop: a
    leader that lost it sends no nudge, trades no token and refits no shop beside the new
    leader doing the same."""
    import threading

    from plugin import jobs
    from plugin.shops import create_shop

    for platform in ("generic", "shopify", "saleor"):
        create_shop(platform, f"{platform}.example")
    db.session.commit()
    assert lease.acquire(jobs.LEASE_NAME, "w1", 60)
    hold = threading.Event()
    hold.set()  # w1's renewal found the lease lost since the job started
    jobs.run_recorded(app, job, jobs.SCHEDULED_JOBS[job][0], "w1", hold=hold)
    db.session.expire_all()
    assert db.session.scalar(sa.select(JobRun.status).where(JobRun.job == job)) == "lease_lost"


def test_a_unit_running_when_its_lease_is_taken_over_commits_nothing(app, shop, monkeypatch,
                                                                   lease_takeover):
    """A job stopped at its next ``checkpoint`` once its worker lost the lease, but the
    unit running then still committed beside the new leader's run of the same job. Its
    commit is now fenced by the lease's generation: taken over between the unit's
    checkpoint and its commit, the unit commits nothing and the run stops as lease_lost."""
    from plugin import jobs
    from plugin.leadership import checkpoint
    from plugin.models import AuditLog
    from plugin.shops import audit

    # every lease read on the pair's clock, the fence, checkpoints and the run's lease
    # check included: they read the database's, and w1's lease lapsed in real time
    # whenever the run took 30 s (it then committed none of its units); started far from
    # the real clock, a read left on it fails this test every run
    def units():
        for n in range(3):
            checkpoint()
            audit(shop.id, "test.unit", unit=n, by=two.running[-1])
            if two.running[-1] == "w1" and n == 1:  # w1 stalls mid-unit; w2 takes over
                two.take_over()
            db.session.commit()

    monkeypatch.setattr(jobs, "SCHEDULED_JOBS", {"units": (units, 600)})
    two = lease_takeover()
    two.first.tick()
    two.run(two.first, "units")
    two.run(two.second, "units")
    done = [(a.detail["by"], a.detail["unit"]) for a in db.session.scalars(
        sa.select(AuditLog).where(AuditLog.action == "test.unit").order_by(AuditLog.id))]
    assert done == [("w1", 0), ("w2", 0), ("w2", 1), ("w2", 2)]
    runs = [(r.worker, r.status) for r in db.session.scalars(
        sa.select(JobRun).where(JobRun.job == "units").order_by(JobRun.id))]
    assert runs == [("w1", "lease_lost"), ("w2", "ok")]


def test_the_lease_generation_changes_with_its_holder_and_fences_the_old_one(app):
    """The fencing token: a renewal keeps it, a takeover changes it, and the old holder's
    (or an old hold's) token no longer passes, even once that holder has the lease back."""
    t0 = utcnow()
    assert lease.acquire("scheduler", "a", 30, now=t0)
    first = lease.hold_of("scheduler", now=t0)
    assert lease.acquire("scheduler", "a", 30, now=t0 + timedelta(seconds=10))  # renewal
    assert lease.renew("scheduler", "a", 30, now=t0 + timedelta(seconds=20))
    assert lease.hold_of("scheduler", now=t0 + timedelta(seconds=20)) == first
    assert lease.fence("scheduler", "a", first[1])
    db.session.rollback()
    assert lease.acquire("scheduler", "b", 30, now=t0 + timedelta(seconds=51))  # taken over
    assert not lease.fence("scheduler", "a", first[1])
    db.session.rollback()
    assert lease.acquire("scheduler", "a", 30, now=t0 + timedelta(seconds=82))  # a again
    again = lease.hold_of("scheduler", now=t0 + timedelta(seconds=82))
    assert again[0] == "a" and again[1] > first[1] + 1
    assert not lease.fence("scheduler", "a", first[1])
    db.session.rollback()


def test_a_takeover_waits_for_the_commit_its_fence_let_through(app):
    """The fence is checked in the unit's transaction and holds the lease row until the
    unit commits: a standby taking the lease over meanwhile waits for that commit, so it
    cannot start the job's work before the old leader's last unit is in."""
    import threading

    t0 = utcnow()
    assert lease.acquire("scheduler", "w1", 30)
    generation = lease.hold_of("scheduler")[1]
    assert lease.fence("scheduler", "w1", generation)  # the unit's transaction, open
    took = []

    def take_over():  # the lease lapsed, on the standby's (fake) clock
        with app.app_context():
            took.append(lease.acquire("scheduler", "w2", 30, now=t0 + timedelta(minutes=5)))
            db.session.remove()

    standby = threading.Thread(target=take_over)
    standby.start()
    standby.join(1.0)
    assert standby.is_alive() and not took  # waiting for the unit's commit
    db.session.commit()
    standby.join(10)
    assert took == [True]
    assert lease.hold_of("scheduler", now=t0 + timedelta(minutes=5)) == ("w2", generation + 1)


def _uninstalled_shops(n: int) -> list[str]:
    """``n`` shops uninstalled past the retention period, in the order they are purged."""
    from plugin.models import Shop
    from plugin.shops import mark_uninstalled
    from tests.factories import make_shop

    shops = [make_shop() for _ in range(n)]
    for s in shops:
        mark_uninstalled(s, at=utcnow() - timedelta(days=30))
    db.session.commit()
    ids = sorted(s.id for s in shops)
    assert len(db.session.scalars(sa.select(Shop.id)).all()) == n
    return ids


@pytest.mark.parametrize("stop", ["lease_lost", "failed"])
def test_the_uninstall_purge_erases_shop_by_shop(app, monkeypatch, stop):
    """The purge erased every due shop in one transaction with no checkpoint: a lost lease
    ran it on beside the new leader's, and one shop failing (or a crash) undid every
    erasure before it. Each shop is now its own transaction, with a checkpoint before it:
    the shops done stay erased, the rest are left for the next run."""
    import threading

    from plugin import jobs, shops
    from plugin.models import Shop

    ids = _uninstalled_shops(3)
    erase, hold = shops.erase_shop, threading.Event()

    def erase_shop(shop_id):
        if stop == "failed" and shop_id == ids[1]:
            erase(shop_id)  # half done, then it fails
            raise RuntimeError("the database went")
        erase(shop_id)
        if stop == "lease_lost":
            hold.set()  # w1's renewal finds the lease lost during the first erasure

    monkeypatch.setattr(shops, "erase_shop", erase_shop)
    assert lease.acquire(jobs.LEASE_NAME, "w1", 60)
    jobs.run_recorded(app, "purge_uninstalled", jobs.purge_uninstalled_shops, "w1", hold=hold)
    db.session.expire_all()
    left = sorted(db.session.scalars(sa.select(Shop.id)).all())
    assert left == (ids[1:] if stop == "lease_lost" else [ids[1]])
    run = db.session.scalars(sa.select(JobRun).where(JobRun.job == "purge_uninstalled")).one()
    assert run.status == stop


def _job_units(job: str) -> tuple[str, str, object, int]:
    """(module, function) a job calls once per unit of work, what it returns, and the
    units of its run over the shops made here (the last one is where the lease goes)."""
    from connectors.base import Credentials
    from plugin.ingestion.sync import RESOURCES, SyncResult
    from plugin.shops import create_shop

    def shop(platform: str, n: int, **settings: object) -> None:
        made = create_shop(platform, f"{platform}{n}.example", Credentials(
            f"{platform}{n}.example", access_token=f"{platform}-{n}"))
        made.settings = {**(made.settings or {}), **settings}

    if job == "purge_uninstalled":
        return "plugin.shops", "erase_shop", None, len(_uninstalled_shops(2))
    for n in range(2):
        shop("shopify", n, offers_enabled=True)
        shop("saleor", n)
    db.session.commit()
    return {
        "sync_all_shops": ("plugin.ingestion.sync", "run_sync", SyncResult("products"),
                           4 * len(RESOURCES)),
        "saleor_webhooks": ("plugin.install.saleor", "refresh_webhooks",
                            {"created": [], "updated": []}, 2),
        "offers": ("plugin.offers.permissions", "recheck", False, 2),
        "retrain_due_shops": ("plugin.training", "_retrain_or_refresh", 0, 4),
        "shopify_token_migration": ("plugin.shops", "connector_for", None, 2),
        "shopify_webhooks": ("plugin.install.shopify_webhooks", "reconcile", None, 2),
        "subprofile_answers": ("plugin.subprofiles.prompt", "apply_pending", 0, 4),
        "retention_purge": ("plugin.privacy", "purge_expired", 0, 4),
    }[job]


@pytest.mark.parametrize("job", ["sync_all_shops", "saleor_webhooks", "purge_uninstalled",
                                 "offers", "retrain_due_shops", "shopify_token_migration",
                                 "shopify_webhooks", "subprofile_answers", "retention_purge"])
def test_a_lease_taken_over_in_a_jobs_last_unit_stops_the_run_and_fails_no_shop(
        app, monkeypatch, caplog, lease_takeover, job):
    """A fenced commit raises ``LeaseLost`` in the middle of a unit, inside the job's
    per-shop ``except Exception``: it was logged as that shop's failure (a traceback for
    offers) and, the last unit having no checkpoint after it, the run was recorded failed
    (or ok) instead of lease_lost. It now passes through: the run is lease_lost, and no
    shop is logged as failed."""
    import importlib
    import logging
    import types

    from plugin.metrics import REGISTRY
    from plugin.models import SchedulerLease

    module, name, result, units = _job_units(job)
    two, done = lease_takeover(), []  # every lease on its clock: no real-clock reads
    real = getattr(importlib.import_module(module), name)

    def unit(*args, **kwargs):  # the job's unit of work, which commits
        done.append(args)
        if len(done) == units:  # w1 stalls in its last unit; w2 takes the lease over
            two.take_over()
        if name == "erase_shop":
            real(*args)
        else:
            assert lease.acquire(f"unit:{len(done)}", "w1", 60)  # a commit
        return types.SimpleNamespace(created=[], moved=[]) if name == "reconcile" else result

    monkeypatch.setattr(importlib.import_module(module), name, unit)
    failures = REGISTRY.get_sample_value("shopkeeper_job_failures_total", {"job": job}) or 0
    two.first.tick()
    with caplog.at_level(logging.INFO):
        two.run(two.first, job)
    assert len(done) == units  # the lease went in the last unit
    db.session.expire_all()
    run = db.session.scalars(sa.select(JobRun).where(JobRun.job == job)).one()
    assert (run.worker, run.status) == ("w1", "lease_lost")
    if name != "erase_shop":  # the units before the last committed; the last, nothing
        assert len(db.session.scalars(sa.select(SchedulerLease.name).where(
            SchedulerLease.name.like("unit:%"))).all()) == units - 1
    assert [(r.levelname, r.message) for r in caplog.records
            if r.levelno >= logging.WARNING or r.exc_info] \
        == [("WARNING", "jobs.stopped_lease_lost")]  # no shop failed, no traceback
    assert (REGISTRY.get_sample_value("shopkeeper_job_failures_total", {"job": job})
            or 0) == failures  # an earlier test's failures of the job may be counted there


def test_an_unfenced_release_commits_nothing_of_the_unit_in_hand(app, shop):
    """A job gives up a lease of its own outside the fence once its worker lost the
    scheduler lease, but only that: the unit's pending work is rolled back, not committed
    with the release beside the new leader's run."""
    import threading

    from plugin import jobs
    from plugin.leadership import unfenced
    from plugin.models import AuditLog
    from plugin.shops import audit

    t0 = utcnow()

    def unit():
        assert lease.acquire("train:x", "w1:fit", 300)  # a lease of the job's own
        audit(shop.id, "test.unit")  # the unit's work, pending...
        assert _acquire_at(app, "w2", 30, t0 + timedelta(minutes=5))
        with unfenced():  # ...when the lease was taken over
            lease.release("train:x", "w1:fit")

    assert lease.acquire(jobs.LEASE_NAME, "w1", 30, now=t0)
    jobs.run_recorded(app, "unit", unit, "w1", hold=threading.Event())
    db.session.expire_all()
    assert lease.holder_of("train:x") is None
    assert not db.session.scalars(sa.select(AuditLog).where(AuditLog.action == "test.unit")).all()
    assert db.session.scalar(sa.select(JobRun.status)) == "ok"
