"""Prompt formats: the Lean 4 prompt is Llemma's, the others keep its frame; stop and cut."""
import pytest

from prover.models.prompts import COQ, FORMATS, ISABELLE, LEAN4, format_for

# Llemma's Lean 4 few-shot prompt, typed in again here so that the module's copy is checked against it.
LLEMMA_LEAN4 = """Given the Lean 4 tactic state, suggest a next tactic.
Here are some examples:

Tactic state:
---
α : Type u_1
r : α → α → Prop
inst✝¹ : DecidableEq α
inst✝ : IsIrrefl α r
⊢ CutExpand r ≤ InvImage (Finsupp.Lex (rᶜ ⊓ fun x x_1 => x ≠ x_1) fun x x_1 => x < x_1) ↑toFinsupp
---
Next tactic:
---
rintro s t ⟨u, a, hr, he⟩
---

Tactic state:
---
ι : Type u_1
I✝ J✝ : Box ι
x y : ι → ℝ
I J : WithBot (Box ι)
⊢ ↑I = ↑J ↔ I = J
---
Next tactic:
---
simp only [Subset.antisymm_iff, ← le_antisymm_iff, withBotCoe_subset_iff]
---

Tactic state:
---
m n : ℕ
h : Nat.coprime m n
⊢ Nat.gcd m n = 1
---
Next tactic:
---
rw [← h.gcd_eq_one]
---

Tactic state:
---
%s
---
Next tactic:
---"""

STATE = "a b : ℕ\nh : a = b\n⊢ b = a"


def test_lean_prompt_is_llemmas_verbatim():
    assert LEAN4.prompt(STATE) == LLEMMA_LEAN4 % STATE
    assert format_for("lean-repl") is LEAN4 and format_for("leandojo") is LEAN4


@pytest.mark.parametrize("fmt", [COQ, ISABELLE])
def test_other_formats_keep_the_frame_with_three_examples(fmt):
    text = fmt.prompt("GOALS")
    assert text.count("Tactic state:\n---\n") == 4
    assert text.count("\n---\nNext tactic:\n---\n") == 3  # the three worked examples
    assert text.endswith("Tactic state:\n---\nGOALS\n---\nNext tactic:\n---")
    assert fmt.prefix.splitlines()[0].startswith("Given the ")
    assert LEAN4.suffix == fmt.suffix and fmt.stop == "---"


def test_backends_map_to_their_format():
    assert format_for("coq") is COQ and format_for("isabelle") is ISABELLE
    assert set(FORMATS) == {"lean4", "coq", "isabelle"}
    with pytest.raises(ValueError, match="no prompt format"):
        format_for("hol-light")


def test_cut_keeps_the_text_before_the_stop_line():
    assert COQ.cut("\n  lia \n---\nring\n---") == "lia"
    assert COQ.cut("\nsimpl; lia") == "simpl; lia"  # no stop (EOS or max tokens): all of it
    assert COQ.cut("\n---") == ""
    assert COQ.cut(COQ.completion("  nra ")) == "nra"
