import pytest

from prover.backends.coq.text import (CoqSyntaxError, check_tactic, find_theorem, split_sentences,
                                      strip_comments, theorem_name)

SOURCE = """(* header comment with Admitted. and Qed. inside *)
Require Import Reals. Open Scope R_scope.
Definition f (x : R) := x * 2. (* trailing. *)
Theorem foo : forall x,
  f x = 2 * x.
Proof.
  intros. - unfold f. ring.
Admitted.
Lemma bar : True. Proof. exact I. Qed.
"""


def test_sentences_skip_comments_and_keep_bullets():
    clean = [s.clean for s in split_sentences(SOURCE)]
    assert clean[:4] == ["Require Import Reals.", "Open Scope R_scope.", "Definition f (x : R) := x * 2.",
                         "Theorem foo : forall x, f x = 2 * x."]
    assert "-" in clean and "Admitted." in clean
    assert all("Qed. inside" not in c for c in clean)


def test_qualified_names_and_strings_do_not_end_sentences():
    s = split_sentences('Check Nat.add_comm. Notation "x .+ y" := (x + y) (at level 50).')
    assert [x.clean for x in s] == ["Check Nat.add_comm.", 'Notation "x .+ y" := (x + y) (at level 50).']


def test_unterminated_input_is_an_error():
    with pytest.raises(CoqSyntaxError):
        split_sentences("Theorem t : True")
    with pytest.raises(CoqSyntaxError):
        strip_comments("(* open")


def test_find_theorem_spans_header_statement_and_proof():
    found = find_theorem(SOURCE, "foo")
    assert found.header.endswith("(* trailing. *)\n")
    assert found.statement == "Theorem foo : forall x,\n  f x = 2 * x."
    assert SOURCE[found.statement_end:found.proof_end].strip().endswith("Admitted.")
    bar = find_theorem(SOURCE, "bar")
    assert SOURCE[bar.statement_end:bar.proof_end].strip() == "Proof. exact I. Qed."
    with pytest.raises(KeyError):
        find_theorem(SOURCE, "baz")


def test_theorem_name_forms():
    assert theorem_name("Theorem amc12a_2016_p3:\n forall x, x = x.") == "amc12a_2016_p3"
    assert theorem_name("Lemma x' (n : nat) : n = n.") == "x'"
    assert theorem_name("Definition d := 1.") is None


@pytest.mark.parametrize("tactic,expected", [
    ("intros", "intros."),
    ("  lia.  ", "lia."),
    ("intros; subst;\n  lia", "intros; subst; lia."),
    ("rewrite Nat.add_comm", "rewrite Nat.add_comm."),
    ("apply (f_equal (fun x => x + 1)).", "apply (f_equal (fun x => x + 1))."),
])
def test_tactics_accepted_as_one_line_sentence(tactic, expected):
    assert check_tactic(tactic) == (expected, "")


@pytest.mark.parametrize("tactic", [
    "", "admit", "give_up", "Admitted.", "Qed", "lia. Qed.", "intros.\nQed.", "Abort.", "Axiom x : False.",
    "Unset Guard Checking.", "Require Import Classical.", "Drop.", "exact_no_check I",
    "try admit", "idtac. idtac.", "- lia", "{", "(* hidden *) lia", 'idtac "x"', "rewrite H..",
    "Set Printing All", "Ltac x := idtac.", "lia. Admitted.", "vm_cast_no_check I",
])
def test_tactics_refused(tactic):
    sentence, why = check_tactic(tactic)
    assert sentence is None and why


def test_an_ellipsis_ends_a_sentence_and_a_double_dot_does_not():
    text = 'Proof with auto. split... - intros... Notation "[ x ; .. ; y ]" := (cons x .. (cons y nil) ..). Qed.'
    assert [s.clean for s in split_sentences(text)] == [
        "Proof with auto.", "split...", "-", "intros...",
        'Notation "[ x ; .. ; y ]" := (cons x .. (cons y nil) ..).', "Qed."]


def test_a_selector_before_a_brace_is_a_sentence_of_its_own():
    text = "case lebP; intros hle.\n  2: {\n    symmetry. }\n  [x]: { auto. }\n  1-2, 4: { a. }"
    assert [s.clean for s in split_sentences(text)] == [
        "case lebP; intros hle.", "2: {", "symmetry.", "}", "[x]: {", "auto.", "}", "1-2, 4: {", "a.", "}"]
    assert check_tactic("2: {")[0] is None


def test_a_bullet_touching_its_tactic_is_still_a_bullet():
    text = "split.\n  ++now apply H.\n  --rewrite H.\n    **auto.\n  - exact I."
    assert [s.clean for s in split_sentences(text)] == [
        "split.", "++", "now apply H.", "--", "rewrite H.", "**", "auto.", "-", "exact I."]
