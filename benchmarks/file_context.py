"""Time to open a theorem of a long Coq file in its file context: fresh, and reusing the loaded prefix.

Opens theorems of the installed `theories/Lists/List.v` (read only; 331 theorems, 2,842 sentences) with
the Coq backend and prints a table of medians (wall clock, seconds):

- fresh: a new backend (a new coqtop) opens the theorem, running the whole file before it;
- in order: one backend opens theorems 1, 2, ..., K in file order (what a benchmark or an editor
  session does): the time of each open, which only runs the sentences since the previous theorem;
- jump and back: one backend opens the 1st, then the K-th, then the 1st again (BackTo);
- the last theorem right after the one before it.

    python3 benchmarks/file_context.py [--k 20] [--repeats 3] [--file PATH]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prover.backends.coq.backend import CoqBackend  # noqa: E402
from prover.backends.coq.document import CoqDocument  # noqa: E402


def timed_open(backend: CoqBackend, theorem) -> tuple[float, int]:
    before = backend.loaded_sentences
    t0 = time.perf_counter()
    backend.open(theorem)
    return time.perf_counter() - t0, backend.loaded_sentences - before


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=20, help="the later theorem (default %(default)s)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each measure (default %(default)s)")
    ap.add_argument("--file", help="a .v file (default: the installed theories/Lists/List.v)")
    args = ap.parse_args()
    where = subprocess.run(["coqc", "-where"], capture_output=True, text=True).stdout.strip()
    path = Path(args.file) if args.file else Path(where) / "theories" / "Lists" / "List.v"
    doc = CoqDocument.read(path)
    first, kth, last = doc.theorems[0], doc.theorems[args.k - 1], doc.theorems[-1]
    before_last = doc.theorems[-2]
    th = {e.name: doc.theorem(e.name) for e in (first, kth, before_last, last, *doc.theorems[:args.k])}

    fresh: dict[str, list[float]] = {first.name: [], kth.name: [], last.name: []}
    in_order: list[list[float]] = []
    jump, back, next_last, sent = [], [], [], {}
    for _ in range(args.repeats):
        for entry in (first, kth, last):
            with CoqBackend() as b:
                seconds, n = timed_open(b, th[entry.name])
                fresh[entry.name].append(seconds)
                sent[("fresh", entry.name)] = n
        with CoqBackend() as b:
            times = []
            for entry in doc.theorems[:args.k]:
                seconds, n = timed_open(b, th[entry.name])
                times.append(seconds)
                sent[("order", entry.name)] = n
            in_order.append(times)
        with CoqBackend() as b:
            timed_open(b, th[first.name])
            seconds, sent["jump"] = timed_open(b, th[kth.name])
            jump.append(seconds)
            seconds, sent["back"] = timed_open(b, th[first.name])
            back.append(seconds)
        with CoqBackend() as b:
            timed_open(b, th[before_last.name])
            seconds, sent["next_last"] = timed_open(b, th[last.name])
            next_last.append(seconds)

    med = statistics.median
    load = os.getloadavg()
    print(f"{path} ({len(doc.sentences)} sentences, {len(doc.theorems)} theorems); medians of {args.repeats} "
          f"runs; load average {load[0]:.1f}/{load[1]:.1f} on {os.cpu_count()} cores")
    print(f"{'open':<58} {'sentences sent':>14} {'seconds':>9}")
    rows = [
        (f"1st theorem ({first.name}), fresh coqtop", sent[("fresh", first.name)], med(fresh[first.name])),
        (f"{args.k}th theorem ({kth.name}), fresh coqtop", sent[("fresh", kth.name)], med(fresh[kth.name])),
        (f"last theorem ({last.name}), fresh coqtop", sent[("fresh", last.name)], med(fresh[last.name])),
        (f"{args.k}th, after theorems 1..{args.k - 1} in order", sent[("order", kth.name)],
         med(r[-1] for r in in_order)),
        (f"theorems 1..{args.k} in order, per theorem (mean)",
         round(statistics.mean(sent[("order", e.name)] for e in doc.theorems[:args.k])),
         med(statistics.mean(r) for r in in_order)),
        (f"{args.k}th right after the 1st (same coqtop)", sent["jump"], med(jump)),
        (f"1st again after the {args.k}th (BackTo)", sent["back"], med(back)),
        ("last, right after the one before it (same coqtop)", sent["next_last"], med(next_last)),
    ]
    for label, n, seconds in rows:
        print(f"{label:<58} {n:>14} {seconds:>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
