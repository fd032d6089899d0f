"""Theorems of real Coq files, opened in their file context: copies of standard library and Coquelicot
files (sections, `Proof using`, modules, functors, a _CoqProject), their proofs removed, proved back
(or not) with real coqtop, and every written file compiled with coqc."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from prover import cli
from prover.backends.base import Finished, TimedOut
from prover.backends.coq.backend import CoqBackend, CoqConfig
from prover.backends.coq.document import CoqDocument, FileContextError
from prover.models.portfolio import PortfolioGenerator
from prover.search.best_first import SearchConfig, search

from .conftest import run_cli, wait_dead

COQ_ROOT = Path(subprocess.run(["coqc", "-where"], capture_output=True, text=True).stdout.strip())
STDLIB = COQ_ROOT / "theories"
COQUELICOT = COQ_ROOT / "user-contrib" / "Coquelicot"


def copy_without_proof(src: Path, directory: Path, proof: str, replacement: str = "Admitted.",
                       after: str = "") -> Path:
    """Copy a library file and replace one proof (given verbatim, following the text ``after``) by
    ``replacement``."""
    text = src.read_text(encoding="utf-8")
    assert text.count(after + proof) == 1, f"the proof to remove is not (once) in {src}"
    dst = directory / src.name
    dst.write_text(text.replace(after + proof, after + replacement), encoding="utf-8")
    return dst


def coqc(path: Path, *flags: str) -> subprocess.CompletedProcess:
    """Compile a written file where it lies (a copy of the directory, so nothing is left behind)."""
    work = path.parent / "_compiled"
    work.mkdir(exist_ok=True)
    shutil.copy(path, work / path.name)
    return subprocess.run(["coqc", "-q", *flags, path.name], cwd=work, capture_output=True, text=True,
                          timeout=300)


def tactics_file(directory: Path, tactics: list[str]) -> str:
    path = directory / "tactics.txt"
    path.write_text("".join(t + "\n" for t in tactics), encoding="utf-8")
    return str(path)


def only_the_proof_changed(before: str, after: str, statement: str, proof_after: str) -> None:
    """Everything but the proof after ``statement`` is byte for byte the same."""
    cut = before.index(statement) + len(statement)
    assert after[:cut] == before[:cut]
    tail = after[cut:]
    assert tail.startswith(proof_after), tail[:300]
    rest = tail[len(proof_after):]
    assert before.endswith(rest) and len(rest) > 0


# -- the issue's own example: List.v, a theorem inside `Section Facts` -----------------------------------
LIST_PROOF = "  Proof.\n    induction l; simpl; f_equal; auto.\n  Qed."


def test_section_theorem_of_list_v_is_proved_back_and_the_written_file_compiles(tmp_path):
    path = copy_without_proof(STDLIB / "Lists" / "List.v", tmp_path, LIST_PROOF, "  Admitted.",
                              after="Theorem app_nil_r (l:list A) : l ++ [] = l.\n")
    before = path.read_text(encoding="utf-8")
    tactics = tactics_file(tmp_path, ["reflexivity", "induction l", "simpl", "rewrite IHl", "auto"])
    r = run_cli("prove", str(path), "--theorem", "app_nil_r", "--write", "--json", "--tactics", tactics,
                "--timeout", "200", timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["verified"] and out["written"] and out["added_imports"] == []
    after = path.read_text(encoding="utf-8")
    proof = "".join(f"\n    {t.rstrip('.')}." for t in out["tactics"])
    only_the_proof_changed(before, after, "Theorem app_nil_r (l:list A) : l ++ [] = l.",
                           f"\n  Proof.{proof}\n  Qed.")
    assert Path(out["backup"]).read_text(encoding="utf-8") == before
    assert coqc(path).returncode == 0


# -- Proof using, functors, sections in functors -----------------------------------------------------------
LISTDEC_PROOF = """ induction l as [|a l IH].
 - now right.
 - destruct (dec a x).
   + left. now left.
   + destruct IH; simpl; [left|right]; tauto.
