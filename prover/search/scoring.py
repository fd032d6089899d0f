"""Node scoring: the priority a new node gets in best-first search (lower is expanded first).

A scorer sees the parent's cost, the candidate that produced the child and the child's state, so the
rules here (functions of the generator's log-probs along the path) and a learned value model of the
state can stand in the same place.
"""
from __future__ import annotations

from typing import Protocol

from ..backends.base import State
from ..models.base import Candidate


class Scorer(Protocol):
    name: str

    def cost(self, parent_cost: float, candidate: Candidate, child: State) -> float:
        """The child's priority, lower first."""
        ...


class LlemmaScorer:
    """Llemma's rule: the sum over the path of each tactic's negative mean token log-prob."""

    name = "llemma"

    def cost(self, parent_cost: float, candidate: Candidate, child: State) -> float:
        return parent_cost - candidate.score


class ReProverScorer:
    """ReProver's rule: the negative cumulative log-prob of the path (sums, not means)."""

    name = "reprover"

    def cost(self, parent_cost: float, candidate: Candidate, child: State) -> float:
        return parent_cost - candidate.logprob


SCORERS = {"llemma": LlemmaScorer, "reprover": ReProverScorer}


def make_scorer(name: str) -> Scorer:
    try:
        return SCORERS[name]()
    except KeyError:
        raise ValueError(f"unknown priority {name!r} (one of {', '.join(SCORERS)})") from None
