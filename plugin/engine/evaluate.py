"""Offline evaluation: next-basket splits and full-catalogue ranking metrics.

Every model is fitted on the same training split, asked for its top ``k`` over the whole
catalogue for each test shopper (at the moment of the held-out basket), and scored against
the distinct items of that basket. Definitions are written out in ``bench/README.md``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from plugin.engine.arrays import unique_pairs
from plugin.engine.base import BaseRecommender
from plugin.engine.data import Interactions

if TYPE_CHECKING:  # the judge is the model engineer's RepurchaseModel
    from plugin.engine.repurchase import RepurchaseModel

__all__ = [
    "METRICS",
    "HeldOut",
    "evaluate_model",
    "last_basket_split",
    "paired_ratio_interval",
    "score_recommendations",
    "split",
    "temporal_split",
]

# Metric names as they appear in the JSON (k-suffixed ones also appear as e.g. "recall@10").
METRICS = (
    "recall@k",
    "ndcg@k",
    "hr@k",
    "recall_repeat@k",
    "recall_explore@k",
    "coverage",
    "durable_rerec_rate",
    "fit_seconds",
    "recommend_ms_p50",
    "recommend_ms_p99",
)


class HeldOut(dict):
    """Test set: ``user_id -> set of item ids``; ``at[user_id]`` is when that basket happened.

    A plain dict to every caller; the extra ``at`` map lets the evaluation ask each model
    "what would you show this shopper at that moment" (point-in-time context).
    """

    def __init__(self, items: dict[str, set[str]] | None = None,
                 at: dict[str, float] | None = None) -> None:
        super().__init__(items or {})
        self.at: dict[str, float] = dict(at or {})


# --------------------------------------------------------------------------- splits
def _held_out(data: Interactions, test_mask: np.ndarray) -> HeldOut:
    """Group the masked events by user: distinct item ids and the basket's first timestamp."""
    held = HeldOut()
    idx = np.flatnonzero(test_mask)
    if not len(idx):
        return held
    users = data.user[idx]
    cuts = np.flatnonzero(np.diff(users)) + 1
    for group in np.split(idx, cuts):
        uid = str(data.user_ids[data.user[group[0]]])
        held[uid] = {str(data.item_ids[i]) for i in data.item[group]}
        held.at[uid] = float(data.timestamp[group].min())
    return held


def _baskets_per_user(data: Interactions) -> np.ndarray:
    """Number of distinct baskets of each user."""
    users, _ = unique_pairs(data.user, data.basket)
    return np.bincount(users, minlength=data.n_users)


def _basket_start(data: Interactions) -> np.ndarray:
    """Per event, the time of its basket's first line: the one time a basket is placed by.

    With a time per scanned line, a basket's lines differ in time; splitting by line time
    could put part of one basket in training and part in test.
    """
    start = np.full(int(data.basket.max()) + 1, np.inf)
    np.minimum.at(start, data.basket, data.timestamp)
    return start[data.basket]


def _pick_basket(data: Interactions, start: np.ndarray, mask: np.ndarray,
                 *, last: bool) -> np.ndarray:
    """Per user, the first (or ``last``) of their masked baskets; -1 for users with none.

    Baskets are ordered by (first line's time, basket index) as in ``baskets.basket_pairs``:
    baskets of one time keep the file's order.
    """
    chosen = np.full(data.n_users, -1, np.int64)
    idx = np.flatnonzero(mask)
    if not len(idx):
        return chosen
    order = idx[np.lexsort((data.basket[idx], start[idx], data.user[idx]))]
    users = data.user[order]
    edge = np.flatnonzero(np.diff(users)) + (0 if last else 1)
    edge = np.r_[edge, len(order) - 1] if last else np.r_[0, edge]
    chosen[users[edge]] = data.basket[order[edge]]
    return chosen


def last_basket_split(interactions: Interactions) -> tuple[Interactions, HeldOut]:
    """Hold out the last basket of every customer with >= 2 baskets; train on the rest.

    A customer's last basket is the one whose first line is latest (baskets of one time in
    file order), the order the temporal split and the models use. Customers with a single
    basket stay in training as history for others and are never test users.
    """
    data = interactions
    if len(data) == 0:
        return data, HeldOut()
    n_baskets = _baskets_per_user(data)
    start = _basket_start(data)
    last_basket = _pick_basket(data, start, np.ones(len(data), bool), last=True)
    test_mask = (n_baskets[data.user] >= 2) & (data.basket == last_basket[data.user])
    train, held = data.subset(~test_mask), _held_out(data, test_mask)
    _after_training(train, held)
    return train, held


