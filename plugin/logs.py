"""Logging with dotted event names, ids in ``extra`` and an explicit redaction list."""

from __future__ import annotations

import logging

from flask import Flask

#: Keys whose values never reach a log line (HA's diagnostics REDACT idea).
REDACT = frozenset({"access_token", "webhook_secret", "secret", "password", "email",
                    "authorization", "token", "credentials", "api_secret"})


class RedactingFilter(logging.Filter):
    """Blank any redacted key passed through ``extra``."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key in REDACT:
            if key in record.__dict__:
                record.__dict__[key] = "[redacted]"
        return True


def init_app(app: Flask) -> None:
    logger = logging.getLogger("shopkeeper")
    logger.setLevel(app.config.get("LOG_LEVEL", "INFO"))
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
