"""Durable, consumable or variety: learned per item from repeat-purchase behaviour.

A toilet seat bought once must never be recommended again to the same shopper; milk comes
back when it is due. Items with few buyers borrow strength from their category, and the
category from the whole shop (beta-binomial shrinkage), so the rule also holds for the
long tail and for shops with no categories at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np

from plugin.engine.arrays import lookup, unique_pairs, unique_values
from plugin.engine.base import BaseRecommender, Recommendation, check_is_fitted
from plugin.engine.baskets import DAY, BasketPairs, basket_pairs
from plugin.engine.data import Interactions, to_timestamp
from plugin.engine.history import HistoryMixin
from plugin.engine.pairs import PairStats, pair_stats

__all__ = ["KINDS", "LAPSED_AFTER", "RepurchaseModel", "every", "lapsed", "own_rhythm",
           "when_due"]

KINDS = ("durable", "consumable", "variety", "unknown")
#: A consumable stops being due once this many of its intervals have passed since the last
#: purchase: the shopper has stopped buying it (or buys it elsewhere), and "the usual?"
#: about milk last bought months ago is no reminder. The merchant's consumables
#: (``plugin.api.overrides``) follow the same window.
LAPSED_AFTER = 3.0


class RepurchaseModel(HistoryMixin, BaseRecommender):
    """Classify items by how often their buyers buy them again, and say what is due.

    Parameters
    ----------
    durable_below : float
        Items whose (shrunk) repeat rate is below this are durable, or variety-seeking
        when their category is re-bought with other items.
    consumable_above : float
        Items whose repeat rate reaches this are consumable (come back when due).
    variety_above : float
        Share of category buyers who buy in the category again that makes a low-repeat
        item "variety" (recommend siblings) rather than durable.
    prior : float
        Pseudo-buyers pulling an item's rate towards its category's.
    category_prior : float
        Pseudo-buyers pulling a category's rate towards the whole shop's (small: staples
        bought every week must not make a small durable category look consumable).
    due_fraction : float
        A consumable is due once this fraction of its interval has elapsed.
    """

    source_name = "repurchase_due"

    def __init__(self, durable_below: float = 0.04, consumable_above: float = 0.15,
                 variety_above: float = 0.5, prior: float = 5.0, category_prior: float = 1.0,
                 due_fraction: float = 0.8) -> None:
        self.durable_below = durable_below
        self.consumable_above = consumable_above
        self.variety_above = variety_above
        self.prior = prior
        self.category_prior = category_prior
        self.due_fraction = due_fraction

    def fit(self, interactions: Interactions, *, show_progress: bool = False) -> RepurchaseModel:
        """Learn per-item repeat rate, kind and typical interval."""
        x = self.data_ = interactions
        bp = basket_pairs(x)
        ps = pair_stats(bp)
        n = x.n_items
        users, items = ps.key // n, ps.key % n
        # a repeat is a purchase on another day: two orders on one day (a forgotten item,
        # a split basket) say nothing about the item coming back; so only buyers who
        # shopped again on a later day than their first purchase could have repeated
        chance = (_day(bp.last_time[users]) > _day(ps.first_time) if len(users)
                  else np.zeros(0, bool))
        buyers = np.bincount(items, weights=chance, minlength=n)
        repeats = np.bincount(items, weights=chance & (_days_bought(bp, ps) > 1), minlength=n)
        cats = np.array([x.catalog.primary_category(i) for i in range(n)], dtype=object)
        cat_names, cat_of = np.unique(cats, return_inverse=True) if n else (np.array([]), [])
        c_buy = np.bincount(cat_of, weights=buyers, minlength=len(cat_names))
        c_rep = np.bincount(cat_of, weights=repeats, minlength=len(cat_names))
        shop = repeats.sum() / buyers.sum() if buyers.sum() else 0.0
        c_rate = (c_rep + self.category_prior * shop) / (c_buy + self.category_prior)
        c_rate[cat_names == ""] = shop  # no category: fall back to the whole shop
        base = c_rate[cat_of] if n else np.zeros(0)
        self.repeat_rate_ = (repeats + self.prior * base) / (buyers + self.prior)
        rebuy = _category_rebuy(x, bp, cat_of, len(cat_names))
        rebuy[cat_names == ""] = 0.0
        self.category_rebuy_ = rebuy[cat_of] if n else np.zeros(0)
        kind = np.full(n, "variety", dtype=object)
        kind[self.repeat_rate_ >= self.consumable_above] = "consumable"
        low = self.repeat_rate_ < self.durable_below
        kind[low] = np.where(self.category_rebuy_[low] >= self.variety_above, "variety", "durable")
        kind[(buyers == 0) & (cats == "")] = "unknown"
        self.kind_ = kind.astype(str)
        self.interval_days_ = _median_interval(bp, ps, n)
        self.end_ = float(x.timestamp.max()) if len(x) else 0.0
        return self

    def is_durable(self, item_idx: np.ndarray) -> np.ndarray:
        """Boolean per item index: bought once, never again (the toilet-seat rule)."""
        check_is_fitted(self, "kind_")
        return self.kind_[np.asarray(item_idx, dtype=np.int64)] == "durable"

    def due(self, shopper: str, at: datetime | float | None = None) -> list[Recommendation]:
        """Consumables the shopper buys regularly whose interval has (nearly) elapsed."""
        check_is_fitted(self, "kind_")
        now = to_timestamp(at)
        now = self.end_ if now is None else now
        ev = self._events(shopper, at)
        return self.due_in(self.data_.item[ev], self.data_.timestamp[ev], now)

    def due_in(self, items: np.ndarray, times: np.ndarray, now: float) -> list[Recommendation]:
        """``due`` of a history the model was not fitted on (item indices, unix times): a
        sub-profile's purchases are nobody's in the fit, but milk bought for Maya comes
        back on Maya's rhythm, or the shop's while she has none."""
        check_is_fitted(self, "kind_")
        if not len(items):
            return []
        owned, count, last, own_iv = own_rhythm(np.asarray(items, np.int64),
                                                np.asarray(times, np.float64))
        interval = np.where(np.isnan(own_iv), self.interval_days_[owned], own_iv)
        elapsed = (now - last) / DAY
        ratio = elapsed / np.where(interval > 0, interval, np.nan)
        ok = (self.kind_[owned] == "consumable") & (ratio >= self.due_fraction) \
            & ~lapsed(last, now, interval)
        score = np.exp(-np.abs(np.log(np.where(ok, ratio, 1.0))))
        out = []
        for j in np.flatnonzero(ok)[np.argsort(-score[ok], kind="stable")]:
            out.append(Recommendation(str(self.data_.item_ids[owned[j]]), float(score[j]),
                                      self.source_name,
                                      _due_reason(interval[j], own=count[j] > 1,
                                                  last=float(last[j]), now=now)))
        return out

    def recommend(self, shopper: str, n: int = 10, *, exclude: Iterable[str] | None = None,
                  at: datetime | float | None = None) -> list[Recommendation]:
        """The shopper's due consumables (may be fewer than ``n``; blend for a full list)."""
        banned = set(exclude or ())
        return [r for r in self.due(shopper, at=at) if r.item not in banned][:n]


