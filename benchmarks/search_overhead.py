"""Search overhead and backend round trips.

1. The best-first search's own time per expansion (prover and generator time excluded) while the
   tree grows to 10k nodes, over an in-memory backend whose every tactic yields a new state.
2. The Coq backend's tactic round trip next to a raw coqtop round trip: the same sentences sent by
   hand with pexpect, the tactic and then Show to fetch its goals (coqtop prints goals only when
   their ids changed since it last printed, so a driver must be able to ask). Measured for a step on
   the tip of the live branch and for a step on a sibling (BackTo + tactic).

Targets: <= 0.5 ms per expansion; <= 1.2x raw coqtop.  Usage: python benchmarks/search_overhead.py
"""
from __future__ import annotations

import re
import statistics
import time

import pexpect.popen_spawn
from rich.console import Console
from rich.table import Table

from prover.backends.base import Failed, Next, State, Theorem
from prover.backends.coq import CoqBackend
from prover.models.base import Candidate, Generator
from prover.search.best_first import SearchConfig, search


class MemoryBackend:
    """Every tactic gives a fresh state (a few in ten fail), no proof is ever found."""

    name = "memory"

    def __init__(self) -> None:
        self.count = 0

    def open(self, theorem):
        return State(0, "root")

    def apply(self, state, tactic, timeout):
        self.count += 1
        if self.count % 7 == 0:
            return Failed("no")
        return Next(State(self.count, f"goal {self.count}\n============================\nP {self.count}"))

    def check(self, theorem, tactics):
        raise AssertionError("never finishes")

    def proof_text(self, tactics):
        return ""

    def close(self):
        pass


class FixedGenerator(Generator):
    name = "fixed"

    def __init__(self, n: int) -> None:
        self.cands = [Candidate(f"tac{i}", -0.1 * (i + 1), 1 + i % 5) for i in range(n)]

    def generate(self, goals, n):
        return self.cands[:n]


def search_overhead(nodes: int = 10_000, candidates: int = 32) -> tuple[int, float, float]:
    expansions = int(nodes / (candidates * 6 / 7)) + 1
    result = search(Theorem("bench", "Theorem bench : True."), MemoryBackend(), FixedGenerator(candidates),
                    SearchConfig(max_expansions=expansions, candidates=candidates, timeout=1e9),
                    on_progress=lambda p: None)
    own = result.elapsed - result.backend_seconds - result.generator_seconds
    return len(result.tree.nodes), own / result.expansions * 1e3, result.elapsed


PROMPT = re.compile(r"<prompt>(\S*) < (\d+) \|([^|]*)\| (\d+) < </prompt>")
STATEMENT = "Theorem b : forall n m : nat, n = m -> n + 0 = m /\\ True."
TACTIC = "Timeout 5 intros."


def raw_round_trips(reps: int) -> tuple[list[float], list[float]]:
    """The same work by hand: the tactic, then Show for its goals (coqtop may print none)."""
    p = pexpect.popen_spawn.PopenSpawn(["coqtop", "-q", "-emacs"], encoding="utf-8", timeout=30)
    p.delayafterread = None
    try:
        def send(s: str) -> int:
            p.sendline(s)
            p.expect(PROMPT)
            return int(p.match.group(2))
        send("")
        for s in ("Require Import Lia Lra Psatz Ring Field.", "From Hammer Require Import Tactics.", STATEMENT):
            send(s)
        root = send("Proof.")
        tip, sibling = [], []
        for _ in range(reps):  # step, then go back: the tip timing
            t = time.perf_counter()
            send(TACTIC)
            send("Show.")
            tip.append(time.perf_counter() - t)
            send(f"BackTo {root}.")
        for _ in range(reps):  # BackTo + step on a sibling
            t = time.perf_counter()
            send(f"BackTo {root}.")
            send(TACTIC)
            send("Show.")
            sibling.append(time.perf_counter() - t)
        return tip, sibling
    finally:
        p.kill(9)


def backend_round_trips(reps: int) -> tuple[list[float], list[float]]:
    backend = CoqBackend()
    try:
        root = backend.open(Theorem("b", STATEMENT))
        tip, sibling = [], []
        for _ in range(reps):
            backend._goto(())  # measured separately: being on the tip already
            t = time.perf_counter()
            backend.apply(root, "intros", 5)
            tip.append(time.perf_counter() - t)
        for _ in range(reps):  # the live branch ends one step below root: apply goes back first
            t = time.perf_counter()
            backend.apply(root, "intros", 5)
            sibling.append(time.perf_counter() - t)
        return tip, sibling
    finally:
        backend.close()


def main() -> None:
    console = Console()
    nodes, per_expansion, total = search_overhead()
    t1 = Table(title="Search overhead (in-memory backend, prover and generator excluded)")
    for col in ("nodes", "ms per expansion", "target", "total s"):
        t1.add_column(col, justify="right")
    t1.add_row(f"{nodes:,}", f"{per_expansion:.3f}", "<= 0.5", f"{total:.2f}")
    reps = 300
    raw_tip, raw_sib = raw_round_trips(reps)
    be_tip, be_sib = backend_round_trips(reps)
    t2 = Table(title=f"Tactic round trip, median of {reps} ('{TACTIC}')")
    for col in ("step", "raw coqtop ms", "backend ms", "ratio", "target"):
        t2.add_column(col, justify="right")
    for name, raw, be in (("on the tip", raw_tip, be_tip), ("on a sibling (BackTo)", raw_sib, be_sib)):
        r, b = statistics.median(raw) * 1e3, statistics.median(be) * 1e3
        t2.add_row(name, f"{r:.2f}", f"{b:.2f}", f"{b / r:.2f}x", "<= 1.2x")
    console.print(t1)
    console.print(t2)


if __name__ == "__main__":
    main()
