"""Scale-out run: N gunicorn workers + M inbox workers, several shops, mixed traffic.

    python bench/scale.py [--database-url postgresql+psycopg://...] [-w 3] [-m 2]
                          [--duration 60] [--json out.json]

Loads the three research datasets as three shops of one fresh PostgreSQL database (whole
customers sampled up to ``--lines`` order lines each), trains them, starts gunicorn with the
production config (``plugin/gunicorn_conf.py``) and M ``shopkeeper worker`` processes (the
lease makes one of them the scheduler), then measures:

1. a bare endpoint of the same server at the same total client concurrency (the baseline);
2. signed generic webhooks and ``GET /api/v1/recommendations`` at the same time.

Reports requests/s and p50/p99 per endpoint, the ratio of mixed throughput to bare, inbox
lag (``processed_at - received_at``), the processing rate, lost deliveries (must be 0) and
which worker held the scheduler lease. Loopback only; each stream stops at its count or at
``--duration``. Without ``--database-url`` a throwaway cluster is started (.ci/postgres.sh).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from common import (  # noqa: E402
    LoadResult,
    drop_database,
    free_port,
    fresh_database,
    percentile,
    postgres_server,
    run_load,
    sample_customers,
    spawn,
    stop_processes,
    wait_healthy,
)

DATASETS = ("online-retail", "instacart-sample", "dunnhumby-complete-journey")
DATA = HERE / "data"


@dataclass
class ShopLoad:
    """One loaded shop and what the traffic generator needs to address it."""

    name: str
    shop_id: str
    key: str
    secret: str
    customers: list[str]
    items: list[str]
    lines: int


def subsample(name: str, budget: int, out: Path, seed: int) -> tuple[Path, Path, int]:
    """Whole customers of one prepared dataset up to ``budget`` lines, plus their catalogue."""
    src = DATA / name
    if not (src / "interactions.csv.gz").exists():
        from prepare_datasets import DEFAULT_SOURCE, prepare

        prepare(name, DEFAULT_SOURCE, DATA)
    counts: Counter = Counter()
    with gzip.open(src / "interactions.csv.gz", "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            counts[row["customer_id"]] += 1
    keep = sample_customers(counts, budget, seed)
    orders, catalog = out / f"{name}-orders.csv.gz", out / f"{name}-catalog.csv.gz"
    items: set[str] = set()
    with gzip.open(src / "interactions.csv.gz", "rt", newline="") as fh, \
            gzip.open(orders, "wt", newline="") as oh:
        reader, writer = csv.reader(fh), csv.writer(oh)
        writer.writerow(next(reader))
        for row in reader:
            if row[0] in keep:
                writer.writerow(row)
                items.add(row[1])
    with gzip.open(src / "catalog.csv.gz", "rt", newline="") as fh, \
            gzip.open(catalog, "wt", newline="") as oh:
        reader, writer = csv.reader(fh), csv.writer(oh)
        writer.writerow(next(reader))
        writer.writerows(row for row in reader if row[0] in items)
    return orders, catalog, sum(counts[c] for c in keep)


def load_shops(names: list[str], budget: int, tmp: Path, seed: int) -> list[ShopLoad]:
    """Create, import and train one generic shop per dataset (inside an app context)."""
    import sqlalchemy as sa

    from plugin import shops
    from plugin.extensions import db
    from plugin.ingestion.importer import import_history
    from plugin.models import RecommendationCache
    from plugin.training import train_shop

    loaded = []
    for name in names:
        t0 = time.perf_counter()
        orders, catalog, lines = subsample(name, budget, tmp, seed)
        shop = shops.create_shop("generic", f"{name}-{secrets.token_hex(3)}.bench.example")
        db.session.commit()
        stats = import_history(shop.id, orders, catalog)
        t1 = time.perf_counter()
        version = train_shop(shop.id)
        customers = list(db.session.scalars(sa.select(RecommendationCache.shopper_id)
                                            .where(RecommendationCache.shop_id == shop.id)))
        with gzip.open(catalog, "rt", newline="") as fh:
            items = [row["item_id"] for row in csv.DictReader(fh)]
        print(f"  {name}: {stats.orders} orders, {stats.lines} lines, {stats.products} "
              f"products, {len(customers)} customers; import {t1 - t0:.0f} s, train "
              f"{time.perf_counter() - t1:.0f} s ({version.algorithm}, {version.status})",
              flush=True)
        loaded.append(ShopLoad(name, shop.id, shop.widget_key,
                               shops.credentials_for(shop).webhook_secret,
                               sorted(customers), items, lines))
    return loaded


def webhook_caller(base: str, shop_list: list[ShopLoad], seed: int):
    """``call(session, i)`` posting one signed generic delivery: 2/3 orders, 1/3 products."""
    from connectors.generic.webhooks import sign_payload

    rng = random.Random(seed)
    lock = threading.Lock()
    sent: list[tuple[str, str]] = []  # (shop id, delivery id) answered 200

    def call(session, i: int) -> int:
        shop = shop_list[i % len(shop_list)]
        now = datetime.now(UTC).isoformat()
        with lock:
            picks = [rng.choice(shop.items) for _ in range(4)]
            customer = rng.choice(shop.customers)
        if i % 3 == 2:
            topic = "products/upsert"
            body = {"id": picks[0], "title": f"Updated {picks[0]}", "price": "3.50",
                    "currency": "GBP", "categories": ["Bench"], "updated_at": now}
        else:
            topic = "orders/upsert"
            body = {"id": f"scale-{i}", "customer_id": customer, "currency": "GBP",
                    "created_at": now, "updated_at": now,
                    "lines": [{"product_id": p, "quantity": 1, "price": "2.00"} for p in picks]}
        raw = json.dumps(body).encode()
        delivery = f"scale-{i}"
        headers = {**sign_payload(shop.secret, raw, topic=topic, delivery_id=delivery),
                   "Content-Type": "application/json"}
        code = session.post(f"{base}/webhooks/generic/{shop.shop_id}", data=raw,
                            headers=headers, timeout=30).status_code
        if code == 200:
            with lock:
                sent.append((shop.shop_id, delivery))
        return code

    return call, sent


def recommendation_caller(base: str, shop_list: list[ShopLoad], seed: int):
    """``call(session, i)``: a server-to-server For-you request; 1 in 5 anonymous shoppers."""
    from plugin.api.identity import mint_customer_token

    rng = random.Random(seed)
    tokens = {s.shop_id: [mint_customer_token(s.shop_id, s.secret, c, ttl_seconds=3 * 3600)
                          for c in rng.sample(s.customers, min(300, len(s.customers)))]
              for s in shop_list}

    def call(session, i: int) -> int:
        shop = shop_list[i % len(shop_list)]
        if i % 5 == 4:
            headers = {"X-Shopkeeper-Shopper": "anon_" + secrets.token_urlsafe(16)[:22]}
        else:
            pool = tokens[shop.shop_id]
            headers = {"X-Shopkeeper-Customer-Token": pool[(i // len(shop_list)) % len(pool)]}
        return session.get(f"{base}/api/v1/recommendations",
                           params={"key": shop.key, "placement": "for_you", "n": 8},
                           headers=headers, timeout=30).status_code

    return call


def wait_drained(timeout: float) -> float:
    """Seconds until no delivery is pending, processing or failed (or the timeout)."""
    import sqlalchemy as sa

    from plugin.extensions import db
    from plugin.models import WebhookDelivery as W

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        open_rows = db.session.scalar(sa.select(sa.func.count()).select_from(W).where(
            W.status.in_(("pending", "processing", "failed"))))
        db.session.rollback()
        if not open_rows:
            break
        time.sleep(0.5)
    return time.perf_counter() - started


def inbox_report(sent: list[tuple[str, str]]) -> dict:
    """Statuses, lag percentiles, processing rate and lost deliveries, from the database."""
    import sqlalchemy as sa

    from plugin.extensions import db
    from plugin.models import WebhookDelivery as W

    rows = db.session.execute(sa.select(W.shop_id, W.delivery_id, W.status, W.received_at,
                                        W.processed_at)).all()
    done = {(r.shop_id, r.delivery_id) for r in rows if r.status == "done"}
    lags = [(r.processed_at - r.received_at).total_seconds() for r in rows
            if r.status == "done" and r.processed_at]
    stamps = [r.processed_at for r in rows if r.processed_at]
    span = (max(stamps) - min(r.received_at for r in rows)).total_seconds() if stamps else 0
    return {"statuses": dict(Counter(r.status for r in rows)), "accepted": len(sent),
            "processed": len(done), "lost": sum(1 for d in sent if d not in done),
            "lag_p50_s": percentile(lags, 50) if lags else None,
            "lag_p99_s": percentile(lags, 99) if lags else None,
            "lag_max_s": max(lags) if lags else None,
            "processed_per_s": len(done) / span if span else 0.0}


def scheduler_report() -> dict:
    """Who holds the lease and how many distinct workers ran the heartbeat job (must be 1)."""
    import sqlalchemy as sa

    from plugin import jobs
    from plugin.extensions import db
    from plugin.models import JobRun

    runners = set(db.session.scalars(sa.select(JobRun.worker).where(JobRun.job == "heartbeat")))
    return {"lease_holder": jobs.current_leader(), "heartbeat_runners": len(runners)}


def start_processes(args, env: dict, tmp: Path) -> list[subprocess.Popen]:
    """gunicorn with the production config, then M ``shopkeeper worker`` processes."""
    procs = [spawn([sys.executable, "-m", "gunicorn", "-c", "python:plugin.gunicorn_conf",
                    "plugin:create_app()"], env, tmp / "gunicorn.log", cwd=ROOT)]
    procs += [spawn([sys.executable, "-m", "plugin.cli", "worker"], env, tmp / f"worker-{k}.log",
                    cwd=ROOT) for k in range(args.inbox_workers)]
    return procs


def mixed_traffic(args, hook_call, rec_call) -> dict[str, LoadResult]:
    """Webhooks and recommendations at the same time, each bounded by count and duration."""
    results: dict[str, LoadResult] = {}
    plan = (("webhooks", hook_call, args.webhooks, args.webhook_clients),
            ("recommendations", rec_call, args.recs, args.rec_clients))
    threads = [threading.Thread(target=lambda n=n, c=c, k=k, t=t: results.__setitem__(
        n, run_load(c, k, t, args.duration))) for n, c, k, t in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def run(args, server: str) -> dict:
    """The whole run against one PostgreSQL server; returns the JSON summary."""
    import requests

    tmp = Path(tempfile.mkdtemp(prefix="sk-bench-scale-"))
    url = fresh_database(server, "shopkeeper_bench_scale")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    (tmp / "prom").mkdir()
    env = {**os.environ, "SHOPKEEPER_SQLALCHEMY_DATABASE_URI": url,
           "SHOPKEEPER_INSTANCE_DIR": str(tmp), "SHOPKEEPER_MODEL_DIR": str(tmp / "models"),
           "SHOPKEEPER_BENCH_BARE_ENDPOINT": "true", "SHOPKEEPER_LOG_LEVEL": "WARNING",
           # gunicorn_conf refuses the development keys: throwaway ones for this run
           "SHOPKEEPER_SECRET_KEY": secrets.token_urlsafe(48),
           "SHOPKEEPER_CREDENTIALS_KEY": Fernet.generate_key().decode(),
           "SHOPKEEPER_BIND": f"127.0.0.1:{port}", "SHOPKEEPER_PUBLIC_URL": base,
           "SHOPKEEPER_WEB_WORKERS": str(args.web_workers),
           "SHOPKEEPER_WEB_THREADS": str(args.threads),
           "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom"),
           # the per-key/per-client limiter still runs, with limits a load test cannot reach
           "SHOPKEEPER_API_RATE_LIMIT_PER_KEY": "10000000 per minute",
           "SHOPKEEPER_API_RATE_LIMIT_PER_CLIENT": "10000000 per minute"}
    os.environ.update(env)
    from plugin import create_app, migrate

    app = create_app()
    procs: list[subprocess.Popen] = []
    summary: dict = {"database": "PostgreSQL", "web_workers": args.web_workers,
                     "web_threads": args.threads, "inbox_workers": args.inbox_workers,
                     "cpus": os.cpu_count()}
    try:
        started = time.perf_counter()
        print(f"loading {len(args.datasets)} shops (up to {args.lines} lines each)", flush=True)
        with app.app_context():
            migrate.upgrade()
            shop_list = load_shops(args.datasets, args.lines, tmp, args.seed)
        summary["prepare_seconds"] = round(time.perf_counter() - started, 1)
        summary["shops"] = [{"name": s.name, "lines": s.lines, "customers": len(s.customers),
                             "items": len(s.items)} for s in shop_list]
        procs = start_processes(args, env, tmp)
        wait_healthy(base)
        hook_call, sent = webhook_caller(base, shop_list, args.seed)
        rec_call = recommendation_caller(base, shop_list, args.seed)

        def bare_call(session, i: int) -> int:
            return session.get(base + "/bench/bare", timeout=30).status_code

        clients = args.webhook_clients + args.rec_clients
        run_load(rec_call, 40 * args.web_workers, clients)  # warm-up: models, connections
        run_load(bare_call, 200, clients)
        summary["load_before"] = [round(x, 2) for x in os.getloadavg()]
        bare = run_load(bare_call, args.bare_requests, clients, args.bare_duration)
        mixed = mixed_traffic(args, hook_call, rec_call)
        summary["load_after"] = [round(x, 2) for x in os.getloadavg()]
        with app.app_context():
            summary["drain_seconds_after_traffic"] = round(wait_drained(args.drain_timeout), 1)
            summary["inbox"] = inbox_report(sent)
            summary["scheduler"] = scheduler_report()
        metrics = requests.get(base + "/metrics", timeout=10)
        summary["metrics_status"] = metrics.status_code
        summary["metrics_series"] = sum(1 for line in metrics.text.splitlines()
                                        if line.startswith("shopkeeper_"))
    finally:
        stop_processes(procs)
        with app.app_context():
            from plugin.extensions import db

            db.engine.dispose()
        if not args.keep_db:
            drop_database(url)
    summary["bare"] = bare.summary()
    summary.update({name: r.summary() for name, r in mixed.items()})
    wall = max(r.seconds for r in mixed.values())
    summary["mixed_req_per_s"] = round(sum(r.count for r in mixed.values()) / wall, 1)
    summary["ratio_mixed_vs_bare"] = round(summary["mixed_req_per_s"] / bare.rate, 3)
    return summary


def print_report(s: dict) -> None:
    print(f"\nscale-out run: {len(s['shops'])} shops on PostgreSQL, gunicorn "
          f"{s['web_workers']} workers x {s['web_threads']} threads, {s['inbox_workers']} "
          f"inbox workers, {s['cpus']} CPUs; load average before/after "
          f"{s['load_before'][0]} / {s['load_after'][0]}; prepared in {s['prepare_seconds']} s")
    print(f"{'stream':<26}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}   codes")
    for name, label in (("bare", "bare endpoint (baseline)"), ("webhooks", "webhooks (mixed)"),
                        ("recommendations", "recommendations (mixed)")):
        r = s[name]
        print(f"{label:<26}{r['requests']:>9}{r['req_per_s']:>8.0f}{r['p50_ms']:>9.2f}"
              f"{r['p99_ms']:>9.2f}   {r['codes']}")
    i, sch = s["inbox"], s["scheduler"]
    print(f"mixed throughput {s['mixed_req_per_s']:.0f} req/s = {s['ratio_mixed_vs_bare']:.2f}"
          f" x bare")
    lag = (f"p50 {i['lag_p50_s']:.2f} s, p99 {i['lag_p99_s']:.2f} s, max {i['lag_max_s']:.2f} s"
           if i["lag_p50_s"] is not None else "n/a")
    print(f"inbox: accepted {i['accepted']}, processed {i['processed']}, lost {i['lost']}; "
          f"lag {lag}; {i['processed_per_s']:.0f} processed/s; drained "
          f"{s['drain_seconds_after_traffic']} s after traffic; statuses {i['statuses']}")
    print(f"scheduler lease holder: {sch['lease_holder']}; workers that ran the heartbeat job: "
          f"{sch['heartbeat_runners']}; /metrics {s['metrics_status']} "
          f"({s['metrics_series']} shopkeeper_* lines)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default=os.environ.get("SHOPKEEPER_TEST_POSTGRES_URL"),
                    help="PostgreSQL server (default: a throwaway cluster)")
    ap.add_argument("--datasets", type=lambda v: v.split(","), default=list(DATASETS))
    ap.add_argument("--lines", type=int, default=30000, help="order lines per shop (sampled)")
    ap.add_argument("-w", "--web-workers", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker")
    ap.add_argument("-m", "--inbox-workers", type=int, default=2)
    ap.add_argument("--webhooks", type=int, default=20000, help="max webhook deliveries")
    ap.add_argument("--recs", type=int, default=20000, help="max recommendation requests")
    ap.add_argument("--duration", type=float, default=60.0, help="max seconds of mixed load")
    ap.add_argument("--webhook-clients", type=int, default=4)
    ap.add_argument("--rec-clients", type=int, default=4)
    ap.add_argument("--bare-requests", type=int, default=5000)
    ap.add_argument("--bare-duration", type=float, default=20.0)
    ap.add_argument("--drain-timeout", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the summary as JSON here")
    ap.add_argument("--keep-db", action="store_true", help="keep the benchmark database")
    args = ap.parse_args(argv)
    if args.database_url:
        summary = run(args, args.database_url)
    else:
        with postgres_server() as server:
            summary = run(args, server)
    print_report(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    codes_ok = all(set(summary[k]["codes"]) == {200} for k in ("bare", "webhooks",
                                                               "recommendations"))
    ok = (summary["inbox"]["lost"] == 0 and codes_ok
          and summary["scheduler"]["heartbeat_runners"] == 1)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
