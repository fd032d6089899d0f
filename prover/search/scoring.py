"""Node scoring: the priority a new node gets in best-first search (lower is expanded first).

A scorer sees the parent's cost, the candidate that produced the child and the child's state, so the
rules here (functions of the generator's log-probs along the path) and a learned value model of the
state can stand in the same place.
"""
from __future__ import annotations

import math
from typing import Protocol

from ..backends.base import State
from ..models.base import Candidate


class Scorer(Protocol):
    name: str

    def cost(self, parent_cost: float, candidate: Candidate, child: State,
             parent: State | None = None) -> float:
        """The child's priority, lower first (``parent``: the expanded state, for rules that need it)."""
        ...


class StateValue(Protocol):
    """A value model: the probability that a state is proved within the budget."""

    def probability(self, goals: str) -> float: ...


class LlemmaScorer:
    """Llemma's rule: the sum over the path of each tactic's negative mean token log-prob."""

    name = "llemma"

    def cost(self, parent_cost: float, candidate: Candidate, child: State, parent: State | None = None) -> float:
        return parent_cost - candidate.score


class ReProverScorer:
    """ReProver's rule: the negative cumulative log-prob of the path (sums, not means)."""

    name = "reprover"

    def cost(self, parent_cost: float, candidate: Candidate, child: State, parent: State | None = None) -> float:
        return parent_cost - candidate.logprob


class ValueScorer:
    """A learned value on top of Llemma's rule: the path cost plus ``-log V(child)``, where V is the
    value model's probability that the child is proved within the budget. The path part keeps the
    generator's preferences; the value part moves promising states forward and dead ends back.
    One scorer per search: it remembers each state's path cost by its goals text."""

    name = "value"

    def __init__(self, value: StateValue, weight: float = 1.0) -> None:
        self.value, self.weight = value, weight
        self._path: dict[str, float] = {}

    def heuristic(self, goals: str) -> float:
        return -math.log(max(self.value.probability(goals), 1e-9))

    def cost(self, parent_cost: float, candidate: Candidate, child: State,
             parent: State | None = None) -> float:
        path = (self._path.get(parent.goals, 0.0) if parent is not None else 0.0) - candidate.score
        self._path[child.goals] = path
        return path + self.weight * self.heuristic(child.goals)


SCORERS = {"llemma": LlemmaScorer, "reprover": ReProverScorer, "value": ValueScorer}


def make_scorer(name: str, value: StateValue | None = None) -> Scorer:
    if name == "value":
        if value is None:
            raise ValueError("--priority value needs a value model")
        return ValueScorer(value)
    try:
        return SCORERS[name]()
    except KeyError:
        raise ValueError(f"unknown priority {name!r} (one of {', '.join(SCORERS)})") from None
