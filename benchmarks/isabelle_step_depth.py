"""Isabelle bridge: the cost of one step against the depth of the state it is applied to, and of a
batch of candidate steps against the same steps one by one.

The bridge keeps proof states in Isabelle's ML process, so a step is one transition on a stored state:
its cost should not grow with depth (the earlier bridge re-checked the whole proof prefix per step).
Needs a real Isabelle (`make isabelle`); prints a table.

Target: step time at depth 40 within 1.5x of depth 1.  Usage: python benchmarks/isabelle_step_depth.py
"""
from __future__ import annotations

import shutil
import statistics
import sys
import time

from rich.console import Console
from rich.table import Table

from prover.backends.base import Next, Theorem
from prover.backends.isabelle.backend import IsabelleBackend, IsabelleConfig, default_isabelle

STEP = 'have "(3::nat) * 7 = 21" by simp'
CANDIDATES = ['have "(2::nat) + 2 = 4" by simp', 'have "(5::nat) * 5 = 25" by simp', 'have "(7::nat) - 2 = 5" by simp',
              'have "(9::nat) div 3 = 3" by simp', 'have "(4::nat) ^ 2 = 16" by simp', 'have "(1::nat) < 2" by simp']


def timed(backend: IsabelleBackend, state, step: str, repeats: int = 5) -> float:
    samples = []
    for _ in range(repeats):
        backend._cache.clear()
        start = time.monotonic()
        out = backend.apply(state, step, 60)
        samples.append(time.monotonic() - start)
        assert isinstance(out, Next), out
    return statistics.median(samples)


def main() -> int:
    if shutil.which(default_isabelle()) is None:
        print("Isabelle is not installed (run `make isabelle`)", file=sys.stderr)
        return 2
    theorem = Theorem("bench_depth", 'theorem bench_depth: "(1::nat) + 1 = 2"', "imports Complex_Main\n")
    table = Table(title="Isabelle bridge: one step at depth d (median of 5, seconds)")
    table.add_column("depth", justify="right")
    table.add_column("step s", justify="right")
    with IsabelleBackend(IsabelleConfig()) as backend:
        root = backend.open(theorem)
        state = backend.apply(root, "proof -", 60).state
        depth = 1
        for target in (1, 5, 10, 20, 40):
            while depth < target:
                state = backend.apply(state, f'have "({depth}::nat) + 0 = {depth}" by simp', 60).state
                depth += 1
            table.add_row(str(depth), f"{timed(backend, state, STEP):.3f}")
        one_by_one = 0.0
        for step in CANDIDATES:
            backend._cache.clear()
            start = time.monotonic()
            backend.apply(state, step, 60)
            one_by_one += time.monotonic() - start
        backend._cache.clear()
        start = time.monotonic()
        backend.prefetch(state, list(CANDIDATES), 60)
        batch = time.monotonic() - start
    Console().print(table)
    Console().print(f"{len(CANDIDATES)} candidate steps at depth {depth}: one by one {one_by_one:.3f} s, "
                    f"one batch {batch:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
