"""One error tree for the app and one JSON shape for every 4xx/5xx answer."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from plugin.extensions import db

log = logging.getLogger("shopkeeper.errors")


class ShopkeeperError(Exception):
    """Base of all errors the app answers with; ``code`` is the HTTP status."""

    code = 500

    def __init__(self, message: str | None = None, errors: dict[str, Any] | None = None):
        super().__init__(message or HTTPStatus(self.code).phrase)
        self.message = message or HTTPStatus(self.code).phrase
        self.errors = errors or {}


class BadRequest(ShopkeeperError):
    code = 400


class Unauthorized(ShopkeeperError):
    code = 401


class Forbidden(ShopkeeperError):
    code = 403


class NotFound(ShopkeeperError):
    code = 404


class Conflict(ShopkeeperError):
    code = 409


class PayloadTooLarge(ShopkeeperError):
    code = 413


class Unprocessable(ShopkeeperError):
    code = 422


class ServiceUnavailable(ShopkeeperError):
    code = 503


def error_response(code: int, message: str, errors: dict[str, Any] | None = None) -> Response:
    """The single error shape: ``{code, status, message, errors}``."""
    body = {"code": code, "status": HTTPStatus(code).phrase, "message": message,
            "errors": errors or {}}
    response = jsonify(body)
    response.status_code = code
    return response


#: Seconds a client is asked to wait when the database is unreachable (a restart, a
#: failover): webhook senders and the widgets retry any 5xx, this says it is worth it.
DATABASE_RETRY_AFTER = 5


def database_unavailable(err: sa.exc.DBAPIError) -> bool:
    """Whether the database failed us (gone, restarting, refusing, timed out, locked), not
    the statement: an ``OperationalError`` or a connection SQLAlchemy had to drop."""
    return isinstance(err, sa.exc.OperationalError) or err.connection_invalidated


def init_app(app: Flask) -> None:
    """Answer every error as JSON; a 500 rolls the session back and logs no request data,
    and a database that cannot be reached is a 503 with ``Retry-After``, not a 500."""

    @app.errorhandler(ShopkeeperError)
    def _shopkeeper(err: ShopkeeperError):
        return error_response(err.code, err.message, err.errors)

    @app.errorhandler(ValidationError)
    def _validation(err: ValidationError):
        errors = err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}
        return error_response(422, "The request is invalid.", errors)

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        response = error_response(err.code or 500, err.description or "")
        for key, value in (err.get_headers() or []):
            if key.lower() not in ("content-type", "content-length"):
                response.headers[key] = value
        return response

    @app.errorhandler(sa.exc.DBAPIError)
    def _database(err: sa.exc.DBAPIError):
        if not database_unavailable(err):
            return _unexpected(err)
        db.session.rollback()
        log.exception("request.database_unavailable",
                      extra={"error_type": type(err.orig).__name__})
        response = error_response(503, "The database is unavailable; retry later.")
        response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
        return response

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        db.session.rollback()
        log.exception("request.unhandled_error", extra={"error_type": type(err).__name__})
        return error_response(500, "Internal server error.")
