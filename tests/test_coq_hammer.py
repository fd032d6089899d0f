"""The hammer step against the real CoqHammer, eprover and cvc4.

A first hammer call in a coqtop reads the library's proofs (seconds, more under load), so these tests
keep the context small (no Reals in the prelude) and share one coqtop per scenario.
"""
import json
import os
import shutil
import subprocess
import time
import warnings
from pathlib import Path

import pytest

from prover.backends.base import Failed, Finished, Next, State, Theorem, TimedOut
from prover.backends.coq.backend import CoqBackend, CoqConfig
from prover.backends.coq.hammer import (HammerConfig, HammerStep, Probe, find_tools, hammer_status, is_hammer,
                                        reconstruction, tactic_variants, uses_hammer_plugin)
from prover.backends.process import processes_with_token
from prover.models.coq_portfolio import CoqPortfolio, HammerGenerator
from prover.search.best_first import SearchConfig, search

from .conftest import SHARED_DATA, processes_with_marker, run_cli

SMALL_PRELUDE = "From Hammer Require Import Tactics."
# Needs two library lemmas (app_length, Nat.add_comm): the portfolio's tactics do not prove it.
LIST_THEOREM = Theorem("app_length_comm", "Theorem app_length_comm : forall (A : Type) (l1 l2 : list A), "
                       "length (l1 ++ l2) = length (l2 ++ l1).", "Require Import List.")
# Classically true, intuitionistically not: the ATPs prove it, CoqHammer's reconstruction cannot.
PEIRCE = Theorem("peirce", "Theorem peirce : forall P Q : Prop, ((P -> Q) -> P) -> P.")
TOOLS = {t: shutil.which(t) for t in ("coqc", "coqtop", "eprover", "cvc4")}  # before any test edits PATH
HAMMER_OK = hammer_status().ok
needs_hammer = pytest.mark.skipif(not HAMMER_OK, reason=f"CoqHammer/ATPs missing: {hammer_status().reason}")

# Recorded coqtop output of `hammer.` (Coq 8.16.1, CoqHammer 1.3.2), trimmed of its progress lines.
RECORDED_ATP = """<infomsg>Running provers (2 threads)...</infomsg>
<infomsg>CVC4 (knn-64) succeeded</infomsg>
<infomsg>- dependencies: Lists.List.app_length, Arith.PeanoNat.Nat.add_comm
</infomsg>
<infomsg>Reconstructing the proof...</infomsg>
<infomsg>Tactic scongruence succeeded.</infomsg>
<infomsg>
Replace the hammer tactic with:
\tscongruence use: app_length, PeanoNat.Nat.add_comm.
</infomsg>
No more goals.
"""
RECORDED_SAUTO = "<infomsg>Replace the hammer tactic with: sfirstorder</infomsg>\nNo more goals.\n"
RECORDED_FAILURE = """<infomsg>Reconstructing the proof...</infomsg>
Toplevel input, characters 0-6:
> hammer.
> ^^^^^^
Error:
Hammer failed: proof reconstruction failed.
You may try increasing the reconstruction time limit with 'Set Hammer ReconstrLimit N' (default: 5s).
"""


def atp_shims(directory: Path) -> Path:
    """eprover and cvc4 wrappers put before the real ones on PATH: each logs its arguments to
    $ATP_LOG and runs the real ATP, or, once $HANG_FLAG exists, records its pid and hangs, deaf to
    SIGTERM/SIGINT (an ATP that never returns)."""
    directory.mkdir()
    for atp in ("eprover", "cvc4"):
        real = TOOLS[atp]
        shim = directory / atp
        shim.write_text(f"""#!/bin/sh
case "$1" in --version) exec {real} "$@";; esac
[ -n "$ATP_LOG" ] && echo "$@" >> "$ATP_LOG"
if [ -n "$HANG_FLAG" ] && [ -e "$HANG_FLAG" ]; then
  echo $$ >> "$HANG_FLAG.started"
  trap '' TERM INT HUP
  while :; do sleep 1; done
fi
exec {real} "$@"
""")
        shim.chmod(0o755)
    return directory


def coq_only_path(directory: Path) -> str:
    """A PATH holding coqc and coqtop and nothing else: no ATP, no predict."""
    directory.mkdir()
    for tool in ("coqc", "coqtop"):
        (directory / tool).symlink_to(TOOLS[tool])
    return str(directory)


# -- text and configuration (no prover) -------------------------------------------------------------
def test_reconstruction_tactic_is_read_from_both_output_forms():
    assert reconstruction(RECORDED_ATP) == "scongruence use: app_length, PeanoNat.Nat.add_comm."
    assert reconstruction(RECORDED_SAUTO) == "sfirstorder"
    assert reconstruction(RECORDED_FAILURE) is None
    assert reconstruction("") is None


