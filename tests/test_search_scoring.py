"""Node scoring rules and a replaceable scorer in a real search on Coq."""
import shutil

import pytest

from prover.backends.base import Theorem
from prover.backends.coq.backend import CoqBackend
from prover.models.base import Candidate, Generator
from prover.search.best_first import PRIORITIES, SearchConfig, search, step_cost
from prover.search.scoring import LlemmaScorer, ReProverScorer, make_scorer


def test_llemma_and_reprover_rules():
    c = Candidate("lia", -3.0, 4)
    assert LlemmaScorer().cost(1.0, c, None) == pytest.approx(1.75)  # adds -mean token log-prob
    assert ReProverScorer().cost(1.0, c, None) == pytest.approx(4.0)  # adds -sum of log-probs
    assert step_cost(c, "llemma") == pytest.approx(0.75) and step_cost(c, "reprover") == pytest.approx(3.0)
    assert set(PRIORITIES) == {"llemma", "reprover", "value"}
    with pytest.raises(ValueError):
        make_scorer("value")


class _Fixed(Generator):
    """Both branches are tried at the root; which one is expanded next is the scorer's choice."""

    def generate(self, goals, n):
        if "forall" in goals:  # the root: two ways to introduce, two different children
            return [Candidate("intros b", -0.1, 1), Candidate("intros", -0.2, 1)]
        return []


class _Recording:
    name = "recording"

    def __init__(self, prefer: str):
        self.prefer, self.seen = prefer, []

    def cost(self, parent_cost, candidate, child, parent=None):
        self.seen.append((candidate.tactic, child.goals))
        return parent_cost + (0.0 if candidate.tactic == self.prefer else 10.0)


@pytest.mark.skipif(shutil.which("coqtop") is None, reason="needs Coq")
def test_a_custom_scorer_orders_the_search():
    theorem = Theorem("t", "Theorem t : forall a : nat, a = a /\\ a + 0 = a.")
    backend = CoqBackend()
    try:
        results = {}
        for prefer in ("intros", "intros b"):
            scorer = _Recording(prefer)
            results[prefer] = (search(theorem, backend, _Fixed(), SearchConfig(max_expansions=2), scorer=scorer),
                               scorer)
    finally:
        backend.close()
    for prefer, (result, scorer) in results.items():
        assert scorer.seen and all(goals for _, goals in scorer.seen)  # it saw the real child states
        # The first node expanded after the root is the child the scorer preferred.
        second = result.tree.nodes[1:]
        expanded = [n for n in second if n.expanded]
        assert expanded and expanded[0].parent.tactic == prefer