Qed."""

ORDERS_IN_EQ = "Proof. intros. rewrite <- H; auto. Qed."
ORDERS_KEY_INF_LT = "  Proof. apply InfA_ltA; auto with *. Qed."


def prove_in_file(theorem, tactics: list[str]):
    backend = CoqBackend()
    try:
        return search(theorem, backend, PortfolioGenerator(tactics), SearchConfig(timeout=120, candidates=8))
    finally:
        backend.close()


def test_proof_using_is_kept_and_the_proof_written_inside_its_section(tmp_path):
    path = copy_without_proof(STDLIB / "Lists" / "ListDec.v", tmp_path, LISTDEC_PROOF, "Admitted.")
    doc = CoqDocument.read(path)
    theorem = doc.theorem("In_decidable")
    assert theorem.opening_sentence() == "Proof using A dec."
    result = prove_in_file(theorem, ["induction l as [|a l IH]", "now right", "destruct (dec a x)", "now left",
                                     "left", "destruct IH; simpl; [left|right]; tauto"])
    assert result.proved, result.failure_message
    written = theorem.written(result.tactics)
    # The file's own `Proof using A dec.` stays: only what followed it changes.
    assert "Lemma In_decidable x (l:list A) : decidable (In x l).\nProof using A dec.\n  induction l" in written
    path.write_text(written, encoding="utf-8")
    assert coqc(path).returncode == 0


def test_functor_theorems_by_qualified_name_are_proved_back(tmp_path):
    src = copy_without_proof(STDLIB / "Structures" / "OrdersLists.v", tmp_path, ORDERS_IN_EQ, "Proof. Admitted.")
    path = copy_without_proof(src, tmp_path, ORDERS_KEY_INF_LT, "  Admitted.")
    doc = CoqDocument.read(path)
    in_eq = doc.theorem("In_eq")  # unique: its short name is enough
    assert [s.kind for s in in_eq.entry.scopes] == ["module"] and in_eq.functor_params() == ("O",)
    with pytest.raises(FileContextError, match="KeyOrderedType.Inf_lt, OrderedTypeLists.Inf_lt"):
        doc.theorem("Inf_lt")
    inf_lt = doc.theorem("KeyOrderedType.Inf_lt")  # inside Section Elt inside the functor
    assert [s.name for s in inf_lt.entry.scopes] == ["KeyOrderedType", "Elt"]
    tactics = ["intros", "rewrite <- H; auto", "apply InfA_ltA; auto with *"]
    text = doc.source
    for theorem in (in_eq, inf_lt):
        result = prove_in_file(theorem, tactics)
        assert result.proved, result.failure_message
        assert result.check.axioms == ()  # Print Assumptions inside the functor: nothing assumed
        doc = CoqDocument.parse(text, str(path))
        text = doc.theorem(theorem.name).written(result.tactics)
    path.write_text(text, encoding="utf-8")
    assert "Admitted" not in text
    assert coqc(path).returncode == 0


# -- a _CoqProject mapping a user-contrib library ----------------------------------------------------------
ITER_PROOF = """Proof.
  elim: l => [ | h l IH] //=.
  by rewrite IH.
