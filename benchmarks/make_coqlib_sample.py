"""Draw the coqlib test set: a seeded sample of held-out library theorems that open in their file.

    python3 benchmarks/make_coqlib_sample.py            # writes prover/runs/data/coqlib-test.jsonl

Every candidate (see prover/runs/coqlib.py) is first checked: its file compiles as the private copy
the full check compiles, and the theorem opens in its file context. The sample is then drawn from the
usable ones with the seed, and written in file order. Prints the table of what was left out and why.
Run once; the committed file is the benchmark (re-running on the same installation gives the same file).
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prover.runs import coqlib  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=coqlib.SAMPLE_SIZE)
    p.add_argument("--seed", type=int, default=coqlib.SAMPLE_SEED)
    p.add_argument("--out", type=Path, default=coqlib.SAMPLE_FILE)
    args = p.parse_args()
    start = time.monotonic()
    pool = coqlib.candidates()
    print(f"{len(pool)} candidate theorems in {len({e.file for e in pool})} held-out files", flush=True)
    usable, why = coqlib.usable(pool)
    sample = coqlib.make_sample(usable, args.size, args.seed)
    coqlib.write_sample(sample, args.out)
    print(f"{len(why)} left out:")
    for reason, n in collections.Counter(w.split(":")[0] for w in why.values()).most_common():
        print(f"  {n:5d}  {reason}")
    plain = sum(not e.add_imports for e in usable)
    print(f"{plain} usable theorems open only without the prover's tactic libraries "
          f"({sum(not e.add_imports for e in sample)} of them in the sample)")
    by_lib = collections.Counter(e.library for e in sample)
    print(f"wrote {len(sample)} theorems ({', '.join(f'{k} {v}' for k, v in sorted(by_lib.items()))}) "
          f"from {len({e.file for e in sample})} files to {args.out} in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
