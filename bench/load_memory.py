"""Peak memory of ``training.load_interactions`` on a generated large shop.

    python bench/load_memory.py [--rows 1000000] [--db /tmp/sk-load-memory.db] [--rss]

The database is generated once (SQLite) and reused. Reports the Python-allocated peak
(tracemalloc, numpy's buffers included) while loading, the size of the result and the time.
"""

from __future__ import annotations

import argparse
import random
import resource
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", default="/tmp/sk-load-memory.db")
    parser.add_argument("--rss", action="store_true", help="max RSS instead of tracemalloc")
    args = parser.parse_args()
    import sqlalchemy as sa

    from plugin import create_app
    from plugin.api.model_store import deep_nbytes
    from plugin.config import TestConfig
    from plugin.extensions import db
    from plugin.models import Interaction, Product, Shop
    from plugin.training import load_interactions

    settings = {k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()}
    settings.update(SQLALCHEMY_DATABASE_URI=f"sqlite:///{args.db}",
                    MODEL_DIR="/tmp/sk-load-memory-models", INSTANCE_DIR="/tmp/sk-load-memory")
    fresh = not Path(args.db).exists()
    app = create_app(settings)
    with app.app_context():
        if fresh:
            db.create_all()
            from plugin import shops

            shop = shops.create_shop("generic", "big.example")
            db.session.commit()
            rng = random.Random(7)
            n_items, n_shoppers = 20_000, args.rows // 10
            db.session.execute(sa.insert(Product), [
                dict(shop_id=shop.id, external_id=f"sku-{i:06d}", title=f"Product {i}",
                     price=Decimal("9.99"), available=True, categories=["c"], tags=[],
                     source_updated_at=datetime(2025, 1, 1, tzinfo=UTC))
                for i in range(n_items)])
            t0, batch, order = datetime(2025, 1, 1, tzinfo=UTC), [], 0
            while order * 4 < args.rows:
                shopper = f"cust-{rng.randrange(n_shoppers):07d}"
                at = t0 + timedelta(minutes=order)
                for _ in range(4):
                    batch.append(dict(shop_id=shop.id, shopper_id=shopper, kind="purchase",
                                      product_external_id=f"sku-{rng.randrange(n_items):06d}",
                                      quantity=1, price=Decimal("12.50"), context={},
                                      order_external_id=f"order-{order:08d}", occurred_at=at))
                order += 1
                if len(batch) >= 50_000:
                    db.session.execute(sa.insert(Interaction), batch)
                    batch.clear()
            if batch:
                db.session.execute(sa.insert(Interaction), batch)
            db.session.commit()
        shop_id = db.session.scalar(sa.select(Shop.id))
        if args.rss:  # no tracemalloc (it slows the load and adds its own memory)
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.perf_counter()
            data = load_interactions(shop_id)
            seconds = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(f"rows {len(data):,}: max RSS {before / 1024:,.0f} MiB before loading, "
                  f"{after / 1024:,.0f} MiB after (+{(after - before) / 1024:,.0f}), "
                  f"{seconds:.1f} s")
            return
        from plugin.engine.data import Interactions

        build, reading = Interactions.from_arrays.__func__, []

        def measured(cls, *a, **k):  # the peak while reading rows, then while building
            reading.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.reset_peak()
            return build(cls, *a, **k)

        Interactions.from_arrays = classmethod(measured)
        tracemalloc.start()
        started = time.perf_counter()
        data = load_interactions(shop_id)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"rows {len(data):,}, shoppers {data.n_users:,}, items {data.n_items:,}: "
              f"peak {max(reading[0], peak) / 2**20:,.0f} MiB while loading "
              f"(reading rows {reading[0] / 2**20:,.0f}, Interactions.from_arrays "
              f"{peak / 2**20:,.0f}), result {deep_nbytes(data) / 2**20:,.0f} MiB, "
              f"{seconds:.1f} s (tracemalloc on)")


if __name__ == "__main__":
    main()
