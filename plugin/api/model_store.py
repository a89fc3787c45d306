"""Trained artifacts on disk and the per-process LRU of loaded shop models.

Layout of one version: ``MODEL_DIR/<shop>/<version>/`` with ``meta.json`` (popular list,
algorithm), ``neighbours.npz`` (item-item top-k similarities as CSR arrays, item ids as a
unicode array: loadable with ``allow_pickle=False``) and ``recommender.npz/.json`` written by
the engine's ``persist`` module (no pickle either).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

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


class ModelLRU:
    """Loaded ``ShopModel``s keyed by ``(shop_id, version_id)``; thread-safe, bounded."""

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, int], ShopModel] = OrderedDict()
        self._lock = threading.Lock()

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
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


#: One LRU per process (gunicorn workers each hold their own).
LOADED = ModelLRU()
#: Versions whose artifacts could not be read, so a broken directory is not retried per request.
_UNLOADABLE: set[tuple[str, int]] = set()


def get_model(shop_id: str, version_id: int, artifact_dir: str) -> ShopModel | None:
    """The loaded model of a version, reading it from disk once per process."""
    key = (shop_id, version_id)
    model = LOADED.get(key)
    if model is not None or key in _UNLOADABLE:
        return model
    try:
        model = load_artifacts(Path(artifact_dir), version_id)
    except (OSError, ValueError, KeyError) as err:
        log.warning("api.model_not_loaded", extra={"shop_id": shop_id, "version_id": version_id,
                                                   "error_type": type(err).__name__})
        _UNLOADABLE.add(key)
        return None
    LOADED.put(key, model)
    return model
