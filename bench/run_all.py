"""``make bench``: every benchmark in ``bench/`` in one command and one summary table.

    python bench/run_all.py [--quick] [--only ingest,scale] [--json summary.json]

Each benchmark runs as its own subprocess with a time limit (ingest, serve and scale
against one throwaway PostgreSQL cluster from ``.ci/postgres.sh``, or
``$SHOPKEEPER_TEST_POSTGRES_URL``), its output is kept in a log directory, and its headline
figures are read back (JSON where the script writes it, its printed table otherwise). Every
row compares a figure with the baseline measured in the same run: value, baseline, ratio.
``--quick`` uses smaller counts and one dataset where a benchmark allows it (measured on
2 cores: quick 3.8 min, full 9.5 min when quiet and 29 min under a load average of 14).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from common import postgres_server  # noqa: E402

PY = sys.executable


@dataclass
class Row:
    """One line of the summary: a figure, the same run's baseline for it, and their ratio."""

    benchmark: str
    figure: str
    value: float | None
    baseline: str = ""
    baseline_value: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline_value or self.baseline_value < 0:
            return None
        return self.value / self.baseline_value


# ---------------------------------------------------------------- parsers (pure)
def _number(pattern: str, text: str) -> float | None:
    m = re.search(pattern, text, re.MULTILINE)
    return float(m.group(1)) if m else None


def parse_ingest(text: str) -> list[Row]:
    """``bench/ingest.py`` prints a small text table; read its rates and the lost count."""
    bare = _number(r"^bare \(reads body only\)\s+([\d.]+)", text)
    hook = _number(r"^webhook \(verify\+store\)\s+([\d.]+)", text)
    proc = _number(r"^processed/s \(\d+ inbox workers\):\s+([\d.]+)", text)
    lost = _number(r"lost:\s+(\d+)", text)
    return [Row("ingest", "webhook accepted, req/s", hook, "bare endpoint req/s", bare),
            Row("ingest", "inbox processed/s", proc, "webhook accepted req/s", hook),
            Row("ingest", "lost deliveries (target 0)", lost)]


def parse_serve(text: str) -> list[Row]:
    """``bench/serve.py``: ``<endpoint> req/s p50 p99`` lines for bare and recommendations."""
    pat = r"^{}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)"
    bare = re.search(pat.format("bare"), text, re.MULTILINE)
    recs = re.search(pat.format("recommendations"), text, re.MULTILINE)
    if not (bare and recs):
        return [Row("serve", "recommendations req/s", None)]
    b, r = (tuple(float(x) for x in m.groups()) for m in (bare, recs))
    return [Row("serve", "recommendations req/s", r[0], "bare endpoint req/s", b[0]),
            Row("serve", "recommendations p99 ms (target 25)", r[2], "bare endpoint p99 ms",
                b[2])]


def parse_evaluation(report: dict) -> list[Row]:
    """One ``evaluation_cli --json`` report: shopkeeper against the best baseline by NDCG."""
    models = report["models"]
    name = report.get("dataset", "?")
    baselines = [m for m in models if m != "shopkeeper"]
    best = max(baselines, key=lambda m: models[m]["ndcg@k"])
    sk = models["shopkeeper"]
    return [Row("evaluate", f"{name}: NDCG@10", sk["ndcg@k"], f"{best} NDCG@10",
                models[best]["ndcg@k"]),
            Row("evaluate", f"{name}: R@10", sk["recall@k"], f"{best} R@10",
                models[best]["recall@k"])]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_subprofiles(text: str) -> list[Row]:
    """``bench/subprofiles.py``: its first markdown table, read by column name.

    Every "with sub-profiles..." column is compared with "mixed, no sub-profiles" (same
    recommender, same hosts, no sub-profiles); the last one also with the clean ceiling.
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines)
                  if line.startswith("|") and "mixed, no sub-profiles" in line), None)
    if start is None:
        return [Row("subprofiles", "NDCG@10 with sub-profiles", None)]
    head = _cells(lines[start])
    rows: list[Row] = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cell = dict(zip(head, _cells(line), strict=False))
        name, mixed = cell["dataset"], float(cell["mixed, no sub-profiles"])
        withs = [h for h in head if h.startswith("with sub-profiles")]
        for h in withs:
            rows.append(Row("subprofiles", f"{name}: NDCG@10 {h}", float(cell[h]),
                            "mixed, no sub-profiles", mixed))
        if withs and "NDCG@10 clean" in cell:
            rows.append(Row("subprofiles", f"{name}: NDCG@10 {withs[-1]}",
                            float(cell[withs[-1]]), "clean history (ceiling)",
                            float(cell["NDCG@10 clean"])))
        rows += [Row("subprofiles", f"{name}: detector {k}", float(cell[k]))
                 for k in ("precision", "recall") if k in cell]
    return rows or [Row("subprofiles", "NDCG@10 with sub-profiles", None)]


def parse_offers(report: dict) -> list[Row]:
    """``bench/offers.py --json``: the uplift policy's net margin against the others."""
    by = {r["policy"]: r for r in report["rows"]}
    sk = by["shopkeeper uplift policy"]
    return [Row("offers", "est. net margin, uplift policy", sk["net_margin"],
                "coupons to everyone eligible", by["everyone eligible"]["net_margin"]),
            Row("offers", "est. net margin, uplift policy", sk["net_margin"],
                "random, same count", by["random (same count)"]["net_margin"]),
            Row("offers", "coupons given, uplift policy", sk["coupons_given"],
                "everyone eligible", by["everyone eligible"]["coupons_given"])]