def test_srun_gets_a_form_coq_816_parses():
    assert tactic_variants("srun eauto use: rev_involutive.") == [
        "srun eauto use: rev_involutive.", "srun (eauto) use: rev_involutive."]
    assert tactic_variants("scongruence use: a, b.") == ["scongruence use: a, b."]


def test_what_counts_as_the_step_and_as_a_plugin_tactic():
    assert is_hammer("hammer") and is_hammer(" hammer. ") and not is_hammer("hammer; lia")
    for t in ("hammer", "intros; hammer", "predict 10", "hammer_hook \"a\" \"b\"", "try hammer"):
        assert uses_hammer_plugin(t), t
    for t in ("sauto", "srun (eauto) use: rev_involutive", "apply hammer_lemma", "apply Foo.predict"):
        assert not uses_hammer_plugin(t), t


def test_generators_propose_hammer_as_an_expensive_step():
    alone = HammerGenerator().generate("============================\nTrue", 32)
    assert [(c.tactic, c.expensive) for c in alone] == [("hammer", True)]
    portfolio = CoqPortfolio()
    flat = portfolio.generate("n : nat\n============================\nn + 0 = n", 32)
    assert flat[-1].tactic == "hammer" and flat[-1].expensive
    assert not any(c.expensive for c in flat[:-1])
    assert all(c.score > flat[-1].score for c in flat[:-1])  # last in rank
    intro = portfolio.generate("============================\nforall n : nat, n + 0 = n", 32)
    assert "hammer" not in [c.tactic for c in intro]  # after intros, on the introduced goal
    assert "hammer" not in [c.tactic for c in CoqPortfolio(hammer=False).generate(
        "n : nat\n============================\nn + 0 = n", 32)]


def test_predict_and_htimeout_are_found_without_touching_path(tmp_path):
    tools = find_tools(HammerConfig())
    if not tools.ok:
        pytest.skip(tools.reason)
    assert tools.path_prefix is None or Path(tools.path_prefix, "predict").is_file()
    assert "PATH" not in os.environ or tools.path_prefix is None or tools.path_prefix not in os.environ["PATH"]
    missing = find_tools(HammerConfig(libexec=str(tmp_path)), path=str(tmp_path))
    assert not missing.ok and "predict" in missing.reason


# -- the step, failing without hammer or on output it cannot use -----------------------------------
class RecordedHammer:
    """A host whose probe replays a recorded hammer output; everything else is the real backend."""

    def __init__(self, backend: CoqBackend, output: str) -> None:
        self.backend, self.output, self.probes = backend, output, 0

    def probe(self, state, sentence, timeout):
        self.probes += 1
        return Probe(self.output, False, 0.1)

    def apply(self, state, tactic, timeout):
        return self.backend.apply(state, tactic, timeout)


@needs_hammer
def test_hammer_output_that_does_not_reconstruct_is_a_failed_candidate():
    # A real proof's reconstruction tactic, replayed on a goal it does not prove: Coq refuses it.
    theorem = Theorem("t", "Theorem t : forall (A : Type) (l : list A), rev (rev l) = l.", "Require Import List.")
    with CoqBackend(CoqConfig(prelude=SMALL_PRELUDE)) as coq:
        root = coq.open(theorem)
        step = HammerStep(HammerConfig())
        host = RecordedHammer(coq, RECORDED_ATP)
        outcome = step.run(host, root, "hammer", 30, ("ctx",))
        assert isinstance(outcome, Failed) and not outcome.rejected
        assert "does not run" in outcome.message
        # Output without a tactic (hammer's own failure) is a failed candidate too, with its reason.
        failed = step.run(RecordedHammer(coq, RECORDED_FAILURE), State((), "other goal"), "hammer", 30, ("ctx",))
        assert isinstance(failed, Failed) and "reconstruction failed" in failed.message
        # The result is cached per goal: asking again does not run hammer again.
        again = step.run(host, root, "hammer", 30, ("ctx",))
        assert isinstance(again, Failed) and host.probes == 1
        # The backend still works.
        assert isinstance(coq.apply(root, "intros; apply rev_involutive", 5), Finished)


def test_without_hammer_the_step_is_skipped_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", coq_only_path(tmp_path / "bin"))
    config = CoqConfig(prelude=SMALL_PRELUDE, hammer=HammerConfig(libexec=str(tmp_path)))
    with CoqBackend(config) as coq:
        root = coq.open(Theorem("t", "Theorem t : forall n : nat, n + 0 = n."))
        outcome = coq.apply(root, "hammer", 30)
        assert isinstance(outcome, Failed) and outcome.rejected and "skipped" in outcome.message
        assert coq.hammer.calls == 0
        assert isinstance(coq.apply(root, "intros; auto", 5), Finished)


