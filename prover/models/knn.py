"""``--generator knn``: tactics retrieved from similar states of real proofs (``prover/learning/knn.py``)."""
from __future__ import annotations

from pathlib import Path

from ..learning.knn import KnnModel
from .base import Candidate, Generator


class KnnGenerator(Generator):
    """Candidates are the model's distinct tactics, scored by their share of the neighbours' votes
    (a log-probability per tactic, one token each, so both search priorities read it as is)."""

    name = "knn"

    def __init__(self, model: KnnModel, model_id: str | None = None) -> None:
        self.model = model
        self.model_id = model_id

    @classmethod
    def load(cls, path: str | Path) -> "KnnGenerator":
        return cls(KnnModel.load(path), str(path))

    def generate(self, goals: str, n: int) -> list[Candidate]:
        return [Candidate(s.tactic, s.logprob) for s in self.model.suggest(goals, n)]

    def learn(self, steps: list[tuple[str, str]]) -> int:
        return sum(self.model.learn(goals, tactic) for goals, tactic in steps)

    def checkpoint(self) -> object:
        return self.model.size

    def rollback(self, mark: object) -> None:
        self.model.forget_after(int(mark))
