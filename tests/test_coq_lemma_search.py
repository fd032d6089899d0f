"""The lemma-search step: Coq's Search for lemmas matching the goal, each one applied (real coqtop)."""
import re

import pytest

from prover.backends.base import Failed, Finished, Theorem
from prover.backends.coq.backend import CoqBackend, CoqConfig
from prover.backends.coq.hammer import HammerConfig
from prover.backends.coq.lemma_search import (LEMMA_SEARCH, implication, queries, search_pattern,
                                              search_results)
from prover.models.base import Candidate
from prover.search.best_first import SearchConfig, search

from .test_search import Listed, assert_compiles

# BinInt alone: Z's lemmas are in scope, Zorder's and the prover's arithmetic tactics are not.
HEADER = "Require Import BinInt. Local Open Scope Z_scope."
CLOSE = r"first \[ eassumption \| easy (\| \w+ )*\| eauto \]"  # how side conditions are closed


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
    # an implication: SearchPattern matches a lemma's last premises with its conclusion
    ("1 goal\nn, m : Z\n============================\nn < m -> Z.succ n < Z.succ m", "_ < _ -> Z.succ _ < Z.succ _"),
    ("1 goal\nn, m : nat\n============================\n~ n < m -> n >= m", "~ _ < _ -> _ >= _"),
    # binders of its own; a leading forall's names are holes as well
    ("1 goal\n============================\nforall (n : nat) (l : list nat), length (n :: l) = S (length l)",
     "length (_ :: _) = S (length _)"),
    ("1 goal\nf : Z -> Z\n============================\nforall x y : Z, Zeq_bool x y = true -> f x = f y",
     "Zeq_bool _ _ = true -> _ _ = _ _"),
    ("1 goal\na, b : R\nc : V\n============================\nis_RInt (fun _ : R => c) a b (scal (b - a) c)",
     "is_RInt (fun _ : R => _) _ _ (scal (_ - _) _)"),
    # the first goal only
    ("2 goals\nn : nat\n============================\nn + 0 = n\n\ngoal 2 is:\n S n = n", "_ + 0 = _"),
])
def test_the_pattern_is_the_conclusion_with_its_variables_as_holes(goals, pattern):
    assert search_pattern(goals) == pattern


@pytest.mark.parametrize("goals", [
    "1 goal\nP, Q : Prop\n============================\nP -> Q",  # every lemma
    "1 goal\nP : nat -> Prop\n============================\nforall n : nat, P n",  # only a binder
    "1 goal\nf : nat -> nat\n============================\nf = (fun x => x)",  # likewise
    "1 goal\nP : Prop\nx : P\n============================\nP",  # nothing specific left
    "1 goal\nn, m : Z\n============================\nn < m",  # every lemma about the order
    "No more goals.",
])
def test_no_pattern_for_goals_that_would_match_anything_or_bind_names(goals):
    assert search_pattern(goals) is None


def test_an_implication_is_also_searched_as_the_iff_that_gives_it():
    assert implication("~ _ < _ -> _ <= _") == ("", "~ _ < _", "_ <= _")
    assert implication("0 < _ -> (_ -> _) -> _ * _ < _") == ("0 < _ -> ", "(_ -> _)", "_ * _ < _")
    assert implication("_ + _ = _ <-> _ = _") is None and implication("f (_ -> _) = _") is None
    assert queries("0 < _ -> _ < _ -> _ * _ < _ * _") == [
        "SearchPattern (0 < _ -> _ < _ -> _ * _ < _ * _).", "Search (0 < _ -> _ < _ -> _ * _ < _ * _).",
        "SearchPattern (0 < _ -> (_ < _ <-> _ * _ < _ * _)).", "SearchPattern (0 < _ -> (_ * _ < _ * _ <-> _ < _)).",
        # the numerals as holes too
        "SearchPattern (_ < _ -> _ < _ -> _ * _ < _ * _).", "Search (_ < _ -> _ < _ -> _ * _ < _ * _).",
        "SearchPattern (_ < _ -> (_ < _ <-> _ * _ < _ * _)).", "SearchPattern (_ < _ -> (_ * _ < _ * _ <-> _ < _)).",
    ]


def test_search_output_is_read_as_lemma_names():
    out = ("Z.add_move_r: forall n m p : Z, n + m = p <-> n = p - m\n"
           "Z.mul_lt_pred:\n  forall p q n m : Z, p < q -> n < m\n\n")
    assert search_results(out) == [("Z.add_move_r", True), ("Z.mul_lt_pred", False)]
    assert search_results("Toplevel input, characters 0-20:\nError: The reference foo was not found.\n") == []


