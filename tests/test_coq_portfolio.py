"""The goal-aware Coq portfolio: which tactics a goal's shape gets."""
import pytest

from prover.backends.base import Theorem
from prover.backends.coq.backend import CoqBackend
from prover.models.coq_portfolio import CoqPortfolio, GoalShape, coq_tactics
from prover.search.best_first import SearchConfig, search

DECIDERS = {"lia", "nia", "vm_compute; reflexivity", "simpl; lia"}


def goal(hypotheses: str, conclusion: str) -> str:
    return f"{hypotheses}\n============================\n{conclusion}"


@pytest.mark.parametrize("conclusion,introducible", [
    ("P /\\ Q <-> Q /\\ P", False),
    ("(x ?= y) = Eq <-> eq x y", False),
    ("P -> Q <-> R", True),  # -> binds looser than <->
    ("(P <-> Q) -> R", True),
    ("forall n, n <-> n", True),
    ("~ P", True),
])
def test_iffs_arrow_is_not_an_implication(conclusion, introducible):
    assert GoalShape.of(goal("P, Q, R : Prop", conclusion)).introducible is introducible


def test_an_iff_goal_is_split_first():
    """Split, not intros (a no-op there); the heavy automation waits for the two directions."""
    tactics = [c.tactic for c in CoqPortfolio().generate(goal("P, Q : Prop", "P /\\ Q <-> Q /\\ P"), 32)]
    assert tactics == ["split", "easy"]
    tactics = [c.tactic for c in CoqPortfolio().generate(goal("n, m : nat", "n < m <-> S n < S m"), 32)]
    assert tactics == ["split", "lia", "easy"]


def test_the_portfolio_proves_an_iff_by_its_two_directions():
    """intros changes nothing on an iff, which is not a product: the goal must be split, or closed by
    automation that splits; a portfolio that took iff for an implication offered only intros, lia and
    easy, and all three fail here."""
    theorem = Theorem("length_zero", "Theorem length_zero : forall A (l : list A), length l = 0 <-> l = nil.")
    backend = CoqBackend()
    try:
        result = search(theorem, backend, CoqPortfolio(hammer=False),
                        SearchConfig(max_expansions=20, tactic_timeout=5, timeout=60))
    finally:
        backend.close()
    assert result.proved, result.failure_message
    assert result.tactics[0] == "intros" and len(result.tactics) > 1, result.tactics


@pytest.mark.parametrize("hypotheses,conclusion,numbers", [
    # ZAdd's abstract integers: a module's t and its setoid equality; lia cannot read them
    ("n, m : t", "n - P m == S (n - m)", False),
    ("x, y : O.t", "compare x y = Eq", False),
    ("l, l' : list A", "rev (l ++ l') = rev l' ++ rev l", False),
    ("n : nat", "n + 0 = n", True),
    ("l : list A\nH : length l > 0", "length (tl l) < length l", True),  # counting, no type named
    ("a, b : N.t", "N.max a b = N.max b a", True),
    ("x : t", "x + 1 == 1 + x", True),  # a numeral: it may be a number
])
def test_integer_deciders_only_where_numbers_are_in_sight(hypotheses, conclusion, numbers):
    offered = set(coq_tactics(GoalShape.of(goal(hypotheses, conclusion))))
    assert (DECIDERS <= offered) is numbers and (not DECIDERS & offered) is (not numbers)
