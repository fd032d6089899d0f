"""The lemma-search step: Coq's own ``Search`` for lemmas in scope that match the goal, each one applied.

A library proof is very often one lemma of another module applied (``apply Z.add_move_r``,
``now apply Z.pow_gt_lin_r``), a lemma that no earlier proof in reach mentions, so retrieving tactics
cannot propose it; where the hammer cannot run (a file opened without the prover's libraries) nothing
else finds it either. Coq can: the first goal's conclusion, with its hypotheses' names (the variables)
as holes, is a pattern, and ``SearchPattern`` lists the lemmas whose conclusion matches it, ``Search``
those that hold it anywhere (an ``iff`` one side of which it is); then the same with its numerals as holes
too (no lemma is about ``3 ^ n``, one is about ``a ^ n``). The step runs these on the state, then
tries ``solve [ eapply L; first [ easy | eauto ] ]`` for each lemma found, conclusion matches first (an
iff also as ``apply <- L`` and ``apply -> L``), and runs as the first one that closes the goal: the
proof records only that tactic.

The pattern is made from the goal Coq printed, never from proposed text: the step is the bare word
``lemma_search`` (any other sentence that mentions it is an ordinary tactic), and the names it applies
are the ones Coq listed.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from typing import Protocol

from ...learning.goals import first_goal
from ..base import Failed, Finished, Next, Outcome, State
from .hammer import Probe

LEMMA_SEARCH = "lemma_search"
MAX_LEMMAS = 24  # lemmas tried per state, conclusion matches first
MAX_PATTERN = 300  # characters: a longer conclusion matches too little to be worth a query
QUERY_SECONDS = 3.0  # for each Search command
TRY_SECONDS = 1.0  # for each lemma's try (coqtop's Timeout is in whole seconds)

_SEP = re.compile(r"^=+$", re.M)
_RESULT = re.compile(r"^([A-Za-z_][\w'.]*):(?:\s|$)", re.M)
_IDENT = r"(?<![\w'.]){}(?![\w'])"
# A conclusion the step cannot use: one to introduce first, or one with binders of its own.
_BINDERS = re.compile(r"^(?:forall|exists|fun|let)\b|^~|(?<![<\-])->|\bfun\b|\bforall\b|\bexists\b|\bmatch\b")


def is_lemma_search(tactic: str) -> bool:
    return tactic.strip().rstrip(".").strip() == LEMMA_SEARCH


def general_pattern(pattern: str) -> str | None:
    """The pattern with its numerals as holes too (``_ < 3 ^ _`` matches no lemma, ``_ < _ ^ _`` does);
    None when it has none."""
    general = re.sub(r"(?<![\w'.])\d+(?![\w'])", "_", pattern)
    return general if general != pattern and _specific(general) else None


def _specific(pattern: str) -> bool:
    """Something to match on: a constant's name, or two operators besides equality (``_ < _`` alone
    would list every lemma about the order)."""
    rest = re.sub(r"(?<![\w'])_(?![\w'])|%\w+|[\s()=]", "", pattern)
    return bool(re.search(r"[A-Za-z]", rest)) or len(rest) >= 2


def search_pattern(goals: str) -> str | None:
    """The first goal's conclusion with each hypothesis name (and each existential) as a hole; None
    when the conclusion needs introducing first, binds names of its own, or nothing specific is left."""
    goal = first_goal(goals) if _SEP.search(goals) else None  # a focused goal only
    if goal is None:
        return None
    names, conclusion = goal.names, goal.conclusion
    if not conclusion or len(conclusion) > MAX_PATTERN or _BINDERS.search(conclusion):
        return None
    pattern = re.sub(r"\?[\w']+", "_", conclusion)
    for name in sorted(set(names), key=len, reverse=True):
        pattern = re.sub(_IDENT.format(re.escape(name)), "_", pattern)
    return pattern if _specific(pattern) else None


def search_results(output: str) -> list[tuple[str, bool]]:
    """The lemmas a Search command listed (``name: statement``, the statement maybe on more lines), in
    its order, each with whether its statement is an iff; nothing from an error (a pattern Coq cannot
    read)."""
    starts = list(_RESULT.finditer(output))
    out = []
    for k, m in enumerate(starts):
        if m.group(1) in ("Error", "Warning", "Toplevel"):
            continue
        statement = output[m.end():starts[k + 1].start() if k + 1 < len(starts) else len(output)]
        out.append((m.group(1), "<->" in statement))
    return out


def tries(name: str, iff: bool) -> list[str]:
    """How a lemma is tried. ``eapply`` of an iff takes the first side that unifies, and a goal
    ``Z.succ n < Z.succ m`` unifies with either side of ``n < m <-> Z.succ n < Z.succ m``: an iff is also
    tried in each direction."""
    close = "first [ easy | eauto ]"
    out = [f"solve [ eapply {name}; {close} ]"]
    if iff:
        out += [f"solve [ apply <- {name}; {close} ]", f"solve [ apply -> {name}; {close} ]"]
    return out


class LemmaSearchHost(Protocol):
    def probe(self, state: State, sentence: str, timeout: float) -> Probe: ...

    def apply(self, state: State, tactic: str, timeout: float) -> Outcome: ...


@dataclass
class LemmaSearchStep:
    """The step of one backend (stateless but for its counters)."""

    calls: int = 0

    def run(self, host: LemmaSearchHost, state: State, timeout: float) -> Outcome:
        pattern = search_pattern(state.goals)
        if pattern is None:
            return Failed("lemma_search: the goal gives no pattern to search for (introduce it first)",
                          rejected=True)
        self.calls += 1
        deadline = time.monotonic() + timeout
        names: list[str] = []
        iffs: set[str] = set()
        queries = [(command, p) for p in (pattern, general_pattern(pattern)) if p
                   for command in ("SearchPattern", "Search")]
        for command, p in queries:
            left = deadline - time.monotonic()
            if left <= 0 or len(names) >= MAX_LEMMAS:
                break
            probe = host.probe(state, f"{command} ({p}).", min(QUERY_SECONDS, left))
            if probe.timed_out:
                break
            for name, iff in search_results(probe.output):
                if name not in names:
                    names.append(name)
                if iff:
                    iffs.add(name)
        tried = 0
        for name in names[:MAX_LEMMAS]:
            tried += 1
            for step in tries(name, name in iffs):
                left = deadline - time.monotonic()
                if left < 0.5:
                    break
                outcome = host.apply(state, step, min(TRY_SECONDS, left))
                if isinstance(outcome, (Next, Finished)):
                    return replace(outcome, tactic=step)
        return Failed(f"lemma_search: none of the {tried} lemmas Search found for {pattern} closes the goal")
