"""One served model for N prover workers against N in-process copies, on CPU: candidates, memory, throughput.

Real processes (started through prover/backends/process.py): W worker processes each ask for candidates
for the same goal states (one state per request, beam search, --candidates wide), all at once, --repeats
times over. Three set-ups:

- in-process: every worker loads its own copy of the model (what `prover minif2f --generator hf` did);
- served, unbatched: one generator service process, batches of one state (requests take turns);
- served, batched: one generator service process gathering up to --batch-states states per model call.

Printed: whether the served candidates are identical to the in-process ones (tactics and token counts
equal, in order; largest log-prob difference), resident memory of each process, and states per second.

    python benchmarks/generator_service.py --model DIR [--corpus DIR] [--workers 2] [--states 16]

Goal states come from the corpus's held-out and validation steps (first distinct ones), else a built-in set.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BUILT_IN = [
    "1 goal\n============================\nforall a b : nat, a + b = b + a",
    "1 goal\na, b : nat\n============================\na + b = b + a",
    "1 goal\nx : R\nH : 0 < x\n============================\nx * 1 = x",
    "1 goal\n============================\nforall P Q : Prop, P /\\ Q -> Q /\\ P",
    "1 goal\nn : nat\n============================\nn + 0 = n",
    "1 goal\nl : list nat\n============================\nl ++ nil = l",
    "1 goal\nn, m : nat\nH : n <= m\n============================\nn < S m",
    "1 goal\nz : Z\n============================\nZ.abs z >= 0",
]


def goal_states(corpus: str | None, count: int) -> list[str]:
    if corpus is None:
        return (BUILT_IN * (count // len(BUILT_IN) + 1))[:count]
    from prover.models.corpus_examples import load_corpus

    examples = load_corpus(corpus)
    seen: list[str] = []
    for step in examples.held_out + examples.valid:
        if step.goals not in seen and len(step.goals) < 600:
            seen.append(step.goals)
        if len(seen) == count:
            break
    return seen


def _rss() -> int:
    from prover.models.service import rss_bytes

    return rss_bytes()


def _run(conn, generator, states, n, repeats) -> None:
    conn.send("ready")
    conn.recv()
    start = time.monotonic()
    out = []
    for _ in range(repeats):
        out = [generator.generate(s, n) for s in states]
    conn.send({"pid": os.getpid(), "seconds": time.monotonic() - start, "candidates": out, "rss": _rss(),
               "torch_loaded": "torch" in sys.modules})
    conn.recv()


def client_worker(conn, address, states, n, repeats) -> None:
    """A worker holding a client of the generator service."""
    _run(conn, address.connect(), states, n, repeats)


def model_worker(conn, model, max_new_tokens, states, n, repeats) -> None:
    """A worker holding its own copy of the model."""
    from prover.models.hf import HFConfig, HFGenerator
    from prover.models.prompts import COQ

    _run(conn, HFGenerator.load(HFConfig(model, device="cpu", max_new_tokens=max_new_tokens), COQ), states, n,
         repeats)


def drive(targets: list[tuple]) -> tuple[list[dict], float]:
    """Start one worker per target, wait until all are ready, let them go at once; replies and wall time."""
    from prover.backends.process import WorkerProcess

    workers = [WorkerProcess(target, *args) for target, *args in targets]
    try:
        for w in workers:
            assert w.conn.recv() == "ready"
        start = time.monotonic()
        for w in workers:
            w.conn.send("go")
        replies = [w.conn.recv() for w in workers]
        return replies, time.monotonic() - start
    finally:
        for w in workers:
            w.stop()


def compare(got: list, want: list) -> tuple[bool, float]:
    """Identical candidate lists (tactics and token counts, in order) and the largest log-prob difference."""
    same = [c.tactic for c in got] == [c.tactic for c in want] and \
        [c.num_tokens for c in got] == [c.num_tokens for c in want]
    diff = max((abs(a.logprob - b.logprob) for a, b in zip(got, want)), default=0.0)
    return same, diff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--corpus")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--states", type=int, default=16, help="goal states per worker")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--batch-states", type=int, default=8)
    ap.add_argument("--gather-ms", type=float, default=20.0)
    args = ap.parse_args()

    from prover.components import ModelOptions
    from prover.models.service import GeneratorService, ServiceConfig

    states = goal_states(args.corpus, args.states * args.workers)
    parts = [states[i::args.workers] for i in range(args.workers)]
    n, total = args.candidates, len(states) * args.repeats
    rows = []

    replies, wall = drive([(model_worker, args.model, args.max_new_tokens, p, n, args.repeats) for p in parts])
    reference = [r["candidates"] for r in replies]
    rows.append(("in-process (one copy per worker)", wall, None, [r["rss"] for r in replies], None, None))

    for label, batch in (("served, unbatched", 1), ("served, batched", args.batch_states)):
        options = ModelOptions(args.model, device="cpu", max_new_tokens=args.max_new_tokens, batch_states=batch,
                               gather_seconds=args.gather_ms / 1000)
        with GeneratorService(ServiceConfig("coq", options)) as service:
            replies, wall = drive([(client_worker, service.address, p, n, args.repeats) for p in parts])
            stats = service.client().stats()
        checks = [compare(g, w) for r, ref in zip(replies, reference) for g, w in zip(r["candidates"], ref)]
        identical = sum(same for same, _ in checks)
        worst = max(d for _, d in checks)
        assert not any(r["torch_loaded"] for r in replies)
        mean_batch = stats.batcher.states / max(1, stats.batcher.batches)
        rows.append((label, wall, stats.rss_bytes, [r["rss"] for r in replies], (identical, len(checks), worst),
                     mean_batch))

    mib = 2 ** 20
    print(f"{args.workers} workers x {args.states} states x {args.repeats} repeats, beam {n}, "
          f"max {args.max_new_tokens} new tokens, model {args.model}")
    print()
    print("| set-up | identical to in-process | model processes' RSS | worker RSS each | total RSS | "
          "states/s | mean batch |")
    print("|---|---|---|---|---|---|---|")
    for label, wall, service_rss, worker_rss, ident, mean_batch in rows:
        model_rss = f"{service_rss / mib:.0f} MiB (1 service)" if service_rss else \
            f"{sum(worker_rss) / mib:.0f} MiB ({len(worker_rss)} copies)"
        total_rss = (service_rss or 0) + sum(worker_rss)
        same = "reference" if ident is None else f"{ident[0]}/{ident[1]} states (max diff {ident[2]:.1e})"
        batch = "-" if mean_batch is None else f"{mean_batch:.2f}"
        print(f"| {label} | {same} | {model_rss} | {' / '.join(f'{x / mib:.0f}' for x in worker_rss)} MiB | "
              f"{total_rss / mib:.0f} MiB | {total / wall:.2f} | {batch} |")


if __name__ == "__main__":
    main()
