"""Learned blending weights: a small gradient-boosted ranker over per-source scores.

It is fit on validation baskets carved out of the training data (each shopper's last
basket, then the one before, ...), never on the baskets it will be judged on, so every shop
gets weights that fit its own repeat behaviour (grocery vs gift-ware).
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from plugin.engine.baskets import hold_out_last_basket
from plugin.engine.data import Interactions
from plugin.engine.nextbasket import Candidates, NextBasketState

__all__ = ["fit_ranker", "validation_rows"]


def validation_rows(
    x: Interactions, n_baskets: int, state_params: dict, *, max_users: int | None = None,
    enough_users: int | None = None, rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows and labels from up to ``n_baskets`` successive held-out last baskets.

    Each round predicts a basket from strictly earlier history, at that basket's time.
    ``max_users`` caps the shoppers featurised per round (a random subset) to bound time;
    rounds stop once ``enough_users`` shopper-baskets were featurised, so small shops dig
    deeper into history and large ones stay fast.
    """
    Xs, ys = [], []
    current = x
    done = 0
    for _ in range(n_baskets):
        if enough_users is not None and done >= enough_users:
            break
        train, keys, at = hold_out_last_basket(current)
        users = np.flatnonzero(~np.isnan(at))
        if not len(users):
            break
        if max_users is not None and len(users) > max_users:
            users = np.sort((rng or np.random.default_rng(0)).choice(users, max_users, False))
        state = NextBasketState(train, **state_params)
        c: Candidates = state.candidates(users, at[users])
        done += len(users)
        Xs.append(c.X)
        ys.append(np.isin(c.user * x.n_items + c.item, keys))
        current = train
    if not Xs:
        return np.zeros((0, 0)), np.zeros(0, bool)
    return np.vstack(Xs), np.concatenate(ys)


def fit_ranker(
    X: np.ndarray, y: np.ndarray, *, max_iter: int, learning_rate: float,
    max_leaf_nodes: int, random_state: int | None, max_depth: int | None = None,
) -> HistGradientBoostingClassifier | None:
    """Fit the ranker; ``None`` when validation has no positives and negatives to learn from."""
    if len(y) == 0 or y.all() or not y.any():
        return None
    model = HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes,
        max_depth=max_depth, early_stopping=False, random_state=random_state,
    )
    # one OpenMP thread: on a busy 2-core host the threaded fit was 5x slower (20 s vs 4 s)
    with threadpool_limits(1, "openmp"):
        return model.fit(X, y)


class TreeEnsemble:
    """The fitted boosted trees as flat numpy arrays: fast to score, saved without pickle.

    ``predict`` returns the raw margin (log-odds); only the order matters for ranking.
    """

    FIELDS = ("feature", "threshold", "missing_left", "left", "right", "is_leaf", "value")

    def __init__(self, arrays: dict[str, np.ndarray], roots: np.ndarray, baseline: float) -> None:
        self.arrays = arrays
        self.roots = roots
        self.baseline = float(baseline)

    @classmethod
    def from_sklearn(cls, model: HistGradientBoostingClassifier) -> TreeEnsemble:
        """Flatten ``model._predictors`` (one tree per boosting round, binary task)."""
        parts: dict[str, list[np.ndarray]] = {f: [] for f in cls.FIELDS}
        roots, offset = [], 0
        for (tree,) in model._predictors:
            nodes = tree.nodes
            roots.append(offset)
            parts["feature"].append(nodes["feature_idx"].astype(np.int64))
            parts["threshold"].append(nodes["num_threshold"].astype(np.float64))
            parts["missing_left"].append(nodes["missing_go_to_left"].astype(bool))
            parts["left"].append(nodes["left"].astype(np.int64) + offset)
            parts["right"].append(nodes["right"].astype(np.int64) + offset)
            parts["is_leaf"].append(nodes["is_leaf"].astype(bool))
            parts["value"].append(nodes["value"].astype(np.float64))
            offset += len(nodes)
        arrays = {f: np.concatenate(v) for f, v in parts.items()}
        baseline = float(np.ravel(model._baseline_prediction)[0])
        return cls(arrays, np.asarray(roots, np.int64), baseline)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Raw margin per row: baseline plus the leaf value of every tree.

        Leaves point to themselves, so every path takes exactly ``depth`` steps of a few
        vectorised gathers (no per-step masks); this keeps a 100-row query near 1 ms.
        """
        left, right, feature, threshold, missing_left, depth = self._walk()
        n_rows, n_feat = X.shape
        flat = np.ascontiguousarray(X, np.float64).ravel()
        node = np.repeat(self.roots, n_rows)
        offset = np.tile(np.arange(n_rows) * n_feat, len(self.roots))
        for _ in range(depth):
            x = flat[offset + feature[node]]
            go_left = (x <= threshold[node]) | (np.isnan(x) & missing_left[node])
            node = np.where(go_left, left[node], right[node])
        values = self.arrays["value"][node].reshape(len(self.roots), n_rows)
        return self.baseline + values.sum(axis=0)

    def _walk(self) -> tuple:
        """Arrays where leaves loop to themselves, and the longest path (cached)."""
        if "_walk_cache" not in self.__dict__:
            a = self.arrays
            leaf = a["is_leaf"]
            own = np.arange(len(leaf))
            depth, node = 0, self.roots.copy()
            while len(node):
                node = node[~leaf[node]]
                node = np.concatenate([a["left"][node], a["right"][node]])
                depth += 1 if len(node) else 0
            self.__dict__["_walk_cache"] = (
                np.where(leaf, own, a["left"]), np.where(leaf, own, a["right"]),
                np.where(leaf, 0, a["feature"]), np.where(leaf, np.inf, a["threshold"]),
                a["missing_left"] & ~leaf, depth)
        return self.__dict__["_walk_cache"]
