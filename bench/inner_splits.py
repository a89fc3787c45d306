"""Judge a ranking idea on the training data only: nested last-basket splits inside it.

The published split's held-out baskets must never choose anything (issue #3: "do not
tune on test baskets"). So an idea is compared on inner splits: drop the test baskets,
hold out each shopper's last *training* basket (split 1), then the one before (split 2),
and so on, refitting the shopkeeper model with each seed on each. Instacart's sample has
593 shoppers, so one split and one seed move NDCG@10 by about +-0.4 %: bench/README.md
asks an idea for +0.4 % over six cells (three splits x seeds 0 and 1) before it is kept.

Run: ``python bench/inner_splits.py instacart-sample [--seeds 0 1] [--splits 3]
[--only 2 3]`` with the idea applied to the working tree (and once without it, for the
reference cells). Prints one line per cell and the means (NDCG@10, new-item recall and the
learned new-item boost ``explore_boost_``); nothing is published.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from prepare_datasets import (  # noqa: E402
    dataset_parser,
    last_basket_split,
    parse_datasets,
)

from plugin.engine.baselines import PersonalTopFrequency  # noqa: E402
from plugin.engine.blend import ShopkeeperRecommender  # noqa: E402
from plugin.engine.data import Interactions  # noqa: E402
from plugin.engine.evaluate import HeldOut, evaluate_model, split  # noqa: E402


def nested_splits(train: Interactions, count: int) -> Iterator[tuple[int, Interactions, HeldOut]]:
    """Split k (1-based) holds out the k-th last basket of the training data's shoppers."""
    for k in range(1, count + 1):
        train, held = split(train, "last-basket")
        yield k, train, held


def run(train: Interactions, seeds: list[int], splits: int, only: set[int] | None = None,
        model: Callable[[int], object] = lambda seed: ShopkeeperRecommender(random_state=seed),
        ) -> list[dict]:
    """One cell per (split, seed): the model's NDCG@10 and new-item recall, against
    P-TopFreq on the same split (the best baseline on all three datasets)."""
    cells = []
    for k, inner, held in nested_splits(train, splits):
        if only and k not in only:
            continue
        base = evaluate_model(PersonalTopFrequency(), inner, held)["ndcg@k"]
        for seed in seeds:
            fitted = model(seed)
            m = evaluate_model(fitted, inner, held)
            cells.append({"split": k, "seed": seed, "ndcg": m["ndcg@k"],
                          "explore": m["recall_explore@k"], "p_topfreq": base,
                          "boost": getattr(fitted, "explore_boost_", None)})
            print(cell_line(cells[-1]), flush=True)
    return cells


def _boost(value: float | None) -> str:
    """The learned new-item boost; a model without one (a baseline) says so."""
    return "n/a" if value is None else f"{value:.3f}"


def cell_line(cell: dict) -> str:
    """One cell: an idea that moves NDCG@10 usually does so by trading repeats for new
    items, so the learned boost and the new-item recall are read next to it."""
    return (f"split {cell['split']} seed {cell['seed']}: NDCG@10 {cell['ndcg']:.4f} "
            f"({cell['ndcg'] / cell['p_topfreq']:.3f}x P-TopFreq {cell['p_topfreq']:.4f}), "
            f"new-item recall {cell['explore']:.4f}, new-item boost {_boost(cell['boost'])}")


def mean_line(name: str, cells: list[dict]) -> str:
    """The means over the cells, of the same three numbers (the boost over the cells that
    learned one)."""
    boosts = [c["boost"] for c in cells if c["boost"] is not None]
    return (f"{name}: mean of {len(cells)} cells: NDCG@10 "
            f"{np.mean([c['ndcg'] for c in cells]):.4f}, new-item recall "
            f"{np.mean([c['explore'] for c in cells]):.4f}, new-item boost "
            f"{_boost(float(np.mean(boosts)) if boosts else None)}")


def main(argv: list[str] | None = None) -> int:
    parser = dataset_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--only", type=int, nargs="+", help="run only these splits (1-based)")
    args = parse_datasets(parser, argv)
    for name in args.names:
        train, _ = last_basket_split(name, args.data)  # the test baskets are dropped here
        cells = run(train, args.seeds, args.splits, set(args.only or ()))
        if cells:
            print(mean_line(name, cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