def _after_training(train: Interactions, held: HeldOut) -> None:
    """Ask no earlier than just after the shopper's last training event.

    With dates for timestamps, the held-out basket can share its time with the basket
    before it. Asked "as of" that time, a model would rightly hide that earlier basket
    (only what happened strictly before counts), though the split put it in training.
    """
    last = np.full(train.n_users, -np.inf)
    np.maximum.at(last, train.user, train.timestamp)
    for uid, t in held.at.items():
        u = train.user_index(uid)
        if u is not None and t <= last[u]:
            held.at[uid] = float(np.nextafter(last[u], np.inf))


def temporal_split(
    interactions: Interactions, quantile: float = 0.9
) -> tuple[Interactions, HeldOut]:
    """Global cut at the ``quantile`` of basket time: train is every basket begun before it.

    A basket's time is its first line's, so a basket is never split across the cut. Test
    users are customers with a basket before the cut who buy again at or after it; their
    test set is the next basket after the cut (the earliest one begun after it).
    """
    if not 0 < quantile < 1:
        raise ValueError("quantile must be in (0, 1)")
    data = interactions
    if len(data) == 0:
        return data, HeldOut()
    start = _basket_start(data)
    cut = float(np.quantile(start, quantile))
    before = start < cut
    has_history = np.zeros(data.n_users, bool)
    has_history[data.user[before]] = True
    next_basket = _pick_basket(data, start, ~before, last=False)
    test_mask = ~before & has_history[data.user] & (data.basket == next_basket[data.user])
    train, held = data.subset(before), _held_out(data, test_mask)
    _after_training(train, held)  # a basket begun before the cut may end after the next began
    return train, held


SPLITS: dict[str, Callable[[Interactions], tuple[Interactions, HeldOut]]] = {
    "last-basket": last_basket_split,
    "temporal": temporal_split,
}


def split(interactions: Interactions, name: str) -> tuple[Interactions, HeldOut]:
    """Apply a split by its CLI name; unknown names raise ``ValueError``."""
    try:
        fn = SPLITS[name]
    except KeyError:
        raise ValueError(f"unknown split {name!r}; choose from {', '.join(SPLITS)}") from None
    return fn(interactions)


# --------------------------------------------------------------------------- metrics
def _ndcg(ranked: list[str], relevant: set[str], k: int) -> float:
    gains = [1.0 / np.log2(r + 2) for r, item in enumerate(ranked[:k]) if item in relevant]
    ideal = sum(1.0 / np.log2(r + 2) for r in range(min(len(relevant), k)))
    return float(sum(gains) / ideal) if ideal else 0.0


def score_recommendations(
    recommended: dict[str, list[str]],
    test: dict[str, set[str]],
    history: dict[str, set[str]],
    n_items: int,
    k: int = 10,
    *,
    is_durable: Callable[[list[str]], np.ndarray] | None = None,
    ndcg_per_user: dict[str, float] | None = None,
) -> dict[str, float]:
    """Accuracy metrics of given top-k lists (pure; every figure defined in bench/README.md).

    ``recommended`` maps each test user to a ranked list of item ids (duplicates after the
    first occurrence are ignored, the list is cut at ``k``); ``history`` maps users to the
    items they bought in training; ``is_durable`` (judge) maps item ids to booleans.
    ``ndcg_per_user``, when given, receives each test user's NDCG@k (for paired intervals).
    """
    recall, ndcg, hr, rep, exp = [], [], [], [], []
    shown: set[str] = set()
    slots = rerec = 0
    for uid, relevant in test.items():
        ranked = list(dict.fromkeys(recommended.get(uid, [])))[:k]
        shown.update(ranked)
        hits = relevant.intersection(ranked)
        recall.append(len(hits) / len(relevant))
        ndcg.append(_ndcg(ranked, relevant, k))
        if ndcg_per_user is not None:
            ndcg_per_user[uid] = ndcg[-1]
        hr.append(float(bool(hits)))
        owned = history.get(uid, set())
        repeat, explore = relevant & owned, relevant - owned
        if repeat:
            rep.append(len(hits & repeat) / len(repeat))
        if explore:
            exp.append(len(hits & explore) / len(explore))
        slots += len(ranked)
        again = [item for item in ranked if item in owned]
        if again and is_durable is not None:
            rerec += int(np.count_nonzero(is_durable(again)))

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else 0.0

    return {
        "recall@k": mean(recall),
        "ndcg@k": mean(ndcg),
        "hr@k": mean(hr),
        "recall_repeat@k": mean(rep),
        "recall_explore@k": mean(exp),
        "coverage": len(shown) / n_items if n_items else 0.0,
        "durable_rerec_rate": rerec / slots if slots else 0.0,
    }


