"""Chronological basket view of interactions: the shape repeat-aware models reason in.

Next-basket data is dominated by repeats, so most signals are per (shopper, item) pair:
how often, how recently (in baskets and in days) and how regularly the shopper bought it.
This module computes those pair statistics for every pair at once with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from plugin.engine.arrays import unique_values
from plugin.engine.data import Interactions

__all__ = ["BasketPairs", "basket_pairs", "decayed_matrix"]

DAY = 86400.0


@dataclass(frozen=True)
class BasketPairs:
    """Distinct (user, basket, item) rows, plus per-user basket counts.

    ``rank`` is the basket's position in the user's chronological basket list (0 = first)
    and ``n_baskets[u]`` the number of baskets of user ``u``.
    """

    user: np.ndarray  # int64 per row
    item: np.ndarray  # int64 per row
    rank: np.ndarray  # int64 per row
    time: np.ndarray  # float64 basket time per row
    n_baskets: np.ndarray  # int64 per user
    last_time: np.ndarray  # float64 per user (nan without baskets)
    n_items: int

    @property
    def n_users(self) -> int:
        return len(self.n_baskets)


def basket_pairs(x: Interactions) -> BasketPairs:
    """Collapse events into distinct basket/item rows with chronological basket ranks."""
    n_users, n_items = x.n_users, x.n_items
    if len(x) == 0:
        empty = np.zeros(0, np.int64)
        return BasketPairs(
            empty, empty, empty, np.zeros(0), np.zeros(n_users, np.int64),
            np.full(n_users, np.nan), n_items,
        )
    # a basket's time is its first event; baskets are ordered by (user, time, basket id)
    b_uniq, b_inv = np.unique(x.basket, return_inverse=True)
    b_time = np.full(len(b_uniq), np.inf)
    np.minimum.at(b_time, b_inv, x.timestamp)
    b_user = np.zeros(len(b_uniq), np.int64)
    b_user[b_inv] = x.user
    order = np.lexsort((b_uniq, b_time, b_user))
    users_sorted = b_user[order]
    first = np.searchsorted(users_sorted, users_sorted, side="left")
    b_rank = np.empty(len(b_uniq), np.int64)
    b_rank[order] = np.arange(len(b_uniq)) - first
    n_baskets = np.bincount(b_user, minlength=n_users).astype(np.int64)
    last_time = np.full(n_users, -np.inf)
    np.maximum.at(last_time, b_user, b_time)
    last_time[n_baskets == 0] = np.nan

    key = b_inv.astype(np.int64) * n_items + x.item
    key = unique_values(key)
    b = key // n_items
    return BasketPairs(
        user=b_user[b],
        item=(key % n_items).astype(np.int64),
        rank=b_rank[b],
        time=b_time[b],
        n_baskets=n_baskets,
        last_time=last_time,
        n_items=n_items,
    )


def decayed_matrix(bp: BasketPairs, decay: float, *, normalize: bool = True) -> sp.csr_matrix:
    """Users x items, each basket weighted ``decay ** (baskets since it)`` (TIFU-KNN style).

    With ``normalize`` every row is divided by the sum of its basket weights, so a value is
    a recency-weighted share of baskets containing the item (in [0, 1]).
    """
    age = bp.n_baskets[bp.user] - 1 - bp.rank
    w = np.power(decay, age).astype(np.float64)
    m = sp.csr_matrix((w, (bp.user, bp.item)), shape=(bp.n_users, bp.n_items))
    m.sum_duplicates()
    if normalize:
        nb = bp.n_baskets.astype(np.float64)
        total = (1 - decay**nb) / (1 - decay) if decay < 1 else nb
        scale = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
        m = sp.diags(scale) @ m
    return m.tocsr()


def hold_out_last_basket(x: Interactions) -> tuple[Interactions, np.ndarray, np.ndarray]:
    """Split off every shopper's last basket when they have at least two.

    Returns the earlier events, the held-out (user * n_items + item) keys and, per user,
    the held-out basket's time (nan for shoppers with nothing held out). Used to learn
    blending weights on a validation split inside the training data.
    """
    bp = basket_pairs(x)
    held = (bp.n_baskets[bp.user] >= 2) & (bp.rank == bp.n_baskets[bp.user] - 1)
    at = np.full(x.n_users, np.nan)
    at[bp.user[held]] = bp.time[held]
    keys = unique_values(bp.user[held] * x.n_items + bp.item[held])
    cut = at[x.user]
    keep = np.isnan(cut) | (x.timestamp < cut)
    return x.subset(keep), keys, at