def own_rhythm(items: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, ...]:
    """A shopper's purchases per item: distinct items, distinct days bought, last time and
    mean days between the first and last purchase (nan when bought on one day only)."""
    owned, inv = np.unique(items, return_inverse=True)
    last = np.full(len(owned), -np.inf)
    np.maximum.at(last, inv, times)
    first = np.full(len(owned), np.inf)
    np.minimum.at(first, inv, times)
    day = np.floor(np.asarray(times, np.float64) / DAY).astype(np.int64)
    bought, _ = unique_pairs(inv, day - day.min(initial=0))  # distinct (item, day) pairs
    count = np.bincount(bought, minlength=len(owned))
    interval = np.where(count > 1, (last - first) / DAY / np.maximum(count - 1, 1), np.nan)
    return owned, count, last, interval


def lapsed(last: float | np.ndarray, now: float | np.ndarray,
           interval_days: float | np.ndarray) -> bool | np.ndarray:
    """Whether a shopper's rhythm for an item no longer holds at ``now`` (unix s): more than
    ``LAPSED_AFTER`` intervals since its ``last`` purchase, where ``due`` stops offering it.
    Milk bought weekly, last two months ago, is not "usually every ~7 days" any more.

    The one place the rule lives (``due_in``, the reasons, the merchant's ``Override.due``);
    elementwise over arrays (a bool array), a bool for scalars. An unknown (nan) interval
    never lapses: whether there is a rhythm at all is the caller's question."""
    since = np.asarray(now, np.float64) - np.asarray(last, np.float64)
    out = since > LAPSED_AFTER * np.asarray(interval_days, np.float64) * DAY
    return bool(out) if out.ndim == 0 else out


