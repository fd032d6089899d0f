"""The k-NN tactic model at full size: load time, memory, query latency, next-tactic accuracy.

    python3 benchmarks/knn_query.py --model MODEL.npz --corpus HELD_OUT_CORPUS [--queries 2000]

Queries are the proof states of a corpus (use the held-out files: `prover corpus build --files <the 60
held-out files> --out DIR`), sampled with a fixed seed. Latency is one ``suggest`` call (features,
index lookup, name adaptation, ranking of 32 candidates), wall clock and process CPU; accuracy is
whether the tactic written in the library is the first / among the first 10 suggestions.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from prover.corpus.records import steps  # noqa: E402
from prover.learning.knn import KnnModel, usable_tactic  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus", required=True, help="corpus whose states are the queries")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--candidates", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    states = [s for s in steps(args.corpus) if usable_tactic(s.tactic)]
    random.Random(args.seed).shuffle(states)
    states = states[: args.queries]

    before = rss_mib()
    t0 = time.perf_counter()
    model = KnnModel.load(args.model)
    load_s = time.perf_counter() - t0
    loaded = rss_mib()
    model.suggest(states[0].goals, args.candidates)  # first call pays for lazy imports

    wall, cpu, top1, top10 = [], [], 0, 0
    for s in states:
        w0, c0 = time.perf_counter(), time.process_time()
        out = model.suggest(s.goals, args.candidates)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
        tactics = [x.tactic for x in out]
        gold = usable_tactic(s.tactic)
        top1 += bool(tactics) and tactics[0] == gold
        top10 += gold in tactics[:10]

    def ms(values, q):
        return f"{statistics.quantiles(values, n=100)[q - 1] * 1000:.2f}" if q < 100 else f"{max(values) * 1000:.2f}"

    t = Table(title=f"k-NN model {args.model}")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("stored proof states", f"{model.size:,}")
    t.add_row("distinct tactics", f"{model.meta.get('tactics', 0):,}")
    t.add_row("model file", f"{os.path.getsize(args.model) / 2**20:.1f} MiB")
    t.add_row("load time", f"{load_s:.2f} s")
    t.add_row("memory of the loaded model (RSS growth)", f"{loaded - before:.0f} MiB")
    t.add_row("queries", f"{len(states)} states of {args.corpus}")
    t.add_row("query latency, median (wall)", f"{statistics.median(wall) * 1000:.2f} ms")
    t.add_row("query latency, p90 / p99 (wall)", f"{ms(wall, 90)} / {ms(wall, 99)} ms")
    t.add_row("query CPU time, median", f"{statistics.median(cpu) * 1000:.2f} ms")
    t.add_row("next tactic = top suggestion", f"{top1 / len(states):.1%}")
    t.add_row("next tactic in top 10", f"{top10 / len(states):.1%}")
    Console().print(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
