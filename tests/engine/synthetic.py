"""Small hand-shaped purchase histories for engine tests (no dataset files)."""

from __future__ import annotations

import numpy as np

from plugin.engine.data import Interactions

DAY = 86400.0
T0 = 1_700_000_000.0  # 2023-11-14

CATALOG = {
    "milk": {"title": "Whole milk", "categories": ["dairy"]},
    "bread": {"title": "Sourdough bread", "categories": ["bakery"]},
    "eggs": {"title": "Free range eggs", "categories": ["dairy"]},
    "seat": {"title": "Toilet seat", "categories": ["home"]},
    "kettle": {"title": "Electric kettle", "categories": ["home"]},
    "lamp": {"title": "Desk lamp", "categories": ["home"]},
    "tea-a": {"title": "Green tea", "categories": ["tea"]},
    "tea-b": {"title": "Black tea", "categories": ["tea"]},
    "tea-c": {"title": "Mint tea", "categories": ["tea"]},
    **{f"snack-{k}": {"title": f"Crunchy snack {k}", "categories": ["snacks"]} for k in range(8)},
    "new-jam": {"title": "Strawberry jam", "categories": ["pantry"]},  # never bought
}


def weekly_rows(seed: int = 0, n_shoppers: int = 24, weeks: int = 8) -> list[tuple]:
    """(shopper, item, unix time, basket) rows: weekly groceries, one durable each."""
    rng = np.random.default_rng(seed)
    rows = []
    durables = ["seat", "kettle", "lamp"]
    for s in range(n_shoppers):
        shopper = f"s{s:02d}"
        offset = rng.uniform(0, 2)
        for w in range(weeks):
            t = T0 + (7 * w + offset + rng.uniform(-0.3, 0.3)) * DAY
            basket = f"{shopper}-w{w}"
            items = ["milk"] if rng.random() < 0.9 else []
            items += ["bread"] if rng.random() < 0.7 else []
            items += ["eggs"] if s % 2 == 0 and rng.random() < 0.6 else []
            items += [f"tea-{'abc'[rng.integers(3)]}"]
            group = s % 2  # two kinds of shoppers: snacks 0-3 or snacks 4-7
            items += [f"snack-{4 * group + k}" for k in rng.choice(4, 2, replace=False)]
            if w == 2:
                items.append(durables[s % 3])
            rows += [(shopper, i, t, basket) for i in dict.fromkeys(items)]
    return rows


def build(rows: list[tuple], catalog: dict | None = None) -> Interactions:
    """Interactions from (shopper, item, time, basket) rows with the shared catalog."""
    users, items, ts, baskets = zip(*rows, strict=True) if rows else ((), (), (), ())
    return Interactions.from_arrays(list(users), list(items), list(ts), baskets=list(baskets),
                                    catalog=CATALOG if catalog is None else catalog)


def weekly_history(seed: int = 0, **kw) -> Interactions:
    return build(weekly_rows(seed, **kw))
