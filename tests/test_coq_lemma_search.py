"""The lemma-search step: Coq's Search for lemmas matching the goal, each one applied (real coqtop)."""
import pytest

from prover.backends.base import Failed, Finished, Theorem
from prover.backends.coq.backend import CoqBackend, CoqConfig
from prover.backends.coq.hammer import HammerConfig
from prover.backends.coq.lemma_search import LEMMA_SEARCH, search_pattern, search_results
from prover.models.base import Candidate
from prover.search.best_first import SearchConfig, search

from .test_search import Listed, assert_compiles

# BinInt alone: Z's lemmas are in scope, Zorder's and the prover's arithmetic tactics are not.
HEADER = "Require Import BinInt. Local Open Scope Z_scope."


@pytest.fixture(scope="module")
def coq():
    backend = CoqBackend(CoqConfig(hammer=HammerConfig(enabled=False)))
    yield backend
    backend.close()


@pytest.mark.parametrize("goals, pattern", [
    ("1 goal\nn, m, p : Z\n============================\nn + p = m <-> n = m - p", "_ + _ = _ <-> _ = _ - _"),
    ("1 goal\nn, m : Z\nH : m > n\n============================\nZ.succ m > Z.succ n", "Z.succ _ > Z.succ _"),
    ("1 goal\nx : R\nfexp : Z -> Z\n============================\nround fexp (- x) = (- round fexp x)%R",
     "round _ (- _) = (- round _ _)%R"),
    ("1 goal\nn : nat\n============================\nS ?m = n + 1", "S _ = _ + 1"),
    # the first goal only
    ("2 goals\nn : nat\n============================\nn + 0 = n\n\ngoal 2 is:\n S n = n", "_ + 0 = _"),
])
def test_the_pattern_is_the_conclusion_with_its_variables_as_holes(goals, pattern):
    assert search_pattern(goals) == pattern


@pytest.mark.parametrize("goals", [
    "1 goal\nn, m : Z\n============================\nn < m -> Z.succ n < Z.succ m",  # introduce first
    "1 goal\n============================\nforall n : nat, n = n",
    "1 goal\nP : Prop\nx : P\n============================\nP",  # nothing specific left
    "1 goal\nn, m : Z\n============================\nn < m",  # every lemma about the order
    "1 goal\nf : nat -> nat\n============================\nf = (fun x => x)",  # a binder of its own
    "No more goals.",
])
def test_no_pattern_for_goals_that_would_match_anything_or_bind_names(goals):
    assert search_pattern(goals) is None


def test_search_output_is_read_as_lemma_names():
    out = ("Z.add_move_r: forall n m p : Z, n + m = p <-> n = p - m\n"
           "Z.mul_lt_pred:\n  forall p q n m : Z, p < q -> n < m\n\n")
    assert search_results(out) == [("Z.add_move_r", True), ("Z.mul_lt_pred", False)]
    assert search_results("Toplevel input, characters 0-20:\nError: The reference foo was not found.\n") == []


def test_a_library_lemma_no_tactic_names_is_found_and_the_proof_compiles(coq, tmp_path):
    theorem = Theorem("move", "Theorem move : forall n m p : Z, n + p = m <-> n = m - p.", HEADER)
    result = search(theorem, coq, Listed([Candidate("intros", -0.1), Candidate(LEMMA_SEARCH, -1.0)]),
                    SearchConfig(max_expansions=5, tactic_timeout=5, timeout=120))
    assert result.proved and result.tactics[0] == "intros"
    # The proof holds the tactic that closed the goal, naming the lemma Search found.
    assert "Z.add_move_r" in result.tactics[1] and LEMMA_SEARCH not in result.proof
    assert_compiles(theorem, result.proof, tmp_path)


def test_a_lemma_with_side_conditions_is_applied_and_they_are_closed(coq):
    theorem = Theorem("pw", "Theorem pw : forall n : Z, 0 <= n -> n < 3 ^ n.", HEADER)
    state = coq.open(theorem)
    state = coq.apply(state, "intros", 5).state
    outcome = coq.apply(state, LEMMA_SEARCH, 10)
    # Z.pow_gt_lin_r : 1 < a -> 0 <= b -> b < a ^ b: 1 < 3 by computation, 0 <= n the hypothesis.
    assert isinstance(outcome, Finished) and "Z.pow_gt_lin_r" in outcome.tactic


def test_the_step_refuses_goals_without_a_pattern_and_fails_when_no_lemma_closes(coq):
    theorem = Theorem("nope", "Theorem nope : forall n : Z, n + 1 = n.", HEADER)
    state = coq.open(theorem)
    refused = coq.apply(state, LEMMA_SEARCH, 10)
    assert isinstance(refused, Failed) and refused.rejected  # a product: introduce it first
    state = coq.apply(state, "intros", 5).state
    failed = coq.apply(state, LEMMA_SEARCH, 10)
    assert isinstance(failed, Failed) and not failed.rejected and "closes the goal" in failed.message


def test_an_iff_lemma_is_also_applied_in_each_direction(coq):
    # eapply g_mono on g a < g b unifies the iff's left side (a' < b' with a' := g a) and leaves
    # g (g a) < g (g b); only apply -> closes it.
    header = ("Definition g (n : nat) := n + 1.\n"
              "Lemma g_mono : forall a b, a < b <-> g a < g b. Proof. unfold g; split; lia. Qed.")
    theorem = Theorem("gm", "Theorem gm : forall a b, a < b -> g a < g b.", header)
    state = coq.apply(coq.open(theorem), "intros", 5).state
    assert isinstance(coq.apply(state, "solve [ eapply g_mono; first [ easy | eauto ] ]", 5), Failed)
    outcome = coq.apply(state, LEMMA_SEARCH, 10)
    assert isinstance(outcome, Finished) and outcome.tactic == "solve [ apply -> g_mono; first [ easy | eauto ] ]"
