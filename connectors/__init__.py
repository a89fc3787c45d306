"""Connector registry: built-in platforms plus ``shopkeeper.connectors`` entry points.

Built-ins and entry points are imported lazily on the first ``get``/``available`` call so
importing ``connectors`` stays cheap and free of side effects.
"""

from __future__ import annotations

import importlib
import logging
import threading
from importlib.metadata import entry_points

from connectors.base import Connector, ConnectorMeta, Credentials
from connectors.errors import UnknownConnector

__all__ = [
    "Connector",
    "ConnectorMeta",
    "Credentials",
    "UnknownConnector",
    "available",
    "get",
    "register",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "shopkeeper.connectors"
BUILTINS: tuple[str, ...] = (
    "connectors.generic",
    "connectors.shopify",
    "connectors.saleor",
    "connectors.vendure",
)

_registry: dict[str, type[Connector]] = {}
_loaded = False
_lock = threading.RLock()


def register(cls: type[Connector]) -> type[Connector]:
    """Class decorator: register a connector under ``cls.meta.key``."""
    meta = getattr(cls, "meta", None)
    if not isinstance(meta, ConnectorMeta):
        raise TypeError(f"{cls.__name__} needs a ConnectorMeta in `meta`")
    with _lock:
        existing = _registry.get(meta.key)
        if existing is not None and existing is not cls:
            raise ValueError(f"connector key {meta.key!r} already registered by {existing}")
        _registry[meta.key] = cls
    return cls


def _load() -> None:
    """Import built-ins and entry points once; a broken third-party plugin is logged, not fatal."""
    global _loaded
    with _lock:
        if _loaded:
            return
        _loaded = True
        for module in BUILTINS:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:  # a built-in not shipped in this build
                if exc.name != module:
                    raise
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                cls = ep.load()
                if cls.meta.key not in _registry:
                    register(cls)
            except Exception:
                log.exception("connectors.entry_point_failed", extra={"entry_point": ep.name})


def get(key: str) -> type[Connector]:
    """The connector class for ``key``; raises ``UnknownConnector`` if there is none."""
    _load()
    try:
        return _registry[key]
    except KeyError:
        raise UnknownConnector(key) from None


def available() -> list[str]:
    """Sorted keys of every registered connector."""
    _load()
    return sorted(_registry)
