"""The LeanDojo backend through lean-dojo 4.20.0's real ``Dojo`` (``__enter__``, ``run_tac``,
``__exit__``, its pexpect transport and result classes), with the Lean process it starts replaced by a
stand-in that speaks LeanDojo's protocol and answers from the real Lean REPL's recorded transcripts.
Only the tracing step (a built, traced repository) is patched out: it needs Lean.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from .conftest import isolate_lean_dojo_cache  # noqa: E402

isolate_lean_dojo_cache()  # before lean_dojo is imported
ld = pytest.importorskip("lean_dojo", reason="lean-dojo 4.20.0 is not installed (pip install lean-dojo==4.20.0)")
from lean_dojo.interaction import dojo as dojo_module  # noqa: E402

from prover.backends.base import BackendCrash, Failed, Finished, InitError, Next, State, Theorem, TimedOut  # noqa: E402
from prover.backends.lean.project import toolchain_version  # noqa: E402
from prover.backends.lean.dojo import LeanDojoBackend, LeanDojoConfig, known_problems  # noqa: E402
from prover.backends.lean.repl import LeanReplConfig  # noqa: E402

from .conftest import wait_dead  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PROVER_SHARED_DATA", ROOT.parent / "shared" / "data"))
TRANSCRIPTS = SHARED / "lean_repl_transcripts"
STAND_IN = Path(__file__).resolve().parent / "stand_ins" / "lean_dojo_repl.py"
BRANCHING = Theorem("complex_and", "theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r := by")
STEP = Theorem("f", "def f : Nat := by")


@pytest.fixture
def dojo_world(tmp_path, monkeypatch):
    """A traced repository LeanDojo believes in, and a `lake` on PATH that starts the stand-in."""
    repo_dir = tmp_path / "traced"
    (repo_dir / "MiniF2F" / "Test").mkdir(parents=True)
    (repo_dir / "Lean4Repl.lean").write_text("-- stands for LeanDojo's REPL module\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    lake = bin_dir / "lake"
    lake.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STAND_IN}" "$@"\n')
    lake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PROVER_DOJO_PID_FILE", str(tmp_path / "pids"))
    monkeypatch.setattr(dojo_module, "get_traced_repo_path", lambda repo, build_deps=True: repo_dir)

    def locate(self, traced_repo_path):
        return SimpleNamespace(has_prelude=False, abs_path=repo_dir / self.file_path)

    def modify(self, traced_file):
        self.modified_file = tempfile.NamedTemporaryFile("wt", prefix="x", suffix=".lean", dir=repo_dir,
                                                         delete=True).__enter__()

    monkeypatch.setattr(dojo_module.Dojo, "_locate_traced_file", locate)
    monkeypatch.setattr(dojo_module.Dojo, "_modify_file", modify)
    repo = SimpleNamespace(url=str(repo_dir), commit="0" * 40)

    def use(stem: str, **env: str):
        monkeypatch.setenv("PROVER_DOJO_TRANSCRIPT", str(TRANSCRIPTS / stem))
        for k, v in env.items():
            monkeypatch.setenv(k, v)

    def factory(theorem: Theorem, timeout: float):
        return ld.Dojo(ld.Theorem(repo, "MiniF2F/Test/x.lean", theorem.name), timeout=max(1, math.ceil(timeout)))

    def pids() -> list[int]:
        path = tmp_path / "pids"
        return [int(x) for x in path.read_text().split()] if path.exists() else []

    return SimpleNamespace(use=use, factory=factory, pids=pids, repo=repo)


def make_backend(world) -> LeanDojoBackend:
    config = LeanDojoConfig(project=ROOT / "lean_project", open_timeout=20, require_installed=False,
                            check=LeanReplConfig(require_installed=False))
    return LeanDojoBackend(config, dojo_factory=world.factory)


def test_real_dojo_client_over_the_stand_in(dojo_world):
    dojo_world.use("proof_branching")
    with dojo_world.factory(BRANCHING, 10) as (dojo, init):
        assert isinstance(init, ld.TacticState) and init.id == 0
        assert init.pp == "p q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ p ∧ r"
        two = dojo.run_tac(init, "apply And.intro")
        assert isinstance(two, ld.TacticState) and two.num_goals == 2 and two.id == 1
        s = dojo.run_tac(dojo.run_tac(two, "exact h1.left"), "apply h2")
        done = dojo.run_tac(s, "exact h1.right")
        assert isinstance(done, ld.ProofFinished) and dojo.is_successful
        pid = dojo.proc.pid
    assert wait_dead(pid)


def test_real_dojo_errors_and_given_up(dojo_world):
    dojo_world.use("invalid_tactic")
    with dojo_world.factory(Theorem("my_theorem", "theorem my_theorem (x : Nat) : x = x := by"), 10) as (dojo, init):
        assert dojo.run_tac(init, "exact my_fake_premise") == ld.LeanError("Unknown identifier `my_fake_premise`")
    dojo_world.use("tactic_mode_sorry")
    with dojo_world.factory(STEP, 10) as (dojo, init):
        assert dojo.run_tac(init, "sorry") == ld.ProofGivenUp()


def test_timeout_hazard_of_the_real_client(dojo_world):
    """Why a Dojo that timed out must go: its late reply is read as the next tactic's answer."""
    dojo_world.use("proof_step", PROVER_DOJO_SLOW="apply Int.natAbs=2")
    with dojo_world.factory(STEP, 1) as (dojo, init):
        with pytest.raises(ld.DojoTacticTimeoutError):
            dojo.run_tac(init, "apply Int.natAbs")
        dojo.timeout = dojo.proc.timeout = 30  # room for the late reply to arrive, however loaded the machine
        wrong = dojo.run_tac(init, "have t : Nat := 42")
        assert isinstance(wrong, ld.TacticState) and wrong.pp == "⊢ Int"  # apply Int.natAbs's goal


