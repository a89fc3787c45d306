"""Pick the collaborative model by measurement: EASE against implicit matrix factorisation.

Shopkeeper's collaborative model proposes items a shopper has *not* bought ("popular with
shoppers like you"): it is the ``collaborative`` source of the blender and a new-item
candidate source and feature of the shopkeeper ranker. So both candidates are judged in
that role, on the last-basket split of each research dataset, with the shopper's own past
purchases excluded from their lists: ``EASERecommender`` (closed-form linear item model)
and ALS from the ``implicit`` package (Hu, Koren and Volinsky, as in the ALS baseline).
The headline is new-item recall@10; plain ALS (owned items allowed, the evaluation
baseline) is shown for reference.

Run: ``python bench/collaborative.py [dataset ...]`` (``make bench-collaborative``); the
table goes between the markers in bench/README.md, the figures to
``bench/results/collaborative.json``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from common import publish  # noqa: E402
from prepare_datasets import DATASETS, dataset_arguments, last_basket_split  # noqa: E402

from plugin.engine.base import Recommendation  # noqa: E402
from plugin.engine.baselines import ALSBaseline  # noqa: E402
from plugin.engine.collaborative import EASERecommender  # noqa: E402
from plugin.engine.evaluate import evaluate_model  # noqa: E402
from plugin.engine.repurchase import RepurchaseModel  # noqa: E402

COLUMNS = (("recall_explore@k", "new-item R@10"), ("recall@k", "R@10"), ("ndcg@k", "NDCG@10"),
           ("coverage", "coverage"), ("fit_seconds", "fit s"), ("recommend_ms_p99", "p99 ms"))


class DiscoveryALS(ALSBaseline):
    """ALS in the collaborative role: the shopper's own past purchases are left out."""

    source_name = "als-discovery"

    def recommend(self, shopper: str, n: int = 10, *, exclude: Iterable[str] | None = None,
                  at: datetime | float | None = None) -> list[Recommendation]:
        owned = self.data_.item_ids[np.unique(self.data_.item[self._events(shopper, at)])]
        return super().recommend(shopper, n, exclude=[*(exclude or ()), *map(str, owned)],
                                 at=at)


def models() -> dict[str, object]:
    """The candidates, fresh per dataset, with their default hyperparameters."""
    return {"ease": EASERecommender(), "als (owned excluded)": DiscoveryALS(),
            "als (baseline)": ALSBaseline()}


def run(name: str, data: Path) -> dict:
    """Every candidate on one dataset's last-basket split."""
    train, test = last_basket_split(name, data)
    judge = RepurchaseModel().fit(train)
    out = {"users": len(test), "models": {}}
    for label, model in models().items():
        out["models"][label] = evaluate_model(model, train, test, judge=judge)
        print(f"{name} {label}: new-item R@10 "
              f"{out['models'][label]['recall_explore@k']:.4f}", file=sys.stderr)
    return out


def render(results: dict[str, dict]) -> str:
    """Markdown: one row per dataset and model."""
    lines = ["| dataset | model | " + " | ".join(h for _, h in COLUMNS) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    for name, result in results.items():
        for label, m in result["models"].items():
            cells = [f"{m[k]:.1f}" if k == "fit_seconds" else
                     f"{m[k]:.2f}" if k.startswith("recommend_ms") else f"{m[k]:.4f}"
                     for k, _ in COLUMNS]
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    names, data = dataset_arguments(__doc__.splitlines()[0], argv)
    publish("collaborative", {name: run(name, data) for name in names}, DATASETS, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
