"""Structured logs: one JSON object per line with dotted event names, the request id and
shop id, and an explicit redaction list so no secret or personal data reaches a log."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import sys
import uuid

from flask import Flask, g, has_request_context, request
from flask.wrappers import Response

#: Keys whose values never reach a log line (Home Assistant's diagnostics REDACT idea).
REDACT = frozenset({"access_token", "webhook_secret", "secret", "password", "email",
                    "authorization", "token", "credentials", "api_secret", "customer_token",
                    "customer_token_secret", "customer_token_secret_previous"})

#: An incoming X-Request-Id is kept only when it is this tame: gunicorn's JSON access log
#: (gunicorn_conf.py) escapes quotes but not backslashes, so anything else could make a
#: client's own log line unparseable.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:=;/+-]{1,64}")

_STANDARD = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {
    "message", "asctime"}


def anonymize_ip(address: str) -> str:
    """``address`` cut to its network, IPv4 /24 and IPv6 /48 (``203.0.113.0``,
    ``2001:db8:abcd::``), for the access log: a whole address identifies a shopper, its
    network is enough to spot abuse. Anything that is not an address logs as ``-``."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return "-"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:203.0.113.77 is an IPv4 client
    dropped = ip.max_prefixlen - (24 if ip.version == 4 else 48)
    return str(type(ip)(int(ip) >> dropped << dropped))


class RedactingFilter(logging.Filter):
    """Blank any redacted key passed through ``extra`` and attach the request id."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key in REDACT:
            if key in record.__dict__:
                record.__dict__[key] = "[redacted]"
        if has_request_context() and not hasattr(record, "request_id"):
            record.request_id = getattr(g, "request_id", None)
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "event", "request_id", "shop_id", ...extra}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
                 "level": record.levelname.lower(), "logger": record.name,
                 "event": record.getMessage()}
        entry.update({k: v for k, v in record.__dict__.items()
                      if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def init_app(app: Flask) -> None:
    """Configure the ``shopkeeper`` loggers once per process and tag requests with an id."""
    logger = logging.getLogger("shopkeeper")
    logger.setLevel(app.config.get("LOG_LEVEL", "INFO"))
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    if app.config.get("LOG_FORMAT") == "json" and not any(
            getattr(h, "_shopkeeper", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler.addFilter(RedactingFilter())
        handler._shopkeeper = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False

    @app.before_request
    def _request_id():
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        if getattr(g, "request_id", None):
            response.headers["X-Request-Id"] = g.request_id
        return response
