"""Printed Coq goals, as the Coq backend shows them to a model, read back into hypotheses and conclusions.

The text is ``N goals`` (or ``1 goal``), the first goal's hypotheses one a line (``x, y : nat``; a long
type wraps onto indented lines; a local definition is ``x := v : T``), a line of ``=``, the first goal's
conclusion, then each further goal as ``goal K is:`` and its conclusion. Tactics act on the first goal.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# "2 goals", or "1 focused goal (shelved: 1)" where a tactic left an evar to instantiate (eexists, eapply)
GOALS_HEAD = re.compile(r"^(\d+) (?:focused )?goals?\b")
_SEP = re.compile(r"^=+$", re.M)
_NEXT_GOAL = re.compile(r"\n\s*\n?goal \d+ (?:\([^)]*\) )?is:", re.M)
# "x, y : T" or "x := v : T": names at the start of an unindented line.
_HYP = re.compile(r"^([A-Za-z_\u00C0-\uFFFF][\w'\u00C0-\uFFFF]*(?:\s*,\s*[A-Za-z_\u00C0-\uFFFF][\w'\u00C0-\uFFFF]*)*)"
                  r"\s*(:=|:)\s?(.*)$")


@dataclass(frozen=True)
class Hypothesis:
    names: tuple[str, ...]
    type: str  # on one line
    body: str | None = None  # the value of a local definition (x := v : T)


@dataclass(frozen=True)
class Goal:
    hypotheses: tuple[Hypothesis, ...]
    conclusion: str  # on one line
    count: int = 1  # goals in the state (this is the first)

    @property
    def names(self) -> list[str]:
        return [n for h in self.hypotheses for n in h.names]

    def type_of(self, name: str) -> str | None:
        for h in self.hypotheses:
            if name in h.names:
                return h.type
        return None


def _join(lines: list[str]) -> str:
    return " ".join(" ".join(line.split()) for line in lines).strip()


def _split_body(text: str) -> tuple[str, str | None]:
    """``v : T`` of a local definition into (T, v), at the last top-level ' : '."""
    depth, cut = 0, -1
    for i, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(" : ", i):
            cut = i
    if cut < 0:
        return text, None
    return text[cut + 3:].strip(), text[:cut].strip()


def goal_count(goals: str) -> int:
    """How many goals the text's header says there are; 0 without one (``No more goals.``)."""
    m = GOALS_HEAD.match(goals)
    return int(m.group(1)) if m else 0


def first_goal(goals: str) -> Goal | None:
    """The first goal of a goals text, or None when there is none (a finished proof, an empty text)."""
    text = goals.strip("\n")
    if not text:
        return None
    lines = text.splitlines()
    count = 1
    m = GOALS_HEAD.match(lines[0]) if lines else None
    if m:
        count = int(m.group(1))
        lines = lines[1:]
        if count == 0:
            return None
    body = "\n".join(lines)
    parts = _SEP.split(body, maxsplit=1)
    if len(parts) == 2:
        context, rest = parts
    else:  # no focused goal (between bullets): the first unfocused one stands in
        context, rest = "", re.sub(r"^\s*goal \d+ (?:\([^)]*\) )?is:\s*", "", body)
    conclusion = _NEXT_GOAL.split(rest, maxsplit=1)[0]
    hyps: list[tuple[tuple[str, ...], str, list[str]]] = []
    for line in context.splitlines():
        if not line.strip():
            continue
        m = _HYP.match(line) if not line[0].isspace() else None
        if m:
            names = tuple(n.strip() for n in m.group(1).split(","))
            hyps.append((names, m.group(2), [m.group(3)]))
        elif hyps:  # a wrapped continuation of the previous hypothesis
            hyps[-1][2].append(line)
    out = []
    for names, kind, typ in hyps:
        text = _join(typ)
        if kind == ":=":
            t, v = _split_body(text)
            out.append(Hypothesis(names, t, v))
        else:
            out.append(Hypothesis(names, text))
    return Goal(tuple(out), _join(conclusion.splitlines()), count)