def test_cli_warns_once_when_hammer_cannot_run_and_proves_without_it(tmp_path):
    path = coq_only_path(tmp_path / "bin")
    run = run_cli("prove", "--statement", "Theorem t : forall n : nat, n + 0 = n.", "--quiet",
                  env={"PATH": path})
    assert run.returncode == 0, run.stderr
    warnings_ = [line for line in run.stderr.splitlines() if "warning" in line]
    assert len(warnings_) == 1 and "hammer step is skipped" in warnings_[0], run.stderr
    alone = run_cli("prove", "--statement", "Theorem t : forall n : nat, n + 0 = n.", "--generator", "hammer",
                    env={"PATH": path})
    assert alone.returncode == 2 and len(alone.stderr.strip().splitlines()) == 1
    assert "--generator hammer cannot run" in alone.stderr
    other = run_cli("prove", "--backend", "isabelle", "--statement", 'theorem t: "True"', "--generator", "hammer")
    assert other.returncode == 2 and "needs --backend coq" in other.stderr


# -- the real thing ----------------------------------------------------------------------------------
@needs_hammer
def test_hammer_alone_proves_a_library_lemma_goal_and_the_proof_checks_without_atps(tmp_path, monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    log = tmp_path / "atp.log"
    monkeypatch.setenv("PATH", f"{atp_shims(tmp_path / 'shims')}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ATP_LOG", str(log))
    monkeypatch.setenv("TMPDIR", str(temp))  # the prover's working directories go here, and nothing else
    monkeypatch.setattr("tempfile.tempdir", None)
    # A generous step budget: a first hammer call reads the library, which takes long on a busy machine.
    config = CoqConfig(prelude=SMALL_PRELUDE, hammer=HammerConfig(timeout=240, atp_limit=10, threads=2))
    with CoqBackend(config) as coq:
        result = search(LIST_THEOREM, coq, HammerGenerator(), SearchConfig(max_expansions=3, timeout=300))
        workdir = Path(coq.workdir)
        assert result.proved, result.failure_message
        assert result.tactics and not any(uses_hammer_plugin(t) for t in result.tactics), result.tactics
        assert "hammer" not in result.proof and "use:" in result.proof
        assert coq.hammer.calls == 1
        # ATP problem files were written in the prover's own working directory.
        problems = [a.split()[-1].strip('"') for a in log.read_text().splitlines()]
        assert problems and all(Path(p).parent == workdir for p in problems), problems
    assert not workdir.exists()
    assert list(temp.iterdir()) == []  # nothing left behind in TMPDIR
    # The proof checks with no ATP (and no predict) reachable, and a proof that calls hammer does not.
    monkeypatch.setenv("PATH", coq_only_path(tmp_path / "bin"))
    with CoqBackend(CoqConfig(prelude=SMALL_PRELUDE)) as checker:
        check = checker.check(LIST_THEOREM, result.tactics)
        assert check.ok, check.message
        refused = checker.check(LIST_THEOREM, ["hammer"])
        assert not refused.ok and "reconstruction" in refused.message
    # The written file compiles by itself.
    prelude = CoqConfig(prelude=SMALL_PRELUDE).statement_prelude  # what the check compiled it with
    (tmp_path / "Written.v").write_text(f"{prelude}\n{LIST_THEOREM.header}\n{LIST_THEOREM.statement}\n"
                                        f"{result.proof}\n")
    compiled = subprocess.run(["coqc", "-q", "Written.v"], cwd=tmp_path, capture_output=True, text=True,
                              env={**os.environ, "PATH": coq_only_path(tmp_path / "bin2")})
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr


@needs_hammer
def test_unreconstructable_proof_fails_and_a_hanging_atp_is_cut_leaving_no_process(tmp_path, monkeypatch, marker):
    flag = tmp_path / "hang"
    monkeypatch.setenv("PATH", f"{atp_shims(tmp_path / 'shims')}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HANG_FLAG", str(flag))
    # ATP runs may take 60 s: only the step's budget can cut a hang before that. GSMode 8 (CoqHammer's
    # default): with 1 or 2 strategies E and CVC4 do not find Peirce's law here (measured).
    config = CoqConfig(prelude=SMALL_PRELUDE,
                       hammer=HammerConfig(timeout=240, atp_limit=60, reconstr_limit=1, threads=8))
    with CoqBackend(config) as coq:
        root = coq.open(PEIRCE)
        # The real ATPs prove Peirce's law; reconstruction is intuitionistic and fails: a failed candidate.
        classical = coq.apply(root, "hammer", 300)
        assert isinstance(classical, Failed) and not classical.rejected
        assert "reconstruction" in classical.message
        intros = coq.apply(root, "intros", 5)
        assert isinstance(intros, Next)
        flag.touch()  # from now on every ATP hangs
        budget = 20
        restarts = coq.restarts
        start = time.monotonic()
        cut = coq.apply(intros.state, "hammer", budget)
        took = time.monotonic() - start
        assert isinstance(cut, TimedOut), cut
        assert coq.restarts == restarts + 1  # a late answer of the cut hammer cannot reach a later command
        assert took < budget + 2 * config.grace + 5
        started = [int(p) for p in Path(f"{flag}.started").read_text().split()]
        assert started  # the ATPs were reached, and hung
        live = set(processes_with_marker(marker))
        assert live == {coq.pid}, live  # the ATPs and their runners are gone; coqtop lives on
        assert isinstance(coq.apply(intros.state, "apply H", 5), Next)  # the backend works on
    assert processes_with_marker(marker) == []


def test_stop_strays_finds_processes_that_left_the_group(marker):
    from prover.backends.process import InteractiveProcess, ProcessLimits, WorkDir

    work = WorkDir()
    # The shell becomes `cat`; the sleep it started runs in a session of its own, as htimeout's ATPs do.
    proc = InteractiveProcess(["sh", "-c", "setsid sleep 300 & echo started; exec cat"], work.path,
                              ProcessLimits())
    try:
        proc.spawn.expect("started", timeout=10)
        deadline = time.monotonic() + 10
        others: list[int] = []
        while time.monotonic() < deadline:
            others = [p for p in processes_with_token(proc.token) if p != proc.pid and os.getsid(p) == p]
            if others:
                break
            time.sleep(0.05)
        assert len(others) == 1 and os.getpgid(others[0]) != proc.pid
        assert proc.stop_strays() == len(others)
        assert processes_with_token(proc.token) == [proc.pid] and proc.alive()
    finally:
        proc.stop()
        work.cleanup()
    assert processes_with_marker(marker) == []


@needs_hammer
def test_repl_suggests_hammers_reconstruction_tactic():
    from .test_repl import Repl

    repl = Repl("--workers", "1", "--hammer-timeout", "240")
    try:
        repl.send(id="h", cmd="suggest", statement=LIST_THEOREM.statement, header=LIST_THEOREM.header,
                  generator="hammer", check=True)
        [m] = repl.until("h", timeout=300)
        assert m["type"] == "suggestions" and m["checked"], m
        [suggestion] = m["candidates"]
        assert suggestion["complete"] and "use:" in suggestion["tactic"]
        assert not uses_hammer_plugin(suggestion["tactic"])  # what the editor inserts runs without ATPs
    finally:
        repl.close()


@needs_hammer
def test_in_a_file_the_step_comes_with_the_provers_imports_only(tmp_path):
    """A file theorem's coqtop loads hammer only with the prelude (--add-imports): the file's own imports are
    left alone otherwise, and the step says why it is not available. With them, hammer proves a goal
    that needs a library lemma, and the file (with only the reconstruction tactic) compiles."""
    from prover.backends.coq.document import CoqDocument

    path = tmp_path / "Lists.v"
    path.write_text("Require Import List.\n\nLemma rev_rev (A : Type) (l : list A) : rev (rev l) = l.\n"
                    "Proof.\nAdmitted.\n")
    doc = CoqDocument.read(path)
    with CoqBackend(CoqConfig(hammer=HammerConfig(threads=2))) as coq:
        root = coq.open(doc.theorem("rev_rev"))
        plain = coq.apply(root, "hammer", 60)
        assert isinstance(plain, Failed) and plain.rejected and "--add-imports" in plain.message
        theorem = doc.theorem("rev_rev", add_imports=True)
        root = coq.open(theorem)
        found = coq.apply(root, "hammer", 60)
        assert isinstance(found, Finished), found
        assert found.tactic and "hammer" not in found.tactic
        check = coq.check(theorem, [found.tactic])
        assert check.ok, check.message


@needs_hammer
def test_a_copy_of_coqtop_that_answers_again_does_not_shift_later_answers(tmp_path):
    """On this theorem hammer's ATP runs (copies of coqtop sharing its output) print a failure and a prompt
    again after the step has been answered; the next route replay read it as its own answer and the search
    ended as `crash` (found in the miniF2F runs). The step now reads up to a marker sentence of its own."""
    out = tmp_path / "r.jsonl"
    run = run_cli("minif2f", "--split", "test", "--names", "mathd_numbertheory_457", "--workers", "1",
                  "--timeout", "20", "--tactic-timeout", "2", "--out", str(out), "--quiet",
                  "--data", str(SHARED_DATA / "minif2f"), timeout=300)
    assert run.returncode == 0, run.stderr
    [result] = [json.loads(line) for line in out.read_text().splitlines()[1:]]
    assert result["failure_reason"] != "crash", result["failure_message"]
