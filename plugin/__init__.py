"""Shopkeeper: a personalization plugin for headless storefronts (Flask app factory)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from plugin.config import DEV_PUBLIC_URL, DEV_SECRET_KEY, Config

__version__ = "0.1.0"


def create_app(config: type | dict[str, Any] | None = None) -> Flask:
    """Build an app: defaults, then ``SHOPKEEPER_*`` environment, then ``config`` overrides."""
    from plugin import errors, guards, logs, metrics
    from plugin.extensions import db

    app = Flask(__name__)
    app.config.from_object(Config)
    app.config.from_prefixed_env("SHOPKEEPER")
    for key in dir(Config):  # text settings stay text: a numeric-looking secret is no int
        raw = os.environ.get(f"SHOPKEEPER_{key}")
        if raw is not None and isinstance(getattr(Config, key), str):
            app.config[key] = raw
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)
    # one byte over the limit: a chunked body (no Content-Length) is cut at this length, and
    # only a cut one byte past the limit lets the webhook view see it was too large (413)
    app.config["MAX_CONTENT_LENGTH"] = app.config["WEBHOOK_MAX_BYTES"] + 1
    if is_on(app.config.get("REQUIRE_PRODUCTION_SECRETS")) and not app.testing:
        check_production_secrets(app.config)
    # merged under the operator's options (pool sizes, say): replaced, the pre-ping went,
    # and each process failed a request on a dead pooled connection after a database restart
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        "pool_pre_ping": True, **(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})}
    if str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = _postgres_timeouts(
            app.config["SQLALCHEMY_ENGINE_OPTIONS"])
    app.instance_path = str(Path(app.config["INSTANCE_DIR"]).resolve())
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    hops = int(app.config.get("PROXY_HOPS") or 0)
    if hops > 0:  # trust exactly this many proxies' X-Forwarded-For / -Proto, no more
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(_plain_client_address(app.wsgi_app),  # type: ignore[method-assign]
                                x_for=hops, x_proto=hops)
    from plugin.api.proxy_methods import method_override

    app.wsgi_app = method_override(app.wsgi_app)  # type: ignore[method-assign]
    logs.init_app(app)
    db.init_app(app)
    errors.init_app(app)
    guards.init_app(app)
    metrics.init_app(app)
    _register_blueprints(app)

    return app


def is_on(value: Any) -> bool:
    """A switch from the environment: "false", "False", "0", "no", "off" and "" are off
    (``from_prefixed_env`` parses only JSON's lower-case ``false``)."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "off")
    return bool(value)


#: libpq defaults for every PostgreSQL connection unless the engine options set their own:
#: without them a database host that black-holes packets (failover, network split) hangs
#: each request, /readyz included, until the kernel gives the TCP connection up.
POSTGRES_CONNECT_ARGS = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 30,
                         "keepalives_interval": 10, "keepalives_count": 3}


def _postgres_timeouts(options: dict[str, Any]) -> dict[str, Any]:
    connect_args = {**POSTGRES_CONNECT_ARGS, **(options.get("connect_args") or {})}
    return {**options, "connect_args": connect_args}


def check_production_secrets(config: dict[str, Any]) -> None:
    """Raise unless the keys a production server signs and encrypts with were set, and the
    public URL platforms are told to call (webhooks, install redirects) is this server's."""
    from urllib.parse import urlsplit

    from cryptography.fernet import Fernet

    problems = []
    secret = str(config.get("SECRET_KEY") or "")
    if secret == DEV_SECRET_KEY or len(secret) < 32:
        problems.append("SHOPKEEPER_SECRET_KEY (at least 32 random characters)")
    if not config.get("CREDENTIALS_KEY"):
        problems.append("SHOPKEEPER_CREDENTIALS_KEY (a Fernet key)")
    else:
        try:
            Fernet(config["CREDENTIALS_KEY"])
        except (ValueError, TypeError):  # never echo the value: it is a secret
            problems.append("SHOPKEEPER_CREDENTIALS_KEY (the value set is not a Fernet key: "
                            "32 url-safe base64-encoded bytes)")
    public = str(config.get("PUBLIC_URL") or "")
    parts = urlsplit(public)
    if public == DEV_PUBLIC_URL or parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append("SHOPKEEPER_PUBLIC_URL (this server's public base URL, e.g. "
                        "https://recs.example.com: webhook and install URLs sent to the "
                        "platforms are built from it)")
    if config.get("SQLALCHEMY_DATABASE_URI") == Config.SQLALCHEMY_DATABASE_URI:
        problems.append("SHOPKEEPER_SQLALCHEMY_DATABASE_URI (e.g. postgresql+psycopg://user:"
                        "password@host/shopkeeper, the same on every node; an explicit "
                        "sqlite:////path only for one process on one machine)")
    if problems:
        raise RuntimeError(
            "refusing to serve with the public development keys or settings: set "
            + " and ".join(problems) + ", e.g. python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))' and python -c 'from cryptography.fernet "
            "import Fernet; print(Fernet.generate_key().decode())'")


def _register_blueprints(app: Flask) -> None:
    from plugin import demo, health, openapi
    from plugin.api.app_proxy import bp as app_proxy_bp
    from plugin.api.views import bp as api_bp
    from plugin.install.views import bp as install_bp
    from plugin.offers.views import bp as offers_bp
    from plugin.offers.views import proxy_bp as offers_proxy_bp
    from plugin.subprofiles.views import bp as subprofiles_bp
    from plugin.subprofiles.views import proxy_bp as subprofiles_proxy_bp
    from plugin.webhooks.views import bp as webhooks_bp

    app.register_blueprint(webhooks_bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(demo.bp)
    from plugin.admin.views import init_app as init_admin

    init_admin(app)
    app.register_blueprint(api_bp)
    app.register_blueprint(app_proxy_bp)
    app.register_blueprint(offers_bp)
    app.register_blueprint(subprofiles_bp)
    app.register_blueprint(offers_proxy_bp)
    app.register_blueprint(subprofiles_proxy_bp)
    app.register_blueprint(install_bp)
    if app.config.get("BENCH_BARE_ENDPOINT"):
        from plugin.bench_bare import bp as bench_bp

        app.register_blueprint(bench_bp)


def _plain_client_address(wsgi_app: Any) -> Any:
    """Inside ``ProxyFix``: a forwarded client address that is not an IP address (a client
    writing its own header when no proxy is in front) gives way to the connection's."""
    import ipaddress

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        try:
            ipaddress.ip_address(str(environ.get("REMOTE_ADDR", "")))
        except ValueError:
            original = environ.get("werkzeug.proxy_fix.orig") or {}
            environ["REMOTE_ADDR"] = original.get("REMOTE_ADDR")
        return wsgi_app(environ, start_response)

    return app
