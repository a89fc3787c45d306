"""Health, readiness, metrics and structured logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from plugin import migrate
from plugin.extensions import db
from plugin.logs import JsonFormatter, RedactingFilter
from tests.factories import empty_schema, post_webhook, product_body


def test_healthz_answers_without_the_database(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_fails_until_migrations_are_applied(app, client):
    r = client.get("/readyz")  # tables exist (create_all) but no alembic revision recorded
    assert r.status_code == 503 and "migrations" in r.get_json()["errors"]
    with empty_schema():
        migrate.upgrade()
        r = client.get("/readyz")
        assert r.status_code == 200 and r.get_json()["status"] == "ready"


def test_readyz_reads_the_migration_scripts_once_per_process(app, client, monkeypatch):
    """The load balancer polls /readyz every few seconds on every node: parsing every
    migration script on each call cost ~10 ms of CPU (50x /healthz)."""
    from plugin import health

    health.expected_heads.cache_clear()
    real, calls = health.ScriptDirectory.from_config, []
    monkeypatch.setattr(health.ScriptDirectory, "from_config",
                        lambda cfg: calls.append(1) or real(cfg))
    for _ in range(3):
        client.get("/readyz")
    assert len(calls) == 1


def test_readyz_fails_when_the_database_is_down(app, client):
    engines = app.extensions["sqlalchemy"]._app_engines[app]
    good = engines[None]
    engines[None] = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none",
                                     connect_args={"connect_timeout": 1})
    try:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.get_json()["errors"] == {"database": ["OperationalError"]}
    finally:
        engines[None] = good


def test_metrics_expose_latency_inbox_depth_and_age(client, shop, shop_secret):
    post_webhook(client, shop.id, shop_secret, "products/upsert", product_body())
    client.get("/healthz")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'shopkeeper_request_seconds_count{endpoint="health.healthz"' in text
    assert 'shopkeeper_inbox_deliveries{status="pending"} 1.0' in text
    assert "shopkeeper_inbox_oldest_pending_seconds" in text


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers[
        "X-Request-Id"] == "abc-123"
    assert len(client.get("/healthz").headers["X-Request-Id"]) == 32


def test_an_incoming_request_id_that_would_break_the_json_access_log_is_replaced(client):
    """gunicorn's access log escapes a quote but not a backslash: a client sending
    X-Request-Id: x\\ (or \\") made its own line invalid JSON, dropped by log shippers."""
    for hostile in ('x\\', '\\",\\"status\\":200', "a b", "é"):
        echoed = client.get("/healthz", headers={"X-Request-Id": hostile}).headers[
            "X-Request-Id"]
        assert echoed != hostile and len(echoed) == 32
    for fine in ("abc-123", "0f8e.7a:b_c", "Root=1-67891233-abcdef012345678912345678"):
        assert client.get("/healthz", headers={"X-Request-Id": fine}).headers[
            "X-Request-Id"] == fine


def test_json_log_lines_carry_ids_and_no_secrets():
    record = logging.LogRecord("shopkeeper.x", logging.INFO, __file__, 1, "webhook.stored",
                               None, None)
    record.shop_id, record.webhook_secret, record.request_id = "shp_1", "whsec_x", "r1"
    RedactingFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "webhook.stored" and line["shop_id"] == "shp_1"
    assert line["request_id"] == "r1" and line["webhook_secret"] == "[redacted]"
    assert "whsec_x" not in json.dumps(line)


def test_metrics_need_the_scrape_token_when_one_is_set(app, client):
    app.config["METRICS_TOKEN"] = "scrape-token-0123456789"
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "scrape token" in wrong.get_json()["message"]
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-0123456789"})
    assert ok.status_code == 200 and b"shopkeeper_database_up" in ok.data


def test_metrics_still_answer_when_the_database_is_down(app, client):
    engines = app.extensions["sqlalchemy"]._app_engines[app]
    good = engines[None]
    engines[None] = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none",
                                     connect_args={"connect_timeout": 1})
    try:
        r = client.get("/metrics")
        assert r.status_code == 200
        assert "shopkeeper_database_up 0.0" in r.get_data(as_text=True)
    finally:
        engines[None] = good


