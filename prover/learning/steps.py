"""The first step of a compound tactic, as Tactician decomposes what it records.

Library proofs often say several steps in one sentence: ``rewrite <- add_opp_r, opp_add_distr``,
``induction n; simpl; auto``. A neighbour's sentence as a whole often fails on a state that its first
step would move forward (the second rewrite has nothing to rewrite here), so the k-NN also votes for
that first step: ``rewrite <- add_opp_r``, ``induction n``. Only what is a step by itself is taken:
the left part of a top-level ``;``, and the first lemma of a ``rewrite`` list without clauses.
"""
from __future__ import annotations

import re
from functools import lru_cache

_REWRITE = re.compile(r"^(rewrite|erewrite|setoid_rewrite)\s+(.*)$", re.S)
# Tacticals whose body a ; belongs to, and terms whose ; is not a sequence (match ... end, Ltac's fun)
_OPAQUE = re.compile(r"^(?:now|try|repeat|first|solve|progress|abstract|do \d+|time|once)\b|\b(?:match|lazymatch|fun|let)\b")
_CLAUSE = re.compile(r"\s(?:in|at|by)\s")  # rewrite ... in H / at 2 / by tac: the list is not split


def _top_level_split(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside brackets, parentheses, braces and strings."""
    parts, depth, start, i, quoted = [], 0, 0, 0, False
    while i < len(text):
        c = text[i]
        if c == '"':
            quoted = not quoted
        elif not quoted:
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
            elif depth == 0 and text.startswith(sep, i):
                parts.append(text[start:i])
                start = i + len(sep)
                i = start
                continue
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


@lru_cache(maxsize=1 << 16)  # the k-NN asks for the same stored sentences query after query
def first_step(tactic: str) -> str | None:
    """The step a compound tactic starts with, or None when it is one step (or its start is not a
    tactic by itself: ``t1 || t2``, ``first [...]``, a ``;`` inside brackets)."""
    t = " ".join(tactic.split())
    if "||" in t or _OPAQUE.search(t):
        return None
    seq = _top_level_split(t, ";")
    if len(seq) > 1:
        head = seq[0]
        return head or None
    m = _REWRITE.match(t)
    if m and not _CLAUSE.search(" " + m.group(2) + " "):
        lemmas = _top_level_split(m.group(2), ",")
        if len(lemmas) > 1 and all(lemmas):
            return f"{m.group(1)} {lemmas[0]}"
    return None
