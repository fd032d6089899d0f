"""``--generator knn``: tactics retrieved from similar states of real proofs (``prover/learning/knn.py``),
and, for a theorem of a file, the lemmas proved before it in that file (``prover/learning/premises.py``)
and the Coq backend's lemma-search step (``prover/backends/coq/lemma_search.py``)."""
from __future__ import annotations

import math
from pathlib import Path

from ..backends.coq.lemma_search import LEMMA_SEARCH, search_pattern
from ..learning.knn import KnnModel
from ..learning.premises import FORMS, LocalPremises
from .base import Candidate, Generator

PREMISES = 4  # earlier lemmas of the file offered per state
PREMISE_SHARE = 0.3  # of the probability mass, when the file has lemmas like the goal
LEMMA_SEARCH_SHARE = 0.1  # of the mass, for the lemma-search step on a file theorem's goal


class KnnGenerator(Generator):
    """Candidates are the model's distinct tactics, scored by their share of the neighbours' votes
    (a log-probability per tactic, one token each, so both search priorities read it as is). With
    lemmas of the theorem's file learned (``learn_lemmas``), the ones most like the goal are mixed in as
    ``apply L`` / ``rewrite L`` / ``rewrite <- L`` with a share of the mass split by similarity, and the
    lemma-search step (Coq's Search over everything in scope) with a share of its own."""

    name = "knn"

    def __init__(self, model: KnnModel, model_id: str | None = None) -> None:
        self.model = model
        self.model_id = model_id
        self.premises = LocalPremises(model.featurizer.features, lambda h: model.index.idf_of(h)[1])

    @classmethod
    def load(cls, path: str | Path) -> "KnnGenerator":
        return cls(KnnModel.load(path), str(path))

    def generate(self, goals: str, n: int) -> list[Candidate]:
        retrieved = [Candidate(s.tactic, s.logprob) for s in self.model.suggest(goals, n)]
        lemmas = self.premises.rank(goals, PREMISES)
        # A theorem of a file (its lemmas learned) also gets Coq's Search over what is in scope.
        search = self.premises.size > 0 and search_pattern(goals) is not None
        if not lemmas and not search:
            return retrieved
        shares = {"lemmas": PREMISE_SHARE if lemmas else 0.0, "search": LEMMA_SEARCH_SHARE if search else 0.0}
        if not retrieved:  # what is offered shares all of the mass
            total = sum(shares.values())
            shares = {k: v / total for k, v in shares.items()}
        mass = {c.tactic: (1.0 - sum(shares.values())) * math.exp(c.logprob) for c in retrieved}
        total = sum(sim for _, sim in lemmas)
        for name, sim in lemmas:
            for form, part in FORMS:
                tactic = form.format(name)
                mass[tactic] = mass.get(tactic, 0.0) + shares["lemmas"] * part * sim / total
        if search:
            mass[LEMMA_SEARCH] = mass.get(LEMMA_SEARCH, 0.0) + shares["search"]
        order = {t: i for i, t in enumerate(mass)}
        ranked = sorted(mass, key=lambda t: (-mass[t], order[t]))[:n]
        return [Candidate(t, math.log(mass[t])) for t in ranked if mass[t] > 0]

    def learn(self, steps: list[tuple[str, str]]) -> int:
        return sum(self.model.learn(goals, tactic) for goals, tactic in steps)

    def learn_lemmas(self, lemmas: list[tuple[str, str]]) -> int:
        return sum(self.premises.add(name, goals) for name, goals in lemmas)

    def checkpoint(self) -> object:
        return (self.model.size, self.premises.size)

    def rollback(self, mark: object) -> None:
        states, lemmas = mark
        self.model.forget_after(int(states))
        self.premises.truncate(int(lemmas))
