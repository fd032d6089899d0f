"""Training data for the learned parts: the corpus's training split, plus proofs found by runs.

Only the training split of a corpus is ever read (``prover/corpus/records.py``: a held-out file's
proofs never reach a model), and a run's proofs join only when the run was on training theorems
(miniF2F ``valid``, the corpus's training split): ``results_steps`` refuses the others.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..corpus.records import Step, corpus_files, is_held_out, read_file, split_of

# Benchmark splits whose proofs may be learned from; everything else is evaluation data.
TRAINING_RUN_SPLITS = ("valid", "train")


class TrainingDataError(ValueError):
    """Unusable training data (no corpus there, a results file of a test split, ...): one line."""


@dataclass(frozen=True)
class Example:
    goals: str
    tactic: str
    source: str  # logical path of the corpus file, or "run:<results file>"


def corpus_examples(corpus: str | Path, on_file: Callable[[int, int], None] | None = None) -> Iterator[Example]:
    """Every step of the corpus's training split, file by file (``on_file(done, total)``)."""
    files = corpus_files(corpus)
    if not files:
        raise TrainingDataError(f"no corpus files (*.jsonl, *.jsonl.gz) under {corpus}")
    for i, path in enumerate(files):
        for r in read_file(path):
            if isinstance(r, Step) and split_of(r.file) == "train" and not is_held_out(r.file):
                yield Example(r.goals, r.tactic, r.file)
        if on_file is not None:
            on_file(i + 1, len(files))


def results_steps(path: str | Path) -> list[Example]:
    """The (goals, tactic) steps of the verified proofs in a results file of a training split.

    Results lines carry ``proof_goals`` (the goals before each tactic of a found proof) since the
    online-learning change; older lines without them are skipped."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise TrainingDataError(f"cannot read {p}: {e.strerror}") from None
    out: list[Example] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            raise TrainingDataError(f"{p}:{number}: not a JSON line") from None
        if rec.get("type") == "config":
            split = rec.get("split")
            if split not in TRAINING_RUN_SPLITS:
                raise TrainingDataError(f"{p}: a run on split {split!r}; only runs on "
                                        f"{' or '.join(TRAINING_RUN_SPLITS)} theorems are training data")
            continue
        if rec.get("type") != "result" or not rec.get("verified"):
            continue
        if rec.get("split") not in TRAINING_RUN_SPLITS:
            raise TrainingDataError(f"{p}:{number}: a result of split {rec.get('split')!r} cannot be trained on")
        goals, tactics = rec.get("proof_goals") or [], rec.get("tactics") or []
        if len(goals) != len(tactics):
            continue
        out += [Example(g, t, f"run:{p.name}") for g, t in zip(goals, tactics)]
    return out
