"""``plugin.heartbeat.renewing``: the end of a renewed block is bounded."""

from __future__ import annotations

import logging
import threading
import time

from plugin import heartbeat
from plugin.heartbeat import renewing


def test_a_renewal_stuck_on_a_lock_does_not_hang_the_block_that_finished(app, caplog,
                                                                          monkeypatch):
    """The block's end joined the renewing thread without a bound: a renewal waiting on a
    lock (a row lock on PostgreSQL has no timeout) hung the finished job or worker loop
    forever, with nothing logged. It now waits ``stop_wait`` seconds, logs the stuck
    renewal and goes on; the thread renews no more once its call returns."""
    entered, release, calls = threading.Event(), threading.Event(), []

    def renew():  # the first renewal waits on a lock until the test releases it
        calls.append(1)
        entered.set()
        release.wait(30)

    monkeypatch.setattr(heartbeat, "STOP_WAIT_SECONDS", 0.5, raising=False)
    log = logging.getLogger("shopkeeper.test_heartbeat")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger=log.name), \
            renewing(app, 0.01, renew, name="stuck-renewal", log=log, event="test.renewal",
                     extra={"run_id": 7}):
        assert entered.wait(10)
    assert time.monotonic() - started < 10
    stuck = [r for r in caplog.records if r.message == "test.renewal_stuck"]
    assert [(r.run_id, r.renewal) for r in stuck] == [(7, "stuck-renewal")]
    thread = next(t for t in threading.enumerate() if t.name == "stuck-renewal")
    release.set()
    thread.join(10)
    assert not thread.is_alive() and calls == [1]  # told to stop: no renewal after it
