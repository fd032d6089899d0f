"""Live Lean tests: they run wherever ``lake`` is on PATH and ``lean_project/`` is built (``make lean``),
and are skipped, with that reason, elsewhere."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prover.backends.base import Finished, InitError, TimedOut
from prover.backends.lean.project import LeanNotInstalled, default_project_dir, require_lean
from prover.backends.lean.repl import LeanReplBackend, LeanReplConfig
from prover.backends.lean.text import STANDARD_AXIOMS
from prover.models.portfolio import PortfolioGenerator
from prover.runs.minif2f import load
from prover.search.best_first import SearchConfig, search

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PROVER_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _why_not_live() -> str | None:
    if shutil.which("lake") is None:
        return "needs Lean: no `lake` on PATH (run `make lean`)"
    try:
        require_lean(default_project_dir())
    except LeanNotInstalled as e:
        return str(e)
    return None


pytestmark = [pytest.mark.lean, pytest.mark.skipif(_why_not_live() is not None, reason=_why_not_live() or "")]
EASY = ["mathd_algebra_176", "mathd_algebra_160", "mathd_algebra_142"]  # ring, linarith, linarith


@pytest.fixture(scope="module")
def backend():
    b = LeanReplBackend(LeanReplConfig(check_timeout=600))
    yield b
    b.close()


def problems(names):
    return {p.name: p.theorem for p in load("lean4", names=names, data_dir=SHARED / "minif2f")}


def test_portfolio_proves_easy_minif2f_statements_with_a_full_check(backend):
    gen = PortfolioGenerator.for_backend("lean-repl")
    for name, thm in problems(EASY).items():
        result = search(thm, backend, gen, SearchConfig(max_expansions=4, candidates=12, timeout=600,
                                                        tactic_timeout=60))
        assert result.proved, (name, result.failure_reason, result.failure_message)
        assert set(result.axioms) <= set(STANDARD_AXIOMS)


def test_full_check_accepts_a_proof_and_refuses_a_wrong_one(backend):
    thm = problems(["mathd_algebra_176"])["mathd_algebra_176"]
    ok = backend.check(thm, ["ring"])
    assert ok.ok and set(ok.axioms) <= set(STANDARD_AXIOMS), ok.message
    bad = backend.check(thm, ["norm_num"])
    assert not bad.ok and bad.message.startswith("Lean error")


def test_timeout_restarts_and_the_search_goes_on(backend):
    thm = problems(["mathd_algebra_176"])["mathd_algebra_176"]
    root = backend.open(thm)
    assert root.goals.endswith("⊢ (x + 1) ^ 2 * x = x ^ 3 + 2 * x ^ 2 + x")
    pid = backend.pid
    assert isinstance(backend.apply(root, "sleep 60000", 2), TimedOut)
    after = backend.apply(root, "ring", 60)
    assert isinstance(after, Finished) and backend.pid != pid


def test_header_heartbeats_reach_tactic_mode(backend):
    """REPL issue #69 reports that the header's `set_option maxHeartbeats` does not reach tactic mode.
    If so, the search runs tactics under Lean's default limit while the full check (a whole file)
    uses the header's: a tactic could then pass one and fail the other. They must agree."""
    from prover.backends.base import Theorem

    thm = Theorem("hb", "theorem hb (x : ℝ) (h : 0 < x) : 0 < x ^ 2 + 3 * x + x / 7 := by",
                  "import Mathlib\n\nset_option maxHeartbeats 20")
    root = backend.open(thm)
    step = backend.apply(root, "positivity", 120)
    check = backend.check(thm, ["positivity"])
    assert isinstance(step, Finished) == check.ok, (step, check.message)


def test_cli_proves_with_the_lean_repl():
    thm = problems(["mathd_algebra_160"])["mathd_algebra_160"]
    r = subprocess.run([sys.executable, "-m", "prover", "prove", "--backend", "lean-repl", "--json",
                        "--statement", thm.statement, "--header", thm.header, "--max-expansions", "4"],
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
                       timeout=1200)
    assert r.returncode == 0, r.stderr[-2000:]


def test_leandojo_opens_the_traced_theorem_or_names_the_upstream_problem():
    pytest.importorskip("lean_dojo", reason="lean-dojo 4.20.0 is not installed")
    from prover.backends.lean.project import snapshot_dir
    from prover.backends.lean.dojo import LeanDojoBackend

    if not (snapshot_dir(default_project_dir()) / ".git").exists():
        pytest.skip("no LeanDojo trace: run `prover lean trace`")
    thm = problems(["mathd_algebra_176"])["mathd_algebra_176"]
    with LeanDojoBackend() as dojo, LeanReplBackend() as repl:
        try:
            root = dojo.open(thm)
        except InitError as e:  # lean-dojo 4.20.0 on Lean 4.24: must say what happened, not just fail
            assert "LeanDojo could not start" in str(e) and "LeanDojo-v2" in str(e)
            return
        assert root.goals == repl.open(thm).goals  # the model reads the same text from both backends
