"""Recommendation endpoint under gunicorn versus a bare endpoint of the same server.

    python bench/serve.py [--database-url postgresql+psycopg://...] [-n 4000] [-c 4] [-w 2]

Loads the full Online Retail history (cleaned as ``bench/demo_sample.py`` does) into a fresh
database, trains the shop, starts gunicorn on a free port of 127.0.0.1 and sends the same
number of GET requests with concurrent client threads to ``/bench/bare`` and to
``/api/v1/recommendations`` (signed customer tokens of real customers, For-you placement).
Both are measured in alternating blocks so that other load on the machine affects them
alike. Prints requests/s, p50 and p99 latency, the server's CPU time per request (from
/proc: independent of other load) and the throughput ratio. Targets: ratio >= 0.7, p99 <=
25 ms. The client runs on the same machine and shares its cores.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import random
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import free_port, fresh_database, percentile, wait_healthy  # noqa: E402

SRC = ROOT.parent / "shared/data/online-retail/online_retail.csv.gz"
PRODUCT_CODE = re.compile(r"^\d{5}")
ORIGIN = "https://bench.example"



def prepare_online_retail(src: Path, out: Path) -> tuple[Path, Path]:
    """Full history in the import format: no cancellations, 5-digit codes, positive qty/price."""
    titles: dict[str, Counter] = defaultdict(Counter)
    prices: dict[str, Counter] = defaultdict(Counter)
    orders, catalog = out / "orders.csv.gz", out / "catalog.csv.gz"
    with gzip.open(src, "rt", newline="") as fh, gzip.open(orders, "wt", newline="") as oh:
        w = csv.writer(oh)
        w.writerow(["customer_id", "item_id", "timestamp", "basket_id", "quantity", "price"])
        for r in csv.DictReader(fh):
            if r["InvoiceNo"].startswith("C") or not PRODUCT_CODE.match(r["StockCode"]):
                continue
            if not r["CustomerID"] or int(r["Quantity"]) <= 0 or float(r["UnitPrice"]) <= 0:
                continue
            code = r["StockCode"].upper()
            titles[code][r["Description"].strip()] += 1
            prices[code][r["UnitPrice"]] += 1
            w.writerow([r["CustomerID"].removesuffix(".0"), code,
                        r["InvoiceDate"].replace(" ", "T"), r["InvoiceNo"], r["Quantity"],
                        r["UnitPrice"]])
    with gzip.open(catalog, "wt", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "title", "description", "category", "price"])
        for code in sorted(titles):
            title = titles[code].most_common(1)[0][0].title() or code
            words = re.findall(r"[A-Za-z]+", title)
            w.writerow([code, title, title, words[-1].title() if words else "Other",
                        prices[code].most_common(1)[0][0]])
    return orders, catalog


def load(get, n: int, concurrency: int) -> tuple[float, list[float], Counter]:
    """``n`` calls of ``get(i)`` over ``concurrency`` threads: (seconds, latencies ms, codes)."""
    local = threading.local()
    latencies: list[float] = []
    codes: Counter = Counter()

    def one(i: int) -> tuple[float, int]:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        started = time.perf_counter()
        code = get(local.s, i)
        return (time.perf_counter() - started) * 1000.0, code

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for ms, code in pool.map(one, range(n)):
            latencies.append(ms)
            codes[code] += 1
    return time.perf_counter() - started, latencies, codes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default=None, help="PostgreSQL server (default: SQLite)")
    ap.add_argument("--source", type=Path, default=SRC)
    ap.add_argument("-n", type=int, default=4000, help="requests per endpoint")
    ap.add_argument("-c", type=int, default=4, help="concurrent client threads (2 per worker)")
    ap.add_argument("-w", type=int, default=2, help="gunicorn workers (one per core)")
    ap.add_argument("--rounds", type=int, default=4,
                    help="alternating bare/recommendations blocks")
    ap.add_argument("--reuse", type=Path, help="directory of an earlier run (any database): skip "
                    "import and training (for iterating on the serving path)")
    args = ap.parse_args()
    tmp = args.reuse or Path(tempfile.mkdtemp(prefix="sk-bench-serve-"))
    saved = tmp / "database_url"
    if args.reuse and saved.exists():
        url = saved.read_text().strip()
    elif args.database_url and not args.reuse:
        url = fresh_database(args.database_url, "shopkeeper_bench_serve")
    else:
        url = f"sqlite:///{tmp / 'b.db'}"
    saved.write_text(url)
    env = {**os.environ, "SHOPKEEPER_SQLALCHEMY_DATABASE_URI": url,
           "SHOPKEEPER_INSTANCE_DIR": str(tmp), "SHOPKEEPER_MODEL_DIR": str(tmp / "models"),
           "SHOPKEEPER_BENCH_BARE_ENDPOINT": "true", "SHOPKEEPER_LOG_LEVEL": "WARNING",
           # gunicorn_conf refuses the development keys: throwaway ones for this run
           "SHOPKEEPER_SECRET_KEY": secrets.token_urlsafe(48),
           "SHOPKEEPER_CREDENTIALS_KEY": Fernet.generate_key().decode(),
           "SHOPKEEPER_PUBLIC_URL": "http://127.0.0.1",  # refused when unset; unused here
           # the limiter runs on every request, with limits the load test cannot reach
           "SHOPKEEPER_API_RATE_LIMIT_PER_KEY": "10000000 per minute",
           "SHOPKEEPER_API_RATE_LIMIT_PER_CLIENT": "10000000 per minute"}
    os.environ.update(env)

    import sqlalchemy as sa

    from plugin import create_app, migrate, shops
    from plugin.api.identity import mint_customer_token
    from plugin.api.sources import active_version
    from plugin.extensions import db
    from plugin.ingestion.importer import import_history
    from plugin.models import Shop
    from plugin.training import train_shop

    started = time.perf_counter()
    app = create_app()
    with app.app_context():
        if args.reuse:
            shop = db.session.scalar(sa.select(Shop).order_by(Shop.created_at.desc()).limit(1))
            version = active_version(shop.id)
        else:
            orders, catalog = prepare_online_retail(args.source, tmp)
            migrate.upgrade()
            shop = shops.create_shop("generic", f"bench-{int(time.time())}.example")
            shop.settings = {"allowed_origins": [ORIGIN]}  # default 10 % holdout stays on
            db.session.commit()
            stats = import_history(shop.id, orders, catalog, progress=True)
            print(f"imported {stats.orders} orders, {stats.lines} lines, {stats.products} "
                  f"products in {time.perf_counter() - started:.0f} s", flush=True)
            version = train_shop(shop.id, show_progress=True)
        secret = shops.credentials_for(shop).webhook_secret
        customers = _customers(shop.id)
        key, shop_id = shop.widget_key, shop.id
        impressions_before = _impressions(shop_id)
    print(f"ready after {time.perf_counter() - started:.0f} s: {len(customers)} customers; "
          f"model {version.algorithm}, fit {version.metrics.get('fit_seconds')} s, "
          f"top-N cache {version.metrics.get('cache_seconds')} s; data in {tmp}", flush=True)
    tokens = [mint_customer_token(shop_id, secret, c, ttl_seconds=3 * 3600)
              for c in random.Random(7).sample(customers, min(len(customers), 1000))]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(args.w), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "plugin:create_app()"], cwd=ROOT, env=env)
    try:
        wait_healthy(base)

        def bare(s: requests.Session, i: int) -> int:
            return s.get(base + "/bench/bare", headers={"Origin": ORIGIN}, timeout=30).status_code

        def recs(s: requests.Session, i: int) -> int:
            return s.get(base + "/api/v1/recommendations",
                         params={"key": key, "placement": "for_you", "n": 8},
                         headers={"Origin": ORIGIN,
                                  "X-Shopkeeper-Customer-Token": tokens[i % len(tokens)]},
                         timeout=30).status_code

        endpoints = {"bare": bare, "recommendations": recs}
        for get in endpoints.values():
            load(get, 50 * args.w, args.c)  # warm-up: imports, connections, first queries
        # Alternate blocks so that other load on the machine hits both endpoints alike.
        results: dict[str, tuple[float, list[float], Counter, float, float, float]] = {
            name: (0.0, [], Counter(), 0.0, 0.0, 0.0) for name in endpoints}
        block = max(1, args.n // args.rounds)
        for _ in range(args.rounds):
            for name, get in endpoints.items():
                cpu, db_cpu = _server_cpu(server.pid), _postgres_cpu()
                client_cpu = time.process_time()
                seconds, latencies, codes = load(get, block, args.c)
                total, lat, counts, cpu_total, db_total, client_total = results[name]
                results[name] = (total + seconds, lat + latencies, counts + codes,
                                 cpu_total + _server_cpu(server.pid) - cpu,
                                 db_total + _postgres_cpu() - db_cpu,
                                 client_total + time.process_time() - client_cpu)
    finally:
        server.terminate()
        try:
            server.wait(60)  # under load gunicorn can take a while to stop its workers
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    print(f"database: {url.split('@')[-1]}   gunicorn workers: {args.w}   "
          f"client threads: {args.c}   requests per endpoint: {args.n}")
    print(f"{'endpoint':<18}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'server cpu ms/req':>19}"
          f"{'db cpu':>8}{'client cpu':>12}   status codes")
    for name, (seconds, latencies, codes, cpu, db_cpu, client_cpu) in results.items():
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        n = len(latencies)
        print(f"{name:<18}{n / seconds:>9.0f}{p50:>9.2f}{p99:>9.2f}{1000 * cpu / n:>19.2f}"
              f"{1000 * db_cpu / n:>8.2f}{1000 * client_cpu / n:>12.2f}   {dict(codes)}")
    ratio = ((len(results["recommendations"][1]) / results["recommendations"][0])
             / (len(results["bare"][1]) / results["bare"][0]))
    p99 = percentile(results["recommendations"][1], 99)
    print(f"throughput ratio recommendations/bare: {ratio:.2f} (target >= 0.70); "
          f"recommendations p99 {p99:.1f} ms (target <= 25)")
    time.sleep(0.5)
    with app.app_context():
        logged = _impressions(shop_id) - impressions_before
    served = len(results["recommendations"][1]) + 50 * args.w
    print(f"impressions logged by the workers' write-behind buffers: {logged} "
          f"(answers served: {served})")
    ok = all(set(r[2]) == {200} for r in results.values())
    return 0 if ok else 1


def _customers(shop_id: str) -> list[str]:
    import sqlalchemy as sa

    from plugin.extensions import db
    from plugin.models import RecommendationCache

    return list(db.session.scalars(sa.select(RecommendationCache.shopper_id)
                                   .where(RecommendationCache.shop_id == shop_id)))


def _impressions(shop_id: str) -> int:
    import sqlalchemy as sa

    from plugin.extensions import db
    from plugin.models import Impression

    return db.session.scalar(sa.select(sa.func.count()).select_from(Impression)
                             .where(Impression.shop_id == shop_id)) or 0


def _postgres_cpu() -> float:
    """CPU seconds used so far by this machine's PostgreSQL processes (0 with SQLite).

    Includes every local cluster, so run nothing else against PostgreSQL meanwhile.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if head.split("(", 1)[-1] == "postgres":
            fields = tail.split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _server_cpu(master: int) -> float:
    """CPU seconds used so far by the gunicorn master and its workers (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [master]
    children = Path(f"/proc/{master}/task/{master}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return total


if __name__ == "__main__":
    raise SystemExit(main())
