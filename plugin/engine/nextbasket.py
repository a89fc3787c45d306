"""Candidate generation and features for next-basket ranking (TIFU-KNN style, vectorised).

Candidates per shopper: their own items (repeat part) plus the items their nearest
neighbour shoppers buy (explore part). ``NextBasketState`` holds what was learned from one
slice of history; ``ShopkeeperRecommender`` scores its feature rows with learned weights.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from plugin.engine.arrays import lookup
from plugin.engine.baskets import DAY, BasketPairs, basket_pairs, decayed_matrix
from plugin.engine.collaborative import ease_weights
from plugin.engine.content import item_texts
from plugin.engine.data import Interactions
from plugin.engine.itemknn import top_k_per_row
from plugin.engine.pairs import (
    COL,
    DECAYS,
    FEATURES,
    PairStats,
    feature_matrix,
    item_stats,
    pair_stats,
)

__all__ = ["SCORE_FEATURES", "TIME_FEATURES", "Candidates", "CategoryStats", "NextBasketState",
           "Personal", "category_index", "refresh_time"]

# columns that depend on "now" and are recomputed at serving time (``time_features``)
TIME_FEATURES = ("log_days_since", "due_ratio", "log_days_since_visit", "cat_log_days_since",
                 "cat_due_ratio")
# columns scored per batch of shoppers from their neighbours, co-purchases, look-alikes,
# EASE and category shares (``NextBasketState._batch`` passes them to ``features``)
SCORE_FEATURES = ("neighbour", "itemknn", "content", "ease", "category_share")
#: shoppers per call up to which EASE multiplies in float32: one shopper served "as of" a
#: time (a float64 product first copies the 3,000² weights: 8 ms a call). A fit's batches
#: hold 256; a last batch this small also takes float32, a rounding difference only.
_FEW = 8


@dataclass(frozen=True)
class Candidates:
    """Flat candidate rows: ``user[r]`` may get ``item[r]``; ``X[r]`` are its features.

    ``last_time``/``interval`` (per row, nan when not a repeat) and ``cat_last``/``cat_gap``
    (the shopper's last purchase in the item's category and their usual gap between them,
    nan when unknown) let ``refresh_time`` move the time-dependent features to another
    "now" without recomputing the rest.
    """

    user: np.ndarray
    item: np.ndarray
    X: np.ndarray
    last_time: np.ndarray
    interval: np.ndarray
    cat_last: np.ndarray
    cat_gap: np.ndarray

    @classmethod
    def concat(cls, parts: list[Candidates]) -> Candidates:
        if not parts:
            z = np.zeros(0)
            return cls(z.astype(int), z.astype(int), np.zeros((0, len(FEATURES))), z, z, z, z)
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts])
                     for f in fields(cls)))

    def rows(self, s: slice) -> Candidates:
        """The candidate rows in ``s``."""
        return Candidates(*(getattr(self, f.name)[s] for f in fields(self)))


@dataclass(frozen=True)
class Personal:
    """Per-shopper statistics of one history slice (all users, or one shopper's past)."""

    bp: BasketPairs
    ps: PairStats
    V: sp.csr_matrix  # decayed basket shares, users x items
    user_repeat: np.ndarray
    user_gap: np.ndarray  # typical days between baskets
    cats: CategoryStats

    @classmethod
    def of(cls, x: Interactions, decay: float, category_of: np.ndarray) -> Personal:
        """``category_of[item]`` is the item's category index (see ``category_index``)."""
        bp = basket_pairs(x)
        ps = pair_stats(bp)
        u_items = np.bincount(ps.key // bp.n_items, minlength=bp.n_users)
        u_rows = np.bincount(bp.user, minlength=bp.n_users)
        # share of a shopper's basket lines that repeat an earlier purchase
        repeat = np.divide(u_rows - u_items, u_rows, out=np.zeros(bp.n_users), where=u_rows > 0)
        first = np.full(bp.n_users, np.inf)
        np.minimum.at(first, bp.user, bp.time)
        span = np.where(bp.n_baskets > 1, bp.last_time - first, 0.0)
        gap = np.where(bp.n_baskets > 1, span / DAY / np.maximum(bp.n_baskets - 1, 1), 7.0)
        return cls(bp, ps, decayed_matrix(bp, decay), repeat, gap,
                   CategoryStats.of(bp, category_of))


@dataclass(frozen=True)
class CategoryStats:
    """Per (shopper, category) bought at least once: baskets with it, first and last time.

    Grocery shoppers rotate between variants (another yoghurt flavour, the other brand of
    coffee): when a category is due, any of its items is likelier, bought before or not.
    """

    key: np.ndarray  # int64 user * n_categories + category, sorted
    baskets: np.ndarray
    first: np.ndarray
    last: np.ndarray
    n_categories: int

    @classmethod
    def of(cls, bp: BasketPairs, category_of: np.ndarray) -> CategoryStats:
        n_cat = int(category_of.max(initial=0)) + 1
        width = int(bp.rank.max(initial=0)) + 1
        # distinct (shopper, category, basket) rows, with the basket's time
        k, row = np.unique((bp.user * n_cat + category_of[bp.item]) * width + bp.rank,
                           return_index=True)
        uc, times = k // width, bp.time[row]
        key, start = np.unique(uc, return_index=True)
        count = np.diff(np.r_[start, len(uc)]).astype(np.float64)
        first = np.minimum.reduceat(times, start) if len(k) else np.zeros(0)
        last = np.maximum.reduceat(times, start) if len(k) else np.zeros(0)
        return cls(key, count, first, last, n_cat)

    def lookup(self, users: np.ndarray, categories: np.ndarray) -> np.ndarray:
        """Row of each (shopper, category), -1 when the shopper never bought in it."""
        return lookup(self.key, users.astype(np.int64) * self.n_categories + categories)


def category_index(x: Interactions) -> np.ndarray:
    """Per item, the index of its primary category (all 0 without categories)."""
    cats = np.array([x.catalog.primary_category(i) for i in range(x.n_items)], dtype=object)
    return np.unique(cats, return_inverse=True)[1].astype(np.int64) if x.n_items else \
        np.zeros(0, np.int64)


def time_features(last_time: np.ndarray, interval: np.ndarray, cat_last: np.ndarray,
                  cat_gap: np.ndarray, u_last: np.ndarray,
                  now: np.ndarray) -> dict[str, np.ndarray]:
    """The ``TIME_FEATURES`` columns for ``now`` (per row; the other arguments as in
    ``Candidates``, ``u_last`` the shopper's last basket)."""
    rep = ~np.isnan(last_time)
    days = np.where(rep, np.maximum(now - np.nan_to_num(last_time), 0) / DAY, 365.0)
    ok = rep & ~np.isnan(interval)
    seen = ~np.isnan(cat_last)
    cat_days = np.where(seen, np.maximum(now - np.nan_to_num(cat_last), 0) / DAY, 365.0)
    due = ~np.isnan(cat_gap)
    return {
        "log_days_since": np.log1p(days),
        "due_ratio": np.where(ok, np.log1p(days) - np.log1p(np.nan_to_num(interval)), 0.0),
        "log_days_since_visit": np.log1p(np.maximum(now - u_last, 0) / DAY),
        "cat_log_days_since": np.log1p(cat_days),
        "cat_due_ratio": np.where(
            due, np.log1p(cat_days) - np.log1p(np.nan_to_num(cat_gap)), 0.0),
    }


def refresh_time(c: Candidates, u_last: np.ndarray, now: np.ndarray) -> np.ndarray:
    """Features of ``c`` with the time-dependent columns recomputed for ``now`` (per row)."""
    X = c.X.astype(np.float64)  # a copy; the served pool is stored in float32
    for name, values in time_features(c.last_time, c.interval, c.cat_last, c.cat_gap,
                                      u_last, now).items():
        X[:, COL[name]] = values
    return X


class NextBasketState:
    """Everything learned from one history slice to generate and featurise candidates."""

    def __init__(
        self,
        x: Interactions,
        *,
        n_neighbors: int = 300,
        neighbour_decay: float = 0.8,
        max_history: int = 100,
        n_frequent: int = 0,
        n_explore: int = 30,
        max_explore_items: int = 5000,
        max_neighbour_pool: int | None = None,
        n_popular: int = 0,
        n_content: int = 0,
        n_ease: int = 0,
        ease_items: int = 3000,
        ease_l2: float = 200.0,
        trending_half_life_days: float = 14.0,
        content: sp.csr_matrix | None = None,
    ) -> None:
        self.n_items = x.n_items
        self.n_neighbors = n_neighbors
        self.neighbour_decay = neighbour_decay
        self.max_history = max_history
        self.n_frequent = n_frequent
        self.n_explore = n_explore
        self.n_popular = n_popular
        self.n_content = n_content
        self.n_ease = n_ease
        cat = category_index(x)
        # one category is no category: its "due" would only repeat the visit features
        self.category_of = cat if len(np.unique(cat)) > 1 else None
        self.personal = self.personal_of(x)
        bp = self.personal.bp
        self.items = item_stats(bp, self.personal.ps)
        self.Vn = normalize(self.personal.V).tocsr()
        # neighbours come from at most ``max_neighbour_pool`` shoppers, the longest
        # histories first: scoring every shopper against every other is quadratic
        n_users = self.Vn.shape[0]
        self.neighbour_pool: np.ndarray | None = None
        self.pool_pos: np.ndarray | None = None
        if max_neighbour_pool is not None and n_users > max_neighbour_pool:
            ranked = np.argsort(-bp.n_baskets, kind="stable")[:max_neighbour_pool]
            self.neighbour_pool = np.sort(ranked)
            self.pool_pos = np.full(n_users, -1, np.int64)
            self.pool_pos[self.neighbour_pool] = np.arange(max_neighbour_pool)
        pool = self.neighbour_pool
        self.VnT = (self.Vn if pool is None else self.Vn[pool]).T.tocsr()
        # neighbours vote only on the best-supported items: the long tail of a 68k-item
        # catalogue costs most of the time and rarely wins an explore slot
        support = self.items["buyers"]
        keep = np.argsort(-support, kind="stable")[:max_explore_items]
        self.vote_items = np.sort(keep[support[keep] > 0])
        self.vote_pos = np.full(self.n_items, -1, np.int64)
        self.vote_pos[self.vote_items] = np.arange(len(self.vote_items))
        voters = self.personal.V if pool is None else self.personal.V[pool]
        self.V_vote = voters[:, self.vote_items].tocsr()
        self.item_sim = _co_purchase_similarity(self.personal.bp, self.vote_items)
        end = float(np.nanmax(bp.last_time)) if len(bp.time) else 0.0
        w = np.power(0.5, (end - bp.time) / DAY / trending_half_life_days)
        self.trending = np.bincount(bp.item, weights=w, minlength=self.n_items)
        self.vote_trending = self.trending[self.vote_items] + 1e-9  # > 0 for _top_positive
        # the catalogue texts are the same for every history slice: callers may pass them
        self.content = content_matrix(x) if content is None else content
        self.vote_content_T = self.content[self.vote_items].T.tocsr()
        # EASE on the best-supported items: which unowned items the shopper's whole basket
        # history implies, with popularity regularised away (inner splits: NDCG and new-item
        # recall both up on Online Retail, NDCG up at a lower boost on Complete Journey,
        # NDCG level on Instacart)
        self.ease_items = np.zeros(0, np.int64)
        self.ease_w = np.zeros((0, 0), np.float32)
        if n_ease:
            top = self.vote_items[np.argsort(-support[self.vote_items], kind="stable")]
            top = top[:ease_items]
            self.ease_items = np.sort(top[support[top] >= 3])
            bought = x.to_csr("binary")[:, self.ease_items]
            self.ease_w = ease_weights(bought, ease_l2).astype(np.float32)
        self.ease_vote_pos = self.vote_pos[self.ease_items]
        self.category = sp.csr_matrix((np.ones(x.n_items), (np.arange(x.n_items), cat)),
                                      shape=(x.n_items, int(cat.max(initial=-1)) + 1))

    def personal_of(self, x: Interactions) -> Personal:
        """Per-shopper statistics of ``x`` (e.g. one shopper's past before some time)."""
        cat = self.category_of if self.category_of is not None else np.zeros(x.n_items, np.int64)
        return Personal.of(x, self.neighbour_decay, cat)

    def default_now(self, users: np.ndarray, personal: Personal | None = None) -> np.ndarray:
        """The shopper's last basket plus their typical gap between baskets."""
        p = personal or self.personal
        return p.bp.last_time[users] + p.user_gap[users] * DAY

    # ------------------------------------------------------------------ neighbours
    def neighbour_scores(self, users: np.ndarray, personal: Personal | None = None) -> np.ndarray:
        """Dense (len(users), len(vote_items)): weighted mean basket shares of the nearest
        shoppers over the items they vote on (``vote_items``).

        The query vectors come from ``personal`` (e.g. one shopper's past only); the
        neighbours are the fitted shoppers (the pool, when capped), never the shopper
        themself.
        """
        p = personal or self.personal
        q = self.Vn[users] if p is self.personal else normalize(p.V[users])
        sims = (q @ self.VnT).toarray()
        if self.pool_pos is None:
            sims[np.arange(len(users)), users] = 0.0
        else:  # the shopper is only in the pool if their history is among the longest
            at = self.pool_pos[users]
            inside = np.flatnonzero(at >= 0)
            sims[inside, at[inside]] = 0.0
        k = min(self.n_neighbors, sims.shape[1] - 1)
        if k <= 0:
            return np.zeros((len(users), len(self.vote_items)))
        if k < sims.shape[1]:
            thresh = -np.partition(-sims, k - 1, axis=1)[:, k - 1 : k]
            sims[sims < thresh] = 0.0
        sims = sims / np.maximum(sims.sum(axis=1, keepdims=True), 1e-12)
        return (sp.csr_matrix(sims) @ self.V_vote).toarray()

    # ------------------------------------------------------------------ candidates
    def candidates(
        self,
        users: np.ndarray,
        now: np.ndarray | None = None,
        *,
        personal: Personal | None = None,
        batch: int = 256,
        dtype: type = np.float64,
    ) -> Candidates:
        """Repeat and explore candidates with features for ``users`` (internal indices).

        ``now`` (unix s per user) is when the list is shown; nan means one typical gap after
        the shopper's last basket. ``personal`` replaces the fitted per-shopper statistics
        (point-in-time queries); item statistics and neighbours stay the fitted ones.
        ``dtype`` of the features: the pool served to every shopper is kept in float32
        (half the memory of a full-size shop's largest array), cast batch by batch.
        """
        p = personal or self.personal
        users = np.asarray(users, np.int64)
        default = self.default_now(users, p)
        now = default if now is None else np.where(np.isnan(now), default, now)
        parts = []
        for s in range(0, len(users), batch):
            c = self._batch(users[s : s + batch], now[s : s + batch], p)
            parts.append(c if dtype is np.float64 else replace(c, X=c.X.astype(dtype)))
        return Candidates.concat(parts)

    def _batch(self, users: np.ndarray, now: np.ndarray, p: Personal) -> Candidates:
        n_items = self.n_items
        has_data = len(self.personal.bp.time) > 0 and len(self.vote_items) > 0
        nbr = (self.neighbour_scores(users, p) if has_data
               else np.zeros((len(users), len(self.vote_items))))
        # "because you bought X": co-purchase neighbours of the shopper's recent items
        knn = (p.V[users][:, self.vote_items] @ self.item_sim).toarray() if has_data else nbr
        # what the shopper's items read like (siblings: other colours, sizes, flavours)
        profile = normalize(p.V[users] @ self.content).tocsr()
        ease = self.ease_scores(users, p)
        content = (profile @ self.vote_content_T).toarray()
        lo = np.searchsorted(p.ps.key, users * n_items)
        hi = np.searchsorted(p.ps.key, (users + 1) * n_items)
        ci = []
        for row in range(len(users)):
            rows = np.arange(lo[row], hi[row])
            if len(rows) > self.max_history:
                # the most recent-and-frequent, plus the most frequent of all time: a staple
                # skipped for a few weeks still tops a plain frequency list
                recent = np.argpartition(-p.ps.decayed[rows, 1], self.max_history - 1)
                n_often = min(self.n_frequent, len(rows))
                often = np.argpartition(-p.ps.count[rows], n_often - 1) \
                    if n_often else np.zeros(0, np.int64)
                rows = rows[np.union1d(recent[: self.max_history], often[:n_often])]
            own = p.ps.key[rows] % n_items
            own_pos = self.vote_pos[own]
            picked = np.zeros(len(self.vote_items), bool)
            sources = [(nbr[row], self.n_explore), (knn[row], self.n_explore // 2),
                       (self.vote_trending, self.n_popular), (content[row], self.n_content),
                       (ease[row], self.n_ease)]
            # the shopper's nearest shoppers, co-purchases of their items, what everyone buys
            # now (the commonest new item of a basket), look-alikes of their items and EASE
            for values, k in sources:
                if k:
                    score = values.copy()
                    score[own_pos[own_pos >= 0]] = -1.0
                    picked[_top_positive(score, k)] = True
            explore = np.flatnonzero(picked)
            ci.append(np.concatenate([own, self.vote_items[explore]]).astype(np.int64))
        local = np.repeat(np.arange(len(users)), [len(c) for c in ci])
        items = np.concatenate(ci) if ci else np.zeros(0, np.int64)
        pos = self.vote_pos[items]
        share = (p.V[users] @ self.category).toarray()
        # look-alike score: read from the dense vote-item block, sparse rows only for the rest
        look = np.where(pos >= 0, content[local, np.maximum(pos, 0)], 0.0)
        rest = np.flatnonzero(pos < 0)
        if len(rest):
            look[rest] = np.asarray(self.content[items[rest]].multiply(
                profile[local[rest]]).sum(axis=1)).ravel()
        scores = {"neighbour": np.where(pos >= 0, nbr[local, np.maximum(pos, 0)], 0.0),
                  "itemknn": np.where(pos >= 0, knn[local, np.maximum(pos, 0)], 0.0),
                  "content": look,
                  "ease": np.where(pos >= 0, ease[local, np.maximum(pos, 0)], 0.0),
                  "category_share": share[local, self.category.indices[items]]}
        return self.features(p, users[local], items, now[local], scores)

    def ease_scores(self, users: np.ndarray, p: Personal) -> np.ndarray:
        """Dense (len(users), len(vote_items)): EASE scores from everything each shopper bought."""
        out = np.zeros((len(users), len(self.vote_items)), np.float32)
        if len(self.ease_items):
            bought = p.V[users][:, self.ease_items]
            bought.data[:] = 1.0
            if len(users) <= _FEW:  # one shopper served: a float64 product would first
                bought = bought.astype(np.float32)  # copy the 3,000² weights (8 ms a call)
            out[:, self.ease_vote_pos] = bought @ self.ease_w
        return out

    def features(self, p: Personal, users: np.ndarray, items: np.ndarray, now: np.ndarray,
                 scores: dict[str, np.ndarray]) -> Candidates:
        """Candidate rows with every feature for the given pairs.

        ``scores`` holds the ``SCORE_FEATURES`` columns, scored by the caller for these
        rows; the rest are computed here. Every column is named once (``feature_matrix``).
        """
        ps, it = p.ps, self.items
        pos = ps.lookup(users, items)
        rep = pos >= 0
        q = np.where(rep, pos, 0)
        nb = p.bp.n_baskets[users].astype(np.float64)
        decayed = np.where(rep[:, None], ps.decayed[q] if len(ps.key) else 0.0,
                           np.zeros((1, len(DECAYS))))
        count = np.where(rep, ps.count[q] if len(ps.key) else 0.0, 0.0)
        last_rank = ps.last_rank[q] if len(ps.key) else 0
        last_time = np.where(rep, ps.last_time[q] if len(ps.key) else np.nan, np.nan)
        first_time = np.where(rep, ps.first_time[q] if len(ps.key) else np.nan, np.nan)
        own_iv = np.where(count > 1, (last_time - first_time) / DAY / np.maximum(count - 1, 1),
                          np.nan)
        interval = np.where(np.isnan(own_iv), it["interval"][items], own_iv)
        own = {f"dec_{r}": decayed[:, k] for k, r in enumerate(DECAYS)} | {
            "freq": count / np.maximum(nb, 1),
            "log_count": np.log1p(count),
            "log_gap_baskets": np.log1p(np.where(rep, nb - 1 - last_rank, nb + 1)),
            "item_log_pop": np.log1p(it["pop"][items]),
            "item_repeat": it["repeat"][items],
            "user_log_baskets": np.log1p(nb),
            "user_repeat_share": p.user_repeat[users],
            "is_repeat": rep,
            "trending": np.log1p(self.trending[items]),
        }
        if self.category_of is not None:
            cs = p.cats
            crow = cs.lookup(users, self.category_of[items])
            hit = crow >= 0
            cq = np.where(hit, crow, 0)
            n = np.where(hit, cs.baskets[cq] if len(cs.key) else 0.0, 0.0)
            own["cat_log_baskets"] = np.log1p(n)
            cat_last = np.where(hit, cs.last[cq] if len(cs.key) else np.nan, np.nan)
            cat_gap = np.where(n > 1, (cs.last[cq] - cs.first[cq]) / DAY / np.maximum(n - 1, 1)
                               if len(cs.key) else np.nan, np.nan)
        else:  # constant columns: nothing to learn from
            own["cat_log_baskets"] = 0.0
            cat_last = np.full(len(users), np.nan)
            cat_gap = np.full(len(users), np.nan)
        timed = time_features(last_time, interval, cat_last, cat_gap, p.bp.last_time[users],
                              now)
        X = feature_matrix(len(users), own, timed, scores)
        return Candidates(users, items, X, last_time, interval, cat_last, cat_gap)


def content_matrix(x: Interactions) -> sp.csr_matrix:
    """Items x terms, L2-normalised TF-IDF of the catalogue texts (empty without texts)."""
    docs = item_texts(x)
    if not any(docs):
        return sp.csr_matrix((x.n_items, 1))
    vec = TfidfVectorizer(max_features=50000, sublinear_tf=True, lowercase=True)
    return vec.fit_transform(docs).tocsr()


def _top_positive(score: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest positive scores (unordered)."""
    k = min(k, len(score))
    if k <= 0:
        return np.zeros(0, np.int64)
    top = np.argpartition(-score, k - 1)[:k]
    return top[score[top] > 0]


def _co_purchase_similarity(bp: BasketPairs, items: np.ndarray, k: int = 50,
                            shrink: float = 10.0) -> sp.csr_matrix:
    """Items x items (within ``items``): shrunk cosine of shared baskets, top ``k`` per row."""
    pos = np.full(bp.n_items, -1, np.int64)
    pos[items] = np.arange(len(items))
    keep = pos[bp.item] >= 0
    if not keep.any():
        return sp.csr_matrix((len(items), len(items)))
    width = int(bp.rank.max()) + 1
    _, basket = np.unique(bp.user[keep] * width + bp.rank[keep], return_inverse=True)
    b = sp.csr_matrix((np.ones(int(keep.sum())), (basket, pos[bp.item[keep]])),
                      shape=(int(basket.max()) + 1, len(items)))
    support = np.asarray(b.sum(axis=0)).ravel()
    co = (b.T @ b).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    co = co.tocoo()
    sim = co.data / (np.sqrt(support[co.row] * support[co.col]) + shrink)
    return top_k_per_row(sp.csr_matrix((sim, (co.row, co.col)), shape=co.shape), k)