def user_histories(train: Interactions, users: Iterable[str]) -> dict[str, set[str]]:
    """Items each given user bought in the training split."""
    out: dict[str, set[str]] = {}
    for uid in users:
        u = train.user_index(uid)
        if u is None:
            out[uid] = set()
            continue
        out[uid] = {str(train.item_ids[i]) for i in np.unique(train.item[train.events_of(u)])}
    return out


def durable_judge(judge: RepurchaseModel | None, train: Interactions):
    """Wrap a fitted ``RepurchaseModel`` as ``item ids -> is durable`` (None: no judge)."""
    if judge is None:
        return None

    def is_durable(items: list[str]) -> np.ndarray:
        idx = np.array([train.item_index(i) for i in items], dtype=object)
        known = np.array([i is not None for i in idx], dtype=bool)
        out = np.zeros(len(items), dtype=bool)  # an id the shop never sold is not "bought"
        if known.any():
            out[known] = np.asarray(judge.is_durable(idx[known].astype(np.int64)), dtype=bool)
        return out

    return is_durable


def evaluate_model(
    model: BaseRecommender,
    train: Interactions,
    test: dict[str, set[str]],
    k: int = 10,
    *,
    judge: RepurchaseModel | None = None,
    progress: Callable[[Iterable], Iterable] | None = None,
    ndcg_per_user: dict[str, float] | None = None,
) -> dict[str, float]:
    """Fit ``model`` on ``train``, recommend top-``k`` for every test user, score and time it.

    ``judge`` is a ``RepurchaseModel`` already fitted on ``train``; the same judge is used
    for every model so ``durable_rerec_rate`` compares like with like. Each user is asked at
    the time of their held-out basket (``test.at``) when known.
    """
    started = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - started
    at = getattr(test, "at", {})
    users = list(test)
    timings = np.zeros(len(users))
    recommended: dict[str, list[str]] = {}
    # one serving worker answers one request on one core: no BLAS/OpenMP thread pools, which
    # also keeps latencies from being dominated by thread contention on a busy machine
    with threadpool_limits(1):
        for j, uid in enumerate(progress(users) if progress else users):
            t0 = time.perf_counter()
            recs = model.recommend(uid, n=k, at=at.get(uid))
            timings[j] = time.perf_counter() - t0
            recommended[uid] = [r.item for r in recs]
    metrics = score_recommendations(
        recommended, test, user_histories(train, users), train.n_items, k,
        is_durable=durable_judge(judge, train), ndcg_per_user=ndcg_per_user,
    )
    metrics["fit_seconds"] = fit_seconds
    metrics["recommend_ms_p50"] = float(np.percentile(timings, 50) * 1e3) if users else 0.0
    metrics["recommend_ms_p99"] = float(np.percentile(timings, 99) * 1e3) if users else 0.0
    return metrics


def paired_ratio_interval(model: np.ndarray, baseline: np.ndarray, *, level: float = 0.95,
                          resamples: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """Ratio of mean per-user scores and its paired bootstrap percentile interval.

    Users are resampled with replacement, the same draw for both models, so what the two
    lists have in common (an easy shopper is easy for both) cancels out of the interval.
    A few hundred test users leave a ratio uncertain in its second decimal.
    """
    model, baseline = np.asarray(model, float), np.asarray(baseline, float)
    if model.shape != baseline.shape or not len(model):
        raise ValueError("need the same non-empty set of users for both models")
    ratio = float(model.mean() / baseline.mean()) if baseline.mean() else float("nan")
    draws = np.random.default_rng(seed).integers(0, len(model), (resamples, len(model)))
    base = baseline[draws].mean(axis=1)
    ratios = np.divide(model[draws].mean(axis=1), base, out=np.full(resamples, np.nan),
                       where=base > 0)
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(ratios, [tail, 100 - tail]) if np.isfinite(ratios).any() \
        else (float("nan"), float("nan"))
    return ratio, float(low), float(high)
