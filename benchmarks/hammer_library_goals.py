"""The hammer step on goals that need a named library lemma: portfolio, hammer alone, the default.

Eight list, nat and Z statements, each closed by one or two standard-library lemmas that the goal does
not name. Every configuration runs them in order on one backend (so a coqtop is reused across them,
as in a run: the first hammer call pays for reading the library), with the same search budget;
every proof passes the full check. The table comes last.

    python benchmarks/hammer_library_goals.py [--timeout 60 --tactic-timeout 2 --hammer-threads 2]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prover.backends.base import Theorem  # noqa: E402
from prover.backends.coq.hammer import HammerConfig  # noqa: E402
from prover.components import BackendOptions, make_backend, make_generator  # noqa: E402
from prover.search.best_first import SearchConfig, search  # noqa: E402

HEADER = "Require Import List ZArith Arith. Import ListNotations."
STATEMENTS = (
    "forall (A : Type) (l1 l2 : list A), length (l1 ++ l2) = length (l2 ++ l1)",
    "forall (A : Type) (l : list A), rev (rev l) = l",
    "forall (A : Type) (l1 l2 : list A), rev (l1 ++ l2) = rev l2 ++ rev l1",
    "forall (A B : Type) (f : A -> B) (l : list A), length (map f l) = length l",
    "forall (A : Type) (x : A) (l1 l2 : list A), In x (l1 ++ l2) -> In x l1 \\/ In x l2",
    "forall a b : Z, Z.gcd a b = Z.gcd b a",
    "forall n m : nat, Nat.max n m = Nat.max m n",
    "forall (A : Type) (l : list A) (n : nat), length (firstn n l) <= n",
)
CONFIGS = (("portfolio", "portfolio", False), ("hammer alone", "hammer", True),
           ("default (portfolio + hammer)", "portfolio", True))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--tactic-timeout", type=float, default=2.0)
    ap.add_argument("--hammer-threads", type=int, default=2)
    args = ap.parse_args()
    config = SearchConfig(timeout=args.timeout, tactic_timeout=args.tactic_timeout)
    rows: dict[str, list[tuple[bool, float, str]]] = {}
    for label, generator_name, hammer in CONFIGS:
        options = BackendOptions(hammer=HammerConfig(enabled=hammer, threads=args.hammer_threads))
        generator = make_generator(generator_name, "coq")
        with make_backend("coq", options) as backend:
            for i, statement in enumerate(STATEMENTS):
                theorem = Theorem(f"goal{i}", f"Theorem goal{i} : {statement}.", HEADER)
                start = time.monotonic()
                result = search(theorem, backend, generator, config)
                took = time.monotonic() - start
                rows.setdefault(statement, []).append((result.proved, took, " ".join(result.tactics)))
                print(f"{label}: goal{i} {'proved' if result.proved else result.failure_reason} in {took:.1f} s "
                      f"{result.tactics}", flush=True)
    print("\n| statement | " + " | ".join(label for label, _, _ in CONFIGS) + " |")
    print("|---|" + "---|" * len(CONFIGS))
    for statement, cells in rows.items():
        shown = [f"{'yes' if ok else 'no'} ({t:.1f} s)" for ok, t, _ in cells]
        print(f"| `{statement}` | " + " | ".join(shown) + " |")
    totals = [sum(cells[k][0] for cells in rows.values()) for k in range(len(CONFIGS))]
    print("| proved | " + " | ".join(f"{n}/{len(STATEMENTS)}" for n in totals) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