def parse_scale(report: dict) -> list[Row]:
    """``bench/scale.py --json``: mixed throughput vs bare, latencies, inbox lag, losses."""
    bare, hooks, recs, inbox = (report[k] for k in ("bare", "webhooks", "recommendations",
                                                     "inbox"))
    return [Row("scale", "mixed req/s (webhooks + recs)", report["mixed_req_per_s"],
                "bare endpoint req/s", bare["req_per_s"]),
            Row("scale", "webhooks p99 ms", hooks["p99_ms"], "bare endpoint p99 ms",
                bare["p99_ms"]),
            Row("scale", "recommendations p99 ms", recs["p99_ms"], "bare endpoint p99 ms",
                bare["p99_ms"]),
            Row("scale", "inbox processed/s", inbox["processed_per_s"],
                "webhooks accepted req/s", hooks["req_per_s"]),
            Row("scale", "inbox lag p99 s", inbox["lag_p99_s"]),
            Row("scale", "lost deliveries (target 0)", inbox["lost"]),
            Row("scale", "workers that ran the scheduler (target 1)",
                report["scheduler"]["heartbeat_runners"])]


# ---------------------------------------------------------------- running
@dataclass
class Context:
    quick: bool
    pg_url: str
    logs: Path
    statuses: dict[str, list[str]]


