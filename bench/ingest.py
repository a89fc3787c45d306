"""Webhook ingestion throughput: signed deliveries over HTTP to gunicorn, then the worker.

    python bench/ingest.py --database-url postgresql+psycopg://... [-n 3000] [-c 8] [-w 4]

Prints accepted/s for the webhook endpoint beside the same server's rate for a bare
endpoint that only reads the body (the ratio is the figure), processed/s for the inbox
workers, and the number of lost deliveries (must be 0). ``make bench-ingest`` starts a
throwaway PostgreSQL and runs this.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import free_port, fresh_database, wait_healthy  # noqa: E402


def make_bodies(n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        if i % 3 == 0:
            body = {"id": f"o{i}", "customer_id": f"c{i % 500}", "currency": "GBP",
                    "created_at": "2026-01-01T10:00:00Z", "updated_at": "2026-01-01T10:00:00Z",
                    "lines": [{"product_id": f"p{(i + k) % 800}", "quantity": 1 + k,
                               "price": "3.50"} for k in range(4)]}
            out.append(("orders/upsert", json.dumps(body).encode()))
        else:
            body = {"id": f"p{i % 800}", "title": f"Product {i}", "price": "3.50",
                    "currency": "GBP", "categories": ["Bench"], "tags": ["t"],
                    "description": "A product used by the ingestion benchmark. " * 4,
                    "updated_at": f"2026-01-01T10:{(i // 60) % 60:02d}:{i % 60:02d}Z"}
            out.append(("products/upsert", json.dumps(body).encode()))
    return out


def blast(url_for, payloads, concurrency: int) -> tuple[float, dict[int, int]]:
    """POST every payload with ``concurrency`` threads; return (seconds, status counts)."""
    counts: dict[int, int] = {}
    local = __import__("threading").local()

    def send(item):
        if not hasattr(local, "s"):
            local.s = requests.Session()
        url, data, headers = url_for(item)
        return local.s.post(url, data=data, headers=headers, timeout=30).status_code

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for code in pool.map(send, payloads):
            counts[code] = counts.get(code, 0) + 1
    return time.perf_counter() - start, counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default=os.environ.get("SHOPKEEPER_TEST_POSTGRES_URL"))
    ap.add_argument("-n", type=int, default=3000, help="deliveries to send")
    ap.add_argument("-c", type=int, default=8, help="concurrent client threads")
    ap.add_argument("-w", type=int, default=4, help="gunicorn workers")
    ap.add_argument("--inbox-workers", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sk-bench-"))
    url = (fresh_database(args.database_url, "shopkeeper_bench_ingest") if args.database_url
           else f"sqlite:///{tmp / 'b.db'}")
    env = {**os.environ, "SHOPKEEPER_SQLALCHEMY_DATABASE_URI": url,
           "SHOPKEEPER_INSTANCE_DIR": str(tmp), "SHOPKEEPER_BENCH_BARE_ENDPOINT": "true",
           "SHOPKEEPER_LOG_LEVEL": "WARNING"}
    os.environ.update(env)

    from connectors.generic.webhooks import sign_payload
    from plugin import create_app, migrate, shops
    from plugin.extensions import db
    from plugin.models import WebhookDelivery

    app = create_app()
    with app.app_context():
        migrate.upgrade()
        shop = shops.create_shop("generic", f"bench-{int(time.time())}.example")
        db.session.commit()
        shop_id, secret = shop.id, shops.credentials_for(shop).webhook_secret

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(args.w), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "plugin:create_app()"], cwd=ROOT, env=env)
    try:
        wait_healthy(base)
        payloads = make_bodies(args.n)
        bare_s, bare_codes = blast(
            lambda p: (base + "/bench/bare", p[1], {"Content-Type": "application/json"}),
            payloads, args.c)
        ids = iter(range(10**9))

        def signed(p):
            topic, body = p
            headers = sign_payload(secret, body, topic=topic, delivery_id=f"bench-{next(ids)}")
            headers["Content-Type"] = "application/json"
            return base + f"/webhooks/generic/{shop_id}", body, headers

        hook_s, hook_codes = blast(signed, payloads, args.c)
    finally:
        server.terminate()
        server.wait(60)  # under load gunicorn needs > 10 s to stop its workers

    start = time.perf_counter()
    workers = [subprocess.Popen([sys.executable, "-m", "plugin.cli", "worker", "--once"],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
               for _ in range(args.inbox_workers)]
    for w in workers:
        w.wait()
    proc_s = time.perf_counter() - start

    import sqlalchemy as sa

    with app.app_context():
        by_status = {status: n for status, n in db.session.execute(
            sa.select(WebhookDelivery.status, sa.func.count()).group_by(WebhookDelivery.status))}
    accepted = hook_codes.get(200, 0)
    done = by_status.get("done", 0)
    lost = args.n - done
    print(f"database: {url.split('@')[-1] if '@' in url else url}   gunicorn workers: {args.w}"
          f"   client threads: {args.c}   deliveries: {args.n}")
    print(f"{'endpoint':<28}{'req/s':>10}{'status codes':>24}")
    print(f"{'bare (reads body only)':<28}{args.n / bare_s:>10.0f}{bare_codes!s:>24}")
    print(f"{'webhook (verify+store)':<28}{args.n / hook_s:>10.0f}{hook_codes!s:>24}")
    print(f"ratio webhook/bare: {(args.n / hook_s) / (args.n / bare_s):.2f}")
    print(f"processed/s ({args.inbox_workers} inbox workers): {done / proc_s:.0f}"
          f"   inbox: {by_status}")
    print(f"accepted: {accepted}   processed: {done}   lost: {lost}")
    return 0 if lost == 0 and accepted == args.n else 1


if __name__ == "__main__":
    raise SystemExit(main())
