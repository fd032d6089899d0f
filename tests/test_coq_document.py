"""Reading Coq files and projects without running Coq: _CoqProject flags, sentences, scopes, names, spans."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from prover.backends.coq.document import CoqDocument, FileContextError
from prover.backends.coq.filecheck import first_error, parse_assumptions, parse_locate
from prover.backends.coq.project import (CoqProject, ProjectError, installed_library_flags, logical_path_hint,
                                         parse_project)
from prover.backends.coq.text import split_sentences

COQ_ROOT = Path(subprocess.run(["coqc", "-where"], capture_output=True, text=True).stdout.strip())


# -- _CoqProject ---------------------------------------------------------------------------------------------
def test_coqproject_lines_become_absolute_flags(tmp_path):
    text = """# a comment
-R theories MyLib   # trailing comment
-Q "src dir" Other
-I plugin
-arg -w -arg -notation-overridden
-arg "-set 'Warnings=-deprecated'"
COQMF_OTHERFLAGS = -x
theories/A.v theories/B.v
-docroot doc
"""
    flags = parse_project(text, tmp_path)
    assert flags == ("-R", str(tmp_path / "theories"), "MyLib", "-Q", str(tmp_path / "src dir"), "Other",
                     "-I", str(tmp_path / "plugin"), "-w", "-notation-overridden",
                     "-set", "Warnings=-deprecated")
    with pytest.raises(ProjectError, match="_CoqProject:1: -R needs"):
        parse_project("-R onlyone", tmp_path)


def test_nearest_coqproject_and_command_line_flags(tmp_path):
    (tmp_path / "_CoqProject").write_text("-R . Top\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "F.v").write_text("Lemma x : True. Admitted.\n")
    lib = tmp_path / "lib"
    lib.mkdir()
    project = CoqProject.for_file(deep / "F.v", ("-Q", str(lib), "L", "-impredicative-set"))
    assert project.project_file == str(tmp_path / "_CoqProject")
    assert project.flags == ("-R", str(tmp_path), "Top", "-Q", str(lib), "L", "-impredicative-set")
    (deep / "_CoqProject").write_text("-Q . Inner\n")  # the nearest one wins
    assert CoqProject.for_file(deep / "F.v").flags == ("-Q", str(deep), "Inner")
    with pytest.raises(ProjectError, match="no such directory"):
        CoqProject.for_file(deep / "F.v", ("-R", str(tmp_path / "missing"), "M"))
    doc = CoqDocument.read(deep / "F.v", project_root=tmp_path / "_CoqProject")
    assert doc.flags == ("-R", str(tmp_path), "Top")


def test_installed_library_mapping_and_hints():
    iter_v = COQ_ROOT / "user-contrib" / "Coquelicot" / "Iter.v"
    assert installed_library_flags(iter_v) == ("-R", str(COQ_ROOT / "user-contrib" / "Coquelicot"), "Coquelicot")
    assert installed_library_flags(COQ_ROOT / "theories" / "Lists" / "List.v") == ()
    assert installed_library_flags(COQ_ROOT / "theories" / "Init" / "Nat.v") == ("-noinit",)
    assert f"-R {COQ_ROOT / 'user-contrib' / 'Coquelicot'} Coquelicot" in logical_path_hint("Rcomplements")
    assert "-R DIR LIB" in logical_path_hint("NoSuch.Library")


# -- sentences as Coq reads them -------------------------------------------------------------------------------
def test_ellipsis_and_goal_selector_braces_end_sentences():
    text = 'Proof with auto. 2:{ now left. } destruct H; subst... Notation "[ x ; .. ; y ]" := (cons x .. (cons y nil) ..). Qed.'
    assert [s.text for s in split_sentences(text)] == [
        "Proof with auto.", "2:{", "now left.", "}", "destruct H; subst...",
        'Notation "[ x ; .. ; y ]" := (cons x .. (cons y nil) ..).', "Qed."]


# -- structure: scopes, qualified names, proofs --------------------------------------------------------------
SOURCE = """Require Import Arith.
Module Type T. Parameter x : nat. End T.
Module F (X : T) (Import Y Z : T) <: T.
  Definition x := 0.
  Section S.
    Variable n : nat.
    Lemma same : n = n. Proof using n. reflexivity. Qed.
  End S.
End F.
Module G := F.
Module Import M : T with Definition x := 1.
  Definition x := 1.
  (* a comment with Lemma fake : False. *)
  #[local] Lemma same : x = 1.
  Proof.
    reflexivity.
  Defined.
  Theorem by_term : True.
  Proof I.
  Program Lemma prog : True.
  Admitted.