def test_the_access_log_never_records_query_strings():
    """Signed admin links, Shopify id_tokens and OAuth codes travel in query strings."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger, SafeAtoms

    from plugin import gunicorn_conf

    class Req:
        method, path, query = "GET", "/admin/login", "shop=s&sig=SECRET"
        uri = f"{path}?{query}"
        version = (1, 1)
        headers: list = []

    class Resp:
        status, headers, sent, response_length = "302 FOUND", [], 0, 0

    cfg = Config()
    cfg.set("access_log_format", gunicorn_conf.access_log_format)
    import datetime as dt
    environ = {"REMOTE_ADDR": "1.2.3.4", "REQUEST_METHOD": "GET", "RAW_URI": Req.uri,
               "PATH_INFO": Req.path, "QUERY_STRING": Req.query, "SERVER_PROTOCOL": "HTTP/1.1"}
    atoms = Logger(cfg).atoms(Resp(), Req(), environ,
                              dt.timedelta(milliseconds=5))
    line = gunicorn_conf.access_log_format % SafeAtoms(atoms)
    assert "SECRET" not in line and '"path":"/admin/login"' in line


@pytest.mark.parametrize(("client", "logged"), [
    ("203.0.113.77", "203.0.113.0"), ("2001:db8:abcd:12:34::1", "2001:db8:abcd::"),
    ("::ffff:203.0.113.77", "203.0.113.0"), ("not-an-address", "-")])
def test_the_access_log_keeps_only_the_clients_network(client, logged):
    """A client's IP address is personal data and the access log is kept and shipped
    whole: gunicorn, configured from gunicorn_conf.py, logs its /24 (IPv4) or /48 (IPv6)."""
    import datetime as dt

    from gunicorn.config import Config
    from gunicorn.glogging import SafeAtoms

    from plugin import gunicorn_conf

    cfg = Config()
    for name, value in vars(gunicorn_conf).items():  # as gunicorn -c python:... does
        if name in cfg.settings:
            cfg.set(name, value)

    class Req:
        headers: list = []

    class Resp:
        status, headers, sent = "200 OK", [], 0

    environ = {"REMOTE_ADDR": client, "REQUEST_METHOD": "GET", "RAW_URI": "/healthz",
               "PATH_INFO": "/healthz", "SERVER_PROTOCOL": "HTTP/1.1"}
    atoms = cfg.logger_class(cfg).atoms(Resp(), Req(), environ, dt.timedelta(milliseconds=5))
    line = json.loads(cfg.access_log_format % SafeAtoms(atoms))
    assert line["remote"] == logged


def test_production_refuses_the_public_development_keys():
    from cryptography.fernet import Fernet

    from plugin import create_app

    with pytest.raises(RuntimeError) as refused:
        create_app({"REQUIRE_PRODUCTION_SECRETS": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert "SHOPKEEPER_SECRET_KEY" in str(refused.value)
    assert "SHOPKEEPER_CREDENTIALS_KEY" in str(refused.value)
    with pytest.raises(RuntimeError, match="SHOPKEEPER_SECRET_KEY"):  # too short to be random
        create_app({"REQUIRE_PRODUCTION_SECRETS": True, "SECRET_KEY": "hunter2",
                    "CREDENTIALS_KEY": Fernet.generate_key().decode()})
    app = create_app({"REQUIRE_PRODUCTION_SECRETS": True, "SECRET_KEY": "k" * 48,
                      "CREDENTIALS_KEY": Fernet.generate_key().decode(),
                      "PUBLIC_URL": "https://recs.example.com",
                      "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SECRET_KEY"] == "k" * 48


@pytest.mark.parametrize("spelled", ["false", "False", "0", "no", "OFF"])
def test_the_production_check_is_switched_off_by_any_usual_spelling(spelled, tmp_path):
    """``from_prefixed_env`` turns only JSON ``false`` into False: "False" stayed a truthy
    string, so the app enforced the check that ``shopkeeper worker`` had skipped."""
    from plugin import create_app, is_on

    assert not is_on(spelled) and is_on("true") and is_on(True) and not is_on(None)
    app = create_app({"REQUIRE_PRODUCTION_SECRETS": spelled, "SQLALCHEMY_DATABASE_URI":
                      "sqlite://", "INSTANCE_DIR": str(tmp_path)})
    assert app.config["SECRET_KEY"]  # started on the development settings, as asked
    with pytest.raises(RuntimeError, match="SHOPKEEPER_SECRET_KEY"):
        create_app({"REQUIRE_PRODUCTION_SECRETS": "True", "SQLALCHEMY_DATABASE_URI":
                    "sqlite://", "INSTANCE_DIR": str(tmp_path)})


def test_gunicorn_with_the_development_keys_does_not_start(tmp_path):
    """`shopkeeper serve` is gunicorn with plugin/gunicorn_conf.py: it must exit, not serve."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("SHOPKEEPER_SECRET_KEY", "SHOPKEEPER_CREDENTIALS_KEY")}
    env.update(SHOPKEEPER_INSTANCE_DIR=str(tmp_path), SHOPKEEPER_BIND="127.0.0.1:0",
               SHOPKEEPER_WEB_WORKERS="1", PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "python:plugin.gunicorn_conf",
                           "plugin:create_app()"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=str(Path(__file__).resolve().parents[1]))
    assert done.returncode != 0
    assert "refusing to serve with the public development keys" in done.stderr


