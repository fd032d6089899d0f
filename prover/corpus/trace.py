"""Step one .v file through coqtop and record every proof's sentences with the state before each.

The tracer is a Coq backend session (same process handling, same prompt reading, same goal text)
that runs a whole file in order instead of a search. coqtop's prompt names the open proof, so a
sentence after which a proof is open started one, and the proof ends when the prompt says ``Coq``
again. Goals are read exactly as the backend reads them for a model: the sentence's own output when
it prints goals, else ``Show.``, then ``normalize_goals``.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..backends.base import BackendCrash, InitError
from ..backends.coq.backend import CoqBackend, CoqConfig, _NoAnswer, _Reply, normalize_goals
from ..learning.goals import GOALS_HEAD, goal_count
from ..backends.coq.text import CoqSyntaxError, Sentence, split_sentences
from ..backends.process import ProcessLimits
from .records import Step, TheoremRecord
from .sources import Source

# Sentences that may open a proof block without being a step of it.
_PROOF_START = re.compile(r"^Proof\b")
_PROOF_END = re.compile(r"^(Qed|Defined|Save)\b")
_GIVE_UP = re.compile(r"^(Admitted|Abort)\b")
# Vernacular commands: inside a proof they are not tactics, so a proof holding one is not traced.
_COMMANDS = frozenset("""
Abort About Add Admit Admitted Arguments Axiom Back BackTo Bind Canonical Check Class Close Coercion
Collection Compute Conjecture Context Create Declare Defined Definition Delimit Derive Drop End Eval
Existing Export Extraction Fail Fixpoint Focus From Function Generalizable Global Goal Guarded Hint
Hypothesis Identity Implicit Import Include Inductive Infix Info Instance Let Lemma Load Local Locate
Ltac Ltac2 Module Next Notation Obligation Obligations Opaque Open Optimize Parameter Polymorphic Print
Program Proof Qed Record Redirect Register Remove Require Reserved Reset Restart Save Scheme Search
SearchPattern SearchRewrite Section Set Show Solve Strategy Succeed Tactic Test Theorem Time Timeout
Transparent Typeclasses Undelimit Undo Unfocus Unfocused Universe Unset Unshelve Variable Variables
""".split()) - {"Unshelve"}  # Unshelve is a tactic-level command that scripts use like a tactic
_DECL = re.compile(r"^(?:#\[[^\]]*\]\s*)?(?:(?:Local|Global|Polymorphic|Monomorphic|Program|Private)\s+)*"
                   r"([A-Z][A-Za-z]*)")
_OPENS_SCOPE = re.compile(r"^(?:#\[[^\]]*\]\s*)?(?:(?:Local|Global|Polymorphic|Monomorphic|Private)\s+)*"
                          r"(Module|Section)\s+(?:Type\s+)?(?:(?:Import|Export)\s+)?([A-Za-z_][\w']*)")
_END = re.compile(r"^End\s+([A-Za-z_][\w']*)\s*\.$")
_HYP = re.compile(r"^([^\s:][^:]*?)\s*(?::=|:)\s")


@dataclass(frozen=True)
class TraceOptions:
    coqtop: str = "coqtop"
    sentence_timeout: float = 600.0  # one sentence (a slow Qed included)
    memory_mb: int = 6144


@dataclass
class FileTrace:
    """What tracing one file gave: records in file order, proofs left out, and how it ended."""

    source: Source
    records: list = field(default_factory=list)  # TheoremRecord and Step, each theorem before its steps
    skipped: list[dict] = field(default_factory=list)  # {"theorem", "line", "reason"}
    error: str | None = None  # why the file could not be stepped to its end (records before it are kept)
    sentences: int = 0
    seconds: float = 0.0

    @property
    def theorems(self) -> int:
        return sum(isinstance(r, TheoremRecord) for r in self.records)

    @property
    def steps(self) -> int:
        return sum(isinstance(r, Step) for r in self.records)


@dataclass
class _OpenProof:
    name: str
    statement: Sentence
    goals: str  # the state before the next step
    steps: list[Step] = field(default_factory=list)
    skip: str | None = None


class _FileFailed(Exception):
    pass


def hypothesis_names(goals: str) -> tuple[str, ...]:
    """Names of the first goal's hypotheses in normalized goal text."""
    names: list[str] = []
    for line in goals.splitlines()[1:]:
        if line.startswith("====="):
            break
        if not line or line[0].isspace():
            continue  # the continuation of a long hypothesis
        m = _HYP.match(line)
        if m:
            names += [n.strip() for n in m.group(1).split(",") if n.strip()]
    return tuple(names)


