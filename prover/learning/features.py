"""Features of a proof state read from its printed goals, in the spirit of Tactician's k-NN.

A state's features are a set of strings from its first goal (the goal tactics act on): every symbol of
the conclusion (constants, inductives, constructors, notations; a local variable as the head of its
type, ``$v:nat``, and by default also by its name; a bound variable as one placeholder), head-argument
pairs along applications and notations (``=>+``: an equation whose side is a sum), the head of the
conclusion, and the head of each hypothesis type (or, configurably, all of their features).
Conclusion and hypothesis features are kept apart (``g:``, ``h:``), since a symbol in the goal calls
for other tactics than the same symbol in a hypothesis. Features are hashed to stable 64-bit
integers, so a model file needs no vocabulary.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .goals import Goal, first_goal
from .terms import APP, BOUND, Tree, parse


@dataclass(frozen=True)
class FeatureConfig:
    """What goes into a state's feature set (stored in a model so queries match its training)."""

    # Measured on held-out training files (next-tactic accuracy, benchmarks/RESULTS.md): a variable's
    # type head plus its name, and only the head symbol of each hypothesis, do best.
    variables: str = "both"  # how a local variable reads: "name" (as written), "type" (its type's head), "var",
    #                          "both" (its type's head, plus its name as a symbol of its own)
    pairs: bool = True  # head-argument pairs
    walks: bool = False  # head-argument-grandchild triples
    hypotheses: bool | str = "heads"  # features of the hypothesis types too ("heads": only their head symbols)

    def to_json(self) -> dict:
        return {"variables": self.variables, "pairs": self.pairs, "walks": self.walks,
                "hypotheses": self.hypotheses}

    @classmethod
    def from_json(cls, d: dict) -> "FeatureConfig":
        return cls(**{k: d[k] for k in ("variables", "pairs", "walks", "hypotheses") if k in d})


def stable_hash(feature: str) -> int:
    return int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little",
                          signed=True)


def _head(tree: Tree) -> str:
    return tree[0]


class Featurizer:
    """Goals text -> sorted unique feature hashes. Keeps a bounded cache of parsed term texts:
    consecutive states of a proof share most hypotheses."""

    def __init__(self, config: FeatureConfig | None = None, cache_size: int = 50_000) -> None:
        self.config = config or FeatureConfig()
        self._parsed: OrderedDict[str, tuple[list[Tree], list[str]]] = OrderedDict()
        self._hashes: dict[str, int] = {}
        self._cache_size = cache_size

    def _parse(self, text: str) -> tuple[list[Tree], list[str]]:
        hit = self._parsed.get(text)
        if hit is not None:
            self._parsed.move_to_end(text)
            return hit
        out = parse(text)
        self._parsed[text] = out
        if len(self._parsed) > self._cache_size:
            self._parsed.popitem(last=False)
        return out

    def _labels(self, goal: Goal) -> dict[str, str]:
        """How each local variable of the goal reads in features."""
        mode = self.config.variables
        if mode == "name":
            return {}
        if mode == "both":
            mode = "type"
        out = {}
        for h in goal.hypotheses:
            if mode == "var":
                label = "$v"
            else:
                trees, _ = self._parse(h.type)
                head = trees[0][0] if trees else "?"
                label = "$v:" + ("$v" if head in out else head)  # x : A with A a local type reads $v:$v
            for n in h.names:
                out[n] = label
        return out

    def _walk(self, tree: Tree, labels: dict[str, str], prefix: str, out: set[str]) -> None:
        pairs, walks = self.config.pairs, self.config.walks
        stack = [tree]
        while stack:
            label, kids = stack.pop()
            if self.config.variables == "both" and label in labels:
                out.add(prefix + "$name:" + label)
            label = labels.get(label, label)
            out.add(prefix + label)
            if not kids:
                continue
            if label in ("forall", "exists", "fun", "let", "exists2"):
                # Pairs restart at binders: the binder's types and body stand on their own.
                stack.extend(kids)
                continue
            for kid in kids:
                k = labels.get(kid[0], kid[0])
                if pairs and k != APP:
                    out.add(f"{prefix}{label}>{k}")
                if walks:
                    for g in kid[1]:
                        out.add(f"{prefix}{label}>{k}>{labels.get(g[0], g[0])}")
                stack.append(kid)

    def feature_strings(self, goals: str) -> set[str]:
        goal = first_goal(goals)
        out: set[str] = set()
        if goal is None:
            return out
        labels = self._labels(goal)
        trees, scopes = self._parse(goal.conclusion)
        for t in trees:
            self._walk(t, labels, "g:", out)
        if trees:
            out.add("top:" + labels.get(trees[0][0], trees[0][0]))
        out.update("g:%" + s for s in scopes)
        if self.config.hypotheses:
            for h in goal.hypotheses:
                trees, scopes = self._parse(h.type)
                if self.config.hypotheses != "heads":
                    for t in trees:
                        self._walk(t, labels, "h:", out)
                if trees:
                    out.add("htop:" + labels.get(trees[0][0], trees[0][0]))
                out.update("h:%" + s for s in scopes)
                if h.body is not None:
                    out.add("h:$let")
        return out

    def features(self, goals: str) -> np.ndarray:
        """Sorted unique int64 hashes of the state's features."""
        hashes = self._hashes
        out = []
        for f in self.feature_strings(goals):
            h = hashes.get(f)
            if h is None:
                h = stable_hash(f)
                if len(hashes) < 2_000_000:
                    hashes[f] = h
            out.append(h)
        return np.unique(np.array(out, dtype=np.int64))


__all__ = ["BOUND", "FeatureConfig", "Featurizer", "stable_hash"]
