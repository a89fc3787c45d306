"""How much of a result is the seed: the shopkeeper model refit with several random states.

The ranker subsamples negatives, splits shoppers into cross-fitting folds and grows trees
from a seed, so one run's NDCG@10 is one draw. This refits it with each seed on the same
last-basket split (the held-out baskets are only scored, never used to choose anything)
and reports every draw against the best baseline, so a ratio near a target can be read as
the seed's luck or as the model's level.

Run: ``python bench/seeds.py [dataset ...] [--seeds 0 1 2 3 4]`` (``make bench-seeds``, on
Instacart); the table goes between the markers in bench/README.md, the figures to
``bench/results/seeds.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from common import publish  # noqa: E402
from prepare_datasets import (  # noqa: E402
    DATASETS,
    dataset_parser,
    last_basket_split,
    parse_datasets,
)

from plugin.engine.blend import ShopkeeperRecommender  # noqa: E402
from plugin.engine.evaluate import evaluate_model  # noqa: E402
from plugin.evaluation_cli import make_judge, model_factories  # noqa: E402


def run(name: str, data: Path, seeds: list[int]) -> dict:
    """The baselines once, then the shopkeeper model once per seed, on one split."""
    train, test = last_basket_split(name, data)
    judge = make_judge().fit(train)
    baselines = {label: evaluate_model(factory(), train, test, judge=judge)["ndcg@k"]
                 for label, factory in model_factories().items() if label != "shopkeeper"}
    best = max(baselines, key=baselines.get)
    draws = []
    for seed in seeds:
        model = ShopkeeperRecommender(random_state=seed)
        m = evaluate_model(model, train, test, judge=judge)
        draws.append({"seed": seed, "ndcg": m["ndcg@k"], "explore": m["recall_explore@k"],
                      "boost": model.explore_boost_, "ratio": m["ndcg@k"] / baselines[best]})
        print(f"{name} seed {seed}: NDCG@10 {m['ndcg@k']:.4f} "
              f"({draws[-1]['ratio']:.3f}x {best})", file=sys.stderr)
    return {"users": len(test), "best_baseline": best, "baseline_ndcg": baselines[best],
            "draws": draws}


def render(results: dict[str, dict]) -> str:
    """Markdown: one row per dataset and seed, then the spread."""
    lines = ["| dataset | seed | NDCG@10 | vs best baseline | new-item R@10 | boost |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        for d in r["draws"]:
            lines.append(f"| {name} | {d['seed']} | {d['ndcg']:.4f} | {d['ratio']:.3f}x | "
                         f"{d['explore']:.4f} | {d['boost']:.1f} |")
        ratios = np.array([d["ratio"] for d in r["draws"]])
        lines.append(f"| {name} | all {len(ratios)} | | mean {ratios.mean():.3f}x "
                     f"(min {ratios.min():.3f}x, max {ratios.max():.3f}x) | | |")
        lines.append(f"| {name} | {r['best_baseline']} | {r['baseline_ndcg']:.4f} | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = dataset_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parse_datasets(parser, argv)
    publish("seeds", {name: run(name, args.data, args.seeds) for name in args.names},
            DATASETS, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
