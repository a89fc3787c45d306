"""Grafting benchmark for "who are you shopping for?" (issue 6).

No dataset says which purchases were for someone else, so we build that truth honestly:

1. Hosts are real shoppers who never buy baby or kids products (Complete Journey: and whose
   demographics, when known, report no kids). Donors are real shoppers with at least three
   baskets containing baby or kids products.
2. Each host's last basket is held out (their own next basket). Into the host's earlier
   history we graft whole real baskets of one donor (baskets with a baby/kids item, about
   ``--graft-share`` of the host's basket count, at random times after the host's third
   basket). Grafted lines are the positives.
3. The detector is fitted on the contaminated shop (as in production), then walks each
   host's baskets in time order; a basket scoring over the threshold is flagged and no
   longer counts as the host's history.
4. Precision / recall are over grafted purchase lines. "Recall (new to host)" leaves out
   grafted lines of items the host also buys themselves: those cannot be told apart and do
   not distort the host's profile.
5. NDCG@10 on the held-out basket, fitting the production recommender on: clean history;
   mixed history (no sub-profiles); mixed minus every flagged basket ("detector only", no
   question asked); and the production flow ("prompted"): a flagged basket is asked about
   at most once per cooldown (shop default), a truthful shopper answers "me" for their own
   baskets and "someone else" for grafted ones, unasked baskets stay in the profile.
   "Recovery" is with / clean; "gap closed" is (with - mixed) / (clean - mixed).

Run: ``python bench/subprofiles.py`` (``make bench-subprofiles``); a few minutes.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import prepare_datasets  # noqa: E402

from plugin.engine.data import Interactions, to_timestamp  # noqa: E402
from plugin.engine.subprofiles import OutOfProfileDetector, audiences_of  # noqa: E402
from plugin.subprofiles.prompt import DEFAULT_SETTINGS  # noqa: E402

SOURCE = Path("/work/shared/data")
TARGET_AUDIENCES = {"baby", "kids"}
THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7)


def load(name: str) -> tuple[list[list], dict[str, dict], set[str]]:
    """Rows ``[user, item, time, basket, qty, price]``, catalog, and users known to have kids."""
    rows, catalog_rows = prepare_datasets.DATASETS[name](SOURCE)
    catalog = {c[0]: {"title": c[1], "description": c[2], "categories": [c[3]] if c[3] else []}
               for c in catalog_rows}
    with_kids: set[str] = set()
    no_kids: set[str] = set()
    demo = SOURCE / name / "demographics.csv.gz"
    if demo.exists():
        with gzip.open(demo, "rt", newline="") as fh:
            for r in csv.DictReader(fh):
                (with_kids if r["kids_count"] not in ("0", "") else no_kids).add(r["household_id"])
    return rows, catalog, with_kids


def audience_items(catalog: dict[str, dict]) -> set[str]:
    return {i for i, m in catalog.items()
            if audiences_of(m["title"], m["description"], *m["categories"]) & TARGET_AUDIENCES}


def baskets_by_user(rows: list[list]) -> dict[str, list[tuple[float, str, list[str]]]]:
    """user -> [(time, basket id, items)] sorted by time."""
    cache: dict[str, float] = {}
    grouped: dict[tuple[str, str], list] = {}
    for user, item, when, basket, *_ in rows:
        key = (user, basket)
        if key not in grouped:
            t = cache.get(when)
            if t is None:
                t = cache[when] = to_timestamp(_dt(when))
            grouped[key] = [t, []]
        grouped[key][1].append(item)
    out: dict[str, list] = defaultdict(list)
    for (user, basket), (t, items) in grouped.items():
        out[user].append((t, basket, items))
    for seq in out.values():
        seq.sort(key=lambda b: (b[0], b[1]))
    return out


def _dt(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text)


def graft(users: dict, audience: set[str], with_kids: set[str], n_hosts: int,
          share: float, rng: np.random.Generator) -> dict[str, list]:
    """Host -> training baskets as ``(time, basket, items, grafted)`` plus the held-out one."""
    def kids_baskets(seq):
        return [b for b in seq if audience.intersection(b[2])]

    donors = [u for u, seq in users.items() if len(kids_baskets(seq[:-1])) >= 3]
    hosts = [u for u, seq in users.items() if len(seq) >= 9 and u not in with_kids
             and not any(audience.intersection(b[2]) for b in seq)]
    hosts = list(rng.permutation(hosts)[:n_hosts])
    plan = {}
    for host in hosts:
        seq = users[host]
        train, test = seq[:-1], seq[-1]
        donor = str(rng.choice(donors))
        pool = kids_baskets(users[donor][:-1])
        k = min(len(pool), max(2, round(share * len(train))))
        picked = [pool[j] for j in rng.choice(len(pool), size=k, replace=False)]
        lo, hi = train[min(3, len(train) - 1)][0], train[-1][0]
        mixed = [(t, b, items, False) for t, b, items in train]
        mixed += [(float(rng.uniform(lo, hi)), f"g{host}:{b}", items, True)
                  for _, b, items in picked]
        mixed.sort(key=lambda b: (b[0], b[1]))
        plan[host] = [mixed, test]
    return plan


def detect(detector: OutOfProfileDetector, plan: dict, threshold: float) -> dict[str, set[str]]:
    """Detector alone: walk each host's baskets in time order; every flagged basket leaves
    the host's history (no question asked, so the host's own odd baskets go too)."""
    moved: dict[str, set[str]] = {}
    for host, (mixed, _) in plan.items():
        history: list[str] = []
        flagged = set()
        for _, basket, items, _ in mixed:
            if detector.score(history, items) >= threshold:
                flagged.add(basket)
            else:
                history.extend(items)
        moved[host] = flagged
    return moved


def prompted(detector: OutOfProfileDetector, plan: dict, threshold: float,
             cooldown_days: float) -> tuple[dict[str, set[str]], int]:
    """The production flow with a truthful shopper: a flagged basket is asked about when the
    cooldown allows; "someone else" moves it, "me" keeps it; baskets not asked about stay.
    Returns the moved baskets and the number of questions asked."""
    moved: dict[str, set[str]] = {}
    questions = 0
    for host, (mixed, _) in plan.items():
        history: list[str] = []
        out: set[str] = set()
        last = None
        for t, basket, items, grafted in mixed:
            can_ask = last is None or t - last >= cooldown_days * 86400
            if can_ask and detector.score(history, items) >= threshold:
                last, questions = t, questions + 1
                if grafted:
                    out.add(basket)
                    continue
            history.extend(items)
        moved[host] = out
    return moved, questions


def scores(plan: dict, moved: dict[str, set[str]]) -> dict[str, float]:
    tp = fp = fn = fn_new = tp_new = 0
    for host, (mixed, _) in plan.items():
        own = {i for _, _, items, g in mixed if not g for i in items}
        for _, basket, items, grafted in mixed:
            hit = basket in moved[host]
            for item in items:
                if grafted and hit:
                    tp += 1
                    tp_new += item not in own
                elif grafted:
                    fn += 1
                    fn_new += item not in own
                elif hit:
                    fp += 1
    return {"precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1),
            "recall_new": tp_new / max(tp_new + fn_new, 1)}


def interactions(users: dict, plan: dict, catalog: dict,
                 moved: dict[str, set[str]] | None = None, *, clean: bool = False
                 ) -> Interactions:
    """The shop's training data: hosts' histories clean, or mixed minus ``moved``."""
    u, i, t, b = [], [], [], []
    for user, seq in users.items():
        if user in plan:
            keep = [(tm, bk, items) for tm, bk, items, g in plan[user][0]
                    if not (clean and g) and bk not in (moved or {}).get(user, ())]
        else:
            keep = seq
        for tm, bk, items in keep:
            for item in items:
                u.append(user)
                i.append(item)
                t.append(tm)
                b.append(f"{user}:{bk}")
    return Interactions.from_arrays(u, i, t, baskets=b, catalog=catalog)


def ndcg_at_10(model, plan: dict) -> float:
    values = []
    for host, (_, (t, _, test)) in plan.items():
        relevant = set(test)
        ranked = [r.item for r in model.recommend(host, 10, at=t)]
        dcg = sum(1 / np.log2(r + 2) for r, item in enumerate(ranked) if item in relevant)
        ideal = sum(1 / np.log2(r + 2) for r in range(min(len(relevant), 10)))
        values.append(dcg / ideal)
    return float(np.mean(values))


def new_model():
    try:
        from plugin.engine.shopkeeper import ShopkeeperRecommender
    except ImportError:  # the engine's production model is not there: say so in the table
        from plugin.engine.baselines import PersonalTopFrequency

        return PersonalTopFrequency()
    return ShopkeeperRecommender(max_validation_users=1000, max_iter=80)


def run(name: str, n_hosts: int, share: float, threshold: float, cooldown_days: float,
        seed: int) -> dict:
    started = time.perf_counter()

    def phase(label: str) -> None:
        print(f"  {name}: {label} at {time.perf_counter() - started:.0f} s", file=sys.stderr)

    rng = np.random.default_rng(seed)
    rows, catalog, with_kids = load(name)
    users = baskets_by_user(rows)
    plan = graft(users, audience_items(catalog), with_kids, n_hosts, share, rng)
    mixed = interactions(users, plan, catalog)
    phase("data ready")
    detector = OutOfProfileDetector(random_state=seed).fit(mixed)
    phase("detector fitted")
    flagged = {th: detect(detector, plan, th) for th in sorted({*THRESHOLDS, threshold})}
    sweep = {th: scores(plan, flagged[th]) for th in THRESHOLDS}
    asked, questions = prompted(detector, plan, threshold, cooldown_days)
    result = {"dataset": name, "hosts": len(plan), "threshold": threshold,
              "cooldown_days": cooldown_days, "questions_per_host": questions / len(plan),
              "grafted_lines": sum(len(x[2]) for m, _ in plan.values() for x in m if x[3]),
              **scores(plan, flagged[threshold]), "asked_recall": scores(plan, asked)["recall"],
              "sweep": sweep}
    phase("detection scored")
    variants = {"clean": interactions(users, plan, catalog, clean=True), "mixed": mixed,
                "detector": interactions(users, plan, catalog, flagged[threshold]),
                "prompted": interactions(users, plan, catalog, asked)}
    for label, data in variants.items():
        model = new_model().fit(data)
        result[f"ndcg_{label}"] = ndcg_at_10(model, plan)
        phase(f"NDCG {label}")
    result["model"] = type(model).__name__
    clean, dirty = result["ndcg_clean"], result["ndcg_mixed"]
    for label in ("detector", "prompted"):
        fixed = result[f"ndcg_{label}"]
        result[f"recovery_{label}"] = fixed / max(clean, 1e-12)
        result[f"gap_{label}"] = (fixed - dirty) / (clean - dirty) if clean > dirty \
            else float("nan")
    result["seconds"] = time.perf_counter() - started
    return result


def table(results: list[dict]) -> str:
    cols = ["dataset", "hosts", "grafted lines", "threshold", "precision", "recall",
            "recall (new to host)", "NDCG@10 clean", "mixed, no sub-profiles",
            "with sub-profiles: detector only", "with sub-profiles: prompted",
            "recovery (detector / prompted)", "gap closed (detector / prompted)",
            "questions per host", "model"]
    lines = ["| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
    for r in results:
        lines.append(
            f"| {r['dataset']} | {r['hosts']} | {r['grafted_lines']} | {r['threshold']:.2f} | "
            f"{r['precision']:.3f} | {r['recall']:.3f} | {r['recall_new']:.3f} | "
            f"{r['ndcg_clean']:.4f} | {r['ndcg_mixed']:.4f} | {r['ndcg_detector']:.4f} | "
            f"{r['ndcg_prompted']:.4f} | {100 * r['recovery_detector']:.1f} % / "
            f"{100 * r['recovery_prompted']:.1f} % | {100 * r['gap_detector']:.0f} % / "
            f"{100 * r['gap_prompted']:.0f} % | {r['questions_per_host']:.1f} | {r['model']} |")
    return "\n".join(lines)


def sweep_table(results: list[dict]) -> str:
    lines = ["| dataset | threshold | precision | recall | recall (new to host) |",
             "|---|---|---|---|---|"]
    for r in results:
        for th, s in r["sweep"].items():
            lines.append(f"| {r['dataset']} | {th:.2f} | {s['precision']:.3f} | "
                         f"{s['recall']:.3f} | {s['recall_new']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="dunnhumby-complete-journey,instacart-sample")
    parser.add_argument("--hosts", type=int, default=300)
    parser.add_argument("--graft-share", type=float, default=0.25)
    parser.add_argument("--threshold", type=float, default=DEFAULT_SETTINGS["threshold"])
    parser.add_argument("--cooldown-days", type=float,
                        default=DEFAULT_SETTINGS["cooldown_days"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    results = []
    for name in args.datasets.split(","):
        r = run(name, args.hosts, args.graft_share, args.threshold, args.cooldown_days,
                args.seed)
        print(f"{name}: {r['seconds']:.0f} s", file=sys.stderr)
        results.append(r)
    print(table(results))
    print()
    print(sweep_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
