"""The Isabelle bridge on a real Isabelle (after `make isabelle`). Skipped where `isabelle` is not on PATH."""
import os
import shutil

import pytest

from prover.backends.base import Failed, Finished, Next, State, Theorem, TimedOut
from prover.backends.isabelle.backend import IsabelleBackend, IsabelleConfig
from prover.backends.isabelle.text import build_theory, read_audit
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


def test_steps_states_and_full_check(backend):
    root = backend.open(THEOREM)
    assert root.goals.startswith("proof (prove)") and "x + x = 4" in root.goals
    failed = backend.apply(root, "apply (rule conjI)", 20)
    assert isinstance(failed, Failed) and not failed.rejected
    assert backend.apply(root, "sorry", 20).rejected
    nxt = backend.apply(root, "apply (subst h0)", 20)
    assert isinstance(nxt, Next) and "2 + 2 = 4" in nxt.state.goals
    fin = backend.apply(nxt.state, "apply simp", 20)
    assert isinstance(fin, Finished) and fin.state.key[-1] == "done"
    check = backend.check(THEOREM, ["apply (subst h0)", "apply simp"])
    assert check.ok, check.message
    assert backend.apply(root, "using h0 by simp", 20) == Finished(State(("using h0 by simp",), ""))
    unfinished = backend.check(THEOREM, ["apply (subst h0)"])
    assert not unfinished.ok


def test_a_step_that_runs_too_long_is_interrupted(backend):
    root = backend.open(THEOREM)
    out = backend.apply(root, "apply (sleep 100)", 3)  # Pure's `sleep` method: succeeds after a delay
    assert isinstance(out, TimedOut)
    assert isinstance(backend.apply(root, "using h0 by simp", 30), Finished)


def test_sledgehammer_step_yields_a_concrete_method(backend):
    root = backend.open(THEOREM)
    out = backend.apply(root, "sledgehammer", 60)
    assert isinstance(out, Finished), out
    assert "sledgehammer" not in " ".join(out.state.key)
    assert backend.check(THEOREM, ["sledgehammer"]).ok


def test_audit_sees_a_sorry(backend):
    backend.open(THEOREM)
    theory = build_theory("Live_sorry_audit", THEOREM.header, STATEMENT, ["sorry"], backend.config.bridge_import,
                          f"prover_audit {backend.tag} live_add")
    checked = backend._run(theory, 120)
    audit = read_audit(list(checked.messages), backend.tag)
    # either the session refuses sorry outright (no quick_and_dirty) or the audit sees the oracle
    assert (audit is None and checked.errors) or (audit is not None and audit.skip_proof)


def test_minif2f_reference_proof_checks(backend):
    (problem,) = load("isabelle", names=["aime_1983_p2"])
    root = backend.open(problem.theorem)
    out = backend.apply(root, problem.record["reference_proof"], 60)
    assert isinstance(out, Finished), out
    assert backend.check(problem.theorem, [problem.record["reference_proof"]]).ok
