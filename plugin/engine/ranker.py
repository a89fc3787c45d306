"""Learned blending weights: a small gradient-boosted ranker over per-source scores.

It is fit on validation baskets carved out of the training data (each shopper's last
basket, then the one before, ...), never on the baskets it will be judged on, so every shop
gets weights that fit its own repeat behaviour (grocery vs gift-ware).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from plugin.engine.arrays import isin, unique_values
from plugin.engine.baselines import pruned_similarity
from plugin.engine.baskets import hold_out_last_basket
from plugin.engine.data import Interactions
from plugin.engine.nextbasket import Candidates, NextBasketState
from plugin.engine.pairs import COL

__all__ = ["EXPLORE_FEATURES", "REFERENCE_SHARED_ROUNDS", "BlendedRanker", "ItemSimilarity",
           "LinearScorer", "ValidationSet", "fit_ranker", "itemknn_explore_hits", "list_metrics",
           "validation_rows"]

#: Successive validation rounds whose item-kNN bar shares one similarity, fitted on the
#: data before the deepest of them: each slice's similarity is most of the bar's cost
#: (Complete Journey: 3 rounds, about 40 s of a worker thread -> 10 s, the fit 12 s
#: shorter), and a similarity up to two baskets per shopper older barely moves the bar.
REFERENCE_SHARED_ROUNDS = 3


@dataclass(frozen=True)
class ValidationSet:
    """Candidate rows of held-out validation baskets, grouped per shopper-basket.

    ``group[r]`` is the basket of row ``r``; per basket: its shopper, its number of distinct
    items, how many of them the shopper had never bought, and (where measured) how
    many of those new items a plain item-kNN top-k list finds.
    """

    X: np.ndarray
    y: np.ndarray
    group: np.ndarray
    user: np.ndarray
    size: np.ndarray
    new: np.ndarray
    reference_hits: np.ndarray  # nan where not computed


def validation_rows(
    x: Interactions, n_baskets: int, state_params: dict, *, max_users: int | None = None,
    enough_users: int | None = None, rng: np.random.Generator | None = None,
    reference_baskets: int = 0,
    reference_per_round: int = 1000, k: int = 10,
    shared_rounds: int | None = None,
    content: sp.csr_matrix | None = None,
) -> ValidationSet:
    """Feature rows and labels from up to ``n_baskets`` successive held-out last baskets.

    Each round predicts a basket from strictly earlier history, at that basket's time.
    ``max_users`` caps the shoppers featurised per round (a random subset) to bound time;
    rounds stop once ``enough_users`` shopper-baskets were featurised, so small shops dig
    deeper into history and large ones stay fast. For up to ``reference_baskets`` baskets,
    at most ``reference_per_round`` from each round (latest first), the new items
    item-kNN's top ``k`` finds are counted. Up to ``shared_rounds`` successive measured
    rounds share one item-kNN similarity, fitted on the data before the deepest of them
    (``REFERENCE_SHARED_ROUNDS``).
    ``content`` is the catalogue's TF-IDF matrix (computed once by the caller).
    """
    shared_rounds = max(1, REFERENCE_SHARED_ROUNDS if shared_rounds is None else shared_rounds)
    parts: list[tuple] = []
    current = x
    done = measured = 0
    # item-kNN runs in a second thread (scipy's sparse products release the GIL) while the
    # next rounds are featurised; the worker takes its jobs in order, so a round's count
    # finds its similarity computed
    pending: list[tuple[np.ndarray, np.ndarray, Future]] = []
    similarity: Future | None = None
    group_left = 0
    with ThreadPoolExecutor(max_workers=1) as pool:
        for _ in range(n_baskets):
            if enough_users is not None and done >= enough_users:
                break
            train, keys, at = hold_out_last_basket(current)
            users = np.flatnonzero(~np.isnan(at))
            if not len(users):
                break
            if max_users is not None and len(users) > max_users:
                users = np.sort((rng or np.random.default_rng(0)).choice(users, max_users, False))
            state = NextBasketState(train, content=content, **state_params)
            c: Candidates = state.candidates(users, at[users])
            # per held-out basket: its size and how many of its items are new to the shopper
            held_user = keys // x.n_items
            owned = state.personal.ps.lookup(held_user, keys % x.n_items) >= 0
            size = np.bincount(held_user, minlength=x.n_users)[users]
            new = np.bincount(held_user, weights=~owned, minlength=x.n_users)[users]
            ref = np.full(len(users), np.nan)
            # spread over rounds: one basket depth alone is a biased bar (Complete Journey's
            # training data alternates 0.011 / 0.008 / 0.010 by depth); three rounds share
            # one item-item similarity, the bar's main cost
            wanted = min(reference_baskets - measured, reference_per_round)
            if wanted > 0:
                sel = np.arange(len(users))
                if len(sel) > wanted:
                    sel = np.sort((rng or np.random.default_rng(0)).choice(sel, wanted, False))
                measured += len(sel)
                if group_left == 0:  # a new group: fit item-kNN on the data before its last round
                    similarity = pool.submit(ItemSimilarity.fit,
                                             _held_out(train, shared_rounds - 1))
                    group_left = shared_rounds
                group_left -= 1
                pending.append((ref, sel, pool.submit(_hits, similarity, train, users[sel],
                                                      keys, k)))
            group = done + np.searchsorted(users, c.user)
            done += len(users)
            parts.append((c.X, isin(c.user * x.n_items + c.item, keys), group, users, size,
                          new, ref))
            current = train
        for ref, sel, future in pending:
            ref[sel] = future.result()
    if not parts:
        z = np.zeros(0)
        return ValidationSet(np.zeros((0, 0)), z.astype(bool), z.astype(np.int64),
                             z.astype(np.int64), z, z, z)
    X, y, group, user, size, new, ref = (np.concatenate(p) for p in zip(*parts, strict=True))
    return ValidationSet(X, y, group, user, size.astype(float), new.astype(float), ref)


def itemknn_explore_hits(train: Interactions, users: np.ndarray, keys: np.ndarray,
                         k: int, n_neighbors: int = 200, chunk: int = 2048) -> np.ndarray:
    """New held-out items found by plain item-kNN's top ``k``: the bar discovery must clear.

    As the ItemKNN baseline ranks the whole catalogue: cosine between items on the binary
    shoppers x items matrix, the ``n_neighbors`` strongest per item, score = summed
    similarity to everything the shopper bought (owned items included), ties by popularity.
    """
    similarity = ItemSimilarity.fit(train, n_neighbors, chunk)
    return similarity.explore_hits(train, users, keys, k)


@dataclass(frozen=True)
class ItemSimilarity:
    """The ItemKNN baseline's pruned item-item cosine, fitted on one history slice.

    Several validation rounds may share one (``REFERENCE_SHARED_ROUNDS``): the shopper's
    history comes from their own round, the similarity from up to two baskets per shopper
    earlier, as a deployed item-kNN refitted now and then would serve. Computing it is
    most of the bar's cost (Complete Journey: about 10 s per slice on two cores).
    """

    sim: sp.csr_matrix  # items x items, the ``n_neighbors`` strongest per row
    pop: np.ndarray  # shoppers per item, for ties

    @classmethod
    def fit(cls, x: Interactions, n_neighbors: int = 200, chunk: int = 2048) -> ItemSimilarity:
        m = x.to_csr("binary").astype(np.float32)
        pop = np.asarray(m.sum(axis=0)).ravel()
        inv = np.divide(1.0, np.sqrt(pop), out=np.zeros_like(pop), where=pop > 0)
        mn = (m @ sp.diags(inv)).tocsr()
        rows = np.flatnonzero(pop > 0)
        pruned = pruned_similarity(mn, n_neighbors, rows, chunk)
        # back to one row per item (unbought items: empty rows)
        counts = np.zeros(x.n_items + 1, np.int64)
        counts[rows + 1] = np.diff(pruned.indptr)
        sim = sp.csr_matrix((pruned.data, pruned.indices, np.cumsum(counts)),
                            shape=(x.n_items, x.n_items))
        return cls(sim, pop)

    def explore_hits(self, train: Interactions, users: np.ndarray, keys: np.ndarray,
                     k: int) -> np.ndarray:
        """Per shopper of ``users`` (histories from ``train``): how many of item-kNN's top
        ``k`` are held-out ``keys`` (user * n_items + item) they had never bought."""
        own = train.to_csr("binary").astype(np.float32)[users]
        tie = 1e-6 * self.pop / max(float(self.pop.max(initial=0)), 1.0)
        coo = own.tocoo()
        owned_keys = unique_values(users[coo.row].astype(np.int64) * train.n_items + coo.col)
        hits = np.zeros(len(users))
        for s in range(0, len(users), 256):  # dense scores a few hundred shoppers at a time
            score = (own[s : s + 256] @ self.sim).toarray() + tie
            kk = min(k, score.shape[1])
            top = np.argpartition(-score, kk - 1, axis=1)[:, :kk]
            key = users[s : s + 256, None].astype(np.int64) * train.n_items + top
            hits[s : s + 256] = (isin(key, keys) & ~isin(key, owned_keys)).sum(axis=1)
        return hits


def _hits(similarity: Future, train: Interactions, users: np.ndarray, keys: np.ndarray,
          k: int) -> np.ndarray:
    """``ItemSimilarity.explore_hits`` once the shared similarity is computed (the worker
    runs its jobs in order, so it already is)."""
    return similarity.result().explore_hits(train, users, keys, k)


def _held_out(x: Interactions, rounds: int) -> Interactions:
    """``x`` without each shopper's last ``rounds`` baskets (as many validation rounds
    would leave it; a shopper keeps their first basket)."""
    for _ in range(rounds):
        x = hold_out_last_basket(x)[0]
    return x


def list_metrics(v: ValidationSet, scores: np.ndarray, boost: float | Sequence[float],
                 k: int = 10, rows: np.ndarray | None = None,
                 ) -> tuple[float, float] | tuple[np.ndarray, np.ndarray]:
    """Mean NDCG@k and explore recall@k of the lists ``scores`` (+ ``boost`` on new items) make.

    The top ``k`` are chosen by the boosted score and shown in the order of the plain score,
    as ``ShopkeeperRecommender.recommend`` does; groups are the baskets of ``rows``.
    ``boost`` may be a sequence: then two arrays, one value per boost.
    """
    rows = np.arange(len(v.y)) if rows is None else rows
    g, y = v.group[rows], v.y[rows]
    new = v.X[rows, COL["is_repeat"]] == 0
    # only the best k repeats and the best k new items of a basket can make its list:
    # ranking just those once is exact and makes a grid of boosts cheap
    head = _top_in_group(g * 2 + new, scores, k)
    g, y, new, scores = g[head], y[head], new[head], scores[head]
    groups = np.unique(v.group[rows])
    ideal = np.cumsum(1 / np.log2(np.arange(k) + 2))[np.clip(v.size[groups], 1, k).astype(int) - 1]
    has_new = v.new[groups] > 0
    ndcg, explore = [], []
    for b in np.atleast_1d(boost):
        picked = _top_in_group(g, scores + b * new, k)
        gp, yp, s = g[picked], y[picked], scores[picked]
        at = np.searchsorted(groups, gp)
        pos = _rank_in_group(gp, s)
        gain = np.bincount(at, weights=yp / np.log2(pos + 2), minlength=len(groups))
        hits_new = np.bincount(at, weights=yp & new[picked], minlength=len(groups))
        ndcg.append(float(np.mean(gain / ideal)))
        explore.append(float(np.mean(hits_new[has_new] / v.new[groups][has_new]))
                       if has_new.any() else 0.0)
    if np.ndim(boost) == 0:
        return ndcg[0], explore[0]
    return np.array(ndcg), np.array(explore)


def _rank_in_group(g: np.ndarray, s: np.ndarray) -> np.ndarray:
    order = np.lexsort((-s, g))
    start = np.searchsorted(g[order], g[order])
    rank = np.empty(len(g), np.int64)
    rank[order] = np.arange(len(g)) - start
    return rank


def _top_in_group(g: np.ndarray, s: np.ndarray, k: int) -> np.ndarray:
    return np.flatnonzero(_rank_in_group(g, s) < k)


class BlendedRanker:
    """A pointwise and a listwise booster, averaged in log-odds.

    The pointwise trees (sklearn, binary log-loss) give calibrated odds, which new items'
    linear odds and the explore boost are compared with; LightGBM's LambdaRank trees
    optimise the order of a basket's list directly and are mapped onto the same log-odds
    scale by a one-feature logistic fit (Platt). On the inner splits of all three datasets
    the average beat the pointwise trees (NDCG@10 Complete Journey +2.5 %, Online Retail
    +1.4 %, Instacart +0.3 %); LambdaRank alone was best on Complete Journey (+2.9 %) but
    worst on the other two (-0.8 % each).
    """

    def __init__(self, pointwise: HistGradientBoostingClassifier, listwise: Any = None,
                 scale: float = 1.0, offset: float = 0.0) -> None:
        self.pointwise = pointwise
        self.listwise = listwise  # lightgbm.Booster
        self.scale = scale
        self.offset = offset

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Log-odds per row (native predictors: fast on many rows)."""
        odds = self.pointwise.decision_function(X)
        if self.listwise is None:
            return odds
        listwise = self.scale * self.listwise.predict(X, raw_score=True) + self.offset
        return 0.5 * (odds + listwise)

    def flatten(self) -> TreeEnsemble:
        """Both boosters as one ``TreeEnsemble`` (one walk per request, saved as arrays)."""
        pointwise = TreeEnsemble.from_sklearn(self.pointwise)
        if self.listwise is None:
            return pointwise
        listwise = TreeEnsemble.from_lightgbm(self.listwise)
        return TreeEnsemble.blend([(pointwise, 0.5), (listwise, 0.5 * self.scale)],
                                  offset=0.5 * self.offset)


