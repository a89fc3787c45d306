"""Autocommit reads for the serving hot path: one round trip, no transaction, no ping.

Through the ORM session, one read on PostgreSQL costs four round trips: the pool's
pre-ping, ``BEGIN``, the query and the ``ROLLBACK`` at teardown. Serving only reads rows
that are written atomically, so it needs no transaction; a connection that died (database
restart, failover) is detected by the failed query instead of a ping, and the read is
retried once on a fresh connection. On psycopg the statement is compiled once and sent
on the driver's cursor (SQLAlchemy's per-execution bookkeeping costs as much as the query
itself); the columns' own result processors still apply, so rows read the same. SQLite
reads are in-process and keep the app's engine and the ordinary execution path.
"""

from __future__ import annotations

import os
import threading
from collections import namedtuple
from collections.abc import Callable
from functools import lru_cache
from typing import Any, NamedTuple

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.engine import Dialect, Engine

from plugin.extensions import db

_EXTENSION = "shopkeeper.hot_reads"
_lock = threading.Lock()


def engine_for(app: Flask) -> Engine:
    """The app's hot-read engine, created lazily in each process (pools never cross a fork)."""
    hit = app.extensions.get(_EXTENSION)
    if hit is not None and hit[0] == os.getpid():
        return hit[1]
    with _lock:
        hit = app.extensions.get(_EXTENSION)
        if hit is not None and hit[0] == os.getpid():
            return hit[1]
        if hit is not None:  # inherited from the parent: drop without closing its sockets
            hit[1].dispose(close=False)
        main = db.engines[None]
        if main.dialect.name == "sqlite":
            engine = main
        else:
            options = {k: v for k, v in app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}).items()
                       if k != "pool_pre_ping"}
            engine = sa.create_engine(main.url, isolation_level="AUTOCOMMIT",
                                      pool_pre_ping=False, **options)
        app.extensions[_EXTENSION] = (os.getpid(), engine)
        return engine


def first(statement: sa.Select, params: dict[str, Any]) -> Any | None:
    """The first row of a read (attribute access by column key), outside any transaction.

    ``params`` go to the driver as they are: plain strings and numbers only.
    """
    engine = engine_for(current_app._get_current_object())
    if engine.dialect.driver == "psycopg":
        return _first_psycopg(engine, statement, params)
    for attempt in range(2):
        try:
            with engine.connect() as conn:
                return conn.execute(statement, params).first()
        except sa.exc.DBAPIError as err:
            if attempt or not err.connection_invalidated:
                raise
    return None  # pragma: no cover - the loop returns or raises


class _Plan(NamedTuple):
    sql: str
    processors: tuple[Callable[[Any], Any] | None, ...]
    row: type


@lru_cache(maxsize=64)
def _plan(statement: sa.Select, dialect: Dialect) -> _Plan:
    columns = list(statement.selected_columns)
    processors = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None)
                       for c in columns)
    return _Plan(str(statement.compile(dialect=dialect)), processors,
                 namedtuple("HotRow", [c.key for c in columns]))


def _first_psycopg(engine: Engine, statement: sa.Select, params: dict[str, Any]) -> Any:
    import psycopg

    plan = _plan(statement, engine.dialect)
    for attempt in range(2):
        raw = engine.raw_connection()
        try:
            with raw.driver_connection.cursor() as cur:
                cur.execute(plan.sql, params)
                row = cur.fetchone()
        except psycopg.OperationalError:
            raw.invalidate()  # dead connection: never handed out again
            if attempt:
                raise
            continue
        finally:
            raw.close()
        if row is None:
            return None
        return plan.row(*(v if f is None else f(v) for f, v in zip(plan.processors, row,
                                                                   strict=True)))
    return None  # pragma: no cover - the loop returns or raises


def dispose(app: Flask) -> None:
    """Close this process's hot-read pool (tests; app shutdown)."""
    hit = app.extensions.pop(_EXTENSION, None)
    if hit is not None and hit[0] == os.getpid() and hit[1] is not db.engines[None]:
        hit[1].dispose()
