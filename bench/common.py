"""Helpers shared by the bench scripts.

Kept free of Flask and the app so ``run_all.py`` can import it without side effects: free
ports, throwaway databases, percentiles, a bounded load loop, a throwaway PostgreSQL, and
results tables published into bench/README.md.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_URL_ENV = "SHOPKEEPER_TEST_POSTGRES_URL"


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100): a value that really occurred."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def sample_customers(lines_per_customer: Mapping[str, int], budget: int,
                     seed: int = 0) -> set[str]:
    """Whole customers, in a seeded random order, until ``budget`` lines are used.

    Whole histories keep baskets and repeat purchases intact, which a row sample would not.
    """
    if budget <= 0:
        raise ValueError("budget must be positive")
    order = sorted(lines_per_customer)
    random.Random(seed).shuffle(order)
    chosen: set[str] = set()
    used = 0
    for customer in order:
        n = lines_per_customer[customer]
        if used + n <= budget:
            chosen.add(customer)
            used += n
    return chosen


def fresh_database(server_url: str, prefix: str) -> str:
    """A new, empty PostgreSQL database on the same server, so runs never share state."""
    import sqlalchemy as sa

    name = f"{prefix}_{int(time.time())}_{os.getpid()}"
    base = server_url.rsplit("/", 1)[0]
    admin = sa.create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{base}/{name}"


def drop_database(url: str) -> None:
    """Drop a database made by :func:`fresh_database` (disconnecting stragglers)."""
    import sqlalchemy as sa

    base, name = url.rsplit("/", 1)
    admin = sa.create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def wait_healthy(base_url: str, timeout: float = 90.0) -> None:
    """Block until ``/healthz`` answers 200; raises when the server never comes up."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(base_url + "/healthz", timeout=5).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{base_url} did not become healthy in {timeout:.0f} s")


@dataclass
class LoadResult:
    """What one stream of requests saw: wall time, per-request latency, status codes."""

    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    codes: Counter = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def summary(self) -> dict:
        """The JSON form printed and stored by the benchmarks."""
        return {"requests": self.count, "seconds": round(self.seconds, 2),
                "req_per_s": round(self.rate, 1),
                "p50_ms": round(self.p(50), 2) if self.count else None,
                "p99_ms": round(self.p(99), 2) if self.count else None,
                "codes": dict(self.codes)}


def run_load(call: Callable[[object, int], int], n: int, concurrency: int,
             duration: float | None = None,
             clock: Callable[[], float] = time.perf_counter) -> LoadResult:
    """``call(session, i)`` for i < n over ``concurrency`` threads, stopping at ``duration``.

    Both bounds make a run stop by itself: the count for fast servers, the duration for
    slow ones. ``call`` returns the HTTP status; an exception counts as status 0.
    ``clock`` (seconds) lets a test drive the duration without a loaded machine's delays.
    """
    import requests

    result = LoadResult()
    lock = threading.Lock()
    counter = iter(range(n))
    started = clock()
    deadline = None if duration is None else started + duration

    def worker() -> None:
        session = requests.Session()
        while True:
            with lock:
                i = next(counter, None)
            if i is None or (deadline is not None and clock() > deadline):
                return
            t0 = clock()
            try:
                code = call(session, i)
            except requests.RequestException:
                code = 0
            ms = (clock() - t0) * 1000.0
            with lock:
                result.latencies_ms.append(ms)
                result.codes[code] += 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = clock() - started
    return result


def spawn(cmd: list[str], env: Mapping[str, str], log: Path, cwd: Path = ROOT) -> subprocess.Popen:
    """Start a long-running process with its output in ``log``."""
    with open(log, "wb") as fh:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, cwd=cwd, env=dict(env), stdout=fh,
                                stderr=subprocess.STDOUT)


def stop_processes(procs: list[subprocess.Popen], grace: float = 40.0) -> None:
    """SIGTERM (graceful: workers release claims and the lease), SIGKILL after ``grace``."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server URL: ``$SHOPKEEPER_TEST_POSTGRES_URL`` or a throwaway cluster.

    The throwaway cluster comes from ``.ci/postgres.sh`` and is stopped (by its pid) on exit.
    """
    if os.environ.get(PG_URL_ENV):
        yield os.environ[PG_URL_ENV]
        return
    script = ROOT / ".ci" / "postgres.sh"
    out = subprocess.run(
        ["bash", "-c", f'source "{script}" start >/dev/null && '
                       f'printf "%s\\n%s\\n%s\\n" "${PG_URL_ENV}" "$PG_PID" "$PG_TMP"'],
        cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"could not start PostgreSQL: {out.stderr.strip()[-500:]}")
    url, pid, tmp = out.stdout.split()
    try:
        yield url
    finally:
        subprocess.run(["bash", str(script), "stop"], cwd=ROOT, check=False,
                       env={**os.environ, "PG_PID": pid, "PG_TMP": tmp})


def replace_marked(path: Path, begin: str, end: str, body: str) -> None:
    """Replace what lies between the ``begin`` and ``end`` markers of ``path`` with ``body``.

    Generated tables live between such markers in bench/README.md, so the prose around
    them survives a re-run.
    """
    text = path.read_text(encoding="utf-8")
    if begin not in text or end not in text:
        raise SystemExit(f"{path} lacks the {begin} / {end} markers")
    head, rest = text.split(begin, 1)
    path.write_text(f"{head}{begin}\n{body.rstrip()}\n{end}{rest.split(end, 1)[1]}",
                    encoding="utf-8")


def publish(name: str, update: dict, order: Iterable[str],
            render: Callable[[dict], str]) -> dict:
    """Merge ``update`` into ``bench/results/<name>.json`` and re-render its README table.

    Results of datasets not re-run this time are kept, so one dataset can be refreshed
    alone; the table goes between the ``<!-- name:begin -->`` / ``end`` markers of
    bench/README.md, stamped with when and by which script it was made.
    """
    path = ROOT / "bench" / "results" / f"{name}.json"
    results = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    results.update(update)
    results = {n: results[n] for n in order if n in results}
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    replace_marked(ROOT / "bench" / "README.md", f"<!-- {name}:begin -->",
                   f"<!-- {name}:end -->",
                   f"Generated {stamp} by `python bench/{name}.py`.\n\n{render(results)}")
    return results
