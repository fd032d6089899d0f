"""Pass rate of `--generator mix` (a local model + the portfolio) against the portfolio alone.

A fixed subset of miniF2F-rocq valid: every 6th mathd problem in file order, the first 20 (the rest of
the split can feed `prover traces`, see --train-names). Same backend, budgets and problems for both;
the table comes last.

    python benchmarks/mix_vs_portfolio.py --model DIR [--timeout 8 --tactic-timeout 2 --max-new-tokens 48]
    python benchmarks/mix_vs_portfolio.py --train-names   # the valid mathd problems outside the subset
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prover.components import ModelOptions, make_backend, make_generator  # noqa: E402
from prover.runs import minif2f  # noqa: E402
from prover.search.best_first import SearchConfig, search  # noqa: E402


def subsets() -> tuple[list[str], list[str]]:
    mathd = [p.name for p in minif2f.load("coq", "valid") if p.name.startswith("mathd")]
    evaluation = mathd[::6][:20]
    return evaluation, [n for n in mathd if n not in evaluation]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model directory (from `prover train`) or Hub id")
    ap.add_argument("--timeout", type=float, default=8.0)
    ap.add_argument("--tactic-timeout", type=float, default=2.0)
    ap.add_argument("--max-expansions", type=int, default=100)
    ap.add_argument("--candidates", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-new-tokens", type=int, default=48, help="tactic length cap for the model (default 48)")
    ap.add_argument("--train-names", action="store_true", help="print the names outside the subset and exit")
    args = ap.parse_args()
    evaluation, rest = subsets()
    if args.train_names:
        print(" ".join(rest))
        return 0
    if not args.model:
        ap.error("--model is required")
    problems = minif2f.load("coq", "valid", evaluation)
    config = SearchConfig(max_expansions=args.max_expansions, candidates=args.candidates, timeout=args.timeout,
                          tactic_timeout=args.tactic_timeout)
    rows = []
    for name in ("portfolio", "mix"):
        options = ModelOptions(model=args.model if name == "mix" else None, device=args.device,
                               max_new_tokens=args.max_new_tokens)
        generator = make_generator(name, "coq", None, options)
        backend = make_backend("coq")
        proved, t0, gen_s = [], time.monotonic(), 0.0
        try:
            for p in problems:
                r = search(p.theorem, backend, generator, config)
                gen_s += r.generator_seconds
                if r.proved:
                    proved.append(p.name)
                print(f"{name:9s} {p.name:28s} {'proved' if r.proved else r.failure_reason}", flush=True)
        finally:
            backend.close()
        rows.append((name, len(proved), len(problems), time.monotonic() - t0, gen_s, proved))
    print()
    print(f"{'generator':10s} {'proved':>8s} {'wall s':>8s} {'gen s':>8s}")
    for name, k, n, wall, gen_s, _ in rows:
        print(f"{name:10s} {k:>4d}/{n:<3d} {wall:8.1f} {gen_s:8.1f}")
    only = [sorted(set(a[5]) - set(b[5])) for a, b in ((rows[1], rows[0]), (rows[0], rows[1]))]
    print(f"only mix: {', '.join(only[0]) or '-'}; only portfolio: {', '.join(only[1]) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