def fit_ranker(
    X: np.ndarray, y: np.ndarray, *, max_iter: int, learning_rate: float,
    max_leaf_nodes: int, random_state: int | None, max_depth: int | None = None,
    negatives: float = 1.0, group: np.ndarray | None = None,
) -> BlendedRanker | None:
    """Fit the ranker; ``None`` when validation has no positives and negatives to learn from.

    ``negatives`` < 1 keeps that share of the negative rows, weighted up to keep the
    log-odds calibrated: more validation baskets for the same fit time (positives are the
    scarce rows, and half the negatives ranked as well on Complete Journey). With
    ``group`` (the basket of each row, non-decreasing) a LambdaRank booster is fit
    alongside, on the other core.
    """
    if len(y) == 0 or y.all() or not y.any():
        return None
    weight = np.ones(len(y))
    keep = y | (np.random.default_rng(random_state).random(len(y)) < negatives)
    if negatives < 1.0 and not y[keep].all():  # a tiny shop could lose every negative
        X, y = X[keep], y[keep]
        group = None if group is None else group[keep]
        weight = np.where(y, 1.0, 1.0 / negatives)
    model = HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes,
        max_depth=max_depth, early_stopping=False, random_state=random_state,
    )

    def pointwise():
        # one OpenMP thread: on a busy 2-core host the threaded fit was 5x slower
        with threadpool_limits(1, "openmp"):
            return model.fit(X, y, sample_weight=weight)

    if group is None:
        return BlendedRanker(pointwise())
    with ThreadPoolExecutor(1) as pool:  # both release the GIL: two cores, one wall time
        future = pool.submit(pointwise)
        listwise = _fit_listwise(X, y, group, max_iter=max_iter, learning_rate=learning_rate,
                                 max_leaf_nodes=max_leaf_nodes, max_depth=max_depth,
                                 random_state=random_state)
        model = future.result()
    if listwise is None:
        return BlendedRanker(model)
    raw = listwise.predict(X, raw_score=True)
    platt = LogisticRegression().fit(raw[:, None], y, sample_weight=weight)
    return BlendedRanker(model, listwise, float(platt.coef_[0, 0]),
                         float(platt.intercept_[0]))