Qed."""


def test_coquelicot_file_proved_with_its_coqproject_and_refused_without(tmp_path):
    project = tmp_path / "proj"
    (project / "theories").mkdir(parents=True)
    (project / "_CoqProject").write_text(f"# Coquelicot, as a project maps it\n-R {COQUELICOT} Coquelicot\n"
                                         f"-arg -w -arg -deprecated-syntactic-definition\ntheories/Iter.v\n")
    path = copy_without_proof(COQUELICOT / "Iter.v", project / "theories", ITER_PROOF, "Admitted.")
    tactics = tactics_file(tmp_path, ["elim: l => [ | h l IH] //=", "by rewrite IH", "auto"])
    r = run_cli("prove", str(path), "--theorem", "iter_iter'", "--write", "--json", "--tactics", tactics,
                "--timeout", "200", timeout=400)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["verified"]
    assert coqc(path, "-R", str(COQUELICOT), "Coquelicot").returncode == 0

    alone = tmp_path / "alone"
    alone.mkdir()
    lost = copy_without_proof(COQUELICOT / "Iter.v", alone, ITER_PROOF, "Admitted.")
    r = run_cli("prove", str(lost), "--theorem", "iter_iter'", "--tactics", tactics, timeout=300)
    assert r.returncode == 2
    err = " ".join(r.stderr.split())
    assert "cannot find library Rcomplements" in err and f"-R {COQUELICOT} Coquelicot" in err
    assert "Traceback" not in r.stderr
    # The command line's -R does what the _CoqProject line does.
    r = run_cli("prove", str(lost), "--theorem", "iter_iter'", "--tactics", tactics, "-R", str(COQUELICOT),
                "Coquelicot", "--json", timeout=300)
    assert r.returncode == 0 and json.loads(r.stdout)["verified"]


# -- tactics the file does not load: left out, or added with --add-imports ----------------------------------
BETWEEN_PROOF = """  Proof.
    induction 1; auto.
    apply -> Nat.succ_le_mono; assumption.
  Qed."""


def test_lia_is_not_available_where_the_file_does_not_load_it(tmp_path):
    path = copy_without_proof(STDLIB / "Arith" / "Between.v", tmp_path, BETWEEN_PROOF, "  Admitted.")
    before = path.read_bytes()
    tactics = tactics_file(tmp_path, ["induction 1; lia"])
    r = run_cli("prove", str(path), "--theorem", "exists_le_S", "--write", "--tactics", tactics, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert path.read_bytes() == before and not Path(str(path) + ".bak").exists()

    r = run_cli("prove", str(path), "--theorem", "exists_le_S", "--write", "--json", "--tactics", tactics,
                "--add-imports", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["added_imports"] == ["Require Import Lia."]
    after = path.read_text(encoding="utf-8")
    # The import goes right before the theorem's section, at top level; the rest is untouched.
    head, _, rest = after.partition("Require Import Lia.\nSection Between.")
    assert rest and before.decode().startswith(head) and "Require Import Lia" not in head
    assert coqc(path).returncode == 0


# -- --write is exact and safe ---------------------------------------------------------------------------
def test_write_keeps_an_existing_backup_and_refuses_a_file_changed_during_the_search(tmp_path, monkeypatch):
    path = copy_without_proof(STDLIB / "Structures" / "OrdersLists.v", tmp_path, ORDERS_IN_EQ, "Proof. Admitted.")
    original = path.read_text(encoding="utf-8")
    (tmp_path / "OrdersLists.v.bak").write_text("an older backup\n")
    tactics = tactics_file(tmp_path, ["intros", "rewrite <- H; auto"])
    args = [str(path), "--theorem", "In_eq", "--write", "--tactics", tactics, "--quiet"]
    assert cli.main(["prove", *args]) == 0
    assert (tmp_path / "OrdersLists.v.bak").read_text() == "an older backup\n"
    assert (tmp_path / "OrdersLists.v.bak.1").read_text(encoding="utf-8") == original
    assert coqc(path).returncode == 0

    path.write_text(original, encoding="utf-8")
    real_search = cli._run_search

    def search_then_edit(*a, **kw):
        result = real_search(*a, **kw)
        path.write_text(original + "\n(* edited meanwhile *)\n", encoding="utf-8")
        return result

    monkeypatch.setattr(cli, "_run_search", search_then_edit)
    assert cli.main(["prove", *args]) == 1
    assert path.read_text(encoding="utf-8").endswith("(* edited meanwhile *)\n")
    assert not (tmp_path / "OrdersLists.v.bak.2").exists()


# -- bad input: one line, exit 2 ---------------------------------------------------------------------------
@pytest.fixture
def orders(tmp_path) -> Path:
    return copy_without_proof(STDLIB / "Structures" / "OrdersLists.v", tmp_path, ORDERS_IN_EQ, "Proof. Admitted.")


def test_unknown_and_ambiguous_names(orders):
    r = run_cli("prove", str(orders), "--theorem", "no_such_lemma")
    assert r.returncode == 2 and "theorem 'no_such_lemma' not found" in r.stderr
    r = run_cli("prove", str(orders), "--theorem", "Inf_eq")
    assert r.returncode == 2
    assert "give the qualified name (KeyOrderedType.Inf_eq, OrderedTypeLists.Inf_eq)" in " ".join(r.stderr.split())


def test_a_file_that_does_not_compile_before_the_theorem_gives_its_first_error_and_line(orders):
    text = orders.read_text(encoding="utf-8")
    orders.write_text(text.replace("Lemma ListIn_In", "Check undefined_thing.\n\nLemma ListIn_In"), encoding="utf-8")
    line = orders.read_text(encoding="utf-8").splitlines().index("Check undefined_thing.") + 1
    r = run_cli("prove", str(orders), "--theorem", "Sort_NoDup", timeout=300)
    assert r.returncode == 2
    err = " ".join(r.stderr.split())
    assert f"OrdersLists.v:{line}:" in err and "undefined_thing was not found" in err
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 3


def test_unreadable_files_and_unsupported_theorems(tmp_path):
    r = run_cli("prove", str(tmp_path), "--theorem", "x")
    assert r.returncode == 2 and "is a directory" in r.stderr
    bad = tmp_path / "Bad.v"
    bad.write_bytes(b"Lemma x : True.\n(* \xff *)\nAdmitted.\n")
    r = run_cli("prove", str(bad), "--theorem", "x")
    assert r.returncode == 2 and "cannot read" in r.stderr
    program = tmp_path / "Prog.v"
    program.write_text("Program Lemma p : True.\nAdmitted.\n")
    r = run_cli("prove", str(program), "--theorem", "p")
    assert r.returncode == 2 and "Program/Obligation proofs are not supported" in r.stderr
    r = run_cli("prove", str(tmp_path / "Missing.v"), "--theorem", "x")
    assert r.returncode == 2 and "no such file" in r.stderr


# -- the full check audits Print Assumptions inside the theorem's module and section --------------------------
AUDIT = """Require Import Classical.
Axiom choice_ax : forall n : nat, n = n.
Module Type T. Parameter x : nat. Axiom xp : x = 0. End T.
Lemma helper : 1 = 1. Admitted.
Module F (X : T).
  Lemma uses_param : X.x = 0.
  Proof. Admitted.