def test_a_library_lemma_no_tactic_names_is_found_and_the_proof_compiles(coq, tmp_path):
    theorem = Theorem("move", "Theorem move : forall n m p : Z, n + p = m <-> n = m - p.", HEADER)
    result = search(theorem, coq, Listed([Candidate("intros", -0.1), Candidate(LEMMA_SEARCH, -1.0)]),
                    SearchConfig(max_expansions=5, tactic_timeout=5, timeout=120))
    # The proof holds the tactic that closed the goal (at the root or after intros), naming the lemma
    # Search found: Z.add_move_r, or Zorder's Zeq_plus_swap where the prover's prelude loads Zorder.
    assert result.proved and LEMMA_SEARCH not in result.proof
    assert re.fullmatch(r"solve \[ (intros; )?eapply (Z\.add_move_r|Zeq_plus_swap); " + CLOSE + r" \]",
                        result.tactics[-1])
    assert_compiles(theorem, result.proof, tmp_path)


def test_a_lemma_with_side_conditions_is_applied_and_they_are_closed(coq):
    theorem = Theorem("pw", "Theorem pw : forall n : Z, 0 <= n -> n < 3 ^ n.", HEADER)
    state = coq.open(theorem)
    state = coq.apply(state, "intros", 5).state
    outcome = coq.apply(state, LEMMA_SEARCH, 10)
    # Z.pow_gt_lin_r : 1 < a -> 0 <= b -> b < a ^ b: 1 < 3 by computation, 0 <= n the hypothesis.
    assert isinstance(outcome, Finished) and "Z.pow_gt_lin_r" in outcome.tactic


def test_the_step_refuses_goals_without_a_pattern_and_fails_when_no_lemma_closes(coq):
    refused = coq.apply(coq.open(Theorem("same", "Theorem same : forall n : Z, n = n.", HEADER)), LEMMA_SEARCH, 10)
    assert isinstance(refused, Failed) and refused.rejected  # _ = _: nothing to search for
    state = coq.open(Theorem("nope", "Theorem nope : forall n : Z, n + 1 = n.", HEADER))
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
    assert isinstance(outcome, Finished) and re.fullmatch(r"solve \[ apply -> g_mono; " + CLOSE + r" \]", outcome.tactic)


def test_a_greater_than_goal_is_searched_as_less_than_and_the_proof_compiles(coq, tmp_path):
    # The header states its lemma with <; Search finds nothing for the goal as printed, with >.
    header = HEADER + ("\nDefinition g (n : Z) := n + 1.\n"
                       "Lemma g_lt : forall a b, a < b -> g a < g b. "
                       "Proof. unfold g; intros; apply Z.add_lt_mono_r; assumption. Qed.")
    theorem = Theorem("gt", "Theorem gt : forall a b : Z, b > a -> g b > g a.", header)
    state = coq.apply(coq.open(theorem), "intros a b", 5).state
    assert search_results(coq.probe(state, "SearchPattern (_ > _ -> g _ > g _).", 3).output) == []
    outcome = coq.apply(state, LEMMA_SEARCH, 10)
    assert isinstance(outcome, Finished) and outcome.tactic.startswith("rewrite ?Z.gt_lt_iff")
    assert "g_lt" in outcome.tactic
    result = search(theorem, coq, Listed([Candidate("intros a b", -0.1), Candidate(LEMMA_SEARCH, -1.0)]),
                    SearchConfig(max_expansions=5, tactic_timeout=5, timeout=120))
    assert result.proved and "Z.gt_lt_iff" in result.proof
    assert_compiles(theorem, result.proof, tmp_path)


def test_an_implication_is_closed_by_the_iff_lemma_that_states_it(coq):
    # ~ n < m -> n >= m is nat's Nat.nlt_ge (~ n < m <-> m <= n), once >= reads as <=.
    theorem = Theorem("nl", "Theorem nl : forall n m : nat, ~ n < m -> n >= m.", "Require Import Arith.")
    state = coq.apply(coq.open(theorem), "intros n m", 5).state
    outcome = coq.apply(state, LEMMA_SEARCH, 10)
    assert isinstance(outcome, Finished) and "Nat.nlt_ge" in outcome.tactic


def test_side_conditions_use_lia_where_it_is_loaded_and_the_step_goes_on_without_it_elsewhere(coq):
    # Z.pow_lt_mono_r : 1 < a -> 0 <= c -> b < c -> a ^ b < a ^ c; 0 <= c and b < c need lia.
    theorem = Theorem("pl", "Theorem pl : forall a b c : Z, 1 < a -> 0 <= b < c -> a ^ b < a ^ c.", HEADER)
    state = coq.apply(coq.open(theorem), "intros", 5).state
    outcome = coq.apply(state, LEMMA_SEARCH, 10)
    assert isinstance(outcome, Finished) and "Z.pow_lt_mono_r" in outcome.tactic and "| lia |" in outcome.tactic
    # Without the prover's prelude there is no lia nor lra: Coq says so on the first try, and the tries
    # go on without them.
    bare = CoqBackend(CoqConfig(prelude="", statement_libraries="", hammer=HammerConfig(enabled=False)))
    try:
        theorem = Theorem("sl", "Theorem sl : forall n m : Z, n < m -> Z.succ n < Z.succ m.", HEADER)
        state = bare.apply(bare.open(theorem), "intros", 5).state
        assert "not found" in bare.apply(state, "lia", 5).message
        outcome = bare.apply(state, LEMMA_SEARCH, 10)
        assert isinstance(outcome, Finished) and outcome.tactic.endswith("first [ eassumption | easy | eauto ] ]")
    finally:
        bare.close()


