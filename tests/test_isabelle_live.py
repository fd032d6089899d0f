"""The Isabelle bridge on a real Isabelle (after `make isabelle`): the ML of isabelle/Prover_Bridge.thy,
vetting inside Isabelle, reading reports by position and nonce, the audit, step cost in depth.
Skipped where `isabelle` is not on PATH."""
import os
import shutil
import time

import pytest

from prover.backends.base import Failed, Finished, Next, Theorem, TimedOut
from prover.backends.isabelle import bridge
from prover.backends.isabelle.backend import IsabelleBackend, IsabelleConfig, IsabelleServer
from prover.backends.isabelle.text import check_theory
from prover.backends.process import WorkDir
from prover.runs.minif2f import load

ISABELLE = shutil.which(os.environ.get("PROVER_ISABELLE") or "isabelle")
pytestmark = [pytest.mark.isabelle,
              pytest.mark.skipif(ISABELLE is None, reason="Isabelle is not installed (no `isabelle` on PATH; "
                                                           "run `make isabelle`)")]

STATEMENT = 'theorem live_add:\n  fixes x :: nat\n  assumes h0: "x = 2"\n  shows "x + x = 4"'
PREAMBLE = 'definition f :: "nat \\<Rightarrow> nat" where "f x = x"'
THEOREM = Theorem("live_add", STATEMENT, f"imports Complex_Main\n{PREAMBLE}\n")


@pytest.fixture(scope="module")
def backend():
    b = IsabelleBackend(IsabelleConfig(isabelle=ISABELLE, grace=10.0))
    yield b
    b.close()


def fresh_check(theory, timeout=300.0):
    """A theory checked as it is, in a server of its own."""
    work = WorkDir()
    server = IsabelleServer(IsabelleConfig(isabelle=ISABELLE, grace=10.0), work.path)
    try:
        server.start()
        return server.check(theory, timeout)
    finally:
        server.stop()
        work.cleanup()


def test_steps_states_and_full_check(backend):
    root = backend.open(THEOREM)
    assert root.goals.startswith("proof (prove)") and "x + x = 4" in root.goals
    failed = backend.apply(root, "apply (rule conjI)", 20)
    assert isinstance(failed, Failed) and not failed.rejected
    assert backend.apply(root, "sorry", 20).rejected
    nxt = backend.apply(root, "apply (subst h0)", 20)
    assert isinstance(nxt, Next) and "2 + 2 = 4" in nxt.state.goals
    fin = backend.apply(nxt.state, "apply simp", 20)
    assert isinstance(fin, Finished) and fin.state.key.steps[-1] == "done"
    check = backend.check(THEOREM, ["apply (subst h0)", "apply simp"])
    assert check.ok, check.message
    assert isinstance(backend.apply(root, "using h0 by simp", 20), Finished)
    assert not backend.check(THEOREM, ["apply (subst h0)"]).ok
    # a structured proof, closed by the bridge's own `qed`
    opened = backend.apply(root, "proof -", 20)
    have = backend.apply(opened.state, 'have "x = 2" using h0 by simp', 20)
    shown = backend.apply(have.state, "then show ?thesis by simp", 20)
    assert isinstance(shown, Finished) and shown.state.key.steps[-1] == "qed"


@pytest.mark.parametrize("step", [
    "apply (Pure.tactic \\<open>all_tac\\<close>)", 'apply ("tactic" \\<open>all_tac\\<close>)',
    "apply (Pure.raw_tactic \\<open>fn _ => Seq.empty\\<close>)", 'using [["quick_and_dirty"]] by simp',
    "using foo[quick_and_dirty] by simp", "by simp\nSML_import \\<open>val x = 1\\<close>",
    "by simp\nML_val \\<open>writeln \"ran\"\\<close>", "apply (use h0 in \\<open>simp\\<close>)",
    'by simp method m = simp', "apply (simp (* a comment *))",
])
def test_isabelle_vets_steps_the_python_filter_never_lets_through(backend, step):
    # Straight to the bridge, past the Python pre-filter: Isabelle's own vetting refuses them.
    root = backend.open(THEOREM)
    (out,) = backend._run_steps(root.key, [step], 20)
    assert isinstance(out, Failed) and out.rejected, out
    assert out.message.startswith("refused by Isabelle's step vetting")


def test_isabelle_vetting_accepts_ordinary_steps(backend):
    root = backend.open(THEOREM)
    outs = backend._run_steps(root.key, ["by simp", "apply (induct x)", "using assms by (auto simp: field_simps)",
                                         "using h0[symmetric] by (smt (verit) h0)", "using h0 by (simp add: f_def)"], 30)
    assert not any(isinstance(o, Failed) and o.rejected for o in outs), outs


