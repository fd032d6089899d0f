"""Latency of `suggest` with `check: true` through `prover repl` (portfolio generator, Coq).

Starts one `prover repl`, asks for checked suggestions on the theorems of examples/demo.v (at the
root and after `intros`), and prints a table: the first request on a theorem opens a Coq session
(cold), later ones reuse it (warm). Latency is measured at the client, round trip included.
Target: median warm latency < 100 ms.

    python3 benchmarks/repl_suggest_latency.py [--repeats 10] [--n 8]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prover.repl.client import ReplClient  # noqa: E402

THEOREMS = ("add_zero_r", "lt_succ_le", "square_of_sum", "and_swap", "subst_then_lia")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10, help="warm requests per goal (default %(default)s)")
    ap.add_argument("--n", type=int, default=8, help="candidates per request (default %(default)s)")
    args = ap.parse_args()
    demo = str(ROOT / "examples" / "demo.v")
    rows, warm_all = [], []
    with ReplClient.spawn(cwd=str(ROOT)) as repl:
        for name in THEOREMS:
            for before in ([], ["intros"]):
                times, kept = [], None
                for _ in range(args.repeats + 1):
                    t0 = time.perf_counter()
                    reply = repl.request("suggest", file=demo, theorem=name, tactics=before, n=args.n,
                                         check=True, timeout=300)
                    times.append(time.perf_counter() - t0)
                    if reply["type"] != "suggestions":
                        print(f"{name}: {reply}", file=sys.stderr)
                        return 1
                    kept = len(reply["candidates"])
                cold, warm = times[0], times[1:]
                warm_all += warm
                rows.append((name, " ".join(before) or "-", kept, cold, statistics.median(warm), max(warm)))
        repl.shutdown(timeout=60)
    print(f"suggest, check: true, portfolio generator, n = {args.n}, Coq; {args.repeats} warm requests a goal")
    print(f"{'theorem':<16} {'after':<7} {'kept':>4} {'cold ms':>9} {'warm median ms':>15} {'warm max ms':>12}")
    for name, before, kept, cold, med, worst in rows:
        print(f"{name:<16} {before:<7} {kept:>4} {cold * 1000:>9.1f} {med * 1000:>15.1f} {worst * 1000:>12.1f}")
    median = statistics.median(warm_all)
    print(f"median warm latency: {median * 1000:.1f} ms over {len(warm_all)} requests "
          f"(target < 100 ms: {'met' if median < 0.1 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
