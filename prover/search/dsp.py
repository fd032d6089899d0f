"""Draft, sketch, prove: check a model's Isar sketch, filling each `sledgehammer` gap.

The sketch is cut into steps at its ``sledgehammer`` placeholders: the text between two gaps is one
step (several Isar commands), each gap is the bridge's sledgehammer step (DSP heuristics, then
Sledgehammer), which resolves to a concrete method. The sketch counts only if every step and every
gap goes through, the proof ends exactly where the sketch does, and the full check passes.

The papers' format is accepted: informal steps as ``(* ... *)`` comments between the formal lines
(dropped before the step filter), a repeated formal statement in front of the proof (cut off; a
statement followed directly by ``sledgehammer`` is a sketch with one gap), and several sampled
drafts of one problem (``prove_drafts`` tries each distinct one until one is proved).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..backends.base import Backend, BackendError, Failed, Finished, Theorem, TimedOut
from ..backends.isabelle.text import SLEDGEHAMMER, strip_comments, theorem_name

# Where a sketch ends: the model went on with the next problem of the few-shot prompt.
_STOP = re.compile(r"^(?:Informal\b|Formal:|\(\*###|theorem\b|lemma\b|end\s*$)", re.M)
_PROOF_LINE = re.compile(r"^[ \t]*(?:proof|by|apply|using|unfolding|including)\b", re.M)


def _placeholders(text: str):
    """(start, end) of each ``sledgehammer`` outside strings and cartouches."""
    i, n = 0, len(text)
    in_string, depth = False, 0
    while i < n:
        c = text[i]
        if in_string:
            if c == "\\":
                i += 2
                continue
            in_string = c != '"'
        elif c == '"':
            in_string = True
        elif c == "‹" or text.startswith("\\<open>", i):
            depth += 1
        elif (c == "›" or text.startswith("\\<close>", i)) and depth:
            depth -= 1
        elif depth == 0 and text.startswith(SLEDGEHAMMER, i) and \
                (i == 0 or not (text[i - 1].isalnum() or text[i - 1] in "_'")) and \
                (i + len(SLEDGEHAMMER) == n or not (text[i + len(SLEDGEHAMMER)].isalnum() or
                                                    text[i + len(SLEDGEHAMMER)] in "_'")):
            yield i, i + len(SLEDGEHAMMER)
            i += len(SLEDGEHAMMER)
            continue
        i += 1


def split_placeholders(text: str) -> list[str]:
    """Pieces of ``text`` with each ``sledgehammer`` (outside strings and cartouches) its own piece."""
    pieces, start = [], 0
    for a, b in _placeholders(text):
        pieces += [text[start:a], SLEDGEHAMMER]
        start = b
    pieces.append(text[start:])
    return [p.strip() for p in pieces if p.strip()]


def _cut_statement(text: str, statement: str | None) -> str:
    """Drop a statement the model repeated before its proof: the given one, or any theorem/lemma up
    to its first proof command or ``sledgehammer`` (then the sketch is one gap)."""
    if statement:
        words = statement.split()
        m = re.match(r"\s*" + r"\s+".join(map(re.escape, words)), text) if words else None
        if m:
            return text[m.end():]
    if theorem_name(text.lstrip()) is None:
        return text
    ends = [m.start() for m in [_PROOF_LINE.search(text)] if m]
    ends += [a for a, _ in list(_placeholders(text))[:1]]
    return text[min(ends):] if ends else ""


def sketch_steps(sketch: str, statement: str | None = None) -> list[str]:
    """The steps of a sketch, as the model wrote it after the formal statement: informal comments
    ``(* ... *)`` dropped, cut at its ``sledgehammer`` gaps."""
    text = sketch.replace("```isabelle", "").replace("```", "").strip("\n")
    text = _cut_statement(text, statement)
    stop = _STOP.search(text, 1)
    if stop:
        text = text[:stop.start()]
    return split_placeholders(strip_comments(text))


def _steps(key) -> tuple:
    return tuple(getattr(key, "steps", key))


@dataclass(frozen=True)
class SketchResult:
    proved: bool
    proof: str = ""
    filled: tuple[str, ...] = ()  # the concrete method found for each gap, in order
    message: str = ""
    steps: tuple[str, ...] = field(default_factory=tuple)


def _strip_closers(text: str, closers: list[str]) -> str:
    """Drop from the front of a step the block closers the bridge has already added."""
    for closer in closers:
        m = re.match(rf"\s*{re.escape(closer)}(?![\w'])", text)
        if not m:
            break
        text = text[m.end():]
    return text.strip()


def prove_sketch(backend: Backend, theorem: Theorem, sketch: str, step_timeout: float = 30.0) -> SketchResult:
    """Run a sketch through the backend; proved only if the full check accepts the filled proof."""
    steps = sketch_steps(sketch, theorem.statement)
    if not steps:
        return SketchResult(False, message="empty sketch")
    try:
        state = backend.open(theorem)
    except BackendError as e:
        return SketchResult(False, message=f"cannot open the theorem: {e}")
    applied: list[str] = []
    filled: list[str] = []
    closers: list[str] = []
    finished = False
    try:
        for i, raw in enumerate(steps, 1):
            step = _strip_closers(raw, closers)
            closers = []
            if not step:
                continue
            if finished:
                return SketchResult(False, message=f"step {i} comes after the proof is finished", steps=tuple(steps))
            out = backend.apply(state, step, step_timeout)
            if isinstance(out, (Failed, TimedOut)):
                why = out.message if isinstance(out, Failed) else f"timed out after {out.seconds:.1f} s"
                gap = "gap" if step == SLEDGEHAMMER else "step"
                return SketchResult(False, filled=tuple(filled), message=f"{gap} {i} ({step[:60]!r}): {why}",
                                    steps=tuple(steps))
            added = _steps(out.state.key)[len(_steps(state.key)):]
            if step == SLEDGEHAMMER:
                filled.append(added[0] if added else "")
            closers = list(added[1:])  # `done`/`qed` the bridge put after the step
            applied.append(step)
            state = out.state
            finished = isinstance(out, Finished)
    except BackendError as e:
        return SketchResult(False, filled=tuple(filled), message=str(e), steps=tuple(steps))
    if not finished:
        return SketchResult(False, filled=tuple(filled), message="the sketch leaves goals open", steps=tuple(steps))
    check = backend.check(theorem, applied)
    if not check.ok:
        return SketchResult(False, filled=tuple(filled), message=f"full check: {check.message}", steps=tuple(steps))
    return SketchResult(True, backend.proof_text(applied), tuple(filled), "", tuple(steps))


@dataclass(frozen=True)
class DraftsResult:
    """Several sampled sketches of one theorem, tried in turn until one is proved."""

    proved: bool
    best: SketchResult | None  # the proved sketch's result, else the last one tried
    tried: int  # distinct sketches run (duplicates and empty ones are skipped)
    results: tuple[SketchResult, ...] = ()


def prove_drafts(backend: Backend, theorem: Theorem, sketches, step_timeout: float = 30.0,
                 max_tries: int | None = None) -> DraftsResult:
    """Draft-sketch-prove with sampled sketches (e.g. ``models.isabelle_prompts.sample_drafts``):
    each distinct sketch is run with ``prove_sketch``; the first proved one wins."""
    seen: set[tuple[str, ...]] = set()
    results: list[SketchResult] = []
    for sketch in sketches:
        if max_tries is not None and len(results) >= max_tries:
            break
        steps = tuple(sketch_steps(sketch, theorem.statement))
        if not steps or steps in seen:
            continue
        seen.add(steps)
        result = prove_sketch(backend, theorem, sketch, step_timeout)
        results.append(result)
        if result.proved:
            return DraftsResult(True, result, len(results), tuple(results))
    return DraftsResult(False, results[-1] if results else None, len(results), tuple(results))
