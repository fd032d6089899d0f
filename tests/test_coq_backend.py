"""The Coq backend against real coqtop/coqc."""
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import psutil
import pytest

from prover.backends.base import BackendCrash, Failed, Finished, InitError, Next, Theorem, TimedOut
from prover.backends.coq.backend import CoqBackend, CoqConfig, audit_assumptions
from prover.backends.process import ProcessLimits

from .conftest import processes_with_marker, wait_dead

NAT = Theorem("t", "Theorem t : forall n m : nat, n = m -> n + 0 = m /\\ True.")
LOOP = "let rec loop x := loop x in loop 0"


@pytest.fixture(scope="module")
def coq():
    backend = CoqBackend()
    yield backend
    backend.close()


def test_open_apply_and_branching(coq):
    root = coq.open(NAT)
    assert "forall n m : nat" in root.goals and "(ID" not in root.goals
    intros = coq.apply(root, "intros", 5)
    assert isinstance(intros, Next) and "H : n = m" in intros.state.goals
    split = coq.apply(intros.state, "split", 5)
    assert isinstance(split, Next) and split.state.goals.startswith("2 goals")
    left = coq.apply(split.state, "lia", 5)
    assert isinstance(left, Next) and left.state.goals.endswith("True")
    # Back to an earlier state on another branch, then forward again on the first one.
    other = coq.apply(root, "intros n m H; subst", 5)
    assert isinstance(other, Next) and "H :" not in other.state.goals
    done = coq.apply(left.state, "exact I", 5)
    assert isinstance(done, Finished)
    assert done.state.key == ("intros.", "split.", "lia.", "exact I.")
    assert isinstance(coq.apply(other.state, "split; [lia | exact I]", 5), Finished)


def test_each_theorem_opened_on_a_live_coqtop_has_its_goals(coq):
    # With one header, the second statement reuses the first's state and can get the same evar ids,
    # and coqtop then prints no goals for it.
    header = "Require Import BinInt. Local Open Scope Z_scope."
    first = coq.open(Theorem("same", "Theorem same : forall n : Z, n = n.", header))
    second = coq.open(Theorem("nope", "Theorem nope : forall n : Z, n + 1 = n.", header))
    assert first.goals.endswith("forall n : Z, n = n")
    assert second.goals == "1 goal\n============================\nforall n : Z, n + 1 = n"


def test_failures_and_rejections(coq):
    root = coq.open(NAT)
    bad = coq.apply(root, "exact I", 5)
    assert isinstance(bad, Failed) and not bad.rejected and "I" in bad.message
    refused = coq.apply(root, "intros. admit.", 5)
    assert isinstance(refused, Failed) and refused.rejected
    # The failures left the live state usable.
    assert isinstance(coq.apply(root, "intros; lia", 5), Finished)


def test_induction_and_destruct_print_the_same_goals_but_are_different_states(coq):
    # Coq prints the second goal's conclusion only; its hypotheses (the induction's IHn) are the detail.
    state = coq.apply(coq.open(Theorem("ind", "Theorem ind : forall n : nat, n + 0 = n.")), "intros", 5).state
    assert state.detail == ""  # one goal: nothing hidden
    cases = coq.apply(state, "destruct n", 5).state
    induction = coq.apply(state, "induction n", 5).state
    assert cases.goals == induction.goals and "goal 2 is:" in cases.goals
    assert "IHn" in induction.detail and "IHn" not in cases.detail
    # and the induction's state is still the one Coq continues from
    assert isinstance(coq.apply(coq.apply(induction, "reflexivity", 5).state, "simpl; rewrite IHn; reflexivity", 5),
                      Finished)


