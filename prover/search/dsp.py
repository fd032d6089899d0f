"""Draft, sketch, prove: check a model's Isar sketch, filling each `sledgehammer` gap.

The sketch is cut into steps at its ``sledgehammer`` placeholders: the text between two gaps is one
step (several Isar commands), each gap is the bridge's sledgehammer step (DSP heuristics, then
Sledgehammer), which resolves to a concrete method. The sketch counts only if every step and every
gap goes through, the proof ends exactly where the sketch does, and the full check passes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..backends.base import Backend, BackendError, Failed, Finished, Theorem, TimedOut
from ..backends.isabelle.text import SLEDGEHAMMER, theorem_name

_STOP = re.compile(r"^(?:Informal\b|\(\*|theorem\b|lemma\b|end\s*$)", re.M)
_PROOF_LINE = re.compile(r"^[ \t]*(?:proof|by|apply|using|unfolding|including)\b", re.M)


def split_placeholders(text: str) -> list[str]:
    """Pieces of ``text`` with each ``sledgehammer`` (outside strings and cartouches) its own piece."""
    pieces, start, i, n = [], 0, 0, len(text)
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
            pieces.append(text[start:i])
            pieces.append(SLEDGEHAMMER)
            i += len(SLEDGEHAMMER)
            start = i
            continue
        i += 1
    pieces.append(text[start:])
    return [p.strip() for p in pieces if p.strip()]


def sketch_steps(sketch: str) -> list[str]:
    """The steps of a sketch, as the model wrote it after the formal statement."""
    text = sketch.replace("```isabelle", "").replace("```", "").strip("\n")
    if theorem_name(text.lstrip()) is not None:  # the model repeated the statement: skip it
        m = _PROOF_LINE.search(text)
        text = text[m.start():] if m else ""
    stop = _STOP.search(text, 1)
    if stop:
        text = text[:stop.start()]
    return split_placeholders(text)


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
    steps = sketch_steps(sketch)
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
            before = len(tuple(state.key))
            added = tuple(out.state.key)[before:]
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
