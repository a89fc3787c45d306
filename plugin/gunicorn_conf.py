"""Production gunicorn settings (``shopkeeper serve`` uses them; override with env vars).

    gunicorn -c python:plugin.gunicorn_conf 'plugin:create_app()'
"""

import multiprocessing
import os
import tempfile
from typing import Any

from gunicorn.glogging import Logger

from plugin.logs import anonymize_ip

bind = os.environ.get("SHOPKEEPER_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("SHOPKEEPER_WEB_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("SHOPKEEPER_WEB_THREADS", 2))  # gthread: I/O waits overlap
worker_class = "gthread" if threads > 1 else "sync"
timeout = 30  # webhook senders give up after 5-20 s; never hold a request longer
graceful_timeout = 30
keepalive = 5
max_requests = 5000  # recycle workers to bound memory growth
max_requests_jitter = 500
accesslog = "-"
# method and path only: query strings carry credentials (signed admin links, Shopify's
# id_token, OAuth codes) that anyone reading the log could replay; "remote" is the
# client's network only (AccessLogger)
access_log_format = (
    '{"remote":"%(h)s","method":"%(m)s","path":"%(U)s","status":%(s)s,"ms":%(M)s,'
    '"request_id":"%({x-request-id}o)s"}'
)


class AccessLogger(Logger):
    """gunicorn's logger with the client address cut to its network (``anonymize_ip``):
    a shopper's IP address is personal data, and access logs are kept and shipped whole."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any
              ) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["h"] = anonymize_ip(str(atoms["h"]))
        return atoms


logger_class = AccessLogger
forwarded_allow_ips = os.environ.get("SHOPKEEPER_FORWARDED_ALLOW_IPS", "127.0.0.1")

# Prometheus in multi-process mode: every worker writes its samples to this directory and
# /metrics aggregates them, so a scrape sees all workers, not a random one.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR",
                      tempfile.mkdtemp(prefix="shopkeeper-prom-"))
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def on_starting(server: Any) -> None:
    """A production server never starts on the public development keys (config.py): the
    workers, forked after this, build the app with the check on."""
    os.environ.setdefault("SHOPKEEPER_REQUIRE_PRODUCTION_SECRETS", "true")


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