def _due_reason(interval_days: float, own: bool = True, last: float | None = None,
                now: float | None = None) -> str:
    """The shopper's own rhythm, or (bought once) the usual one of everyone who reorders it,
    with when it comes due (``last`` purchase, unix s, plus the interval) as of ``now``."""
    who = "you" if own else "shoppers"
    reason = f"{who} usually reorder this {every(interval_days)}"
    return reason if last is None else f"{reason}, {when_due(last, interval_days, now)}"


def when_due(last: float, interval_days: float, now: float | None = None) -> str:
    """"due about 26 Nov" (``due_date``), or "due now" once that day is past at ``now``
    (unix s; None: the date as it is): an overdue item read "due about 12 Nov" on 20 Nov.
    Still true on a card shown hours later, as the date is."""
    due = float(last) + float(interval_days) * DAY
    if now is not None and np.floor(due / DAY) < np.floor(float(now) / DAY):
        return "due now"
    return f"due about {due_date(last, interval_days)}"


def due_date(last: float, interval_days: float) -> str:
    """When a reorder comes due, as a shopper reads it on a card ("26 Nov"): a date, not
    "in 2 days", because precomputed lists are shown for hours after they were made.
    UTC's calendar day; "about" covers a shop a few hours away from it."""
    day = datetime.fromtimestamp(float(last) + float(interval_days) * DAY, UTC)
    return f"{day.day} {day:%b}"


def every(days: float) -> str:
    """A rhythm for a reason: "every ~N days", or "every day" (never "every ~1 days")."""
    n = max(1, round(float(days)))
    return "every day" if n == 1 else f"every ~{n} days"


def _category_rebuy(x: Interactions, bp: BasketPairs, cat_of: np.ndarray,
                    n_cats: int) -> np.ndarray:
    """Per category: share of its shoppers who bought in it on two or more days (two
    orders on one day are one visit to the category, as for an item's repeats)."""
    if not len(bp.user) or not n_cats:
        return np.zeros(n_cats)
    uc_row = bp.user * n_cats + np.asarray(cat_of)[bp.item]
    day = _day(bp.time).astype(np.int64)
    day -= day.min()
    width = int(day.max()) + 1
    key = unique_values(uc_row * width + day)  # distinct (user, category, day)
    uc, count = np.unique(key // width, return_counts=True)
    shoppers = np.bincount(uc % n_cats, minlength=n_cats)
    again = np.bincount(uc % n_cats, weights=count > 1, minlength=n_cats)
    return np.divide(again, shoppers, out=np.zeros(n_cats), where=shoppers > 0)


def _day(times: np.ndarray) -> np.ndarray:
    """Calendar day (UTC) of unix times, as ``own_rhythm`` counts them."""
    return np.floor(np.asarray(times, np.float64) / DAY)


def _days_bought(bp: BasketPairs, ps: PairStats) -> np.ndarray:
    """Per (shopper, item) pair of ``ps``: on how many distinct days it was bought."""
    if not len(ps.key):
        return np.zeros(0, np.int64)
    day = _day(bp.time).astype(np.int64)
    pairs, _ = unique_pairs(bp.user * ps.n_items + bp.item, day - day.min())
    return np.bincount(lookup(ps.key, pairs), minlength=len(ps.key))


def _median_interval(bp: BasketPairs, ps: PairStats, n_items: int) -> np.ndarray:
    """Median over repeat buyers of their mean days between purchases (nan if none).

    Purchases are counted on distinct days, as ``due`` counts the shopper's own: a second
    order on the same day is no repurchase, and counted as one it shrank the interval
    (weekly milk bought in two orders a week: "every ~3 days").
    """
    out = np.full(n_items, np.nan)
    if not len(ps.key):
        return out
    days = _days_bought(bp, ps)
    multi = days > 1
    if not multi.any():
        return out
    items = (ps.key % n_items)[multi]
    gaps = (ps.last_time[multi] - ps.first_time[multi]) / DAY / (days[multi] - 1)
    order = np.lexsort((gaps, items))
    items, gaps = items[order], gaps[order]
    lo = np.searchsorted(items, np.arange(n_items))
    hi = np.searchsorted(items, np.arange(n_items), side="right")
    has = hi > lo
    mid_lo, mid_hi = (lo + hi - 1) // 2, (lo + hi) // 2
    out[has] = (gaps[mid_lo[has]] + gaps[mid_hi[has]]) / 2
    return out
