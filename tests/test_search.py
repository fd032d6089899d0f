"""Best-first search against real Coq."""
import json
import os
import shutil
import signal
import subprocess

import networkx as nx
import pytest

from prover.backends.base import Theorem
from prover.backends.coq.backend import CoqBackend, CoqConfig
from prover.models.base import Candidate, Generator, rank_candidates
from prover.models.coq_portfolio import CoqPortfolio
from prover.models.portfolio import PortfolioGenerator
from prover.search.best_first import SearchConfig, search, step_cost
from prover.search.tree import EdgeKind, SearchTree, Status
from prover.backends.base import State

QUICK = SearchConfig(max_expansions=20, tactic_timeout=5, timeout=60)


@pytest.fixture(scope="module")
def coq():
    backend = CoqBackend()
    yield backend
    backend.close()


def assert_compiles(theorem: Theorem, proof: str, tmp_path):
    """The printed proof, pasted after the statement, passes coqc."""
    (tmp_path / "Pasted.v").write_text(f"{CoqConfig().statement_prelude}\n{theorem.header}\n"
                                       f"{theorem.statement}\n{proof}\n")
    run = subprocess.run(["coqc", "-q", "Pasted.v"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("theorem,tactics,must_use", [
    (Theorem("lin", "Theorem lin : forall x y : Z, x < y -> 2 * x + 1 < 2 * y.",
             "Require Import ZArith. Open Scope Z_scope."), None, None),
    (Theorem("ring_id", "Theorem ring_id : forall a b : R, (a - b) * (a + b) = a * a - b * b.",
             "Require Import Reals. Open Scope R_scope."), None, None),
    (Theorem("conj", "Theorem conj : forall (P : nat -> Prop) n, P n -> P n /\\ n + 0 = n."),
     ["lia", "intros", "split", "assumption"], ["split", "assumption", "lia"]),
    (Theorem("subst_lia", "Theorem subst_lia : forall (f : nat -> nat) a b, a = b -> f a = f b + 0."),
     ["lia", "intros", "subst"], ["intros", "subst", "lia"]),
])
def test_simple_statements_are_proved_and_the_proof_compiles(coq, theorem, tactics, must_use, tmp_path):
    generator = PortfolioGenerator(tactics) if tactics else PortfolioGenerator.for_backend("coq")
    result = search(theorem, coq, generator, QUICK)
    assert result.proved, result.failure_message
    assert result.failure_reason is None
    if must_use:  # no tactic of the list closes the goal alone: the search must chain them
        assert result.tactics == must_use
    assert result.proof.startswith("Proof.") and result.proof.endswith("Qed.")
    assert_compiles(theorem, result.proof, tmp_path)


ESCAPES = ["Admitted.", "admit", "Qed.", "lia. Qed.", "Abort.", "give_up", "exact_no_check I",
           "Axiom cheat : False.", "intros. Admitted.", "Unset Guard Checking.", "fix IH 1",
           "exact IH", "intros; exfalso; admit", "Drop.", "Require Import Classical.", "idtac. Admitted.",
           "apply IH", "auto"]


@pytest.mark.parametrize("theorem,step", [
    # nat mod by a constant: lia decides it with the statement libraries (ZifyNat), not without.
    (Theorem("mod_lin", "Theorem mod_lin : forall n : nat, n mod 7 = 5 -> (5 * n) mod 7 = 4."), "lia"),
    # Absolute values: no single arithmetic tactic closes it before each Rabs is split into its cases.
    (Theorem("abs_cases", "Theorem abs_cases : forall a : R, 1 / 5 * Rabs (9 + 2 * a) < 1 -> -7 < a /\\ a < -2.",
             "Require Import Reals. Open Scope R_scope."), "Rcase_abs"),
    # A hypothesis with denominators: cleared with their nonzero side goals from x <> 0, then nra.
    (Theorem("clear_den", "Theorem clear_den : forall x : R, x <> 0 -> 3 + 1 / x = 7 / x -> x = 2.",
             "Require Import Reals. Open Scope R_scope."), "field_simplify_eq in H"),
    (Theorem("sqrt_eq", "Theorem sqrt_eq : forall x y : R, x + y = 13 -> x * y = 24 -> sqrt (x ^ 2 + y ^ 2) = 11.",
             "Require Import Reals. Open Scope R_scope."), "sqrt_lem_1"),
    # A square root of a number: nra needs sqrt 9 * sqrt 9 = 9 and 0 <= sqrt 9 stated.
    (Theorem("sqrt_facts", "Theorem sqrt_facts : forall x : R, x = 3 * sqrt 9 - 8 -> x = 1.",
             "Require Import Reals. Open Scope R_scope."), "sqrt_sqrt"),
    # Logarithms of products and powers taken apart, then linear arithmetic on ln x and ln y.
    (Theorem("logs", "Theorem logs : forall x y : R, 0 < x -> 0 < y -> ln (x * y ^ 3) = 1 -> "
             "ln (x ^ 2 * y) = 1 -> ln (x * y) = 3 / 5.", "Require Import Reals. Open Scope R_scope."), "ln_mult"),
    # Complex equations (Coquelicot) split into real and imaginary parts.
    (Theorem("cparts", "Theorem cparts : forall x e : C, x + e = 7 -> 2 * x + e = 3 -> e = 11 /\\ x = -4.",
             "Require Import Reals Coquelicot.Coquelicot. Open Scope C_scope."), "f_equal fst"),
    # 39500 is a nat literal lia cannot read (Nat.of_num_uint) until it is named with its value in Z.
    (Theorem("big_nat", "Theorem big_nat : forall n : nat, 123 * n + 17 = 39500 -> n = 321."), "Nat.of_num_uint"),
    # (x + 1) * (y + 1) = 26 with 0 < y < x: y is bounded (by nia), each of its values closed by nia.
    (Theorem("bounded", "Theorem bounded : forall x y : nat, 0 < y -> y < x -> x + y + x * y = 25 -> x = 12."),
     "let rec go"),
    # A square mod 4: the product taken mod 4, then one case per remainder of a.
    (Theorem("rem", "Theorem rem : forall a : Z, a ^ 2 mod 4 = 0 \\/ a ^ 2 mod 4 = 1.",
             "Require Import ZArith. Open Scope Z_scope."), "Z.mod_pos_bound"),
    # f given by an equation, summed over a closed list: rewritten under map, then computed.
    (Theorem("mapdefs", "Theorem mapdefs : forall f : nat -> nat, (forall n, f n = 3 * n + 1) -> "
             "list_sum (map f (seq 0 10)) = 145.", "Require Import List."), "map_ext"),
    # A closed sum in a hypothesis computed (66), then lia.
    (Theorem("folds", "Theorem folds : forall x : nat, (exists k, k * 11 = fold_right plus 0 (seq 0 12) - x) -> "
             "x <= 10 -> x = 0.", "Require Import List."), "change (fold_right"),
    # Coefficients of a polynomial identity: read at points, then nra.
    (Theorem("coeffs", "Theorem coeffs : forall a b : R, (forall x : R, (x + a) * (x + b) = x ^ 2 + 5 * x + 6) -> "
             "a + b = 5.", "Require Import Reals. Open Scope R_scope."), "pose proof (H 0)"),
    # A sum with a closed form: induction, each case by nia.
    (Theorem("odds_square", "Theorem odds_square : forall n : nat, odds n = n * n.",
             "Fixpoint odds (n : nat) : nat := match n with 0 => 0 | S m => odds m + 2 * m + 1 end."),
     "simpl in *; nia"),
    # Divisibility for every n: induction, the quotient as the witness, powers split, then nia.
    (Theorem("div_ind", "Theorem div_ind : forall n : nat, exists k, 6 ^ n + 4 = 5 * k."), "L / m"),
    (Theorem("zdiv", "Theorem zdiv : forall n : nat, (7 | 8 ^ Z.of_nat n - 1)%Z.", "Require Import ZArith."),
     "Z.pow_succ_r"),
    # Powers too large for unary nat (lia takes over 10 s): carried to Z, where they compute.
    (Theorem("pow_mod", "Theorem pow_mod : 2023 ^ 2023 mod 9 = 7."), "Zpow_mod_correct"),
    # 2 ^ (3 ^ 40) has no value to compute, even in Z: mod 10 is taken through the sum first.
    (Theorem("sum_mod", "Theorem sum_mod : (2 ^ (3 ^ 40) + 3 ^ 1000) mod 10 = 3."), "Z.add_mod"),
    (Theorem("list_mod", "Theorem list_mod : fold_right plus 0 (map (fun k => 7 ^ k) (seq 1 12)) mod 1000 = 400.",
             "Require Import List."), "cbn [List.seq"),
    # Exact roots of numbers evaluated (sqrt 100 = 10, Rpower 8 (2/3) = 2 ^ 2) once f is rewritten.
    (Theorem("roots", "Theorem roots : forall f : R -> R, (forall x, f x = sqrt (x ^ 2 + 36) + Rpower x (2 / 3)) -> "
             "f 8 = 14.", "Require Import Reals. Open Scope R_scope."), "Rpower_mult"),
    # A cubic solved: one case per rational root (1, 2, 3), the variable replaced by it (nra alone fails).
    (Theorem("cubic", "Theorem cubic : forall a : R, a ^ 3 + 11 * a = 6 * a ^ 2 + 6 -> 1 < a < 3 -> a = 2.",
             "Require Import Reals. Open Scope R_scope."), "Rmult_integral"),
    # The definition is the later hypothesis: the identity is read from the other one, f (x + 1) = ...
    (Theorem("shifted", "Theorem shifted : forall (a b : R) (f : R -> R), (forall x, f (x + 1) = 2 * x + 5) -> "
             "(forall x, f x = a * x + b) -> a + b = 5.", "Require Import Reals. Open Scope R_scope."),
     "pose proof (H 0)"),
    # Integer parts of numbers computed from their defining bounds (Int_part (100 / 3) = 33, up (7 / 2) = 4).
    (Theorem("parts", "Theorem parts : forall x : R, x = 1 / 3 -> IZR (Int_part (100 * x)) + IZR (up (7 / 2)) = 37.",
             "Require Import Reals. Open Scope R_scope."), "tech_up"),
    # Square roots of non-squares too: 5 < sqrt 27 < 6 by nra from sqrt 27 * sqrt 27 = 27.
    (Theorem("sqrt_parts", "Theorem sqrt_parts : (up (sqrt 27) - Int_part (sqrt 10))%Z = 3%Z.",
             "Require Import Reals. Open Scope R_scope."), "sqrt_sqrt 27"),
    # A closed form of a real sum over nat variables only: induction on the bound, then field.
    (Theorem("sum_closed", "Theorem sum_closed : forall n : nat, (1 <= n)%nat -> "
             "sum_f_R0 (fun k => / (INR (k + 1) * INR (k + 2))) (n - 1) = INR n / (INR n + 1).",
             "Require Import Reals. Open Scope R_scope."), "cbn [sum_f_R0]"),
    # A case of a definition by cases that needs PI < 4 (the stdlib states only PI <= 4).
    (Theorem("pi_case", "Theorem pi_case : forall f : R -> R, (forall x, x < 4 -> f x = 0) -> "
             "(forall x, 4 <= x -> f x = 1) -> f PI = 0.", "Require Import Reals. Open Scope R_scope."),
     "PI_ineq"),
    # A function and its inverse: values of g give values of f (g 5 = 7: f 7 = 5), rewritten in the goal.
    (Theorem("inverse_values", "Theorem inverse_values : forall f g : R -> R, (forall x, f (g x) = x) -> "
             "(forall x, g (f x) = x) -> g 2 = 5 -> g 5 = 7 -> 3 * f (f 7) = f 5 + 4.",
             "Require Import Reals. Open Scope R_scope."), "lazymatch goal with _ : f d = c"),
    # g 7 = 3 because f 3 = 7 by f's definition: 7 replaced by f 3, then the inverse law.
    (Theorem("inverse_def", "Theorem inverse_def : forall f g : R -> R, (forall x, f x = 2 * x + 1) -> "
             "(forall x, g (f x) = x) -> g 7 = 3.", "Require Import Reals. Open Scope R_scope."), "replace c with (f d)"),
])
def test_the_portfolio_proves_competition_arithmetic(coq, theorem, step, tmp_path):
    result = search(theorem, coq, CoqPortfolio(hammer=False), QUICK)
    assert result.proved, result.failure_message
    assert any(step in t for t in result.tactics), result.tactics
    assert_compiles(theorem, result.proof, tmp_path)


def test_false_statement_with_escaping_tactics_is_never_proved(coq, tmp_path):
    theorem = Theorem("bad", "Theorem bad : forall n : nat, n = S n.")
    result = search(theorem, coq, PortfolioGenerator(ESCAPES), SearchConfig(max_expansions=30, tactic_timeout=2))
    assert not result.proved and result.proof == ""
    # coqtop accepted the unguarded fixpoint proof; only the full check stopped it.
    assert result.failure_reason == "rejected"
    kinds = {e.kind for e in result.tree.edges}
    assert EdgeKind.REJECTED in kinds and EdgeKind.UNVERIFIED in kinds


class KillingGenerator(Generator):
    """Kills the prover process on its second call, as an outside kill -9 would."""
    name = "killer"

    def __init__(self, backend, tactics=("intros", "split", "reflexivity")):
        self.backend, self.calls, self.tactics = backend, 0, tactics

    def generate(self, goals, n):
        self.calls += 1
        if self.calls == 2:
            os.kill(self.backend.pid, signal.SIGKILL)
        return [Candidate(t, -0.1 * (i + 1)) for i, t in enumerate(self.tactics)]


def test_killing_coqtop_mid_search_restarts_it_and_the_search_goes_on():
    backend = CoqBackend()
    try:
        theorem = Theorem("k", "Theorem k : forall n : nat, n = n /\\ n = n.")
        result = search(theorem, backend, KillingGenerator(backend), QUICK)
        assert result.proved, result.failure_message
        assert backend.restarts >= 1
    finally:
        backend.close()


def test_search_ends_with_crash_only_when_restarts_keep_failing(tmp_path):
    coqtop = tmp_path / "coqtop"
    coqtop.symlink_to(shutil.which("coqtop"))
    backend = CoqBackend(CoqConfig(coqtop=str(coqtop), max_restarts=2))
    try:
        class Breaker(KillingGenerator):
            def generate(self, goals, n):
                if self.calls == 1:
                    coqtop.unlink()  # no coqtop to restart with from now on
                return super().generate(goals, n)

        theorem = Theorem("k", "Theorem k : forall n : nat, n = n /\\ n = n.")
        result = search(theorem, backend, Breaker(backend), QUICK)
        assert not result.proved and result.failure_reason == "crash"
        assert "could not be restarted" in result.failure_message and backend.restarts == 2
    finally:
        backend.close()


def test_looping_tactic_is_cut_and_the_search_goes_on(coq):
    theorem = Theorem("l", "Theorem l : forall n : nat, n + 0 = n.")
    gen = PortfolioGenerator(["let rec loop x := loop x in loop 0", "intros", "lia"])
    result = search(theorem, coq, gen, SearchConfig(tactic_timeout=1))
    assert result.proved
    timeouts = [e for e in result.tree.edges if e.kind == EdgeKind.TIMEOUT]
    # The loop never ends by itself: a cut shows as any finite time (generous for a loaded machine).
    assert timeouts and all(1 <= e.elapsed < 30 for e in timeouts)


def test_budgets_and_wall_clock(coq):
    theorem = Theorem("hard", "Theorem hard : forall n : nat, n * n = n + 1 -> False.")
    gen = PortfolioGenerator(["intros", "idtac", "simpl", "lia", "let rec loop x := loop x in loop 0"])
    budget = search(theorem, coq, gen, SearchConfig(max_expansions=1, tactic_timeout=1))
    assert budget.failure_reason in ("budget", "exhausted") and budget.expansions == 1
    timed = search(theorem, coq, PortfolioGenerator(["let rec loop x := loop x in loop 0", "intros",
                                                     "let rec loop2 x := loop2 (S x) in loop2 0"]),
                   SearchConfig(timeout=1.5, tactic_timeout=5))
    # Two loops of tactic_timeout 5 would take 10 s: the 1.5 s wall clock must cut the first one short.
    assert timed.failure_reason == "timeout" and 1.5 <= timed.elapsed < 10


def test_init_error_is_reported(coq):
    result = search(Theorem("x", "Theorem x : 1 + true = 2."), coq, PortfolioGenerator(["lia"]))
    assert result.failure_reason == "init_error" and "type-check" in result.failure_message


def test_duplicate_states_are_merged_and_graph_exports(coq):
    theorem = Theorem("d", "Theorem d : forall n : nat, n + 0 = n /\\ True.")
    gen = PortfolioGenerator(["idtac", "intros", "intro n", "split", "exact I", "lia"])
    result = search(theorem, coq, gen, QUICK)
    assert result.proved
    kinds = [e.kind for e in result.tree.edges]
    assert EdgeKind.DUPLICATE in kinds  # idtac, and "intro n" after "intros"
    goals = [n.goals for n in result.tree.nodes]
    assert len(goals) == len(set(goals))
    data = json.loads(result.graph_json())
    g = nx.node_link_graph(data, edges="edges", multigraph=True, directed=True)
    assert g.number_of_edges() == len(result.tree.edges)
    assert any(d["kind"] == "finished" for _, _, d in g.edges(data=True))


def test_priority_rules():
    short = Candidate("a", -1.0, 1)  # mean -1.0, total -1.0
    long = Candidate("b", -2.4, 6)  # mean -0.4, total -2.4
    assert step_cost(long, "llemma") < step_cost(short, "llemma")
    assert step_cost(short, "reprover") < step_cost(long, "reprover")


def test_rank_candidates_dedupes_and_sorts():
    ranked = rank_candidates([Candidate(" lia ", -3.0, 3), Candidate("", 0.0), Candidate("lia", -0.5, 1),
                              Candidate("ring", -2.0, 1)], 5)
    assert [(c.tactic, c.logprob) for c in ranked] == [("lia", -0.5), ("ring", -2.0)]


def test_tree_status_propagation():
    tree = SearchTree(State((), "g0"))
    from prover.search.tree import Edge
    e1 = tree.add_edge(Edge(0, "a", EdgeKind.NEXT))
    n1 = tree.add_node(State(("a",), "g1"), e1, 1.0)
    tree.add_edge(Edge(0, "b", EdgeKind.FAILED))
    tree.mark_expanded(tree.root)
    assert tree.root.status == Status.OPEN  # n1 is still open
    tree.add_edge(Edge(n1.id, "c", EdgeKind.TIMEOUT))
    tree.mark_expanded(n1)
    assert n1.status == Status.FAILED and tree.root.status == Status.FAILED
    tree2 = SearchTree(State((), "g0"))
    e = tree2.add_edge(Edge(0, "a", EdgeKind.NEXT))
    m = tree2.add_node(State(("a",), "g1"), e, 1.0)
    tree2.add_edge(Edge(m.id, "done", EdgeKind.FINISHED))
    assert m.status == Status.PROVED and tree2.root.status == Status.PROVED
    assert [x.tactic for x in tree2.path(m)] == ["a"]


class Listed(Generator):
    """The same candidates for every goal."""
    name = "listed"

    def __init__(self, candidates):
        self.candidates = candidates

    def generate(self, goals, n):
        return list(self.candidates)


class Spy:
    """The real backend, recording each tactic the search applies and the time it gives it."""

    def __init__(self, backend):
        self.backend, self.calls = backend, []

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def apply(self, state, tactic, timeout):
        self.calls.append((tactic, timeout))
        return self.backend.apply(state, tactic, timeout)


def test_an_expensive_candidate_waits_for_its_cost_and_gets_the_time_left(coq):
    theorem = Theorem("e", "Theorem e : forall n : nat, n + 0 = n.")
    spy = Spy(coq)
    gen = Listed([Candidate("lia", -5.0, expensive=True), Candidate("intros", -0.1)])
    result = search(theorem, spy, gen, SearchConfig(max_expansions=5, tactic_timeout=3, timeout=60))
    assert result.proved and result.tactics == ["lia"]
    # Root: intros runs, lia is deferred (cost 5). Child (cost 0.1): intros again (a duplicate), its lia
    # deferred at 5.1. Then the root's lia, the cheapest entry left, runs and proves it.
    assert [t for t, _ in spy.calls] == ["intros", "intros", "lia"]
    assert spy.calls[0][1] == 3 and spy.calls[-1][1] > 3  # the time left, not the tactic limit


def test_deferred_tries_still_run_once_the_expansions_are_spent(coq):
    theorem = Theorem("e2", "Theorem e2 : forall n : nat, n + 0 = n.")
    gen = Listed([Candidate("idtac", -0.1), Candidate("lia", -5.0, expensive=True)])
    result = search(theorem, coq, gen, SearchConfig(max_expansions=1, tactic_timeout=3, timeout=60))
    assert result.proved and result.tactics == ["lia"] and result.expansions == 1
    # An open child is left unexpanded: the deferred try runs, fails, and the budget is the reason.
    failing = Listed([Candidate("intros", -0.1), Candidate("exact I", -5.0, expensive=True)])
    out = search(theorem, coq, failing, SearchConfig(max_expansions=1, tactic_timeout=3, timeout=60))
    assert out.failure_reason == "budget" and [e.tactic for e in out.tree.edges] == ["intros", "exact I"]


def test_a_node_with_a_deferred_try_is_not_failed_before_it_runs():
    from prover.search.tree import Edge
    tree = SearchTree(State((), "g0"))
    tree.root.pending = 1
    tree.add_edge(Edge(0, "a", EdgeKind.FAILED))
    tree.mark_expanded(tree.root)
    assert tree.root.status == Status.OPEN
    tree.root.pending = 0
    tree.settle(tree.root)
    assert tree.root.status == Status.FAILED


def test_a_tactic_that_keeps_timing_out_stops_being_tried_once_its_allowance_is_spent(coq):
    theorem = Theorem("allow", "Theorem allow : forall a b c : nat, a = a.")
    loop = "let rec loop x := loop x in loop 0"
    gen = PortfolioGenerator([loop, "intro", "exact (eq_refl a)"])
    spy = Spy(coq)
    result = search(theorem, spy, gen, SearchConfig(tactic_timeout=1, tactic_allowance=2, timeout=120))
    assert result.proved and result.tactics == ["intro", "intro", "intro", "exact (eq_refl a)"]
    # Four states are expanded; the loop times out (1 s or more each) on the first one or two, and then
    # its 2 s are spent: it is not tried on the others.
    tried = [t for t, _ in spy.calls if t == loop]
    assert 1 <= len(tried) <= 2
    # Without an allowance it is tried on every state.
    spy.calls.clear()
    again = search(theorem, spy, gen, SearchConfig(tactic_timeout=1, timeout=120))
    assert again.proved and len([t for t, _ in spy.calls if t == loop]) == 4
    with pytest.raises(ValueError):
        SearchConfig(tactic_allowance=0)


def test_a_tactic_whose_allowance_is_spent_still_runs_when_nothing_else_is_left(coq):
    theorem = Theorem("held", "Theorem held : forall a b : nat, a + b = b + a.")
    # Loops (a timeout) where a and b are not yet introduced, proves the goal once they are.
    step = "first [ exact (Nat.add_comm a b) | let rec loop x := loop x in loop 0 ]"
    result = search(theorem, coq, PortfolioGenerator([step, "intros"]),
                    SearchConfig(tactic_timeout=1, tactic_allowance=1, timeout=120))
    # The root's timeout spends the step's allowance; after intros it is the only untried step left.
    assert result.proved and result.tactics == ["intros", step]
    assert [e.kind for e in result.tree.edges if e.tactic == step] == [EdgeKind.TIMEOUT, EdgeKind.FINISHED]


def test_induction_is_not_taken_for_the_case_split_that_prints_the_same_goals(coq, tmp_path):
    # destruct t and induction t print the same goals (Coq shows the second goal's conclusion only); the
    # case split comes first and cannot close the Node case, the induction can.
    theorem = Theorem("tree_size", "Theorem tree_size : forall t : tree, 1 <= size t.",
                      "Require Import Lia. Inductive tree := Leaf | Node (l r : tree).\n"
                      "Fixpoint size t := match t with Leaf => 1 | Node l r => size l + size r end.")
    tactics = ["intros", "destruct t", "induction t", "simpl; lia"]
    result = search(theorem, coq, Listed([Candidate(t, -0.1 * k) for k, t in enumerate(tactics)]), QUICK)
    assert result.proved, result.failure_message
    assert "induction t" in result.tactics and "destruct t" not in result.tactics, result.tactics
    assert_compiles(theorem, result.proof, tmp_path)
