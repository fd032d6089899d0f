"""Learning a file's earlier proofs before proving a theorem of it, as Tactician does.

Tactician learns every proof of a file as the file is checked, so a lemma is proved with the help of
the proofs written just before it (its published stdlib numbers are in this setting). Here the text of
the file before the theorem's statement (nothing of the theorem itself or after it) is copied into a
private directory under the file's own name and traced with the corpus tracer
(``prover/corpus/trace.py``); its proof states and tactics join the generator for this theorem only
(``Generator.checkpoint`` / ``rollback``), so what one theorem's file holds never reaches another's. The
lemmas themselves (name, the state their proof starts from) go with them: a generator can then propose
using them (``prover/learning/premises.py``).
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..corpus.records import Step, TheoremRecord
from ..corpus.sources import Source
from ..corpus.trace import TraceOptions, trace_file


@dataclass(frozen=True)
class FileContextSteps:
    steps: list[tuple[str, str]]  # (goals, tactic) of the proofs before the theorem, in file order
    seconds: float
    error: str | None = None  # why tracing stopped early (the steps before it are kept)
    lemmas: list[tuple[str, str]] = field(default_factory=list)  # (name, goals at its proof's start)


def earlier_proof_steps(theorem, timeout: float = 600.0) -> FileContextSteps | None:
    """The proof steps before ``theorem`` in its file; None for a theorem that is not in a file."""
    document = getattr(theorem, "document", None)
    entry = getattr(theorem, "entry", None)
    if document is None or entry is None:
        return None
    start = time.monotonic()
    prefix = document.source[:document.sentences[entry.index].start]
    with tempfile.TemporaryDirectory(prefix="prover-context-") as d:
        copy = Path(d) / Path(document.path).name  # the same name: the same module name in coqtop
        copy.write_text(prefix, encoding="utf-8")
        source = Source(str(copy), document.module, "", tuple(document.flags))
        trace = trace_file(source, TraceOptions(sentence_timeout=timeout))
    steps = [(r.goals, r.tactic) for r in trace.records if isinstance(r, Step)]
    names = {r.theorem: r.name for r in trace.records if isinstance(r, TheoremRecord)}
    lemmas = [(names[r.theorem], r.goals) for r in trace.records
              if isinstance(r, Step) and r.index == 0 and r.theorem in names]
    return FileContextSteps(steps, time.monotonic() - start, trace.error, lemmas)


def learn_context(generator, context: FileContextSteps) -> dict:
    """Let the generator take in a file's earlier proofs and lemmas; returns what a result records."""
    return {"context_steps": generator.learn(context.steps), "context_lemmas": generator.learn_lemmas(context.lemmas),
            "context_seconds": round(context.seconds, 2), "context_error": context.error}