def _fit_listwise(X: np.ndarray, y: np.ndarray, group: np.ndarray, *, max_iter: int,
                  learning_rate: float, max_leaf_nodes: int, max_depth: int | None,
                  random_state: int | None):
    """LambdaRank on the baskets that have a hit (others carry no pairwise signal)."""
    import lightgbm  # imported late: only fitting needs it, serving reads flat arrays

    hits = np.bincount(group, weights=y) > 0
    keep = hits[group]
    if not keep.any():
        return None
    _, sizes = np.unique(group[keep], return_counts=True)
    params = {"objective": "lambdarank", "learning_rate": learning_rate,
              "num_leaves": max_leaf_nodes, "max_depth": max_depth or -1,
              "min_child_samples": 50, "lambdarank_truncation_level": 20,
              "num_threads": 1, "seed": random_state or 0, "deterministic": True,
              "verbose": -1}
    data = lightgbm.Dataset(X[keep], y[keep].astype(np.int32), group=sizes,
                            params={"verbose": -1})
    return lightgbm.train(params, data, num_boost_round=max_iter)


# what says whether a shopper tries an item they never bought (repeat-only columns left out,
# and the shrunk item repeat rate, whose shop-wide prior moves with every new purchase)
EXPLORE_FEATURES = ("item_log_pop", "user_log_baskets", "user_repeat_share",
                    "neighbour", "log_days_since_visit", "trending", "itemknn", "content",
                    "category_share", "ease")