def test_backend_discards_the_dojo_after_a_timeout(dojo_world):
    dojo_world.use("proof_step", PROVER_DOJO_SLOW="apply Int.natAbs=3")
    with make_backend(dojo_world) as b:
        root = b.open(STEP)
        assert root == State((), "⊢ Nat")
        first = dojo_world.pids()
        out = b.apply(root, "apply Int.natAbs", 1)
        assert isinstance(out, TimedOut) and b.discarded == 1
        assert wait_dead(first[0])
        h = b.apply(root, "have t : Nat := 42", 5)  # a fresh Dojo answers, not the late reply
        assert h == Next(State(("have t : Nat := 42",), "t : Nat\n⊢ Nat"))
        assert len(dojo_world.pids()) == 2
        assert isinstance(b.apply(h.state, "exact t", 5), Finished)


def test_backend_replays_the_path_in_a_fresh_dojo(dojo_world):
    dojo_world.use("proof_branching", PROVER_DOJO_SLOW="apply h2=3")
    with make_backend(dojo_world) as b:
        root = b.open(BRANCHING)
        two = b.apply(root, "apply And.intro", 5)
        assert two.state.goals.count("⊢") == 2 and two.state.goals.startswith("case left\n")
        one = b.apply(two.state, "exact h1.left", 5)
        assert isinstance(b.apply(one.state, "apply h2", 1), TimedOut)
        # The next tactic on an earlier state: new Dojo, the path to it replayed, then the tactic.
        again = b.apply(two.state, "exact h1.left", 5)
        assert again == one and len(dojo_world.pids()) == 2


def test_backend_maps_results(dojo_world):
    dojo_world.use("invalid_tactic")
    with make_backend(dojo_world) as b:
        root = b.open(Theorem("my_theorem", "theorem my_theorem (x : Nat) : x = x := by"))
        assert b.apply(root, "exact my_fake_premise", 5) == Failed("Unknown identifier `my_fake_premise`")
        assert b.apply(root, "sorry", 5) == Failed("forbidden word in tactic: sorry", rejected=True)
        assert b.outcome(ld.ProofGivenUp(), ("x",)) == Failed("the proof gave up (sorry)")
        assert b.outcome(ld.ProofFinished(3, None), ("x",)) == Finished(State(("x",), ""))


def test_crash_is_reported_and_the_next_open_works(dojo_world):
    dojo_world.use("proof_step", PROVER_DOJO_EXIT_AT="1")
    with make_backend(dojo_world) as b:
        root = b.open(STEP)
        with pytest.raises(BackendCrash, match="crashed"):
            b.apply(root, "apply Int.natAbs", 5)
        assert b.open(STEP).goals == "⊢ Nat" and len(dojo_world.pids()) == 2


def test_init_failure_names_the_known_upstream_problems(dojo_world):
    dojo_world.use("proof_step", PROVER_DOJO_FAIL_INIT="1")
    with make_backend(dojo_world) as b:
        with pytest.raises(InitError) as e:
            b.open(STEP)
    text = str(e.value)
    assert "Unexpected EOF" in text and "Lean exited with status 1" in text
    # Lean's output ended before LeanDojo's REPL answered, on Lean 4.24: the reported upstream cause.
    assert "max_memory" in text and "message log" in text and "LeanDojo-v2" in text


