"""Search overhead and backend round trips.

1. The best-first search's own time per expansion (prover and generator time excluded) while the
   tree grows to 10k nodes, over an in-memory backend whose every tactic yields a new state.
2. The Coq backend's tactic round trip next to a raw coqtop round trip: the same sentences sent by
   hand over the pipes (os.write, select, os.read), the tactic and then Show to fetch its goals (coqtop prints goals only when
   their ids changed since it last printed, so a driver must be able to ask). Measured for a step on
   the tip of the live branch and for a step on a sibling (BackTo + tactic).

Targets: <= 0.5 ms per expansion; <= 1.2x raw coqtop.  Usage: python benchmarks/search_overhead.py
"""
from __future__ import annotations

import re
import statistics
import time

import os
import select
import subprocess
from rich.console import Console
from rich.table import Table

from prover.backends.base import Failed, Next, State, Theorem
from prover.backends.coq.backend import CoqBackend
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


PROMPT_BYTES = re.compile(rb"<prompt>\S* < (\d+) \|[^|]*\| \d+ < </prompt>")
STATEMENT = "Theorem b : forall n m : nat, n = m -> n + 0 = m /\\ True."
TACTIC = "Timeout 5 intros."
WARMUP = 50


class RawCoqtop:
    """The same work by hand, as lean as a driver gets: os.write, then select + os.read until the prompt."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["coqtop", "-q", "-emacs"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, bufsize=0)
        self.buf = b""
        self.read_prompt()
        for s in ("Require Import Lia Lra Psatz Ring Field.", "From Hammer Require Import Tactics.", STATEMENT):
            self.send(s)
        self.root = self.send("Proof.")

    def read_prompt(self) -> int:
        out = self.proc.stdout.fileno()
        while True:
            m = PROMPT_BYTES.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return int(m.group(1))
            select.select([out], [], [], 30)
            self.buf += os.read(out, 65536)

    def send(self, s: str) -> int:
        os.write(self.proc.stdin.fileno(), (s + "\n").encode())
        return self.read_prompt()

    def step(self) -> None:
        """The tactic, then Show for its goals (coqtop prints goals only when their ids changed
        since it last printed them, so a driver must be able to ask)."""
        self.send(TACTIC)
        self.send("Show.")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def round_trips(reps: int) -> dict[str, tuple[list[float], list[float]]]:
    """Raw and backend timings taken in turn (ABAB), so that drift hits both alike."""
    raw, backend = RawCoqtop(), CoqBackend()
    times = {k: ([], []) for k in ("tip", "sibling")}
    try:
        root = backend.open(Theorem("b", STATEMENT))
        for i in range(reps + WARMUP):
            # On the tip: the branch already ends at the state the tactic applies to.
            raw.send(f"BackTo {raw.root}.")
            t = time.perf_counter()
            raw.step()
            t_raw = time.perf_counter() - t
            backend._goto(())
            t = time.perf_counter()
            backend.apply(root, "intros", 5)
            t_be = time.perf_counter() - t
            # On a sibling: the branch ends one step below, so the step starts with BackTo.
            t = time.perf_counter()
            raw.send(f"BackTo {raw.root}.")
            raw.step()
            s_raw = time.perf_counter() - t
            t = time.perf_counter()
            backend.apply(root, "intros", 5)
            s_be = time.perf_counter() - t
            if i >= WARMUP:
                for key, r, b in (("tip", t_raw, t_be), ("sibling", s_raw, s_be)):
                    times[key][0].append(r)
                    times[key][1].append(b)
        return times
    finally:
        raw.close()
        backend.close()


def main() -> None:
    console = Console()
    nodes, per_expansion, total = search_overhead()
    t1 = Table(title="Search overhead (in-memory backend, prover and generator excluded)")
    for col in ("nodes", "ms per expansion", "target", "total s"):
        t1.add_column(col, justify="right")
    t1.add_row(f"{nodes:,}", f"{per_expansion:.3f}", "<= 0.5", f"{total:.2f}")
    reps = 1000
    times = round_trips(reps)
    t2 = Table(title=f"Tactic round trip, median of {reps} ('{TACTIC}'), raw and backend taken in turn")
    for col in ("step", "raw coqtop ms", "backend ms", "ratio", "target"):
        t2.add_column(col, justify="right")
    for key, name in (("tip", "on the tip"), ("sibling", "on a sibling (BackTo)")):
        raw, be = times[key]
        r, b = statistics.median(raw) * 1e3, statistics.median(be) * 1e3
        t2.add_row(name, f"{r:.2f}", f"{b:.2f}", f"{b / r:.2f}x", "<= 1.2x")
    console.print(t1)
    console.print(t2)


if __name__ == "__main__":
    main()