def test_an_existential_is_searched_with_its_witness_an_evar_and_the_proof_compiles(coq, tmp_path):
    # No lemma is about reaches; after eexists the goal is ?k + ?k = 2 * m, which twice states.
    header = ("Require Import Arith Lia.\nDefinition reaches (n : nat) := exists k, k + k = n.\n"
              "Lemma twice : forall k, k + k = 2 * k. Proof. intros; lia. Qed.")
    theorem = Theorem("rc", "Theorem rc : forall m, reaches (2 * m).", header)
    root = coq.open(theorem)
    assert search_results(coq.probe(root, "Search (reaches (2 * _)).", 3).output) == []
    outcome = coq.apply(root, LEMMA_SEARCH, 15)
    assert isinstance(outcome, Finished) and outcome.tactic.startswith("intros; repeat match goal") and "; eexists; solve [" in outcome.tactic
    result = search(theorem, coq, Listed([Candidate(LEMMA_SEARCH, -1.0)]),
                    SearchConfig(max_expansions=3, tactic_timeout=5, timeout=120))
    assert result.proved and "eexists" in result.proof
    assert_compiles(theorem, result.proof, tmp_path)
    # eexists on a goal that is no existential adds no witness: nothing more is searched.
    state = coq.open(Theorem("nope", "Theorem nope : forall n : nat, n + 1 = n.", header))
    failed = coq.apply(state, LEMMA_SEARCH, 10)
    assert isinstance(failed, Failed) and "closes the goal" in failed.message


def test_existential_hypotheses_are_taken_apart_for_the_witness_and_the_proof_compiles(coq, tmp_path):
    # reaches a and reaches b hold their witnesses; dbl_add needs them (dbl ?k = a, dbl ?l = b), which
    # only the hypotheses taken apart give, with the evars instantiated from them.
    header = ("Require Import Arith.\nDefinition dbl (k : nat) := k + k.\n"
              "Definition reaches (n : nat) := exists k, dbl k = n.\n"
              "Lemma dbl_add : forall a b k l, dbl k = a -> dbl l = b -> dbl (k + l) = a + b.\n"
              "Proof. unfold dbl; intros; subst; ring. Qed.")
    theorem = Theorem("ra", "Theorem ra : forall a b, reaches a -> reaches b -> reaches (a + b).", header)
    root = coq.open(theorem)
    assert isinstance(coq.apply(root, "solve [ intros; eexists; eapply dbl_add; first [ eassumption | eauto ] ]", 5),
                      Failed)
    outcome = coq.apply(root, LEMMA_SEARCH, 15)
    assert isinstance(outcome, Finished) and "destruct H" in outcome.tactic and "dbl_add" in outcome.tactic
    result = search(theorem, coq, Listed([Candidate(LEMMA_SEARCH, -1.0)]),
                    SearchConfig(max_expansions=3, tactic_timeout=5, timeout=120))
    assert result.proved and "dbl_add" in result.proof
    assert_compiles(theorem, result.proof, tmp_path)


def test_search_answers_are_kept_for_the_theorem_and_asked_again_for_another(coq):
    # Both theorems search _ < g _; each header names its lemma differently.
    def header(lemma):
        return (f"Require Import Arith.\nDefinition g (n : nat) := S n.\n"
                f"Lemma {lemma} : forall n, n < g n. Proof. unfold g; auto. Qed.")
    root = coq.open(Theorem("t1", "Theorem t1 : forall n : nat, n < g n.", header("g_up")))
    first = coq.apply(root, LEMMA_SEARCH, 10)
    assert isinstance(first, Finished) and "g_up" in first.tactic
    asked = coq.lemma_search.queries
    # After intros the pattern is the same: the answers kept serve it, no Search runs.
    again = coq.apply(coq.apply(root, "intros n", 5).state, LEMMA_SEARCH, 10)
    assert isinstance(again, Finished) and "g_up" in again.tactic and coq.lemma_search.queries == asked
    other = coq.apply(coq.open(Theorem("t2", "Theorem t2 : forall n : nat, n < g n.", header("g_above"))),
                      LEMMA_SEARCH, 10)
    assert isinstance(other, Finished) and "g_above" in other.tactic and coq.lemma_search.queries > asked
