"""Training examples from the proof corpus (``prover corpus build``): (goals, next tactic) pairs, split three ways.

- ``held_out``: steps of the held-out files (``is_held_out``). Never trained on; accuracy is reported on them
  when the corpus holds any (a corpus built without ``--files`` has none: its builder never reads them).
- ``valid``: steps of one training theorem in 20 (by a hash of its qualified name, so the same theorems on
  every machine and run). Not trained on; the validation accuracy is measured on them.
- ``train``: the rest.

Only steps the search itself could take are kept: the Coq backend's tactic filter refuses bullets, braces,
commands and admits, so a model trained on them would propose what can never run. The tactic is written
as the prompts' examples write it, without its final period (the backend adds it back).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ..backends.coq.text import check_tactic
from ..corpus.records import corpus_files, read_file, split_of, Step
from .traces import TraceStep

VALID_ONE_IN = 20


def is_validation(theorem: str) -> bool:
    """Whether a training theorem's steps are kept for validation (one theorem in ``VALID_ONE_IN``)."""
    return int(hashlib.sha1(theorem.encode("utf-8")).hexdigest(), 16) % VALID_ONE_IN == 1


def search_tactic(tactic: str) -> str | None:
    """The tactic as a model should write it for the search (no final period), or None if the search's
    filter refuses it."""
    text, _ = check_tactic(tactic)
    return None if text is None else text[:-1].rstrip()


@dataclass
class CorpusExamples:
    train: list[TraceStep] = field(default_factory=list)
    valid: list[TraceStep] = field(default_factory=list)
    held_out: list[TraceStep] = field(default_factory=list)
    refused: int = 0  # steps the search's filter refuses (bullets, braces, ...)
    files: int = 0


def _example(step: Step, split: str) -> TraceStep | None:
    tactic = search_tactic(step.tactic)
    if tactic is None or not step.goals.strip():
        return None
    return TraceStep(step.goals, tactic, step.theorem, step.index, split, "coq")


def load_corpus(directory: str | Path) -> CorpusExamples:
    """The corpus directory's steps as training, validation and held-out examples; ``ValueError`` if it
    holds no corpus files."""
    files = corpus_files(directory)
    if not files:
        raise ValueError(f"{directory}: no corpus files (*.jsonl, *.jsonl.gz; build one with `prover corpus build`)")
    out = CorpusExamples(files=len(files))
    for path in files:
        for record in read_file(path):
            if not isinstance(record, Step):
                continue
            if split_of(record.file) == "test":
                split, bucket = "test", out.held_out
            elif is_validation(record.theorem):
                split, bucket = "valid", out.valid
            else:
                split, bucket = "train", out.train
            example = _example(record, split)
            if example is None:
                out.refused += 1
            else:
                bucket.append(example)
    return out
