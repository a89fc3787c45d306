"""Chained fixtures: ``app`` (one per database backend) -> ``client`` -> ``runner``.

Backends come from ``SHOPKEEPER_TEST_DATABASES`` (default ``sqlite``; CI sets
``sqlite,postgresql`` and ``SHOPKEEPER_TEST_POSTGRES_URL`` from ``.ci/postgres.sh``).
Every test that uses ``app`` runs once per backend and is marked ``db``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback

import pytest
import sqlalchemy as sa

from plugin import create_app, hot_reads
from plugin.config import TestConfig
from plugin.extensions import db as _db

PG_URL = os.environ.get("SHOPKEEPER_TEST_POSTGRES_URL", "")
BACKENDS = [b.strip() for b in os.environ.get(
    "SHOPKEEPER_TEST_DATABASES", "sqlite,postgresql" if PG_URL else "sqlite").split(",")
    if b.strip()]
_PG_READY: set[str] = set()


def pytest_configure(config: pytest.Config) -> None:
    if "postgresql" in BACKENDS and not PG_URL:
        raise pytest.UsageError("postgresql backend requested but SHOPKEEPER_TEST_POSTGRES_URL "
                                "is not set (see .ci/postgres.sh)")


def pytest_report_header(config: pytest.Config) -> str:
    return f"shopkeeper database backends: {', '.join(BACKENDS)}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "app" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
def postgres_url():
    """A database of our own on the PostgreSQL server, so parallel runs never collide."""
    name = f"shopkeeper_test_{os.getpid()}"
    server = PG_URL.rsplit("/", 1)[0]
    admin = sa.create_engine(server + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def app(database_url: str, tmp_path):
    """A fresh app and empty schema per test; PostgreSQL tables are truncated afterwards."""
    settings = {k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()}
    settings.update(SQLALCHEMY_DATABASE_URI=database_url, MODEL_DIR=str(tmp_path / "models"),
                    INSTANCE_DIR=str(tmp_path / "instance"))
    app = create_app(settings)
    with app.app_context():
        if database_url.startswith("postgresql"):
            if database_url not in _PG_READY:  # once per process; tests truncate after
                _db.drop_all()
                _db.create_all()
                _PG_READY.add(database_url)
        else:
            _db.create_all()
        try:
            yield app
        finally:
            _db.session.remove()
            hot_reads.dispose(app)
            if database_url.startswith("postgresql"):
                names = ", ".join(t.name for t in reversed(_db.metadata.sorted_tables))
                with _db.engine.begin() as conn:
                    conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            _db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def shop(app):
    """An installed generic shop (its webhook secret via ``shop_secret``)."""
    from tests.factories import make_shop

    return make_shop()


@pytest.fixture
def shop_secret(shop) -> str:
    from plugin.shops import credentials_for

    return credentials_for(shop).webhook_secret


class LeaseTakeover:
    """Two workers, w1 and w2, on one app and one lease clock (``fake_lease_clock``, hours
    off the real one), for tests of a scheduler lease lost while a job runs: their
    schedulers start paused (a ``tick`` makes the leader), ``run`` runs a job as the
    worker's scheduler would, and ``take_over``, called from inside w1's job, lets w2 take
    the lease from a w1 stalled past it. The ``lease_takeover`` fixture shuts both
    schedulers down, waiting for their threads, whatever the test did."""

    def __init__(self, app, monkeypatch, lease_seconds: float = 30) -> None:
        from plugin.jobs import Worker
        from tests.factories import fake_lease_clock

        app.config.update(SCHEDULER_LEASE_SECONDS=lease_seconds)
        self.app = app
        self.clock = fake_lease_clock(monkeypatch, off_real=True)
        self.first = Worker(app, name="w1", clock=self.clock)
        self.second = Worker(app, name="w2", clock=self.clock)
        self.running: list[str] = []  # the workers that ran a job, in order
        for worker in (self.first, self.second):
            worker.scheduler.start(paused=True)

    def run(self, worker, job: str) -> None:
        """Run ``job`` now, on this thread, as ``worker``'s scheduler would."""
        self.running.append(worker.name)
        scheduled = worker.scheduler.get_job(job)
        scheduled.func(*scheduled.args, **scheduled.kwargs)

    def stall(self) -> None:
        """w1 stalls past its lease (on the lease's clock), with nothing renewing it."""
        self.clock.advance(self.app.config["SCHEDULER_LEASE_SECONDS"] + 1)

    def take_over(self) -> None:
        """w1 stalls past its lease and w2's next loop turn takes it over."""
        self.stall()
        with self.app.app_context():
            self.second.tick()
            assert self.second.leader
            _db.session.remove()

    def shutdown(self) -> None:
        for worker in (self.first, self.second):
            worker.scheduler.shutdown(wait=True)


@pytest.fixture
def lease_takeover(app, monkeypatch):
    """Makes the ``LeaseTakeover`` pair, once the test has set the jobs the workers'
    schedulers are built with (``plugin.jobs.SCHEDULED_JOBS``)."""
    made: list[LeaseTakeover] = []

    def make() -> LeaseTakeover:
        made.append(LeaseTakeover(app, monkeypatch))
        return made[-1]

    try:
        yield make
    finally:
        for two in made:
            two.shutdown()


#: Threads of the scheduler and worker machinery (plugin.jobs, plugin.heartbeat,
#: plugin.training and APScheduler's): none may outlive the test that started it.
JOB_THREADS = ("APScheduler", "ThreadPoolExecutor-", "job-heartbeat-", "scheduler-lease",
               "scheduler-shutdown", "shopkeeper-worker", "lease-")


@pytest.fixture(autouse=True)
def _no_job_thread_or_watch_left_behind():
    """A test of the worker that failed half-way left its scheduler's jobs, renewing
    threads or the job's lease watch (``plugin.leadership._WATCHED``) behind, to act in
    later tests: a job thread committing into the next test's PostgreSQL tables, a watch
    fencing its commits. Each test now ends with none of them (after a bounded wait for
    threads told to stop); the watch is cleared either way."""
    from plugin import leadership

    before = set(threading.enumerate())
    yield
    watched = leadership._WATCHED.get()
    leadership._WATCHED.set(None)
    deadline = time.monotonic() + 10
    left = []
    for thread in set(threading.enumerate()) - before:
        if thread.name.startswith(JOB_THREADS):
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                left.append(thread)
    frames = sys._current_frames()
    stacks = "\n".join(f"--- {t.name}\n" + "".join(traceback.format_stack(frames[t.ident]))
                        for t in left if t.ident in frames)
    assert not left, f"threads left running by the test:\n{stacks}"
    assert watched is None, f"the test left a scheduled job's lease watch set: {watched}"
