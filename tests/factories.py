"""Small builders for rows and signed deliveries used across tests."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from connectors.generic.webhooks import sign_payload
from plugin import shops
from plugin.extensions import db
from plugin.models import Shop

_seq = itertools.count(1)


class FakeClock:
    """A lease's time, moved by the test: a lease lapses when the test says, not when a
    loaded machine is slower than a real lease of a few seconds allows."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def wait_until(predicate: Callable[[], object], timeout: float) -> bool:
    """Whether ``predicate`` came true within ``timeout`` seconds (polled every 0.2 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


#: Where ``fake_lease_clock(..., off_real=True)`` starts: far from the real clock, so a lease
#: read still made on the database's clock sees every lease of the test lapsed (or not yet
#: due) at once, every run, instead of only when a loaded machine stalls past the lease.
OFF_REAL_CLOCK = timedelta(hours=-6)


def fake_lease_clock(monkeypatch: Any, *, off_real: bool = False) -> FakeClock:
    """Every lease (``plugin.lease``) read and written on a ``FakeClock`` instead of the
    database's: for code that takes no clock of its own (a sync's, a fit's lease; the
    fence, ``checkpoint`` and a job run's check of the scheduler lease). With
    ``off_real``, the clock starts ``OFF_REAL_CLOCK`` away from the real one."""
    from plugin import lease

    start = datetime.now(UTC) + OFF_REAL_CLOCK if off_real else None
    clock, real = FakeClock(start), lease._clock
    monkeypatch.setattr(lease, "_clock", lambda now, offset_seconds=0.0:
                        real(now if now is not None else clock(), offset_seconds))
    return clock


@contextmanager
def empty_schema() -> Iterator[None]:
    """The app's database with no table at all, for a test that runs the migrations itself
    (``drop_all`` alone leaves ``alembic_version``, and an upgrade would then do nothing);
    afterwards the models' schema again, as the ``app`` fixture made it: on PostgreSQL
    that schema is made once per process and the next tests expect it."""
    with db.engine.begin() as conn:
        db.metadata.drop_all(conn)
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    try:
        yield
    finally:
        db.session.remove()
        with db.engine.begin() as conn:
            db.metadata.drop_all(conn)
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        db.metadata.create_all(db.engine)


def make_shop(platform: str = "generic", domain: str | None = None) -> Shop:
    shop = shops.create_shop(platform, domain or f"shop{next(_seq)}.example")
    db.session.commit()
    return shop


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def product_body(pid: str = "p1", *, title: str = "Tea", updated_at: str = "2026-01-01T10:00:00Z",
                 **extra: Any) -> dict[str, Any]:
    return {"id": pid, "title": title, "price": "12.50", "currency": "GBP",
            "categories": ["Drinks"], "tags": ["organic"], "updated_at": updated_at, **extra}


def order_body(oid: str = "o1", *, customer_id: str | None = "c1",
               updated_at: str = "2026-01-02T10:00:00Z",
               lines: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": oid, "customer_id": customer_id, "created_at": "2026-01-02T09:00:00Z",
            "updated_at": updated_at, "currency": "GBP",
            "lines": lines or [{"product_id": "p1", "quantity": 2, "price": "12.50"}], **extra}


def post_webhook(client, shop_id: str, secret: str, topic: str, body: Any, *,
                 delivery_id: str | None = None, timestamp: int | None = None,
                 raw: bytes | None = None, connector: str = "generic"):
    """POST a correctly signed generic-v2 delivery (tests tamper with it as needed)."""
    data = raw if raw is not None else json.dumps(body).encode()
    headers = sign_payload(secret, data, timestamp=timestamp, topic=topic,
                           delivery_id=delivery_id or f"d-{next(_seq)}")
    headers["Content-Type"] = "application/json"
    return client.post(f"/webhooks/{connector}/{shop_id}", data=data, headers=headers)


def while_rows_held(app: Any, rows: Any, call: Callable[[], object], *,
                    bound: float) -> tuple[object, float]:
    """``call()`` in a thread (its own app context and session) while a second connection
    holds ``rows`` (a select) with ``SELECT ... FOR UPDATE``: its result and the seconds it
    took. Fails, instead of hanging, when it still waits ``bound`` seconds on (the rows are
    let go then, so it ends)."""
    out: dict[str, object] = {}

    def run() -> None:
        with app.app_context():
            started = time.monotonic()
            try:
                out["result"] = call()
            except Exception as err:
                out["error"] = err
            finally:
                out["seconds"] = time.monotonic() - started
                db.session.remove()

    with db.engine.connect() as other:
        assert other.execute(rows.with_for_update()).all()
        thread = threading.Thread(target=run, name="call-under-row-lock", daemon=True)
        thread.start()
        thread.join(bound)
        blocked = thread.is_alive()
        other.rollback()
    thread.join(30)
    assert not blocked, f"still waiting on the locked row after {bound} s"
    if "error" in out:
        raise out["error"]
    return out["result"], out["seconds"]


class FakeRedis:
    """The Redis calls ``plugin.cache`` makes, in memory; ``gets`` counts reads."""

    def __init__(self):
        self.data, self.gets = {}, 0

    def get(self, key):
        self.gets += 1
        return self.data.get(key)

    def setex(self, key, ttl, value):
        self.data[key] = value.encode()

    def delete(self, *keys):
        for k in keys:
            self.data.pop(k, None)

    def scan_iter(self, match="*", count=None):
        import fnmatch

        return iter([k for k in self.data if fnmatch.fnmatchcase(k, match)])