def test_init_timeout_stops_the_lean_it_started(dojo_world):
    dojo_world.use("proof_step", PROVER_DOJO_HANG_INIT="1")
    config = LeanDojoConfig(project=ROOT / "lean_project", open_timeout=1, require_installed=False,
                            check=LeanReplConfig(require_installed=False))
    with LeanDojoBackend(config, dojo_factory=dojo_world.factory) as b:
        with pytest.raises(InitError, match="Timeout during initialization") as e:
            b.open(STEP)
    assert wait_dead(dojo_world.pids()[0])
    # A Lean that is slow to start is not the Lean >= 4.19 problem: it is not blamed on max_memory.
    assert "max_memory" not in str(e.value) and "LeanDojo-v2" in str(e.value)


def test_a_new_dojo_after_a_timeout_gets_only_what_is_left_of_the_budget(dojo_world):
    dojo_world.use("proof_step", PROVER_DOJO_SLOW="apply Int.natAbs=3", PROVER_DOJO_SLOW_RESTART="60")
    with make_backend(dojo_world) as b:
        root = b.open(STEP)
        b.set_deadline(time.monotonic() + 2.5)
        assert isinstance(b.apply(root, "apply Int.natAbs", 1), TimedOut)
        t0 = time.monotonic()
        out = b.apply(root, "have t : Nat := 42", 5)  # a new Dojo, slow to start: the deadline bounds it
        assert isinstance(out, TimedOut) and time.monotonic() - t0 < 10  # open_timeout is 20 s
        assert len(dojo_world.pids()) == 2 and all(wait_dead(p) for p in dojo_world.pids())


def test_known_problems_follow_the_pinned_toolchain(tmp_path):
    assert toolchain_version(ROOT / "lean_project") == (4, 24, 0)
    (tmp_path / "lean-toolchain").write_text("leanprover/lean4:v4.18.0\n")
    old = known_problems(tmp_path)
    assert "max_memory" not in old and "LeanDojo-v2" in old
    assert "max_memory" in known_problems(tmp_path, "unknown option 'max_memory'")
    assert "max_memory" not in known_problems(tmp_path, "Unexpected EOF")  # an old Lean: not that problem
    new = ROOT / "lean_project"  # Lean 4.24: named for the failures it causes, and only for those
    assert "max_memory" in known_problems(new, "Unexpected EOF")
    for other in ("Timeout during initialization", "CalledProcessError: lake build", "Cannot find the *.ast.json"):
        assert "max_memory" not in known_problems(new, other) and "LeanDojo-v2" in known_problems(new, other)


def test_lean_dojo_is_imported_only_by_its_backend():
    code = ("import sys, prover.cli, prover.components, prover.backends.lean.dojo, prover.backends.lean.repl; "
            "print('lean_dojo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_real_repository_and_theorem_from_the_trace_snapshot(tmp_path, monkeypatch):
    from prover.backends.lean.project import LeanNotInstalled, make_snapshot, setup
    from prover.runs.minif2f import load

    project = tmp_path / "lean_project"
    project.mkdir()
    for name in ("lakefile.toml", "lean-toolchain"):
        (project / name).write_text((ROOT / "lean_project" / name).read_text())
    config = LeanDojoConfig(project=project, require_installed=False)
    thm = load("lean4", names=["mathd_algebra_176"], data_dir=SHARED / "minif2f")[0].theorem
    with pytest.raises(LeanNotInstalled, match="prover lean trace"):
        LeanDojoBackend(config)._real_factory(thm, 10)
    setup(project, SHARED / "minif2f")
    path, commit = make_snapshot(project)
    assert make_snapshot(project) == (path, commit)  # unchanged library: same commit
    # Not traced yet: a clear error, and LeanDojo's tracing (hours) never starts.
    monkeypatch.setattr(ld.data_extraction.trace, "get_traced_repo_path",
                        lambda *a, **k: pytest.fail("opening a theorem started a trace"))
    backend = LeanDojoBackend(config)
    with pytest.raises(LeanNotInstalled, match="not traced in LeanDojo's cache.*prover lean trace"):
        backend._real_factory(thm, 10)
    # Once the cache holds the trace, the Dojo is built (LeanDojo's own LeanGitRepo, offline).
    repo = backend._repository()
    (Path(os.environ["CACHE_DIR"]) / repo.get_cache_dirname() / repo.name).mkdir(parents=True)
    dojo = backend._real_factory(thm, 10)
    assert isinstance(dojo, ld.Dojo) and dojo.timeout == 10 and dojo.build_deps is False
    assert dojo.entry.full_name == "mathd_algebra_176" and dojo.entry.repo.commit == commit
    assert str(dojo.entry.file_path) == "MiniF2F/Test/mathd_algebra_176.lean"
    assert (path / dojo.entry.file_path).read_text().endswith(":= by\n  sorry\n")