def test_production_refuses_an_unset_public_url_and_a_malformed_credentials_key():
    """Webhook URLs registered on platforms (and rewritten daily for Saleor by the worker)
    are built from PUBLIC_URL: the default would point every shop at 127.0.0.1. A key that
    is no Fernet key would only fail at the first install or sync."""
    from cryptography.fernet import Fernet

    from plugin import check_production_secrets

    good = {"SECRET_KEY": "k" * 48, "CREDENTIALS_KEY": Fernet.generate_key().decode(),
            "PUBLIC_URL": "https://recs.example.com"}
    check_production_secrets(good)
    with pytest.raises(RuntimeError, match="SHOPKEEPER_PUBLIC_URL"):
        check_production_secrets({**good, "PUBLIC_URL": "http://127.0.0.1:5000"})  # default
    with pytest.raises(RuntimeError, match="SHOPKEEPER_PUBLIC_URL"):
        check_production_secrets({**good, "PUBLIC_URL": "recs.example.com"})  # no scheme
    with pytest.raises(RuntimeError, match="SHOPKEEPER_CREDENTIALS_KEY") as refused:
        check_production_secrets({**good, "CREDENTIALS_KEY": "not-a-fernet-key"})
    assert "not-a-fernet-key" not in str(refused.value)  # the message never echoes a secret