End F.
Module M.
  Axiom mm : 2 = 2.
  Section S.
    Variable A : Type.
    Hypothesis H : forall a : A, a = a.
    Lemma uses_all : forall a : A, a = a /\\ 2 = 2 /\\ (forall n : nat, n = n) /\\ (True \\/ ~True).
    Proof. Admitted.
    Lemma uses_helper : 1 = 1.
    Proof. Admitted.
  End S.
End M.
"""


def test_audit_accepts_the_files_own_axioms_and_functor_parameters_but_not_admitted_lemmas(tmp_path):
    path = tmp_path / "Audit.v"
    path.write_text(AUDIT)
    doc = CoqDocument.read(path)
    backend = CoqBackend()
    try:
        ok = backend.check(doc.theorem("F.uses_param"), ["exact X.xp"])
        assert ok.ok and ok.axioms == (), ok.message
        mixed = backend.check(doc.theorem("uses_all"), [
            "intros a; split; [apply H | split; [exact M.mm | split; [exact choice_ax | apply classic]]]"])
        assert mixed.ok, mixed.message
        assert set(mixed.file_axioms) == {"M.mm", "choice_ax"}
        assert set(mixed.axioms) == {"M.mm", "choice_ax", "Classical_Prop.classic"}
        cheat = backend.check(doc.theorem("uses_helper"), ["exact helper"])
        assert not cheat.ok and "helper (admitted in this file)" in cheat.message
        fine = backend.check(doc.theorem("uses_helper"), ["reflexivity"])
        assert fine.ok
    finally:
        backend.close()


# -- many theorems of one file: the prefix is run once ----------------------------------------------------------
def test_opening_later_theorems_goes_on_from_the_loaded_prefix(tmp_path):
    doc = CoqDocument.read(STDLIB / "Arith" / "Between.v")  # the installed file, read only
    first, twentieth = doc.theorems[0], doc.theorems[19]
    backend = CoqBackend()
    try:
        backend.open(doc.theorem(first.name))
        pid, loaded = backend.pid, backend.loaded_sentences
        assert loaded == first.index + 2  # Set Silent, the prefix, Unset Silent
        root = backend.open(doc.theorem(twentieth.name))
        assert backend.pid == pid
        assert backend.loaded_sentences - loaded == twentieth.index - first.index + 1
        assert "nat" in root.goals
        loaded = backend.loaded_sentences
        root = backend.open(doc.theorem(first.name))  # back: BackTo, nothing of the file again
        assert backend.loaded_sentences - loaded == 1 and backend.pid == pid
        assert isinstance(backend.apply(root, "intros * ->; constructor", 5), Finished)
        # The check compiles the installed file with the proof in a private copy; the file is only read.
        installed = STDLIB / "Arith" / "Between.v"
        stat = installed.stat()
        check = backend.check(doc.theorem(first.name), ["intros * ->; constructor"])
        assert check.ok, check.message
        assert installed.stat().st_mtime_ns == stat.st_mtime_ns and installed.read_text() == doc.source
    finally:
        backend.close()


# -- a coqtop that dies or hangs on a file theorem: the new one runs the file's sentences again ------------------
def test_a_dead_coqtop_on_a_file_theorem_is_restarted_with_the_file_loaded_again():
    doc = CoqDocument.read(STDLIB / "Arith" / "Between.v")  # `between` is the file's own inductive
    first = doc.theorems[0]
    backend = CoqBackend()
    try:
        root = backend.open(doc.theorem(first.name))
        old_pid, loaded = backend.pid, backend.loaded_sentences
        os.kill(old_pid, signal.SIGKILL)
        assert wait_dead(old_pid)
        # `constructor` needs the file's `between`: it proves the theorem only if the new coqtop ran
        # the file up to the statement again.
        out = backend.apply(root, "intros * ->; constructor", 5)
        assert isinstance(out, Finished), out
        assert backend.restarts == 1 and backend.pid != old_pid
        assert backend.loaded_sentences - loaded == first.index + 2
    finally:
        backend.close()


def test_a_hung_coqtop_on_a_file_theorem_is_not_reused_by_the_restart():
    doc = CoqDocument.read(STDLIB / "Arith" / "Between.v")
    first = doc.theorems[0]
    backend = CoqBackend(CoqConfig(grace=0.5, open_timeout=60))
    try:
        root = backend.open(doc.theorem(first.name))
        old_pid = backend.pid
        # Stopped: it answers neither Timeout nor SIGINT, but it is alive; going on from it (as opening
        # another theorem of the same file does) would wait out the open timeout.
        timer = threading.Timer(0.2, os.kill, (old_pid, signal.SIGSTOP))
        timer.start()
        out = backend.apply(root, "let rec loop x := loop x in loop 0", 1)
        timer.join()
        assert isinstance(out, TimedOut)
        assert backend.restarts == 1 and backend.pid != old_pid and wait_dead(old_pid)
        assert isinstance(backend.apply(root, "intros * ->; constructor", 5), Finished)
    finally:
        backend.close()


# -- the REPL: file theorems with their project, statements with a project's flags ----------------------------
def test_repl_checks_file_theorems_with_their_project_and_statements_with_flags(tmp_path):
    from prover.repl.client import ReplClient

    from .conftest import ROOT, cli_env

    project = tmp_path / "proj"
    project.mkdir()
    (project / "_CoqProject").write_text(f"-R {COQUELICOT} Coquelicot\n")
    path = copy_without_proof(COQUELICOT / "Iter.v", project, ITER_PROOF, "Admitted.")
    outside = tmp_path / "outside"
    outside.mkdir()
    moved = copy_without_proof(COQUELICOT / "Iter.v", outside, ITER_PROOF, "Admitted.")
    proof = ["elim: l => [ | h l IH] //=", "by rewrite IH"]
    with ReplClient.spawn(cwd=str(ROOT), env=cli_env()) as client:
        ok = client.request("check", file=str(path), theorem="iter_iter'", tactics=proof, timeout=300)
        assert ok["type"] == "check" and ok["ok"], ok
        assert ok["proof"] == "Proof.\n  elim: l => [ | h l IH] //=.\n  by rewrite IH.\nQed."
        lost = client.request("check", file=str(moved), theorem="iter_iter'", tactics=proof, timeout=300)
        assert lost["type"] == "check" and not lost["ok"] and "Rcomplements" in lost["errors"][0]
        found = client.request("check", file=str(moved), theorem="iter_iter'", tactics=proof,
                               project=str(project), timeout=300)
        assert found["ok"], found
        statement = client.request("check", statement="Lemma t : Rmax 0 1 = 1.", tactics=["apply Rmax_right; lra"],
                                   header="Require Import Reals Rcomplements.\nOpen Scope R_scope.",
                                   coq_flags=["-R", str(COQUELICOT), "Coquelicot"], timeout=300)
        assert statement["ok"], statement
        tactics = tactics_file(tmp_path, [*proof, "auto"])
        proved = client.request("prove", file=str(path), theorem="iter_iter'", tactics_file=tactics, timeout=300)
        assert proved["type"] == "result" and proved["verified"], proved
        missing = client.request("suggest", file=str(path), theorem="no_such", timeout=60)
        assert missing["type"] == "error" and "not found" in missing["message"]
        client.shutdown(timeout=60)


def test_a_kept_session_moves_to_another_theorem_of_the_same_file():
    from prover.components import BackendOptions
    from prover.repl.sessions import SessionKey, SessionPool

    doc = CoqDocument.read(STDLIB / "Arith" / "Between.v")
    pool = SessionPool(2, lambda key: CoqBackend())
    try:
        first = pool.take(SessionKey("coq", doc.theorem("bet_eq"), BackendOptions()))
        first.open()
        backend, loaded = first.backend, first.backend.loaded_sentences
        pool.give_back(first)
        other = pool.take(SessionKey("coq", doc.theorem("between_le"), BackendOptions()))
        assert other.backend is backend
        assert "between k l -> k <= l" in " ".join(other.open().goals.split())
        assert backend.loaded_sentences - loaded == doc.theorems[1].index - doc.theorems[0].index + 1
        pool.give_back(other)
    finally:
        pool.close_all()


ZEUCLID_PROOF = """ Proof.
  intros Hb. unfold div, modulo.
  rewrite Z.mul_assoc. rewrite Z.sgn_abs. apply Z.div_mod.
  now destruct b.
 Qed."""


def test_module_theorem_used_by_an_include_after_it_is_proved_back(tmp_path):
    # ZEuclid.div_mod sits in `Module ZEuclid`, before `Include ZEuclidProp Z Z Z`, which uses it.
    path = copy_without_proof(STDLIB / "ZArith" / "Zeuclid.v", tmp_path, ZEUCLID_PROOF, " Admitted.")
    doc = CoqDocument.read(path)
    theorem = doc.theorem("div_mod")
    assert theorem.name == "ZEuclid.div_mod" and [s.kind for s in theorem.entry.scopes] == ["module"]
    result = prove_in_file(theorem, ["intros Hb", "unfold div, modulo", "rewrite Z.mul_assoc",
                                     "rewrite Z.sgn_abs", "apply Z.div_mod", "now destruct b"])
    assert result.proved, result.failure_message
    path.write_text(theorem.written(result.tactics), encoding="utf-8")
    assert coqc(path).returncode == 0


def test_fields_of_a_functor_parameter_bound_with_import_are_not_axioms():
    # `Module Type CompareFacts (Import O:DecStrOrder')`: Print Assumptions names O's fields without `O.`.
    doc = CoqDocument.read(STDLIB / "Structures" / "OrdersFacts.v")
    theorem = doc.theorem("CompareFacts.compare_eq_iff")
    assert theorem.functor_params() == ("O",)
    proof = ["case compare_spec; intro H; split; try easy; intro EQ; contradict H; rewrite EQ; "
             "apply irreflexivity"]
    with CoqBackend() as backend:
        result = backend.check(theorem, proof)
    assert result.ok and result.axioms == (), result.message