End M.
Lemma last : 1 = 1.
Lemma after : True. Admitted.
"""


def test_scopes_names_and_proof_spans():
    doc = CoqDocument.parse(SOURCE, "/x/Demo.v")
    assert doc.theorem_names() == ["F.same", "M.same", "M.by_term", "M.prog", "last", "after"]
    f_same = doc.theorem("F.same")
    assert [(s.kind, s.name, s.params) for s in f_same.entry.scopes] == [
        ("module", "F", ("X", "Y", "Z")), ("section", "S", ())]
    assert f_same.opening_sentence() == "Proof using n."
    start, end = f_same.proof_span()
    assert SOURCE[start:end] == " reflexivity. Qed."
    m_same = doc.theorem("Demo.M.same")  # with the file's module too
    assert m_same.proof_ending() == "Defined."  # kept: later computations may unfold it
    assert m_same.written(["lia"]).count("Defined.") == 1
    assert "  Proof.\n    lia.\n  Defined." in m_same.written(["lia"])
    by_term = doc.theorem("by_term")
    assert SOURCE[slice(*by_term.proof_span())] == "\n  Proof I."
    assert doc.theorem("last").proof_span()[0] == doc.theorem("last").proof_span()[1]  # no proof yet
    with pytest.raises(FileContextError, match="give the qualified name \\(F.same, M.same\\)"):
        doc.theorem("same")
    with pytest.raises(FileContextError, match="Program/Obligation"):
        doc.theorem("prog")
    with pytest.raises(FileContextError, match="not found"):
        doc.theorem("fake")
    with pytest.raises(FileContextError, match="'x' is a Definition .* not a theorem"):
        doc.theorem("x")
    assert doc.axioms_before(len(doc.sentences)) == ("x",)


def test_written_text_changes_only_the_proof_span():
    doc = CoqDocument.parse(SOURCE, "/x/Demo.v")
    last = doc.theorem("last")
    written = last.written(["reflexivity"])
    assert written == SOURCE.replace("Lemma last : 1 = 1.\n", "Lemma last : 1 = 1.\nProof.\n  reflexivity.\nQed.\n")
    with_import = doc.theorem("F.same").written(["lia"], ("Require Import Lia.",))
    assert with_import.replace("Require Import Lia.\n", "", 1) == doc.theorem("F.same").written(["lia"])
    assert with_import.index("Require Import Lia.\nModule F") > 0
    with pytest.raises(ValueError, match="refused"):
        last.written(["admit"])


# -- what coqc and Print Assumptions print ---------------------------------------------------------------------
def test_first_error_skips_warnings_and_assumption_blocks_are_read():
    output = ('File "./List.v", line 70, characters 0-40:\nWarning: Trying to mask the absolute name "List.In"!\n'
              '[masking-absolute-name,deprecated]\nFile "./List.v", line 143, characters 4-9:\nError: sauto failed\n')
    assert first_error(output) == (143, "sauto failed")
    report = "Section Variables:\nH\n: forall a : A, a = a\nA\n: Type\nAxioms:\nadm : 1 = 1\nlong :\n  forall x, x = x\n"
    assert parse_assumptions(report) == {"Section Variables": ["H", "A"], "Axioms": ["adm", "long"]}
    assert parse_assumptions("Closed under the global context") == {}
    located = parse_locate("Constant Audit.classic\nConstant Coq.Logic.Classical_Prop.classic\n"
                           "  (shorter name to refer to it in current context is Classical_Prop.classic)\n",
                           "classic")
    assert located == {"classic": "Audit.classic", "Classical_Prop.classic": "Coq.Logic.Classical_Prop.classic"}


def test_crlf_files_keep_their_line_ends(tmp_path):
    path = tmp_path / "Crlf.v"
    path.write_bytes(b"Require Import Arith.\r\nLemma t : 1 = 1.\r\nAdmitted.\r\nLemma u : True.\r\nAdmitted.\r\n")
    theorem = CoqDocument.read(path).theorem("t")
    assert theorem.written(["reflexivity"]).encode() == (
        b"Require Import Arith.\r\nLemma t : 1 = 1.\r\nProof.\r\n  reflexivity.\r\nQed.\r\n"
        b"Lemma u : True.\r\nAdmitted.\r\n")


def test_names_left_unresolved_are_located_as_printed_then_qualified():
    from prover.backends.coq.filecheck import _locate_plans

    located = {"Uint63.sub_spec": "Coq.Numbers.Cyclic.Int63.Uint63.sub_spec"}
    plans = _locate_plans(["lor", "PrimInt63.ltb"], located)
    assert plans[0] == ["lor", "PrimInt63.ltb"]  # `Locate lor` is a syntax error where lor is an infix
    assert set(plans[1]) == {"PrimInt63.ltb", "Uint63.lor", "PrimInt63.lor"}
    assert _locate_plans([], located) == []