def call(ctx: Context, name: str, argv: list[str], timeout: float) -> str:
    """Run one benchmark command; log its output; note a non-zero exit or a timeout."""
    log = ctx.logs / f"{name}.log"
    started = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(ROOT), SHOPKEEPER_LOG_LEVEL="WARNING")
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(argv)}", file=sys.stderr, flush=True)
    try:
        proc = subprocess.run([PY, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        out, err, status = proc.stdout, proc.stderr, f"exit {proc.returncode}"
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err, status = "", f"timeout after {timeout:.0f} s"
    seconds = time.perf_counter() - started
    log.write_text(f"$ {' '.join(argv)}\n{out}\n--- stderr ---\n{err}", encoding="utf-8")
    ctx.statuses.setdefault(name.split(".")[0], []).append(f"{name} {status}, {seconds:.0f} s")
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {status} in {seconds:.0f} s",
          file=sys.stderr, flush=True)
    return out


def bench_ingest(ctx: Context) -> list[Row]:
    n = "1000" if ctx.quick else "3000"
    return parse_ingest(call(ctx, "ingest", ["bench/ingest.py", "--database-url", ctx.pg_url,
                                             "-n", n], 600))


def bench_serve(ctx: Context) -> list[Row]:
    n = "1000" if ctx.quick else "4000"
    return parse_serve(call(ctx, "serve", ["bench/serve.py", "--database-url", ctx.pg_url,
                                           "-n", n], 900))


def bench_evaluate(ctx: Context) -> list[Row]:
    """``evaluation_cli --json`` per dataset, as ``evaluate_all.py`` runs it, without
    rewriting bench/README.md (``make evaluate`` owns that table)."""
    from evaluate_all import command_for
    from prepare_datasets import DATASETS, DEFAULT_OUT, DEFAULT_SOURCE, prepare

    names = ["instacart-sample"] if ctx.quick else list(DATASETS)
    rows: list[Row] = []
    for name in names:
        if not (DEFAULT_OUT / name / "interactions.csv.gz").exists():
            prepare(name, DEFAULT_SOURCE, DEFAULT_OUT)
        out = call(ctx, f"evaluate.{name}", command_for(name, DEFAULT_OUT), 1200)
        try:
            rows += parse_evaluation(json.loads(out))
        except (ValueError, KeyError):
            rows.append(Row("evaluate", f"{name}: NDCG@10", None))
    return rows


def bench_subprofiles(ctx: Context) -> list[Row]:
    argv = ["bench/subprofiles.py"]
    if ctx.quick:
        argv += ["--datasets", "instacart-sample", "--hosts", "150"]
    return parse_subprofiles(call(ctx, "subprofiles", argv, 900))


def bench_offers(ctx: Context) -> list[Row]:
    path = ctx.logs / "offers.json"
    call(ctx, "offers", ["bench/offers.py", "--json", str(path)], 900)
    return parse_offers(json.loads(path.read_text()))


def bench_scale(ctx: Context) -> list[Row]:
    path = ctx.logs / "scale.json"
    argv = ["bench/scale.py", "--database-url", ctx.pg_url, "--json", str(path)]
    if ctx.quick:
        argv += ["--lines", "8000", "--duration", "20", "--bare-duration", "8"]
    call(ctx, "scale", argv, 1200)
    return parse_scale(json.loads(path.read_text()))


BENCHMARKS: dict[str, Callable[[Context], list[Row]]] = {
    "ingest": bench_ingest, "serve": bench_serve, "evaluate": bench_evaluate,
    "subprofiles": bench_subprofiles, "offers": bench_offers, "scale": bench_scale,
}


def run_benchmark(ctx: Context, name: str) -> list[Row]:
    """One benchmark's rows; a run without any figure is retried once (both runs listed).

    Load from other processes can make a run fail in its own bookkeeping (a shutdown that
    takes longer than its script allows); one retry keeps the table useful and the status
    line still shows the failed attempt.
    """
    rows: list[Row] = []
    for _attempt in range(2):
        try:
            rows = BENCHMARKS[name](ctx)
        except Exception as err:  # one broken benchmark must not hide the others
            ctx.statuses.setdefault(name, []).append(f"failed: {type(err).__name__}: {err}")
            rows = [Row(name, "(no figures)", None)]
        if any(r.value is not None for r in rows):
            break
    return rows


# ---------------------------------------------------------------- the table
def fmt(value: float | None) -> str:
    """Readable numbers: whole above 100, 2 decimals above 1, 4 below."""
    if value is None:
        return "n/a"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.4f}"


def render(rows: list[Row]) -> str:
    """The summary as a markdown table (pastes into a note or README as it is)."""
    lines = ["| benchmark | figure | value | baseline (same run) | baseline value | ratio |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        base = fmt(r.baseline_value) if r.baseline else ""
        lines.append(f"| {r.benchmark} | {r.figure} | {fmt(r.value)} | {r.baseline} | {base} "
                     f"| {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller runs (a few minutes)")
    ap.add_argument("--only", type=lambda v: v.split(","), default=list(BENCHMARKS),
                    help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    ap.add_argument("--logs", type=Path, default=None, help="where each run's output goes")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.only) - set(BENCHMARKS))
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}")
    logs = args.logs or Path(tempfile.mkdtemp(prefix="shopkeeper-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    rows: list[Row] = []
    statuses: dict[str, list[str]] = {}
    with postgres_server() as pg_url:
        ctx = Context(args.quick, pg_url, logs, statuses)
        for name in args.only:
            rows += run_benchmark(ctx, name)
    total = time.perf_counter() - started
    print(f"\nShopkeeper benchmarks ({'quick' if args.quick else 'full'}), "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
          f"load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after, "
          f"{total / 60:.1f} min; logs in {logs}\n")
    print(render(rows))
    print("\n" + "\n".join(f"- {'; '.join(s)}" for s in statuses.values()))
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "ratio": r.ratio} for r in rows],
                                        indent=2) + "\n")
    ok = all(" exit 0," in runs[-1] for runs in statuses.values()) and all(
        r.value is not None for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
