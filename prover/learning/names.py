"""Hypothesis names in a retrieved tactic, adapted to the current state.

A tactic retrieved from another proof names that proof's hypotheses (``apply Hlt``, ``induction l``). Each
hypothesis name the tactic uses is mapped to the current hypothesis whose type reads most alike (the
same symbols, local names aside), preferring the same name, then the same position from the end of the
context; two names never map to one. A name with no counterpart (no current hypothesis shares anything
with its type) is left as it is.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .goals import Goal

_IDENT = re.compile(r"(?<![\w'.])([A-Za-z_][\w']*)(?![\w'])(?!\.[A-Za-z_])")
_WORD = re.compile(r"[A-Za-z_][\w'.]*|\d+|[^\sA-Za-z_\d()]+")


def _shape(typ: str, local: set[str]) -> set[str]:
    """The symbols of a type with local names replaced by one placeholder."""
    return {"$v" if w in local else w for w in _WORD.findall(typ)}


def used_names(tactic: str, names: set[str]) -> list[str]:
    """The hypothesis names that a tactic mentions, in order of first use."""
    seen: list[str] = []
    for m in _IDENT.finditer(tactic):
        w = m.group(1)
        if w in names and w not in seen:
            seen.append(w)
    return seen


@dataclass(frozen=True)
class UsedHypothesis:
    """A hypothesis of the source state that the tactic names: all adaptation needs of it."""

    name: str
    from_end: int  # 1 for the last hypothesis of the context
    shape: frozenset[str]  # the symbols of its type, local names as one placeholder


def used_hypotheses(tactic: str, goal: Goal) -> list[UsedHypothesis]:
    names = goal.names
    local = set(names)
    used = used_names(tactic, local)
    return [UsedHypothesis(n, len(names) - names.index(n), frozenset(_shape(goal.type_of(n) or "", local)))
            for n in used]


class Target:
    """The current state's hypotheses, prepared once for adapting many retrieved tactics."""

    def __init__(self, goal: Goal) -> None:
        self.names = goal.names
        local = set(self.names)
        self.shapes = {n: frozenset(_shape(goal.type_of(n) or "", local)) for n in self.names}
        self.from_end = {n: len(self.names) - i for i, n in enumerate(self.names)}
        self.by_shape: dict[frozenset[str], list[str]] = {}
        for n in self.names:
            self.by_shape.setdefault(self.shapes[n], []).append(n)


def name_map(used: list[UsedHypothesis], target: Target) -> dict[str, str]:
    """Renaming of the used source hypotheses into the target's."""
    if not used:
        return {}
    if all(target.shapes.get(u.name) == u.shape for u in used):
        return {}  # every name is there with the same kind of type: the same name wins any tie
    options: list[tuple[float, int, int, str, str]] = []
    for u in used:
        shape = u.shape
        same = target.by_shape.get(shape)
        for t in (same if same else target.names):  # hypotheses of the very same shape win outright
            other = target.shapes[t]
            union = shape | other
            sim = len(shape & other) / len(union) if union else 0.0
            if sim <= 0.0:
                continue
            options.append((-sim, 0 if u.name == t else 1, abs(u.from_end - target.from_end[t]), u.name, t))
    options.sort()
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for _, _, _, s, t in options:
        if s in mapping or t in taken:
            continue
        mapping[s] = t
        taken.add(t)
    return {s: t for s, t in mapping.items() if s != t}


def rename(tactic: str, mapping: dict[str, str]) -> str:
    """Apply a renaming to the identifiers of a tactic, all at once (so swaps work)."""
    if not mapping:
        return tactic
    return _IDENT.sub(lambda m: mapping.get(m.group(1), m.group(1)), tactic)


def adapt(tactic: str, source: Goal, target: Goal) -> str:
    """``tactic``, written in ``source``, with its hypothesis names moved to ``target``'s."""
    return rename(tactic, name_map(used_hypotheses(tactic, source), Target(target)))


def encode_used(used: list[UsedHypothesis]) -> str:
    """One line per used hypothesis (name, position from the end, type), as a model file keeps it."""
    return "\n".join(f"{u.name}\t{u.from_end}\t{' '.join(sorted(u.shape))}" for u in used)


def decode_used(text: str) -> list[UsedHypothesis]:
    out = []
    for line in text.split("\n") if text else ():
        name, pos, shape = line.split("\t", 2)
        out.append(UsedHypothesis(name, int(pos), frozenset(shape.split())))
    return out