def command_word(sentence: str) -> str | None:
    """The vernacular command a sentence starts with, or None for a tactic (or bullet, brace)."""
    m = _DECL.match(sentence)
    return m.group(1) if m and m.group(1) in _COMMANDS else None


class FileTracer(CoqBackend):
    """A coqtop session that steps one file from its first sentence to its last."""

    def __init__(self, source: Source, options: TraceOptions | None = None) -> None:
        self.options = options or TraceOptions()
        limits = ProcessLimits(memory_bytes=self.options.memory_mb * 1024 * 1024)
        super().__init__(CoqConfig(coqtop=self.options.coqtop, flags=source.coqtop_flags(), prelude="",
                                   limits=limits, open_timeout=self.options.sentence_timeout))
        self.source = source
        self._sync = 0

    def trace(self) -> FileTrace:
        out = FileTrace(self.source)
        start = time.monotonic()
        try:
            text = Path(self.source.path).read_text(encoding="utf-8")
            sentences = split_sentences(text)
        except (OSError, UnicodeDecodeError, CoqSyntaxError) as e:
            out.error = f"cannot read the file: {e}"
            return out
        lines = _LineIndex(text)
        try:
            self._start()
            self._step_all(text, sentences, lines, out)
        except InitError as e:
            out.error = str(e)
        except _FileFailed as e:
            out.error = str(e)
        except BackendCrash as e:
            out.error = f"coqtop crashed: {e}"
        finally:
            self.close()
            out.seconds = time.monotonic() - start
        return out

    # -- stepping ------------------------------------------------------------------------------
    def _run(self, s: Sentence, lines: "_LineIndex") -> _Reply:
        try:
            reply = self._send(s.clean, self.options.sentence_timeout)
        except _NoAnswer:
            raise _FileFailed(f"line {lines.line(s.start)}: no answer within "
                              f"{self.options.sentence_timeout:.0f} s to {s.clean[:80]!r}") from None
        if reply.error:
            raise _FileFailed(f"line {lines.line(s.start)}: {s.clean[:80]!r} fails: {reply.error[:300]}")
        return reply

    def _in_sync(self, lines: "_LineIndex", s: Sentence) -> None:
        """Check that coqtop answered each sentence with one prompt, as the tracer read it.

        A line that coqtop reads as two sentences (a splitter mismatch) would shift every later answer
        by one; an unknown reference is answered by an error naming it, which nothing else prints.
        """
        self._sync += 1
        probe = f"prover_trace_sync_{self._sync}"
        try:
            reply = self._send(f"Check {probe}.", self.options.sentence_timeout)
        except _NoAnswer:
            reply = None
        if reply is None or probe not in reply.output:
            raise _FileFailed(f"line {lines.line(s.start)}: lost step with coqtop (a sentence split differently "
                              f"from Coq's): {s.clean[:80]!r}")

    def _goals_after(self, reply: _Reply) -> str:
        text = reply.output
        if not (text == "No more goals." or GOALS_HEAD.match(text)):
            text = self._show()
        return normalize_goals(text)

    def _step_all(self, text: str, sentences: list[Sentence], lines: "_LineIndex", out: FileTrace) -> None:
        scopes: list[tuple[str, str]] = []  # (Module|Section, name), innermost last
        proof: _OpenProof | None = None
        for s in sentences:
            clean = s.clean
            if not clean:
                continue
            out.sentences += 1
            if proof is None:
                reply = self._run(s, lines)
                self._track_scope(clean, scopes)
                if reply.proof != "Coq":
                    proof = _OpenProof(reply.proof, s, self._goals_after(reply))
                continue
            skip_reason = None
            is_step = False
            if not proof.steps and _PROOF_START.match(clean):
                pass  # Proof. / Proof using ... / Proof with ... (some files say it twice): not a step
            elif _PROOF_END.match(clean) or _GIVE_UP.match(clean):
                pass
            else:
                word = command_word(clean)
                if word is not None:
                    skip_reason = f"command inside the proof: {word}"
                is_step = True
            goals_before = proof.goals
            reply = self._run(s, lines)
            if reply.proof == "Coq":  # the proof is closed
                self._close(proof, clean, s, text, scopes, lines, out)
                proof = None
                continue
            if reply.proof != proof.name:
                proof.skip = proof.skip or "a nested proof"
                continue
            proof.goals = self._goals_after(reply)
            if skip_reason and not proof.skip:
                proof.skip = skip_reason
            if is_step:
                proof.steps.append(Step(self.source.logical_path, "", len(proof.steps), goals_before, clean,
                                        hypothesis_names(goals_before), goal_count(proof.goals)))
        if proof is not None:
            raise _FileFailed(f"the file ends inside the proof of {proof.name}")
        if sentences:
            self._in_sync(lines, sentences[-1])

    def _close(self, proof: _OpenProof, clean: str, end: Sentence, text: str, scopes, lines, out: FileTrace) -> None:
        self._in_sync(lines, end)  # before its records are kept
        statement = proof.statement
        qualified = ".".join([self.source.logical_path, *(n for k, n in scopes if k == "Module"), proof.name])
        line = lines.line(statement.start)
        word = _DECL.match(statement.clean)
        keyword = word.group(1) if word else ""
        m = _PROOF_END.match(clean)
        reason = proof.skip
        if reason is None:
            if not m:
                first = clean.rstrip(".").split()[0]
                reason = {"Admitted": "admitted", "Abort": "aborted",
                          "Proof": "a proof term (Proof t.), no tactics"}.get(first, f"closed by {clean[:40]!r}")
            elif keyword in ("Goal",):
                reason = "an anonymous Goal"
            elif not proof.steps:
                reason = "no tactic steps"
        if reason is not None:
            out.skipped.append({"theorem": qualified, "line": line, "reason": reason})
            return
        proof_end = "Defined" if m.group(1) == "Defined" else "Qed"
        extra = {"keyword": keyword}
        if keyword in ("Next", "Obligation", "Solve"):
            extra["obligation"] = True
        out.records.append(TheoremRecord(self.source.logical_path, qualified, proof.name, statement.text,
                                         text[statement.end:end.end].strip(), proof_end, len(proof.steps),
                                         line, extra))
        for step in proof.steps:
            out.records.append(Step(step.file, qualified, step.index, step.goals, step.tactic,
                                    step.hypotheses, step.goals_after, proof_end))

    @staticmethod
    def _track_scope(clean: str, scopes: list[tuple[str, str]]) -> None:
        m = _OPENS_SCOPE.match(clean)
        if m and ":=" not in clean:
            scopes.append((m.group(1), m.group(2)))
            return
        m = _END.match(clean)
        if m:
            for i in range(len(scopes) - 1, -1, -1):
                if scopes[i][1] == m.group(1):
                    del scopes[i:]
                    break


class _LineIndex:
    def __init__(self, text: str) -> None:
        self._starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]

    def line(self, offset: int) -> int:
        import bisect
        return bisect.bisect_right(self._starts, offset)


def trace_file(source: Source, options: TraceOptions | None = None) -> FileTrace:
    return FileTracer(source, options).trace()
