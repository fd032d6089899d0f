"""Prompt formats: the text a causal LM reads to propose the next tactic, one format per backend.

Every format uses the frame of Llemma's Lean 4 evaluation: a one-line instruction, three worked
examples, then the state to continue, each part fenced by lines holding ``---``. The model writes the
tactic after the last fence and ends it with another ``---`` line, where generation stops.

The Lean 4 text is Llemma's few-shot prompt verbatim. The Rocq and Isabelle examples are written for
this project; their states are printed the way the backends print them (the Coq ones by coqtop 8.16
through ``CoqBackend``; the Isabelle ones as the bridge reports them, symbols in their ASCII form), so a
model sees the same shape in the examples and in the search.
"""
from __future__ import annotations

from dataclasses import dataclass

STOP = "---"


@dataclass(frozen=True)
class PromptFormat:
    """``prefix + state + suffix`` is the prompt; ``prefix`` is shared by every state (and cached)."""

    name: str
    prefix: str
    suffix: str
    stop: str = STOP

    def prompt(self, state: str) -> str:
        return self.prefix + state + self.suffix

    def completion(self, tactic: str) -> str:
        """What a model should write after the prompt for ``tactic``: the training target."""
        return "\n" + tactic.strip() + "\n" + self.stop

    def cut(self, text: str) -> str:
        """The tactic in a model's continuation: everything before the stop sequence, stripped."""
        i = text.find(self.stop)
        return (text if i < 0 else text[:i]).strip()


# Every format ends the same way: the model writes the tactic after this and stops at "---".
_NEXT_TACTIC = "\n---\nNext tactic:\n---"

LEAN4 = PromptFormat(
    "lean4",
    prefix="""Given the Lean 4 tactic state, suggest a next tactic.
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
""",
    suffix=_NEXT_TACTIC,
)

COQ = PromptFormat(
    "coq",
    prefix="""Given the Rocq tactic state, suggest a next tactic.
Here are some examples:

Tactic state:
---
1 goal
n : nat
IHn : n + 0 = n
============================
S n + 0 = S n
---
Next tactic:
---
simpl; rewrite IHn; reflexivity
---

Tactic state:
---
1 goal
x, y : R
H : 0 < x
H0 : x < y
============================
x * x < y * y
---
Next tactic:
---
nra
---

Tactic state:
---
1 goal
============================
forall a b : Z, a = 2 * b -> Z.even a = true
---
Next tactic:
---
intros a b H
---

Tactic state:
---
""",
    suffix=_NEXT_TACTIC,
)

ISABELLE = PromptFormat(
    "isabelle",
    prefix=r"""Given the Isabelle proof state, suggest a next proof step.
Here are some examples:

Tactic state:
---
proof (prove)
goal (1 subgoal):
 1. (\<Sum>i<n. 2 * i + 1) = n\<^sup>2
---
Next tactic:
---
apply (induct n)
---

Tactic state:
---
proof (prove)
goal (1 subgoal):
 1. 0 < x \<Longrightarrow> x / x = (1::real)
---
Next tactic:
---
by simp
---

Tactic state:
---
proof (prove)
goal (1 subgoal):
 1. a + b = 10 \<Longrightarrow> a - b = 2 \<Longrightarrow> a = (6::int)
---
Next tactic:
---
by linarith
---

Tactic state:
---
""",
    suffix=_NEXT_TACTIC,
)

FORMATS = {"lean4": LEAN4, "coq": COQ, "isabelle": ISABELLE}
# Backend names (present and planned) and the format each one reads.
BACKEND_FORMATS = {"coq": "coq", "rocq": "coq", "lean4": "lean4", "lean": "lean4", "lean-repl": "lean4",
                   "lean_repl": "lean4", "leandojo": "lean4", "isabelle": "isabelle"}


def format_for(backend: str) -> PromptFormat:
    """The prompt format a backend's states are written in."""
    try:
        return FORMATS[BACKEND_FORMATS[backend]]
    except KeyError:
        raise ValueError(f"no prompt format for backend {backend!r} "
                         f"(known: {', '.join(sorted(BACKEND_FORMATS))})") from None