class LinearScorer:
    """Logistic regression on standardised columns, as plain arrays (saved without pickle).

    New items are few positives among many rows: boosted trees overfit them and rank them
    worse than popularity alone, a linear model on a few signals does not.
    """

    def __init__(self, columns: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                 coef: np.ndarray, intercept: float) -> None:
        self.columns = columns
        self.mean = mean
        self.scale = scale
        self.coef = coef
        self.intercept = float(intercept)

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray,
            features: tuple[str, ...] = EXPLORE_FEATURES) -> LinearScorer | None:
        """``None`` when there are no positives and negatives to learn from."""
        if len(y) == 0 or y.all() or not y.any():
            return None
        columns = np.array([COL[f] for f in features], np.int64)
        Z = np.nan_to_num(X[:, columns])
        mean, scale = Z.mean(axis=0), Z.std(axis=0)
        scale[scale == 0] = 1.0
        model = LogisticRegression(C=1.0, max_iter=1000).fit((Z - mean) / scale, y)
        return cls(columns, mean, scale, model.coef_.ravel(), float(model.intercept_[0]))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Log-odds per row."""
        Z = (np.nan_to_num(X[:, self.columns]) - self.mean) / self.scale
        return Z @ self.coef + self.intercept


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

    @classmethod
    def from_lightgbm(cls, booster: Any) -> TreeEnsemble:
        """Flatten a LightGBM booster's numeric trees (``x <= threshold`` goes left)."""
        parts: dict[str, list] = {f: [] for f in cls.FIELDS}
        roots: list[int] = []
        for info in booster.dump_model()["tree_info"]:
            roots.append(len(parts["value"]))
            stack = [(info["tree_structure"], None, "")]
            while stack:
                node, parent, side = stack.pop()
                at = len(parts["value"])
                if parent is not None:
                    parts[side][parent] = at
                leaf = "leaf_value" in node
                if not leaf and (node.get("decision_type") != "<="
                                 or node.get("missing_type") == "Zero"):
                    raise ValueError("only numeric '<=' splits without zero-as-missing")
                threshold = float(node.get("threshold", 0.0))
                # LightGBM reads NaN as 0 unless the split learned a side for missing values
                nan_left = (bool(node.get("default_left")) if node.get("missing_type") == "NaN"
                            else threshold >= 0.0)
                parts["feature"].append(0 if leaf else int(node["split_feature"]))
                parts["threshold"].append(threshold)
                parts["missing_left"].append(nan_left and not leaf)
                parts["left"].append(-1)
                parts["right"].append(-1)
                parts["is_leaf"].append(leaf)
                parts["value"].append(float(node["leaf_value"]) if leaf else 0.0)
                if not leaf:
                    stack.append((node["right_child"], at, "right"))
                    stack.append((node["left_child"], at, "left"))
        arrays = {"feature": np.asarray(parts["feature"], np.int64),
                  "threshold": np.asarray(parts["threshold"], np.float64),
                  "missing_left": np.asarray(parts["missing_left"], bool),
                  "left": np.asarray(parts["left"], np.int64),
                  "right": np.asarray(parts["right"], np.int64),
                  "is_leaf": np.asarray(parts["is_leaf"], bool),
                  "value": np.asarray(parts["value"], np.float64)}
        return cls(arrays, np.asarray(roots, np.int64), 0.0)

    @classmethod
    def blend(cls, parts: list[tuple[TreeEnsemble, float]], offset: float = 0.0) -> TreeEnsemble:
        """One ensemble scoring ``offset + sum(weight * part.predict(X))``: one walk to serve."""
        arrays: dict[str, list[np.ndarray]] = {f: [] for f in cls.FIELDS}
        roots, baseline, shift = [], offset, 0
        for tree, weight in parts:
            a = tree.arrays
            for f in cls.FIELDS:
                v = a[f]
                if f in ("left", "right"):
                    v = np.where(a["is_leaf"], v, v + shift)
                elif f == "value":
                    v = v * weight
                arrays[f].append(v)
            roots.append(tree.roots + shift)
            baseline += weight * tree.baseline
            shift += len(a["value"])
        return cls({f: np.concatenate(v) for f, v in arrays.items()}, np.concatenate(roots),
                   baseline)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Raw margin per row: baseline plus the leaf value of every tree.

        Leaves point to themselves, so every path takes exactly ``depth`` steps of a few
        vectorised gathers (no per-step masks); both children sit side by side, so a step
        is one gather at ``2 * node + went_right``, and the missing-value rule is applied
        only when ``X`` holds NaN. This keeps a 100-row query of 400 trees near 1.3 ms.
        """
        child, feature, threshold, missing_left, depth = self._walk()
        n_rows, n_feat = X.shape
        flat = np.ascontiguousarray(X, np.float64).ravel()
        node = np.repeat(self.roots, n_rows)
        offset = np.tile(np.arange(n_rows) * n_feat, len(self.roots))
        has_nan = bool(np.isnan(flat).any())
        for _ in range(depth):
            x = flat[offset + feature[node]]
            right = x > threshold[node]  # NaN compares False: left unless the split says
            if has_nan:
                right |= np.isnan(x) & ~missing_left[node]
            node = child[2 * node + right]
        values = self.arrays["value"][node].reshape(len(self.roots), n_rows)
        return self.baseline + values.sum(axis=0)

    def _walk(self) -> tuple:
        """Children side by side (leaves loop to themselves) and the longest path (cached)."""
        if "_walk_cache" not in self.__dict__:
            a = self.arrays
            leaf = a["is_leaf"]
            own = np.arange(len(leaf))
            depth, node = 0, self.roots.copy()
            while len(node):
                node = node[~leaf[node]]
                node = np.concatenate([a["left"][node], a["right"][node]])
                depth += 1 if len(node) else 0
            child = np.stack([np.where(leaf, own, a["left"]), np.where(leaf, own, a["right"])],
                             axis=1).ravel()
            self.__dict__["_walk_cache"] = (
                child, np.where(leaf, 0, a["feature"]), np.where(leaf, np.inf, a["threshold"]),
                a["missing_left"] & ~leaf, depth)
        return self.__dict__["_walk_cache"]
