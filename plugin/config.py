"""Settings with commented defaults; every one can be overridden by ``SHOPKEEPER_<NAME>``."""

from __future__ import annotations

import os
from pathlib import Path

# absolute: Flask-SQLAlchemy reads a relative SQLite path against the instance folder, so a
# relative SHOPKEEPER_INSTANCE_DIR put the database in <dir>/<dir>/
_INSTANCE = Path(os.environ.get("SHOPKEEPER_INSTANCE_DIR", Path.cwd() / "instance")).resolve()


#: the public development key: a production server refuses it (REQUIRE_PRODUCTION_SECRETS)
DEV_SECRET_KEY = "dev-only-change-me"
#: the local default: a production server refuses it (platforms would be sent here)
DEV_PUBLIC_URL = "http://127.0.0.1:5000"


class Config:
    """Defaults for a local, single-machine install (SQLite in ``instance/``)."""

    # Directory for the SQLite database, model artifacts and privacy exports.
    INSTANCE_DIR = str(_INSTANCE)
    # Database URL. SQLite by default; PostgreSQL in production, e.g.
    # postgresql+psycopg://user:pass@host/shopkeeper
    SQLALCHEMY_DATABASE_URI = f"sqlite:///{_INSTANCE / 'shopkeeper.db'}"
    # Flask session/CSRF signing key. MUST be set in production.
    SECRET_KEY = DEV_SECRET_KEY
    # Bearer token Prometheus must send to /metrics (its series name every shop). Empty:
    # /metrics is open, so keep it off the public internet (proxy rule or internal bind).
    METRICS_TOKEN = ""
    # Refuse to start without real SECRET_KEY, CREDENTIALS_KEY and PUBLIC_URL, or on the
    # default SQLite database (gunicorn_conf.py, i.e. `shopkeeper serve`, and `shopkeeper
    # worker` turn this on: the public default key would let anyone forge an admin
    # session, offer tokens and decrypt platform credentials).
    REQUIRE_PRODUCTION_SECRETS = False
    # Fernet key (urlsafe base64, 32 bytes) encrypting platform credentials at rest.
    # Empty: derived from SECRET_KEY (fine for the demo, set it explicitly in production).
    CREDENTIALS_KEY = ""
    # Public base URL of this server, used to print webhook URLs and install redirects.
    PUBLIC_URL = DEV_PUBLIC_URL
    # Largest webhook body accepted, in bytes (larger answers 413).
    WEBHOOK_MAX_BYTES = 1024 * 1024
    # Inbox: rows claimed per worker batch.
    INBOX_BATCH_SIZE = 100
    # Inbox: attempts before a delivery is marked dead (its last error kept).
    INBOX_MAX_ATTEMPTS = 8
    # Demo storefront: the loader's data-timeout (ms the widgets wait for the API). None:
    # the loader's own default (3000), what a merchant's page gets without the attribute.
    DEMO_WIDGET_TIMEOUT_MS: int | None = None
    # Inbox: first retry delay in seconds; doubles per attempt.
    INBOX_RETRY_BASE_SECONDS = 5
    # Inbox: a claimed row whose worker stopped renewing its claim (every quarter of this)
    # this many seconds ago is reclaimed (worker crash).
    INBOX_CLAIM_TIMEOUT_SECONDS = 120
    # Inbox: days an applied ("done") row is kept, only to answer a redelivery as a
    # duplicate; then an hourly job deletes it. Keep it above the platforms' longest retry
    # window (BigCommerce: about 48 h). Dead rows are not deleted: they wait for the admin's
    # retry until the shop's privacy retention closes them.
    INBOX_DONE_RETENTION_DAYS = 14
    # Worker: seconds between inbox polls (and scheduler lease renewals).
    WORKER_POLL_SECONDS = 2
    # Scheduler lease: a standby worker takes over this many seconds after the active one
    # stops renewing (crash). Must be several times WORKER_POLL_SECONDS.
    SCHEDULER_LEASE_SECONDS = 30
    # Hours a shop's previous customer-token secret still verifies customer tokens after
    # the settings page rotated it (the storefront's backend switches over meanwhile).
    CUSTOMER_TOKEN_SECRET_GRACE_HOURS = 24
    # Hours to keep an uninstalled shop's data before deleting it.
    UNINSTALL_RETENTION_HOURS = 48
    # Directory for trained model artifacts.
    MODEL_DIR = str(_INSTANCE / "models")
    # Loaded shop models kept per web worker process: at most this many...
    MODEL_CACHE_MODELS = 8
    # ...and at most this many megabytes by estimate (0: no byte bound). A large grocery
    # shop's model can take a gigabyte, so a count alone could exhaust a worker's memory;
    # the most recently used model always stays loaded, however big.
    MODEL_CACHE_MB = 2048
    # Seconds before a web worker reads a model version again after its files could not
    # be read (serving popular items meanwhile); doubles per failure up to the maximum.
    MODEL_LOAD_RETRY_SECONDS = 30
    MODEL_LOAD_RETRY_MAX_SECONDS = 1800
    # Saleor instances allowed to register this app (comma-separated hostnames; empty =
    # any host whose addresses are all public: no IP literals, no private networks).
    # Installs stored before the public-only flag was kept may reach private addresses
    # only when their host is listed here.
    SALEOR_ALLOWED_DOMAINS = ""
    # Seconds /api/register waits for the Saleor-Api-Url host name to resolve (the public-
    # address check, without an allow-list) before answering 503.
    SALEOR_REGISTER_DNS_TIMEOUT_SECONDS = 3
    # Host names the offers' nudge webhook (offers.nudge_webhook_url) may reach at non-public
    # addresses (comma-separated; development, or the operator's own messaging service);
    # empty = every nudge goes to public addresses only (checked when it is sent). An IP
    # literal that is not public is refused when saved, listed or not.
    NUDGE_PRIVATE_HOSTS = ""
    # Shopify app client id (Partner dashboard).
    SHOPIFY_API_KEY = ""
    # Shopify app client secret: verifies OAuth callbacks, webhooks and session tokens.
    SHOPIFY_API_SECRET = ""
    # Shopper API rate limits ("300 per minute" syntax): all calls of one widget key...
    API_RATE_LIMIT_PER_KEY = "6000 per minute"
    # ...and all calls of one client address.
    API_RATE_LIMIT_PER_CLIENT = "300 per minute"
    # Reverse proxies (load balancers) in front of the app that append X-Forwarded-For and
    # X-Forwarded-Proto; 0 = clients connect directly. Behind one balancer set 1: without
    # it every shopper has the balancer's address and they all share one rate-limit bucket.
    PROXY_HOPS = 0
    # Offers one client address may accept (each creates a discount and spends budget).
    OFFER_ACCEPTS_PER_CLIENT = "20 per hour"
    # ...and through Shopify's app proxy (no shopper's address known there), per shop.
    OFFER_ACCEPTS_PER_PROXIED_SHOP = "300 per hour"
    # Saleor app registrations (/api/register) one client address may attempt: each makes
    # this server call the Saleor-Api-Url it names and wait up to 15 s for the answer.
    SALEOR_REGISTER_PER_CLIENT = "10 per minute"
    # Rate-limit counters: in-process by default; e.g. redis://host:6379 to share them.
    RATELIMIT_STORAGE_URI = "sk-memory://"
    # Items precomputed per shopper by training (the top-N cache).
    RECS_CACHE_SIZE = 50
    # Cached lists older than this (seconds) are recomputed online.
    RECS_CACHE_TTL_SECONDS = 36 * 3600
    # Seconds a web worker reuses a shop's settings/secret, the served model version and
    # the live-product snapshot (0 for the snapshot: query every time).
    API_SHOP_CACHE_SECONDS = 10
    API_VERSION_CACHE_SECONDS = 10
    API_CATALOG_CACHE_SECONDS = 5
    # Impressions are written behind every N seconds (0: inside the request).
    API_IMPRESSION_FLUSH_SECONDS = 1
    # Retrain a shop when its model is older than this many hours...
    RETRAIN_MAX_AGE_HOURS = 24
    # ...or after this many new orders.
    RETRAIN_NEW_ORDERS = 200
    # A fit still running after this many hours was killed (OOM, kill -9): the next fit of
    # the shop marks it failed and deletes its files.
    TRAINING_TIMEOUT_HOURS = 24
    # One fit per shop at a time: a fit holds the shop's lease for this many seconds,
    # renewing it every third of that; a fit killed mid-way frees the shop after it.
    TRAINING_LEASE_SECONDS = 300
    # A shop whose last fits failed or were abandoned (killed mid-fit: OOM) is refitted by
    # the hourly job this many hours after the latest, doubling per failure up to the
    # maximum, and after the other shops.
    RETRAIN_BACKOFF_HOURS = 1
    RETRAIN_BACKOFF_MAX_HOURS = 24
    # The admin runs inside the platform admin's iframe: session cookie SameSite=None;
    # Secure; Partitioned. Set false only for a local, non-embedded admin over plain http.
    ADMIN_EMBEDDED = True
    # Seconds an admin session lasts without a page view (Flask's own default, here
    # explicitly: it is 31 days otherwise, and a setdefault cannot lower a key Flask sets).
    PERMANENT_SESSION_LIFETIME = 3600
    # Optional Redis in front of precomputed recommendations, e.g. redis://localhost:6379/0.
    # Empty: no Redis. When Redis fails, serving falls back to the database.
    REDIS_URL = ""
    # Seconds to skip Redis after it failed (circuit breaker).
    REDIS_RETRY_SECONDS = 30
    # Expose /bench/bare, a do-nothing endpoint used by bench/*.py as the baseline.
    BENCH_BARE_ENDPOINT = False
    # Log level for the "shopkeeper" loggers.
    LOG_LEVEL = "INFO"
    # "json": one JSON object per line on stderr (production); "plain": the host's logging.
    LOG_FORMAT = "json"


class TestConfig(Config):
    """Used by the test-suite; the database URL is set per backend by the fixtures."""

    TESTING = True
    LOG_FORMAT = "plain"  # let pytest's caplog see records
    ADMIN_EMBEDDED = False
    # Impressions written inside the request: no background flush outliving a test's database.
    API_IMPRESSION_FLUSH_SECONDS = 0
    SECRET_KEY = "test-secret"
    INBOX_RETRY_BASE_SECONDS = 1


#: Settings that are secrets: never logged, never shown in diagnostics.
SECRET_SETTINGS = frozenset(
    {"SECRET_KEY", "CREDENTIALS_KEY", "SHOPIFY_API_SECRET", "SQLALCHEMY_DATABASE_URI"}
)
