"""Prompts for Isabelle: the stepwise goal prompt, and draft-sketch-prove (DSP) few-shot prompts.

Stepwise: the model reads the proof state exactly as the bridge reports it (Isabelle's own print of
the state, ``proof (prove)`` / ``goal (N subgoals):`` / `` 1. ...``, symbols in their ASCII form
``\\<forall>``) and writes one proof step (``apply ...``, ``using assms by ...``, ``have ...``).

DSP (Jiang et al. 2023, as Llemma evaluated Isabelle): the informal statement and proof from the
benchmark record and the formal statement go into a few-shot prompt; the model writes a structured
Isar proof whose gaps are ``sledgehammer``, informal steps as ``(* ... *)`` comments between the
formal lines, as in the papers; ``prover.search.dsp`` fills each gap with the bridge's sledgehammer
step and runs the full check. ``DSP_FORMAT`` is the same prompt as a ``PromptFormat`` (the shared
few-shot part is its prefix, generation stops at the next "Informal:"), so any generator built on
prompt formats (``HFGenerator``) samples drafts: ``sample_drafts``. The examples below are written
for this project.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Generator
from .prompts import PromptFormat


def step_prompt(goals: str) -> str:
    """The stepwise prompt: the proof state, then the model writes the next step."""
    return f"[GOAL]\n{goals.strip()}\n[PROOFSTEP]\n"


@dataclass(frozen=True)
class DspExample:
    informal_statement: str
    informal_proof: str
    formal_statement: str
    sketch: str


DSP_EXAMPLES = (
    DspExample(
        "Solve $3x + 2 = 11$ for $x$. Show that $x = 3$.",
        "Subtracting 2 from both sides gives $3x = 9$; dividing by 3 gives $x = 3$.",
        'theorem linear_example:\n  fixes x :: real\n  assumes h0: "3 * x + 2 = 11"\n  shows "x = 3"',
        'proof -\n  (* Subtracting 2 from both sides gives 3x = 9. *)\n  have "3 * x = 9" using h0 sledgehammer\n'
        '  (* Dividing by 3 gives x = 3. *)\n  then show ?thesis sledgehammer\nqed',
    ),
    DspExample(
        "What is the remainder when $2^{10}$ is divided by 7? Show that it is 2.",
        "$2^{10} = 1024 = 7 \\cdot 146 + 2$, so the remainder is 2.",
        'theorem remainder_example:\n  shows "(2::nat)^10 mod 7 = 2"',
        'proof -\n  (* 2^10 = 1024 *)\n  have "(2::nat)^10 = 1024" sledgehammer\n'
        '  (* 1024 = 7 * 146 + 2 *)\n  moreover have "(1024::nat) mod 7 = 2" sledgehammer\n'
        '  ultimately show ?thesis sledgehammer\nqed',
    ),
    DspExample(
        "Let $a$ and $b$ be real numbers with $a + b = 5$ and $a - b = 1$. Show that $a = 3$.",
        "Adding the two equations gives $2a = 6$, hence $a = 3$.",
        'theorem system_example:\n  fixes a b :: real\n  assumes h0: "a + b = 5" and h1: "a - b = 1"\n  shows "a = 3"',
        'proof -\n  (* Adding the two equations gives 2a = 6. *)\n  have "2 * a = 6" using h0 h1 sledgehammer\n'
        '  (* hence a = 3 *)\n  then show ?thesis sledgehammer\nqed',
    ),
)


def _comment(text: str) -> str:
    """Informal text inside an Isabelle comment: it must not close the comment early."""
    return text.strip().replace("*)", "* )")


def dsp_block(informal_statement: str, informal_proof: str, formal_statement: str, sketch: str = "") -> str:
    head = (f"Informal:\n(*### Problem\n\n{_comment(informal_statement)}\n\n### Solution\n\n"
            f"{_comment(informal_proof)}*)\n\nFormal:\n{formal_statement.strip()}\n")
    return head + (f"{sketch.strip()}\n" if sketch else "")


def dsp_state(record: dict) -> str:
    """The per-problem part of the DSP prompt: informal statement and proof, formal statement."""
    for key in ("informal_statement", "formal_statement"):
        if not record.get(key):
            raise ValueError(f"the record has no {key}")
    return dsp_block(record["informal_statement"], record.get("informal_proof") or "", record["formal_statement"])


def dsp_format(examples: tuple[DspExample, ...] = DSP_EXAMPLES) -> PromptFormat:
    """The DSP prompt as a prompt format: ``prompt(dsp_state(record)) == dsp_prompt(record)``."""
    shots = [dsp_block(e.informal_statement, e.informal_proof, e.formal_statement, e.sketch) for e in examples]
    return PromptFormat("isabelle-dsp", prefix="\n\n".join(shots) + "\n\n", suffix="", stop="\n\nInformal:")


DSP_FORMAT = dsp_format()


def dsp_prompt(record: dict, examples: tuple[DspExample, ...] = DSP_EXAMPLES) -> str:
    """Few-shot DSP prompt for one isabelle.jsonl record; the model continues with the sketch."""
    return dsp_format(examples).prompt(dsp_state(record))


def sample_drafts(generator: Generator, record: dict, n: int) -> list[str]:
    """``n`` sketches from a generator that reads ``DSP_FORMAT`` prompts (e.g. an ``HFGenerator``
    built with it and sampling temperatures), best first; ``prover.search.dsp.prove_drafts`` runs them."""
    return [c.tactic for c in generator.generate(dsp_state(record), n)]
