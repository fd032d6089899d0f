"""Training data from the search's own proofs: (goals, next tactic) pairs along each verified proof.

A trace file is JSONL, one step a line: ``{"goals", "tactic", "theorem", "step", "split", "system"}``.
Only proofs that passed the full check give steps. Steps from the miniF2F ``test`` split are refused
everywhere here: training on them would leak the benchmark.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..search.tree import EdgeKind

FORBIDDEN_SPLITS = ("test",)


@dataclass(frozen=True)
class TraceStep:
    goals: str
    tactic: str
    theorem: str = ""
    step: int = 0
    split: str = ""
    system: str = ""


def proof_steps(result, split: str = "", system: str = "") -> list[TraceStep]:
    """The (goals, tactic) pairs along the verified proof of a ``SearchResult``; [] when not proved."""
    if not result.proved or result.tree is None:
        return []
    tree = result.tree
    last = next((e for e in tree.edges if e.kind == EdgeKind.FINISHED), None)
    if last is None:
        return []
    edges = tree.path(tree.nodes[last.src]) + [last]
    if [e.tactic for e in edges] != list(result.tactics):
        raise ValueError(f"{result.theorem}: the tree path does not spell the reported proof")
    return [TraceStep(tree.nodes[e.src].goals, e.tactic, result.theorem, i, split, system)
            for i, e in enumerate(edges)]


def write_traces(path: str | Path, steps: Iterable[TraceStep], append: bool = False) -> int:
    n = 0
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        for s in steps:
            f.write(json.dumps(asdict(s), ensure_ascii=False) + "\n")
            n += 1
        f.flush()
        os.fsync(f.fileno())
    return n


def read_traces(path: str | Path) -> list[TraceStep]:
    """Steps of a trace file; ``ValueError`` naming the line for a bad record or a test-split step."""
    steps: list[TraceStep] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not JSON ({e.msg})") from None
            if not isinstance(rec, dict) or not isinstance(rec.get("goals"), str) \
                    or not isinstance(rec.get("tactic"), str) or not rec["tactic"].strip():
                raise ValueError(f"{path}:{lineno}: a step needs string fields 'goals' and 'tactic'")
            if rec.get("split") in FORBIDDEN_SPLITS:
                raise ValueError(f"{path}:{lineno}: a step from the {rec['split']!r} split; "
                                 "training on the benchmark's test split is refused")
            steps.append(TraceStep(rec["goals"], rec["tactic"].strip(), str(rec.get("theorem", "")),
                                   int(rec.get("step", 0)), str(rec.get("split", "")),
                                   str(rec.get("system", ""))))
    return steps


def collect_traces(problems, backend, generator, config,
                   on_result: Callable[[object, object], None] | None = None) -> list[TraceStep]:
    """Run the search on each miniF2F ``Problem`` and keep the steps of the verified proofs."""
    from ..search.best_first import search

    steps: list[TraceStep] = []
    for p in problems:
        if p.split in FORBIDDEN_SPLITS:
            raise ValueError(f"{p.name}: refusing to collect traces from the {p.split!r} split")
        result = search(p.theorem, backend, generator, config)
        steps.extend(proof_steps(result, p.split, p.system))
        if on_result is not None:
            on_result(p, result)
    return steps
