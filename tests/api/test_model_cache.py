"""The per-process cache of loaded shop models is bounded by memory, not only by count."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from plugin.api import model_store
from plugin.api.model_store import ModelLRU, ShopModel, deep_nbytes


def _model(version: int, n_items: int) -> ShopModel:
    ids = np.asarray([f"p{i}" for i in range(n_items)], dtype=object)
    return ShopModel(version_id=version, item_ids=ids,
                     neighbours=sp.identity(n_items, format="csr"), popular=[("p0", 1.0)])


class _Estimator:
    def __init__(self) -> None:
        self.weights_ = np.ones((500, 500))  # 2,000,000 bytes
        self.view_ = self.weights_[:10]  # shares the buffer: counted once
        self.pool_ = {"X": np.zeros(1000, dtype=np.float32), "ids": ["a" * 100]}


def test_deep_nbytes_counts_arrays_once_and_reaches_nested_estimators():
    est = _Estimator()
    n = deep_nbytes(est)
    assert 2_004_000 <= n < 2_010_000  # weights + the float32 pool + small change
    assert deep_nbytes({"a": est, "b": est}) < n + 1000  # the same estimator twice: once


def test_model_size_includes_its_recommender():
    bare = _model(1, 100)
    with_rec = _model(2, 100)
    with_rec.recommender = _Estimator()  # set after load, as training does
    with_rec.nbytes = deep_nbytes(with_rec)
    assert with_rec.nbytes - bare.nbytes >= 2_000_000


def test_lru_drops_least_recent_models_beyond_the_byte_budget():
    small = [_model(v, 50) for v in range(3)]
    big = _model(9, 200_000)
    lru = ModelLRU(capacity=8, max_bytes=big.nbytes + sum(m.nbytes for m in small[1:]))
    for v, m in enumerate(small):
        lru.put(("s", v), m)
    lru.get(("s", 0))  # now the most recent of the three
    lru.put(("s", 9), big)
    assert lru.get(("s", 1)) is None  # the least recently used went first
    assert lru.get(("s", 9)) is big and lru.get(("s", 0)) is not None
    assert lru.nbytes <= lru.max_bytes


def test_the_newest_model_stays_even_when_alone_over_budget():
    lru = ModelLRU(capacity=8, max_bytes=10)
    lru.put(("s", 1), _model(1, 10))
    lru.put(("s", 2), _model(2, 10))
    assert lru.get(("s", 1)) is None and lru.get(("s", 2)) is not None


def test_settings_bound_the_process_cache(app, monkeypatch, tmp_path):
    lru = ModelLRU()
    monkeypatch.setattr(model_store, "LOADED", lru)
    built = {v: _model(v, 20_000) for v in range(3)}
    monkeypatch.setattr(model_store, "load_artifacts", lambda d, v: built[v])
    app.config.update(MODEL_CACHE_MODELS=8, MODEL_CACHE_MB=built[0].nbytes * 2.5 / 2**20)
    with app.app_context():
        for v in range(3):
            assert model_store.get_model("s", v, str(tmp_path)) is built[v]
    assert lru.get(("s", 0)) is None and lru.get(("s", 2)) is built[2]
    app.config.update(MODEL_CACHE_MODELS=1, MODEL_CACHE_MB=0)
    with app.app_context():
        model_store.get_model("s", 0, str(tmp_path))
    assert lru.max_bytes is None and lru.get(("s", 2)) is None


def test_a_failed_load_is_retried_after_a_doubling_backoff(app, monkeypatch, tmp_path):
    """One transient read error (too many open files, a storage hiccup) must not keep the
    worker on popular items for the life of the version: it reads again after 30 s, 60 s..."""
    monkeypatch.setattr(model_store, "LOADED", ModelLRU())
    model_store._UNLOADABLE.clear()
    clock = [1000.0]
    monkeypatch.setattr(model_store.time, "monotonic", lambda: clock[0])
    calls, good = [], _model(1, 10)

    def flaky(directory, version_id):
        calls.append(clock[0])
        if len(calls) <= 2:
            raise OSError(24, "Too many open files")
        return good

    monkeypatch.setattr(model_store, "load_artifacts", flaky)
    app.config.update(MODEL_LOAD_RETRY_SECONDS=30, MODEL_LOAD_RETRY_MAX_SECONDS=45)
    with app.app_context():
        assert model_store.get_model("s", 1, str(tmp_path)) is None
        clock[0] += 29
        assert model_store.get_model("s", 1, str(tmp_path)) is None  # not read: backing off
        assert len(calls) == 1
        clock[0] += 1
        assert model_store.get_model("s", 1, str(tmp_path)) is None  # read again, fails again
        assert len(calls) == 2
        clock[0] += 44  # the next wait doubled, capped at 45 s
        assert model_store.get_model("s", 1, str(tmp_path)) is None and len(calls) == 2
        clock[0] += 1
        assert model_store.get_model("s", 1, str(tmp_path)) is good
    assert len(calls) == 3 and ("s", 1) not in model_store._UNLOADABLE


def test_a_version_whose_folder_is_gone_is_looked_up_again_within_a_second(app, monkeypatch,
                                                                           tmp_path):
    """A newer fit deletes the old version's folder as soon as it serves. A worker that
    cached the old version but never loaded it used to serve popular items until its
    10 s version cache ran out; it now asks for the served version again after a second."""
    from types import SimpleNamespace

    from plugin.api import sources

    monkeypatch.setattr(model_store, "LOADED", ModelLRU())
    model_store._UNLOADABLE.clear()
    sources.forget_versions()
    clock = [500.0]
    monkeypatch.setattr(sources.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(model_store.time, "monotonic", lambda: clock[0])
    rows = {"now": SimpleNamespace(id=1, artifact_dir="gone", trained_until=None, popular=[])}
    monkeypatch.setattr(sources, "active_version", lambda shop_id: rows["now"])
    new = _model(2, 10)

    def load(directory, version_id):
        if version_id == 1:
            raise FileNotFoundError(2, "No such file or directory", str(directory))
        return new

    monkeypatch.setattr(model_store, "load_artifacts", load)
    app.config.update(API_VERSION_CACHE_SECONDS=10)
    with app.app_context():
        old = sources.served_version("s")
        rows["now"] = SimpleNamespace(id=2, artifact_dir="v2", trained_until=None, popular=[])
        clock[0] += 0.5
        assert sources.served_version("s").id == 1  # loaded fine so far: the TTL holds
        assert model_store.get_model("s", old.id, old.artifact_dir) is None
        clock[0] += 0.6
        served = sources.served_version("s")
        assert served.id == 2
        assert model_store.get_model("s", served.id, served.artifact_dir) is new
        clock[0] += 0.6  # a version that loads keeps the full TTL
        rows["now"] = SimpleNamespace(id=3, artifact_dir="v3", trained_until=None, popular=[])
        assert sources.served_version("s").id == 2
    sources.forget_versions()
    model_store._UNLOADABLE.clear()
