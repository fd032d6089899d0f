"""The corpus format: one JSON line per traced theorem and per tactic sentence of its proof.

A corpus directory holds ``**/*.jsonl.gz`` files, one per traced source file, named after its logical
path (``Coq/Lists/List.jsonl.gz``), and ``stats.json``. In a file, each theorem's line comes first
(``"type": "theorem"``), then its steps in proof order (``"type": "step"``). Readers that only want
training pairs iterate ``steps``; benchmarks and retrieval of whole proofs use ``theorems``.
"""
from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

SPLITS = ("train", "test")


def is_held_out(logical_path: str) -> bool:
    """The held-out (test) files: nobody trains on them (``../shared/notes/coq-learning.md``)."""
    return int(hashlib.sha1(logical_path.encode("utf-8")).hexdigest(), 16) % 10 == 0


def split_of(logical_path: str) -> str:
    return "test" if is_held_out(logical_path) else "train"


@dataclass(frozen=True)
class Step:
    """One sentence of a proof and the state it was run in."""

    file: str  # logical path of the source file, e.g. "Coq.Lists.List"
    theorem: str  # qualified name, e.g. "Coq.Lists.List.app_nil_r"
    index: int  # position in the proof, from 0
    goals: str  # the state before the sentence, exactly as the Coq backend shows it to a model
    tactic: str  # the sentence as written (comments dropped, on one line); bullets and braces too
    hypotheses: tuple[str, ...] = ()  # names of the first goal's hypotheses
    goals_after: int = 0  # number of goals after the sentence (0 at the end of the proof)
    proof_end: str = "Qed"  # Qed | Defined

    def to_json(self) -> dict:
        return {"type": "step", **asdict(self)}

    @classmethod
    def from_json(cls, d: dict) -> "Step":
        return cls(d["file"], d["theorem"], d["index"], d["goals"], d["tactic"],
                   tuple(d.get("hypotheses", ())), d.get("goals_after", 0), d.get("proof_end", "Qed"))


@dataclass(frozen=True)
class TheoremRecord:
    """A traced theorem: its statement, where it is, and its whole proof as written."""

    file: str
    theorem: str  # qualified name
    name: str  # short name as declared
    statement: str  # the declaring sentence, e.g. "Lemma app_nil_r : forall l, l ++ [] = l."
    proof: str  # from the sentence after the statement to the end (Qed./Defined.), as written
    proof_end: str  # Qed | Defined
    steps: int
    line: int = 0  # line of the statement in the source file (1-based)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"type": "theorem", **asdict(self)}

    @classmethod
    def from_json(cls, d: dict) -> "TheoremRecord":
        return cls(d["file"], d["theorem"], d["name"], d["statement"], d["proof"], d["proof_end"],
                   d["steps"], d.get("line", 0), d.get("extra", {}))


def corpus_files(directory: str | Path) -> list[Path]:
    base = Path(directory)
    return sorted([*base.rglob("*.jsonl"), *base.rglob("*.jsonl.gz")])


def _open(path: Path, mode: str, gz: bool | None = None):
    if path.name.endswith(".gz") if gz is None else gz:
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def read_file(path: str | Path) -> Iterator[TheoremRecord | Step]:
    with _open(Path(path), "r") as f:
        for line in f:
            if not line.strip():
                continue
            d = json.loads(line)
            yield Step.from_json(d) if d.get("type") == "step" else TheoremRecord.from_json(d)


def write_file(path: str | Path, records: list[TheoremRecord | Step]) -> None:
    """Write one traced source file atomically (a killed build never leaves half a file)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    with _open(tmp, "w", gz=p.name.endswith(".gz")) as f:  # the temporary name does not say .gz
        for r in records:
            f.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
    tmp.replace(p)


def steps(directory: str | Path, split: str | None = None) -> Iterator[Step]:
    """Every step of a corpus directory, optionally only the ``train`` or ``test`` split's files."""
    for path in corpus_files(directory):
        for r in read_file(path):
            if isinstance(r, Step) and (split is None or split_of(r.file) == split):
                yield r


def theorems(directory: str | Path, split: str | None = None) -> Iterator[TheoremRecord]:
    for path in corpus_files(directory):
        for r in read_file(path):
            if isinstance(r, TheoremRecord) and (split is None or split_of(r.file) == split):
                yield r
