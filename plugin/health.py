"""Liveness and readiness: is the process up; can it reach a database at the latest schema."""

from __future__ import annotations

import functools

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from plugin.errors import error_response
from plugin.extensions import db
from plugin.migrate import alembic_config
from plugin.openapi import doc

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@doc(summary="Liveness: the process answers", tags=["meta"])
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@functools.cache
def expected_heads() -> frozenset[str]:
    """The heads of the migration scripts shipped with this code (read once per process:
    a release that changes them restarts the process)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


@bp.get("/readyz")
@doc(summary="Readiness: database reachable and migrations current", tags=["meta"],
     errors=(503,))
def readyz() -> ResponseReturnValue:
    try:
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            current = set(MigrationContext.configure(conn).get_current_heads())
    except Exception as err:  # any driver error means "not ready"
        db.session.rollback()
        return error_response(503, "Database unreachable.",
                              {"database": [type(err).__name__]})
    expected = set(expected_heads())
    if current != expected:
        return error_response(503, "Database schema is not at the latest migration.",
                              {"migrations": [f"missing {sorted(expected - current)}"]})
    return jsonify(status="ready", migrations=sorted(current))
