"""Save and load fitted estimators as versioned ``.npz`` arrays plus a ``.json`` structure.

No pickle: arrays are read with ``allow_pickle=False`` and the JSON names only classes
from ``plugin.engine``, so a tampered artifact cannot run code. Shared objects (the same
``Interactions`` held by several sources) are stored once.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from plugin.engine.base import BaseRecommender
from plugin.engine.pairs import FEATURES

__all__ = ["FORMAT", "VERSION", "load_model", "save_model"]

FORMAT = "shopkeeper-engine-model"
# bumped whenever fitted state changes meaning (2: category due-ness features), so an old
# artifact is refused at load time instead of scoring rows of the wrong width
VERSION = 2
_ALLOWED_PREFIX = "plugin.engine."


def save_model(model: BaseRecommender, path: str | Path) -> tuple[Path, Path]:
    """Write ``<path>.npz`` and ``<path>.json``; returns both paths."""
    base = Path(path)
    arrays: dict[str, np.ndarray] = {}
    root = _Encoder(arrays).encode(model)
    meta = {"format": FORMAT, "version": VERSION, "class": _class_path(type(model)),
            "features": list(FEATURES), "root": root}
    npz, js = base.with_suffix(".npz"), base.with_suffix(".json")
    np.savez_compressed(npz, **arrays)
    js.write_text(json.dumps(meta))
    return npz, js


def load_model(path: str | Path) -> BaseRecommender:
    """Read an artifact written by ``save_model``; ``ValueError`` if format or version differ."""
    base = Path(path)
    meta = json.loads(base.with_suffix(".json").read_text())
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"unsupported model artifact: {meta.get('format')} v{meta.get('version')}")
    # Trees and linear scorers hold column numbers: a feature list changed without a
    # VERSION bump would score every row with the wrong columns, silently. Artifacts
    # written before the list was stored carry version 2's list, which is this one.
    features = meta.get("features", list(FEATURES))
    if features != list(FEATURES):
        raise ValueError("unsupported model artifact: fitted on other ranker features "
                         f"({len(features)} columns, this engine has {len(FEATURES)})")
    with np.load(base.with_suffix(".npz"), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return _Decoder(arrays).decode(meta["root"])


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _resolve(path: str) -> type:
    module, _, name = path.partition(":")
    if not module.startswith(_ALLOWED_PREFIX):
        raise ValueError(f"refusing to load class outside the engine: {path}")
    cls = getattr(import_module(module), name)
    if not isinstance(cls, type):
        raise ValueError(f"not a class: {path}")
    return cls


def _public_state(obj: Any, fitted_only: bool) -> dict[str, Any]:
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")
            and (not fitted_only or k.endswith("_"))}


class _Encoder:
    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.memo: dict[int, str] = {}
        self.keep: list[Any] = []  # keeps ids stable while encoding

    def _array(self, a: np.ndarray) -> str:
        key = f"a{len(self.arrays)}"
        self.arrays[key] = a
        return key

    def encode(self, obj: Any) -> Any:
        if obj is None or isinstance(obj, bool | int | float | str):
            return {"t": "v", "v": obj}
        if isinstance(obj, np.generic):
            return {"t": "v", "v": obj.item()}
        if id(obj) in self.memo:
            return {"t": "ref", "k": self.memo[id(obj)]}
        out = self._encode_new(obj)
        if isinstance(out, dict) and out.get("t") not in ("v", "list", "tuple"):
            ref = f"r{len(self.memo)}"
            self.memo[id(obj)] = ref
            self.keep.append(obj)
            out["id"] = ref
        return out

    def _encode_new(self, obj: Any) -> Any:
        if isinstance(obj, list | tuple):
            return {"t": type(obj).__name__, "v": [self.encode(v) for v in obj]}
        if isinstance(obj, dict):
            return {"t": "dict", "v": {str(k): self.encode(v) for k, v in obj.items()}}
        if isinstance(obj, np.ndarray):
            if obj.dtype != object:
                return {"t": "nd", "k": self._array(obj)}
            if all(isinstance(v, str) for v in obj.ravel()):
                return {"t": "objstr", "k": self._array(obj.astype(str))}
            texts = np.array([json.dumps(list(v)) for v in obj.ravel()], dtype=str)
            return {"t": "objjson", "k": self._array(texts)}
        if sp.issparse(obj):
            m = sp.csr_matrix(obj)
            return {"t": "csr", "shape": list(m.shape), "data": self._array(m.data),
                    "indices": self._array(m.indices), "indptr": self._array(m.indptr)}
        if dataclasses.is_dataclass(obj):
            fields = {f.name: self.encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                      if not f.name.startswith("_")}
            return {"t": "dc", "cls": _class_path(type(obj)), "v": fields}
        if isinstance(obj, BaseRecommender):
            return {"t": "est", "cls": _class_path(type(obj)),
                    "params": self.encode(obj.get_params(deep=False)),
                    "state": self.encode(_public_state(obj, fitted_only=True))}
        if type(obj).__module__.startswith(_ALLOWED_PREFIX):
            return {"t": "obj", "cls": _class_path(type(obj)),
                    "state": self.encode(_public_state(obj, fitted_only=False))}
        raise TypeError(f"cannot persist {type(obj).__name__}")


class _Decoder:
    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.memo: dict[str, Any] = {}

    def decode(self, node: dict) -> Any:
        t = node["t"]
        if t == "ref":
            return self.memo[node["k"]]
        if t == "v":
            return node["v"]
        if t in ("list", "tuple"):
            items = [self.decode(v) for v in node["v"]]
            return items if t == "list" else tuple(items)
        out = self._decode_new(node)
        if "id" in node:
            self.memo[node["id"]] = out
        return out

    def _decode_new(self, node: dict) -> Any:
        t, a = node["t"], self.arrays
        if t == "dict":
            return {k: self.decode(v) for k, v in node["v"].items()}
        if t == "nd":
            return a[node["k"]]
        if t == "objstr":
            return a[node["k"]].astype(object)
        if t == "objjson":
            out = np.empty(len(a[node["k"]]), dtype=object)
            out[:] = [tuple(json.loads(s)) for s in a[node["k"]]]
            return out
        if t == "csr":
            return sp.csr_matrix((a[node["data"]], a[node["indices"]], a[node["indptr"]]),
                                 shape=tuple(node["shape"]))
        cls = _resolve(node["cls"])
        if t == "dc":
            return cls(**{k: self.decode(v) for k, v in node["v"].items()})
        if t == "est":
            obj = cls(**self.decode(node["params"]))
            vars(obj).update(self.decode(node["state"]))
            return obj
        if t == "obj":
            obj = cls.__new__(cls)
            vars(obj).update(self.decode(node["state"]))
            return obj
        raise ValueError(f"unknown node type {t!r}")
