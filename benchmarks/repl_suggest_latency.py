"""Latency of `suggest` with `check: true` through `prover repl` (portfolio generator, Coq).

Starts one `prover repl`, asks for checked suggestions on the theorems of examples/demo.v (at the
root and after `intros`), and prints a table: the first request on a theorem opens a Coq session
(cold), later ones reuse it (warm). Latency is measured at the client, round trip included.
Target: median warm latency < 100 ms. Then it measures how long a `cancel` of a `prove` stuck in a
tactic that runs for minutes takes to be answered (`cancelled`, its coqtop stopped): target < 1 s.

    python3 benchmarks/repl_suggest_latency.py [--repeats 10] [--n 8] [--cancels 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
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
    ap.add_argument("--cancels", type=int, default=5, help="cancels of a running prove (default %(default)s)")
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
        cancels = cancel_latencies(repl, args.cancels)
        repl.shutdown(timeout=60)
    print(f"suggest, check: true, portfolio generator, n = {args.n}, Coq; {args.repeats} warm requests a goal")
    print(f"{'theorem':<16} {'after':<7} {'kept':>4} {'cold ms':>9} {'warm median ms':>15} {'warm max ms':>12}")
    for name, before, kept, cold, med, worst in rows:
        print(f"{name:<16} {before:<7} {kept:>4} {cold * 1000:>9.1f} {med * 1000:>15.1f} {worst * 1000:>12.1f}")
    median = statistics.median(warm_all)
    print(f"median warm latency: {median * 1000:.1f} ms over {len(warm_all)} requests "
          f"(target < 100 ms: {'met' if median < 0.1 else 'NOT met'})")
    if cancels:
        worst = max(cancels)
        print(f"cancel of a running prove: median {statistics.median(cancels) * 1000:.1f} ms, max "
              f"{worst * 1000:.1f} ms over {len(cancels)} (target < 1 s: {'met' if worst < 1 else 'NOT met'})")
    return 0


def cancel_latencies(repl: ReplClient, count: int) -> list[float]:
    """Seconds from sending `cancel` to reading `cancelled`, for a prove inside a minutes-long tactic."""
    out = []
    with tempfile.TemporaryDirectory(prefix="prover-bench-") as tmp:
        spin = Path(tmp) / "spin.txt"
        spin.write_text("do 1000000000 idtac\n")
        for _ in range(count):
            rid = repl.send({"cmd": "prove", "statement": "Theorem spin : True.", "tactics_file": str(spin),
                             "tactic_timeout": 300, "timeout": 300, "progress": False})
            time.sleep(2.0)  # coqtop opens the theorem and enters the tactic
            t0 = time.perf_counter()
            repl.send({"cmd": "cancel", "target": rid})
            final = list(repl.responses(rid, timeout=60))[-1]
            out.append(time.perf_counter() - t0)
            if final["type"] != "cancelled":
                print(f"cancel: {final}", file=sys.stderr)
    return out


if __name__ == "__main__":
    sys.exit(main())
