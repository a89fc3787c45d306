"""Per (shopper, item) repeat statistics and the feature matrix the learned blender scores.

Features are relative to the shopper's own last basket (baskets and days since), never to
the time of the basket being predicted, so validation rows and serving rows mean the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from plugin.engine.arrays import lookup
from plugin.engine.baskets import DAY, BasketPairs
from plugin.engine.columns import column_index, named_columns

__all__ = ["COL", "FEATURES", "PairStats", "feature_matrix", "item_stats", "pair_stats"]

DECAYS = (0.5, 0.8, 0.95)
#: The ranker's feature columns, in matrix order. Code writes and reads them by name
#: (``COL``), so a new feature may go anywhere. The order is still a contract with saved
#: models: their trees and ``LinearScorer.columns`` hold column numbers, so reordering,
#: inserting or removing a feature needs ``persist.VERSION`` bumped (old artifacts refused).
FEATURES = (
    "dec_0.5", "dec_0.8", "dec_0.95", "freq", "log_count", "log_gap_baskets", "log_days_since",
    "due_ratio", "item_log_pop", "item_repeat", "user_log_baskets", "user_repeat_share",
    "is_repeat", "neighbour", "log_days_since_visit", "trending", "itemknn", "content",
    "category_share", "cat_log_days_since", "cat_due_ratio", "cat_log_baskets", "ease",
)
#: Column of each feature: ``X[:, COL["is_repeat"]]``.
COL: Mapping[str, int] = column_index(FEATURES)


def feature_matrix(n_rows: int, *parts: Mapping[str, np.ndarray | float]) -> np.ndarray:
    """The ``(n_rows, len(FEATURES))`` matrix of named columns, each given exactly once
    (``columns.named_columns``: a column written twice or never is a ``ValueError``)."""
    return named_columns((n_rows,), FEATURES, COL, *parts)


@dataclass(frozen=True)
class PairStats:
    """Aggregates for every (user, item) pair bought at least once, keyed and sorted."""

    key: np.ndarray  # int64 user * n_items + item, sorted
    count: np.ndarray
    last_rank: np.ndarray
    first_time: np.ndarray
    last_time: np.ndarray
    decayed: np.ndarray  # (n_pairs, len(DECAYS)) normalised decayed basket shares
    n_items: int

    def lookup(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Row index of each pair, -1 when the user never bought the item."""
        return lookup(self.key, users.astype(np.int64) * self.n_items + items)


def pair_stats(bp: BasketPairs) -> PairStats:
    """Aggregate distinct basket rows into one row per (user, item) pair."""
    key = bp.user * bp.n_items + bp.item
    uniq, inv = np.unique(key, return_inverse=True)
    n = len(uniq)
    count = np.bincount(inv, minlength=n).astype(np.float64)
    last_rank = np.full(n, -1, np.int64)
    np.maximum.at(last_rank, inv, bp.rank)
    first_time = np.full(n, np.inf)
    np.minimum.at(first_time, inv, bp.time)
    last_time = np.full(n, -np.inf)
    np.maximum.at(last_time, inv, bp.time)
    nb = bp.n_baskets[bp.user]
    age = nb - 1 - bp.rank
    dec = np.zeros((n, len(DECAYS)))
    nb_pair = bp.n_baskets[uniq // bp.n_items].astype(np.float64)
    for k, r in enumerate(DECAYS):
        dec[:, k] = np.bincount(inv, weights=np.power(r, age), minlength=n)
        dec[:, k] /= (1 - r**nb_pair) / (1 - r)
    return PairStats(uniq, count, last_rank, first_time, last_time, dec, bp.n_items)


def item_stats(bp: BasketPairs, ps: PairStats, prior: float = 5.0) -> dict[str, np.ndarray]:
    """Item popularity, shrunk repeat rate and median repurchase interval (days)."""
    items = ps.key % ps.n_items
    pop = np.bincount(bp.item, minlength=bp.n_items).astype(np.float64)
    buyers = np.bincount(items, minlength=bp.n_items).astype(np.float64)
    repeaters = np.bincount(items, weights=(ps.count > 1), minlength=bp.n_items)
    base = repeaters.sum() / max(buyers.sum(), 1.0)
    repeat = (repeaters + prior * base) / (buyers + prior)
    gaps = (ps.last_time - ps.first_time) / DAY / np.maximum(ps.count - 1, 1)
    multi = ps.count > 1
    interval = np.full(bp.n_items, np.nan)
    if multi.any():
        it, g = items[multi], gaps[multi]
        order = np.lexsort((g, it))
        it, g = it[order], g[order]
        starts = np.searchsorted(it, np.arange(bp.n_items))
        ends = np.searchsorted(it, np.arange(bp.n_items), side="right")
        has = ends > starts
        interval[has] = g[(starts[has] + ends[has] - 1) // 2]
    return {"pop": pop, "buyers": buyers, "repeat": repeat, "interval": interval,
            "base_repeat": np.array(base)}