def test_a_forged_audit_is_ignored(backend):
    # The proof is unfinished; a command in it prints an audit under the audit's own nonce. It is a
    # message at its own line: the client reads the audit command's line only, and finds none there.
    nonce = bridge.new_nonce()
    forged = bridge.audit_report(nonce, "live_add", True, False, []).replace('"', '\\"')
    theory = check_theory("Live_forged_audit", THEOREM.header, STATEMENT,
                          ["apply (subst h0)", f'ML_prf \\<open>writeln "{forged}"\\<close>'],
                          backend.config.bridge_import, bridge.audit_command(nonce, "live_add"))
    checked = fresh_check(theory)
    assert any(bridge.find_reports([m.text], nonce) for m in checked.messages)  # it was printed ...
    with pytest.raises(bridge.BridgeOutputError):  # ... and is not read
        bridge.read_report(checked.own_texts(), nonce, "audit")


def test_the_audit_of_a_by_eval_proof_names_its_oracle(backend):
    # A proposition long enough to be printed over several lines: the audit lists oracle names only.
    terms = [(123456789 + 1000 * i) * (987654321 - 77 * i) for i in range(6)]
    prop = " + ".join(f"({123456789 + 1000 * i}::nat) * {987654321 - 77 * i}" for i in range(6))
    theorem = Theorem("live_eval", f'theorem live_eval: "{prop} = {sum(terms)}"', "imports Complex_Main\n")
    backend.open(theorem)
    check = backend.check(theorem, ["by eval"])
    assert check.ok, check.message
    assert check.axioms and all(o.split(".")[-1] == "holds_by_evaluation" for o in check.axioms)


def test_audit_sees_a_sorry(backend):
    nonce = bridge.new_nonce()
    theory = check_theory("Live_sorry_audit", THEOREM.header, STATEMENT, ["sorry"], backend.config.bridge_import,
                          bridge.audit_command(nonce, "live_add"))
    checked = fresh_check(theory)
    # either the session refuses sorry outright (no quick_and_dirty) or the audit sees the oracle
    if checked.errors:
        return
    assert bridge.read_report(checked.own_texts(), nonce, "audit").skip_proof


def test_a_step_costs_the_same_at_depth_1_and_20(backend):
    theorem = Theorem("live_depth", 'theorem live_depth: "(1::nat) + 1 = 2"', "imports Complex_Main\n")
    root = backend.open(theorem)
    state = backend.apply(root, "proof -", 30).state
    step = 'have "(3::nat) * 7 = 21" by simp'

    def cost(at) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.monotonic()
            out = backend.apply(at, step, 30)
            best = min(best, time.monotonic() - start)
            assert isinstance(out, Next), out
            backend._cache.clear()
        return best

    shallow = cost(state)
    for i in range(19):
        state = backend.apply(state, f'have "({i}::nat) + 0 = {i}" by simp', 30).state
    deep = cost(state)
    assert len(state.key.steps) == 20
    # each step is one transition on a stored state: no replay of the 20 steps before it
    assert deep < 3 * shallow + 1.0, (shallow, deep)


def test_a_step_that_runs_too_long_is_interrupted():
    b = IsabelleBackend(IsabelleConfig(isabelle=ISABELLE, grace=10.0))
    loop = Theorem("live_loop", 'theorem live_loop:\n  fixes g :: "nat \\<Rightarrow> nat"\n'
                                '  assumes h: "\\<And>x. g x = g (g x)"\n  shows "g 0 = 0"', "imports Complex_Main\n")
    try:
        root = b.open(loop)
        out = b.apply(root, "using h by simp", 3)  # the simplifier loops on h
        assert isinstance(out, TimedOut)
        assert b.restarts == 0  # stopped inside Isabelle, the server kept
        assert isinstance(b.apply(root, "apply (rule ccontr)", 30), Next)
    finally:
        b.close()


def test_sledgehammer_step_yields_a_concrete_method(backend):
    root = backend.open(THEOREM)
    out = backend.apply(root, "sledgehammer", 60)
    assert isinstance(out, Finished), out
    assert "sledgehammer" not in " ".join(out.state.key.steps)
    assert backend.check(THEOREM, ["sledgehammer"]).ok


def test_minif2f_reference_proof_checks(backend):
    (problem,) = load("isabelle", names=["aime_1983_p2"])
    root = backend.open(problem.theorem)
    out = backend.apply(root, problem.record["reference_proof"], 60)
    assert isinstance(out, Finished), out
    assert backend.check(problem.theorem, [problem.record["reference_proof"]]).ok
