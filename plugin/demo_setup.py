"""`shopkeeper demo`: a ready-to-browse shop built from the bundled Online Retail sample."""

from __future__ import annotations

import logging
import sys
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from werkzeug.serving import WSGIRequestHandler

from plugin import migrate, shops
from plugin.extensions import db
from plugin.ingestion.importer import import_history
from plugin.logs import anonymize_ip
from plugin.models import Order, Shop
from plugin.models.types import utcnow

DEMO_DOMAIN = "demo.shopkeeper.local"
DATA_DIR = Path(__file__).resolve().parent / "demo_data"
ORDERS_FILE = DATA_DIR / "online_retail_sample_orders.csv.gz"
CATALOG_FILE = DATA_DIR / "online_retail_sample_catalog.csv.gz"

log = logging.getLogger("shopkeeper.demo")


def prepare_demo(*, progress: bool = False, host: str = "127.0.0.1", port: int = 5000) -> Shop:
    """Migrate, create the demo shop once, import and train once (re-runs are cheap).

    The storefront's origin (``host:port``) is allowed for the widgets on every run, so
    ``shopkeeper demo --port N`` works too.
    """
    migrate.upgrade()
    shop = db.session.scalar(sa.select(Shop).filter_by(platform="generic", domain=DEMO_DOMAIN))
    if shop is None:
        shop = shops.create_shop("generic", DEMO_DOMAIN)
        db.session.commit()
    origins = {f"http://{host}:{port}", f"http://localhost:{port}", f"http://127.0.0.1:{port}"}
    allowed = set((shop.settings or {}).get("allowed_origins", []))
    if not origins <= allowed:
        shops.update_settings(shop.id, lambda settings: {**settings, "allowed_origins": sorted(
            set(settings.get("allowed_origins", [])) | origins)})
        db.session.commit()
    has_orders = db.session.scalar(sa.select(sa.func.count()).select_from(Order)
                                   .where(Order.shop_id == shop.id))
    if not has_orders:
        # the 2011 sample, moved to end yesterday: recent enough for the dashboard's
        # window and for "you usually reorder this every ~N days" to be due now
        import_history(shop.id, ORDERS_FILE, CATALOG_FILE, currency="GBP", progress=progress,
                       ends_at=utcnow() - timedelta(days=1))
    _train_if_available(shop, progress)
    return shop


def _train_if_available(shop: Shop, progress: bool) -> None:
    """Train once; later runs serve the model kept in the instance directory (the demo's
    in-process worker retrains it when it is due, like any shop's)."""
    try:
        from plugin.api.sources import active_version
        from plugin.training import train_shop
    except ImportError:
        log.warning("demo.training_unavailable")
        return
    if active_version(shop.id) is not None:
        return
    if progress:
        print("training the demo shop's model (a minute or two on 2 cores)...",
              file=sys.stderr, flush=True)
    train_shop(shop.id, show_progress=progress)


class RequestHandler(WSGIRequestHandler):
    """The development server's request log written as gunicorn's access log is
    (``plugin.gunicorn_conf``): the client's network (``anonymize_ip``), not its address,
    which identifies a shopper; the path without its query string, which may carry a
    credential (a signed admin link, an OAuth code)."""

    def address_string(self) -> str:
        return anonymize_ip(super().address_string())

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        full = getattr(self, "path", None)
        if full is None:  # a bad request line: werkzeug would log it whole
            self.log("info", '"-" %s %s', code, size)
            return
        self.path = full.partition("?")[0]
        try:
            super().log_request(code, size)
        finally:
            self.path = full

    def log(self, type: str, message: str, *args: object) -> None:
        """Every line, errors too: ``log_error`` quotes a bad request line whole ("Bad
        request syntax ('GET /admin?token=... x HTTP/1.1')"); a text with a query is cut
        at its "?" (the query may hold spaces, so where it ends is unknown)."""
        super().log(type, message, *(_without_query(a) for a in args))


def _without_query(arg: object) -> object:
    """``arg`` (a number for ``%d`` stays one), its text cut at a "?"."""
    if isinstance(arg, int | float) or "?" not in (text := str(arg)):
        return arg
    return text.partition("?")[0] + "?…"


def serve(app: Flask, *, host: str, port: int) -> None:
    """Development server plus the in-process inbox worker."""
    from werkzeug.serving import run_simple

    from plugin.jobs import start_background

    worker = start_background(app)
    try:  # not app.run(): Flask ignores it inside its own CLI
        run_simple(host, port, app, threaded=True, use_reloader=False,
                   request_handler=RequestHandler)
    finally:
        worker.stop()
