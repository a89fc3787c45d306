"""Trained artifacts on disk and the per-process LRU of loaded shop models.

Layout of one version: ``MODEL_DIR/<shop>/<version>/`` with ``meta.json`` (popular list,
algorithm), ``neighbours.npz`` (item-item top-k similarities as CSR arrays, item ids as a
unicode array: loadable with ``allow_pickle=False``) and ``recommender.npz/.json`` written by
the engine's ``persist`` module (no pickle either).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import types
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from flask import current_app, has_app_context

from plugin.engine.base import BaseRecommender, Recommendation

log = logging.getLogger("shopkeeper.api.models")

RECOMMENDER = "recommender"  # persist writes recommender.npz + recommender.json


@dataclass
class ShopModel:
    """Everything the online path needs for one shop version."""

    version_id: int
    item_ids: np.ndarray
    neighbours: sp.csr_matrix
    popular: list[tuple[str, float]]
    titles: dict[str, str] = field(default_factory=dict)
    recommender: BaseRecommender | None = None
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {str(i): k for k, i in enumerate(self.item_ids)}
        self.nbytes = deep_nbytes(self)

    def similar(self, items: Sequence[str], n: int, *, exclude: Iterable[str] = (),
                verb: str = "bought") -> list[Recommendation]:
        """Neighbours of ``items`` (product page, cart complements), strongest first."""
        rows = [self._index[i] for i in items if i in self._index]
        if not rows or self.neighbours.nnz == 0:
            return []
        block = self.neighbours[rows]
        scores = np.asarray(block.sum(axis=0)).ravel()
        banned = {self._index[i] for i in exclude if i in self._index} | set(rows)
        candidates = np.flatnonzero(scores > 0)
        candidates = candidates[np.argsort(-scores[candidates], kind="stable")]
        out: list[Recommendation] = []
        for c in candidates:
            if int(c) in banned:
                continue
            anchor = str(self.item_ids[rows[int(np.argmax(block[:, c].toarray().ravel()))]])
            title = self.titles.get(anchor, anchor)
            out.append(Recommendation(str(self.item_ids[c]), float(scores[c]), "itemknn",
                                      f"often {verb} with {title}"))
            if len(out) >= n:
                break
        return out


def save_artifacts(directory: Path, *, neighbours: sp.csr_matrix, item_ids: Sequence[str],
                   popular: list[tuple[str, float]], titles: dict[str, str],
                   meta: dict[str, Any], recommender: BaseRecommender | None) -> str | None:
    """Write one version; returns why the recommender could not be saved, or ``None``."""
    directory.mkdir(parents=True, exist_ok=True)
    neighbours = neighbours.tocsr()
    np.savez_compressed(directory / "neighbours.npz", indptr=neighbours.indptr,
                        indices=neighbours.indices, data=neighbours.data,
                        shape=np.asarray(neighbours.shape),
                        item_ids=np.asarray([str(i) for i in item_ids], dtype=str))
    (directory / "meta.json").write_text(json.dumps(
        {**meta, "popular": [[i, s] for i, s in popular], "titles": titles}))
    if recommender is None:
        return "no recommender fitted"
    try:
        from plugin.engine import persist
    except ImportError:
        return "plugin.engine.persist is not available"
    try:
        persist.save_model(recommender, directory / RECOMMENDER)
    except Exception as err:  # the version stays servable from cache and neighbours
        log.warning("training.recommender_not_saved", extra={"error_type": type(err).__name__})
        return f"persist.save failed: {type(err).__name__}"
    return None


def relative_artifact_dir(shop_id: str, version: str) -> str:
    """What ``ModelVersion.artifact_dir`` stores: ``<shop>/<version>`` under ``MODEL_DIR``.

    Relative, so moving ``MODEL_DIR`` (a new volume, another container path) leaves every
    version loadable; an absolute path in the database broke them all until a refit.
    """
    return f"{shop_id}/{version}"


def artifact_path(stored: str) -> Path:
    """Where a version's files are: ``stored`` (``ModelVersion.artifact_dir``) resolved.

    Relative values are under the current ``MODEL_DIR``. Rows written before paths were
    relative hold an absolute path: used when it exists, else its last two parts
    (``<shop>/<version>``) are looked up under the current ``MODEL_DIR`` (it moved).
    An empty value (files deleted by a later version) stays empty.
    """
    path = Path(stored)
    if not stored or not has_app_context() or (path.is_absolute() and path.exists()):
        return path
    root = Path(current_app.config["MODEL_DIR"])
    if not path.is_absolute():
        return root / path
    return root.joinpath(*path.parts[-2:]) if len(path.parts) >= 3 else path


def load_artifacts(directory: Path, version_id: int) -> ShopModel:
    """Read one version back (no pickle); a missing recommender leaves ``recommender=None``."""
    with np.load(directory / "neighbours.npz", allow_pickle=False) as z:
        shape = tuple(int(v) for v in z["shape"])
        neighbours = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=shape)
        item_ids = z["item_ids"].astype(object)
    meta = json.loads((directory / "meta.json").read_text())
    recommender = None
    if (directory / f"{RECOMMENDER}.json").exists():
        try:
            from plugin.engine import persist

            recommender = persist.load_model(directory / RECOMMENDER)
        except Exception as err:
            log.warning("api.recommender_not_loaded", extra={"error_type": type(err).__name__})
    return ShopModel(version_id=version_id, item_ids=item_ids, neighbours=neighbours,
                     popular=[(str(i), float(s)) for i, s in meta.get("popular", [])],
                     titles=meta.get("titles", {}), recommender=recommender)


#: not model data (and a module's globals must not be walked)
_NOT_DATA = (bool, int, float, complex, type, types.ModuleType, types.FunctionType,
             types.BuiltinFunctionType, types.MethodType)


def deep_nbytes(obj: Any, _seen: set[int] | None = None) -> int:
    """Approximate memory held by ``obj``: arrays, sparse matrices, containers and attributes.

    A count of models says nothing about memory: one grocery shop's served pool can be a
    gigabyte and a boutique's a few megabytes, so the cache is bounded by this estimate.
    Shared objects (a view's base, an array two attributes point at) count once.
    """
    seen = set() if _seen is None else _seen
    stack, total = [obj], 0
    while stack:
        o = stack.pop()
        if o is None or isinstance(o, _NOT_DATA) or id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, np.ndarray):
            base = o
            while isinstance(base.base, np.ndarray):
                base = base.base
            if base is not o and id(base) in seen:
                continue
            seen.add(id(base))
            total += base.nbytes
            if base.dtype == object:
                stack.extend(base.ravel().tolist())
        elif sp.issparse(o):
            stack.extend(getattr(o, name, None) for name in ("data", "indices", "indptr",
                                                              "row", "col"))
        elif isinstance(o, (str, bytes)):
            total += sys.getsizeof(o)
        elif isinstance(o, dict):
            total += sys.getsizeof(o)
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            total += sys.getsizeof(o)
            stack.extend(o)
        else:
            attrs = getattr(o, "__dict__", None)
            if attrs is not None:
                stack.append(attrs)
            for name in getattr(type(o), "__slots__", ()):
                stack.append(getattr(o, name, None))
    return total


class ModelLRU:
    """Loaded ``ShopModel``s keyed by ``(shop_id, version_id)``; thread-safe, bounded by count
    and by estimated bytes (``max_bytes``; the most recent model always stays, however big)."""

    def __init__(self, capacity: int = 8, max_bytes: int | None = None) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, int], ShopModel] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Estimated bytes of the loaded models (for metrics and tests)."""
        with self._lock:
            return sum(getattr(m, "nbytes", 0) for m in self._items.values())

    def get(self, key: tuple[str, int]) -> ShopModel | None:
        with self._lock:
            model = self._items.get(key)
            if model is not None:
                self._items.move_to_end(key)
            return model

    def put(self, key: tuple[str, int], model: ShopModel) -> None:
        with self._lock:
            self._items[key] = model
            self._items.move_to_end(key)
            while len(self._items) > max(self.capacity, 1):
                self._items.popitem(last=False)
            if self.max_bytes is not None:
                held = sum(getattr(m, "nbytes", 0) for m in self._items.values())
                while held > self.max_bytes and len(self._items) > 1:
                    _, dropped = self._items.popitem(last=False)
                    held -= getattr(dropped, "nbytes", 0)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


#: One LRU per process (gunicorn workers each hold their own).
LOADED = ModelLRU()
#: Versions whose artifacts could not be read -> (monotonic time of the next try, its delay):
#: a broken directory is not read again on every request, but a transient error (too many
#: open files, a storage hiccup) does not keep the worker on popular items for the whole
#: life of the version either.
_UNLOADABLE: dict[tuple[str, int], tuple[float, float]] = {}
_unloadable_lock = threading.Lock()
#: First retry delay after a failed load (doubles per failure up to the cap); config keys
#: ``MODEL_LOAD_RETRY_SECONDS`` and ``MODEL_LOAD_RETRY_MAX_SECONDS``.
LOAD_RETRY_SECONDS = 30.0
LOAD_RETRY_MAX_SECONDS = 1800.0


def _configure(lru: ModelLRU) -> None:
    """Take the cache bounds from the app's settings (read on every load: cheap, and a test
    or an operator changing them is obeyed at once)."""
    if not has_app_context():
        return
    lru.capacity = int(current_app.config.get("MODEL_CACHE_MODELS", lru.capacity))
    mb = current_app.config.get("MODEL_CACHE_MB")
    lru.max_bytes = None if mb in (None, "", 0, "0") else int(float(mb) * 1024 * 1024)


def remember(shop_id: str, version_id: int, model: ShopModel) -> None:
    """Keep a model this process built (training) within the configured cache bounds.

    A worker that trains shop after shop would otherwise keep up to ``capacity`` of them,
    however big, until its first load from disk applied ``MODEL_CACHE_MB``.
    """
    _configure(LOADED)
    LOADED.put((shop_id, version_id), model)


def get_model(shop_id: str, version_id: int, artifact_dir: str) -> ShopModel | None:
    """The loaded model of a version, reading it from disk once per process.

    After a failed read the version is not tried again before a backoff (30 s, doubling,
    capped); meanwhile callers get ``None`` (the API serves popular items).
    """
    key = (shop_id, version_id)
    model = LOADED.get(key)
    if model is not None:
        return model
    now = time.monotonic()
    with _unloadable_lock:
        blocked = _UNLOADABLE.get(key)
    if blocked is not None and now < blocked[0]:
        return None
    _configure(LOADED)
    try:
        model = load_artifacts(artifact_path(artifact_dir), version_id)
    except (OSError, ValueError, KeyError) as err:
        first, cap = _retry_bounds()
        delay = first if blocked is None else min(blocked[1] * 2, cap)
        with _unloadable_lock:
            _UNLOADABLE[key] = (time.monotonic() + delay, delay)
        log.warning("api.model_not_loaded", extra={
            "shop_id": shop_id, "version_id": version_id, "error_type": type(err).__name__,
            "error": str(err)[:300], "retry_in_seconds": delay})
        return None
    with _unloadable_lock:
        _UNLOADABLE.pop(key, None)
    if blocked is not None:
        log.info("api.model_loaded_after_retry", extra={"shop_id": shop_id,
                                                        "version_id": version_id})
    LOADED.put(key, model)
    return model


def unloadable(shop_id: str, version_id: int) -> bool:
    """Whether the last read of this version's artifacts failed (it waits for its retry)."""
    with _unloadable_lock:
        return (shop_id, version_id) in _UNLOADABLE


def _retry_bounds() -> tuple[float, float]:
    """(first delay, cap) in seconds for reading a version again after a failed load."""
    if not has_app_context():
        return LOAD_RETRY_SECONDS, LOAD_RETRY_MAX_SECONDS
    cfg = current_app.config
    first = float(cfg.get("MODEL_LOAD_RETRY_SECONDS", LOAD_RETRY_SECONDS))
    return first, max(first, float(cfg.get("MODEL_LOAD_RETRY_MAX_SECONDS",
                                            LOAD_RETRY_MAX_SECONDS)))