def test_a_tactic_that_leaves_an_evar_gives_a_state_with_the_evar_in_its_goal(coq):
    # Coq heads such goals "1 focused goal (shelved: 1)"; they were read as no goals at all.
    theorem = Theorem("ex", "Theorem ex : forall m : nat, exists k, k + k = m + m.")
    witness = coq.apply(coq.open(theorem), "intros; eexists", 5)
    assert isinstance(witness, Next)
    assert witness.state.goals == "1 goal\nm : nat\n============================\n?k + ?k = m + m"
    assert isinstance(coq.apply(witness.state, "reflexivity", 5), Finished)
    # A tactic that leaves only shelved evars has not finished the proof.
    shelf = Theorem("sh", "Theorem sh : forall P : nat -> Prop, (forall k, P k) -> exists k, P k.")
    state = coq.apply(coq.open(shelf), "intros P H; eexists", 5).state
    assert not isinstance(coq.apply(state, "apply H", 5), Finished)


def test_a_tactic_that_changes_nothing_still_reports_goals(coq):
    root = coq.open(NAT)
    same = coq.apply(root, "idtac", 5)
    assert isinstance(same, Next) and same.state.goals == root.goals


def test_looping_tactic_is_cut_at_the_tactic_timeout(coq):
    root = coq.open(NAT)
    pid = coq.pid
    start = time.monotonic()
    out = coq.apply(root, LOOP, 1)
    took = time.monotonic() - start
    # Cut by Coq's own Timeout (or SIGINT), not by a restart. The loop never ends on its own, so any
    # finite time shows the cut; the bound is only generous (a loaded machine answers late).
    assert isinstance(out, TimedOut) and coq.pid == pid and coq.restarts == 0
    assert 1 <= out.seconds and took < 30, took
    assert isinstance(coq.apply(root, "intros; lia", 5), Finished)


def test_unresponsive_coqtop_is_restarted_and_states_stay_valid():
    backend = CoqBackend(CoqConfig(grace=0.5))
    try:
        root = backend.open(NAT)
        intros = backend.apply(root, "intros", 5)
        old_pid = backend.pid
        # A stopped process answers neither Timeout nor SIGINT: the backend must restart it.
        timer = threading.Timer(0.2, os.kill, (old_pid, signal.SIGSTOP))
        timer.start()
        out = backend.apply(intros.state, LOOP, 1)
        timer.join()
        assert isinstance(out, TimedOut)
        assert backend.pid != old_pid
        with pytest.raises(ProcessLookupError):
            os.kill(old_pid, 0)
        assert isinstance(backend.apply(intros.state, "split; [lia | exact I]", 5), Finished)
    finally:
        backend.close()


def test_killed_coqtop_is_restarted_and_the_next_tactic_runs():
    backend = CoqBackend()
    try:
        root = backend.open(NAT)
        intros = backend.apply(root, "intros", 5)
        old_pid, old_dir = backend.pid, backend._workdir.path
        os.kill(old_pid, signal.SIGKILL)
        assert wait_dead(old_pid)
        # Killed between two tactics: the next one runs in a new coqtop, on the same state.
        out = backend.apply(intros.state, "split; [lia | exact I]", 5)
        assert isinstance(out, Finished)
        assert backend.restarts == 1 and backend.pid != old_pid
        assert not os.path.exists(old_dir)  # the dead one's working directory went with it
    finally:
        backend.close()


# Allocates far past a 1200 MB address-space cap: coqtop aborts (SIGABRT) instead of answering.
MEMORY_HOG = "let x := eval vm_compute in (List.seq 0 40000000) in idtac"


def test_a_tactic_that_blows_the_memory_cap_fails_and_the_next_one_runs():
    # Without the statement libraries: with ZArith loaded the hog can meet Coq's own "Out of memory."
    # error instead of the cap killing coqtop, and this test is about the restart.
    backend = CoqBackend(CoqConfig(limits=ProcessLimits(memory_bytes=1200 * 1024**2), statement_libraries=""))
    try:
        root = backend.open(NAT)
        first = backend.pid
        out = backend.apply(root, MEMORY_HOG, 30)
        assert isinstance(out, Failed) and not out.rejected, out
        assert "coqtop exited" in out.message and "restarted" in out.message
        assert backend.restarts == 1 and backend.pid != first
        assert isinstance(backend.apply(root, "intros; split; [lia | exact I]", 5), Finished)
    finally:
        backend.close()