def test_the_worker_does_not_start_on_the_development_settings(tmp_path):
    """The worker applies deliveries (email hashes keyed by SECRET_KEY), decrypts platform
    credentials and re-registers Saleor webhooks at PUBLIC_URL: started without the
    production settings it must exit, like `shopkeeper serve`, not run on the public ones."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("SHOPKEEPER_SECRET_KEY", "SHOPKEEPER_CREDENTIALS_KEY",
                        "SHOPKEEPER_PUBLIC_URL", "SHOPKEEPER_REQUIRE_PRODUCTION_SECRETS")}
    env.update(SHOPKEEPER_INSTANCE_DIR=str(tmp_path))
    try:
        done = subprocess.run([sys.executable, "-m", "plugin.cli", "worker"], env=env,
                              capture_output=True, text=True, timeout=30,
                              cwd=str(Path(__file__).resolve().parents[1]))
    except subprocess.TimeoutExpired:
        pytest.fail("the worker ran with the development keys")
    assert done.returncode != 0
    assert "SHOPKEEPER_SECRET_KEY" in done.stderr and "SHOPKEEPER_PUBLIC_URL" in done.stderr
    # and a developer trying it locally learns the documented switch
    assert "SHOPKEEPER_REQUIRE_PRODUCTION_SECRETS=false" in done.stderr


def test_readyz_answers_503_soon_when_the_database_accepts_but_never_answers(tmp_path):
    """A database host that black-holes connections (failover, network split) hung
    /readyz, and every request that needed a connection, for as long as the kernel kept
    the TCP connection alive: PostgreSQL connections had no connect timeout."""
    import socket
    import threading
    import time

    from plugin import create_app

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []
    threading.Thread(target=lambda: [held.append(server.accept()) for _ in range(8)],
                     daemon=True).start()
    app = create_app({"SQLALCHEMY_DATABASE_URI":
                      f"postgresql+psycopg://u@127.0.0.1:{server.getsockname()[1]}/db",
                      "INSTANCE_DIR": str(tmp_path), "LOG_FORMAT": "plain"})
    answer = {}

    def probe():
        started = time.monotonic()
        answer["status"] = app.test_client().get("/readyz").status_code
        answer["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(30)
    server.close()
    assert answer.get("status") == 503, "readyz still hanging after 30 s"
    assert answer["seconds"] < 15


def test_production_refuses_the_default_sqlite_database():
    """Without SHOPKEEPER_SQLALCHEMY_DATABASE_URI each node silently wrote to its own
    instance/shopkeeper.db: the web nodes only answered 503 (schema not migrated) and the
    workers ran the scheduler on an empty database."""
    from cryptography.fernet import Fernet

    from plugin import check_production_secrets
    from plugin.config import Config

    good = {"SECRET_KEY": "k" * 48, "CREDENTIALS_KEY": Fernet.generate_key().decode(),
            "PUBLIC_URL": "https://recs.example.com",
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://sk:pw@db.internal/sk"}
    check_production_secrets(good)
    check_production_secrets({**good, "SQLALCHEMY_DATABASE_URI": "sqlite:////srv/sk.db"})
    with pytest.raises(RuntimeError, match="SHOPKEEPER_SQLALCHEMY_DATABASE_URI"):
        check_production_secrets({**good,
                                  "SQLALCHEMY_DATABASE_URI": Config.SQLALCHEMY_DATABASE_URI})


def test_connect_args_the_operator_sets_win_over_the_postgres_defaults(tmp_path):
    """b8c55ae: the libpq timeouts are merged *under* SHOPKEEPER_SQLALCHEMY_ENGINE_OPTIONS'
    connect_args, so an operator's own connect_timeout (or options) is kept."""
    from plugin import POSTGRES_CONNECT_ARGS, create_app

    app = create_app({
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://u@127.0.0.1:1/db",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "connect_args": {
            "connect_timeout": 2, "options": "-c statement_timeout=5000"}},
        "INSTANCE_DIR": str(tmp_path), "LOG_FORMAT": "plain"})
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["pool_pre_ping"] is True
    assert options["connect_args"] == {**POSTGRES_CONNECT_ARGS, "connect_timeout": 2,
                                       "options": "-c statement_timeout=5000"}


def test_engine_options_the_operator_sets_keep_the_pre_ping(database_url, tmp_path):
    """SHOPKEEPER_SQLALCHEMY_ENGINE_OPTIONS set for pool sizes only used to replace the
    default, pre-ping included: after a database restart each process then failed a
    request (a webhook answered 500, a worker burnt an attempt) on a dead pooled
    connection. PostgreSQL: the server ends that connection, the next query still works."""
    from plugin import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_DIR": str(tmp_path),
                      "LOG_FORMAT": "plain",
                      "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 2, "max_overflow": 0}})
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is True
    with app.app_context():
        try:
            if db.engine.dialect.name == "postgresql":
                with db.engine.connect() as conn:  # the pool's idle connection: to be killed
                    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
                killer = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
                with killer.connect() as conn:
                    assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"),
                                        {"p": pid}).scalar()
                killer.dispose()
            assert db.session.execute(sa.text("SELECT 2")).scalar() == 2
        finally:
            db.session.remove()
            db.engine.dispose()


def test_an_operator_may_still_turn_the_pre_ping_off(tmp_path):
    from plugin import create_app

    app = create_app({"INSTANCE_DIR": str(tmp_path), "LOG_FORMAT": "plain",
                      "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False}})
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is False
