"""Several generators as one: their candidate distributions mixed.

Each part's candidates are read as a probability distribution over tactics (their log-probs,
renormalised over what the part returned); the mixture gives tactic ``t`` the probability
``sum_i weight_i * p_i(t)``, so a tactic that several parts propose rises, and each part keeps a
share of the slots in proportion to its weight and its confidence.
"""
from __future__ import annotations

import math
from dataclasses import replace

from .base import Candidate, Generator


class CombinedGenerator(Generator):
    def __init__(self, parts: list[tuple[Generator, float]], name: str | None = None) -> None:
        if not parts or any(w <= 0 for _, w in parts):
            raise ValueError("a combination needs parts with positive weights")
        total = sum(w for _, w in parts)
        self.parts = [(g, w / total) for g, w in parts]
        self.name = name or "+".join(g.name for g, _ in parts)
        ids = [g.model_id for g, _ in parts if g.model_id]
        self.model_id = ",".join(ids) if ids else None

    def generate(self, goals: str, n: int) -> list[Candidate]:
        return self.generate_batch([goals], n)[0]

    def generate_batch(self, goals: list[str], n: int) -> list[list[Candidate]]:
        per_part = [g.generate_batch(goals, n) for g, _ in self.parts]
        out = []
        for k in range(len(goals)):
            mixed: dict[str, float] = {}
            first: dict[str, Candidate] = {}  # the first part's candidate keeps its other fields
            for (_, weight), batches in zip(self.parts, per_part):
                cands = batches[k]
                if not cands:
                    continue
                top = max(c.logprob for c in cands)
                z = sum(math.exp(c.logprob - top) for c in cands)
                for c in cands:
                    t = c.tactic.strip()
                    if not t:
                        continue
                    mixed[t] = mixed.get(t, 0.0) + weight * math.exp(c.logprob - top) / z
                    first.setdefault(t, c)
            order = {t: i for i, t in enumerate(first)}
            ranked = sorted(mixed, key=lambda t: (-mixed[t], order[t]))[:n]
            out.append([replace(first[t], tactic=t, logprob=math.log(mixed[t]), num_tokens=1) for t in ranked])
        return out

    def learn(self, steps: list[tuple[str, str]]) -> int:
        return max((g.learn(steps) for g, _ in self.parts), default=0)

    def learn_lemmas(self, lemmas: list[tuple[str, str]]) -> int:
        return max((g.learn_lemmas(lemmas) for g, _ in self.parts), default=0)

    def checkpoint(self) -> object:
        return tuple(g.checkpoint() for g, _ in self.parts)

    def rollback(self, mark: object) -> None:
        for (g, _), m in zip(self.parts, mark):
            g.rollback(m)