def test_restarts_that_keep_failing_are_a_crash(tmp_path):
    coqtop = tmp_path / "coqtop"
    coqtop.symlink_to(shutil.which("coqtop"))
    backend = CoqBackend(CoqConfig(coqtop=str(coqtop), max_restarts=2))
    try:
        root = backend.open(NAT)
        coqtop.unlink()  # coqtop can no longer be started
        os.kill(backend.pid, signal.SIGKILL)
        assert wait_dead(backend.pid)
        with pytest.raises(BackendCrash, match=r"could not be restarted \(2 tries\)"):
            backend.apply(root, "intros", 5)
        assert backend.restarts == 2 and backend.pid is None
    finally:
        backend.close()


def test_coqtop_and_coqc_get_their_working_directory_as_tmpdir(tmp_path, monkeypatch):
    """csdp (behind psatz) writes its parameter file into TMPDIR: that must be the prover's own
    working directory, which goes when the prover goes."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    th = Theorem("p", "Theorem p : forall x y : R, 0 <= x -> 0 <= y -> 0 <= x * y + x.",
                 "Require Import Reals. Open Scope R_scope.")
    backend = CoqBackend()
    try:
        root = backend.open(th)
        proc = psutil.Process(backend.pid)
        assert proc.environ()["TMPDIR"] == proc.cwd() == backend._workdir.path
        assert os.path.dirname(proc.cwd()) == str(tmp)
        done = backend.apply(root, "intros; psatz R 2", 30)
        assert isinstance(done, Finished), done
        assert os.path.exists(os.path.join(backend._workdir.path, "param.csdp"))
        assert backend.check(th, ["intros", "psatz R 2"]).ok
    finally:
        backend.close()
    assert os.listdir(tmp) == []


@pytest.mark.parametrize("theorem,fragment", [
    (Theorem("t", "Theorem t : 1 + true = 2."), "does not type-check"),
    (Theorem("t", "Theorem u : True."), "expected 't'"),
    (Theorem("t", "Theorem t : True.", "Require Import NoSuchLibrary."), "header sentence"),
    (Theorem("t", "Definition t := 1."), "Theorem/Lemma"),
])
def test_open_rejects_bad_theorems(coq, theorem, fragment):
    with pytest.raises(InitError, match=fragment):
        coq.open(theorem)


def test_close_leaves_no_process(marker):
    backend = CoqBackend()
    backend.open(NAT)
    assert processes_with_marker(marker)
    backend.close()
    assert processes_with_marker(marker) == []


def test_full_check_accepts_a_real_proof_and_its_file_compiles(coq, tmp_path):
    result = coq.check(NAT, ["intros", "split", "lia", "exact I"])
    assert result.ok, result.message
    assert result.axioms == ()
    (tmp_path / "Again.v").write_text(result.source)
    assert subprocess.run(["coqc", "-q", "Again.v"], cwd=tmp_path).returncode == 0


def test_statements_get_the_arithmetic_libraries_and_the_check_compiles_with_them(coq):
    # (19^19 + 99^99) mod 10 in unary nat is out of reach; ZifyNat moves it to Z, where lia computes it.
    th = Theorem("last_digit", "Theorem last_digit : (19 ^ 19 + 99 ^ 99) mod 10 = 8.", "Require Import Arith.")
    assert isinstance(coq.apply(coq.open(th), "lia", 10), Finished)
    result = coq.check(th, ["lia"])
    assert result.ok, result.message
    assert "ZifyNat" in result.source and result.axioms == ()
    with CoqBackend(CoqConfig(statement_libraries="")) as bare:
        assert isinstance(bare.apply(bare.open(th), "lia", 10), Failed)


def test_full_check_lists_standard_axioms_over_the_reals(coq):
    th = Theorem("r", "Theorem r : forall x y : R, (x + y) ^ 2 = x ^ 2 + 2 * x * y + y ^ 2.",
                 "Require Import Reals. Open Scope R_scope.")
    result = coq.check(th, ["intros", "ring"])
    assert result.ok, result.message
    assert "ClassicalDedekindReals.sig_forall_dec" in result.axioms


def test_full_check_refuses_incomplete_and_escaping_proofs(coq):
    assert not coq.check(NAT, ["intros", "split", "lia"]).ok
    assert not coq.check(NAT, ["intros", "admit"]).ok
    assert not coq.check(Theorem("t", "Theorem u : True."), ["exact I"]).ok


def test_full_check_refuses_axioms_from_the_header_unless_allowed(coq):
    header = "Axiom cheat : forall P : Prop, P."
    th = Theorem("f", "Theorem f : 0 = 1.", header)
    refused = coq.check(th, ["apply cheat"])
    assert not refused.ok and "cheat" in refused.message
    allowed = Theorem("f", "Theorem f : 0 = 1.", header, allowed_axioms=("cheat",))
    assert coq.check(allowed, ["apply cheat"]).ok


def test_full_check_catches_what_coqtop_accepts_but_qed_refuses(coq):
    # fix is only guard-checked at Qed: coqtop finishes the proof, the full check must not.
    th = Theorem("g", "Theorem g : forall n : nat, n = S n.")
    root = coq.open(th)
    fix = coq.apply(root, "fix IH 1", 5)
    assert isinstance(fix, Next)
    assert isinstance(coq.apply(fix.state, "exact IH", 5), Finished)
    result = coq.check(th, ["fix IH 1", "exact IH"])
    assert not result.ok and "coqc failed" in result.message


def test_audit_of_print_assumptions_output():
    allowed = {"Classical_Prop.classic"}
    assert audit_assumptions("Closed under the global context\n", allowed) == (True, (), "")
    ok, axioms, _ = audit_assumptions("Axioms:\nClassical_Prop.classic : forall P : Prop, P \\/ ~ P\n",
                                      allowed)
    assert ok and axioms == ("Classical_Prop.classic",)
    ok, axioms, msg = audit_assumptions("Axioms:\nClassical_Prop.classic\n  : forall P, P\nlemma\n  : False\n",
                                        allowed)
    assert not ok and axioms == ("Classical_Prop.classic", "lemma") and "lemma" in msg
    assert not audit_assumptions("f is assumed to be guarded.\n", allowed)[0]
    assert not audit_assumptions("", allowed)[0]


def test_theorems_sharing_a_header_prefix_reuse_coqtop_and_see_only_their_own_header():
    with CoqBackend() as coq:
        one = Theorem("one", "Theorem one : d = 1.", "Definition d := 1.")
        root = coq.open(one)
        pid = coq.pid
        assert isinstance(coq.apply(root, "reflexivity", 5), Finished)
        # Same prelude, another header: coqtop goes back to the prelude and loads this one instead.
        two = Theorem("two", "Theorem two : d = 2.", "Definition d := 2.")
        root2 = coq.open(two)
        assert coq.pid == pid
        assert isinstance(coq.apply(root2, "reflexivity", 5), Finished)
        # The same statement again, under the first header: the proof opened above is gone.
        back = coq.open(Theorem("two", "Theorem two : d = 1.", "Definition d := 1."))
        assert coq.pid == pid and isinstance(coq.apply(back, "reflexivity", 5), Finished)
        assert isinstance(coq.apply(back, "exact (eq_refl 2)", 5), Failed)
        # A header that does not load is an error, and the next theorem still opens.
        with pytest.raises(InitError):
            coq.open(Theorem("bad", "Theorem bad : True.", "Definition e := undefined_name."))
        assert isinstance(coq.apply(coq.open(one), "reflexivity", 5), Finished)
