"""The model-free generator: a ranked list of tactics, the same for every goal.

Scores follow a Zipf law over the ranks, so the search prefers the higher-ranked tactics the way it
prefers a model's more likely ones.
"""
from __future__ import annotations

import math
from pathlib import Path

from .base import Candidate, Generator

# Ranked by how often each step helps on simple nat/Z/R statements and miniF2F-rocq.
COQ_PORTFOLIO = (
    "intros",
    "lia",
    "lra",
    "nia",
    "field",
    "ring",
    "nra",
    "reflexivity",
    "split",
    "subst",
    "sauto",
    "psatz R 2",
    "auto with *",
    "easy",
    "intuition",
    "simpl in *",
    "repeat split",
    "match goal with H : _ /\\ _ |- _ => destruct H end",
    "match goal with H : exists _, _ |- _ => destruct H end",
    "match goal with H : _ \\/ _ |- _ => destruct H end",
    "intros; subst; lia",
    "intros; nia",
    "intros; nra",
    "vm_compute; reflexivity",
    "field_simplify",
    "ring_simplify",
    "constructor",
    "tauto",
    "firstorder",
    "exfalso",
    "left",
    "right",
)

# miniF2F statements name their assumptions, `assms` names them all; `sledgehammer` runs the DSP
# heuristics and then Sledgehammer (see backends/isabelle/backend.py).
ISABELLE_PORTFOLIO = (
    "using assms by auto",
    "using assms by simp",
    "using assms by linarith",
    "using assms by (auto simp: field_simps)",
    "using assms by presburger",
    "using assms by arith",
    "by eval",
    "by auto",
    "by simp",
    "sledgehammer",
    "using assms by fastforce",
    "using assms by blast",
    "using assms by sos",
    "apply (auto simp: field_simps)",
    "apply auto",
    "apply simp",
    "apply (simp add: algebra_simps)",
    "apply (rule ccontr)",
)


# Lean 4 + Mathlib closers and openers, ranked for miniF2F-style algebra and number theory.
LEAN_PORTFOLIO = (
    "norm_num",
    "linarith",
    "nlinarith",
    "simp",
    "omega",
    "decide",
    "ring",
    "ring_nf",
    "field_simp",
    "positivity",
    "simp_all",
    "aesop",
    "intro",
    "intros",
    "constructor",
    "norm_num at *",
    "rfl",
    "tauto",
    "exact?",
)


PORTFOLIOS = {"coq": COQ_PORTFOLIO, "lean-repl": LEAN_PORTFOLIO, "leandojo": LEAN_PORTFOLIO,
              "isabelle": ISABELLE_PORTFOLIO}


class PortfolioGenerator(Generator):
    name = "portfolio"

    def __init__(self, tactics: list[str] | tuple[str, ...], name: str = "portfolio") -> None:
        seen: list[str] = []
        for t in tactics:
            t = t.strip()
            if t and t not in seen:
                seen.append(t)
        if not seen:
            raise ValueError("the tactic list is empty")
        self.name = name
        total = sum(1.0 / (i + 1) for i in range(len(seen)))
        self._candidates = [Candidate(t, math.log(1.0 / (i + 1) / total)) for i, t in enumerate(seen)]

    @classmethod
    def for_backend(cls, backend: str) -> "PortfolioGenerator":
        if backend not in PORTFOLIOS:
            raise ValueError(f"no built-in portfolio for backend {backend!r}; use --tactics FILE")
        return cls(PORTFOLIOS[backend])

    @classmethod
    def from_file(cls, path: str | Path) -> "PortfolioGenerator":
        """One tactic per line, best first; blank lines and lines starting with '#' are skipped."""
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        tactics = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        if not tactics:
            raise ValueError(f"{path}: no tactics in the file")
        return cls(tactics, name=f"tactics:{Path(path).name}")

    @property
    def tactics(self) -> list[str]:
        return [c.tactic for c in self._candidates]

    def generate(self, goals: str, n: int) -> list[Candidate]:
        return list(self._candidates[:n])
