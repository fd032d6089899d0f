"""miniF2F records in Lean 4, Isabelle and Rocq, read from the shared JSONL files.

For Rocq on Debian 12's Coq 8.16, the fixes measured in ``rocq_compat.json`` (header rewrites, the
complex-power shim, statement-level axioms) are applied here in code; the data stays untouched.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..backends.base import Theorem

SYSTEM_FILES = {"coq": "rocq.jsonl", "lean4": "lean4.jsonl", "isabelle": "isabelle.jsonl"}
SPLITS = ("valid", "test")
SOURCES = ("aime", "amc", "imo", "mathd_algebra", "mathd_numbertheory", "algebra", "numbertheory",
           "induction")


@dataclass(frozen=True)
class Problem:
    name: str
    split: str
    system: str  # coq | lean4 | isabelle
    theorem: Theorem
    source: dict = field(default_factory=dict)  # upstream repo, commit, path
    record: dict = field(default_factory=dict, repr=False)  # the raw record (informal text, ...)

    @property
    def category(self) -> str:
        return problem_source(self.name)


def problem_source(name: str) -> str:
    """The competition or topic a miniF2F name comes from (the report groups by it)."""
    for prefix in ("mathd_algebra", "mathd_numbertheory", "aime", "amc", "imo", "algebra",
                   "numbertheory", "induction"):
        if name.startswith(prefix):
            return prefix
    return "other"


def default_data_dir() -> Path:
    """``$PROVER_MINIF2F_DIR``, else ``shared/data/minif2f`` beside the project checkout or the cwd."""
    env = os.environ.get("PROVER_MINIF2F_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for base in (here.parents[2].parent, Path.cwd().parent, Path.cwd()):
        candidate = base / "shared" / "data" / "minif2f"
        if candidate.is_dir():
            return candidate
    return here.parents[2].parent / "shared" / "data" / "minif2f"


def load_compat(data_dir: Path) -> dict:
    return json.loads((data_dir / "rocq_compat.json").read_text(encoding="utf-8"))


def _coq_theorem(rec: dict, compat: dict) -> Theorem:
    header = rec["header"]
    for rw in compat.get("header_rewrites", []):
        header = header.replace(rw["from"], rw["to"])
    shim = compat.get("complex_pow_shim", {})
    if rec["name"] in shim.get("names", ()):
        anchor = shim["insert_after"]
        header = header.replace(anchor, anchor + "\n" + shim["text"], 1)
    axioms = tuple(compat.get("statement_axioms", {}).get(rec["name"], ()))
    return Theorem(rec["name"], rec["formal_statement"], header, axioms)


def _lean_theorem(rec: dict) -> Theorem:
    return Theorem(rec["name"], rec["formal_statement"], rec["header"])


def _isabelle_theorem(rec: dict) -> Theorem:
    # The header holds the theory imports line, then the auxiliary definitions (the preamble).
    header = f"imports {rec['imports']}\n{rec.get('preamble') or ''}".rstrip() + "\n"
    return Theorem(rec["name"], rec["formal_statement"], header)


def load(system: str, split: str | None = None, names: list[str] | None = None,
         data_dir: str | Path | None = None, limit: int | None = None) -> list[Problem]:
    """Records of one system, optionally one split and/or named ones, in file order."""
    if system not in SYSTEM_FILES:
        raise ValueError(f"unknown system {system!r} (one of {', '.join(SYSTEM_FILES)})")
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (one of {', '.join(SPLITS)})")
    base = Path(data_dir) if data_dir else default_data_dir()
    path = base / SYSTEM_FILES[system]
    if not path.is_file():
        raise ValueError(f"miniF2F data not found: {path} (set --data or PROVER_MINIF2F_DIR)")
    compat = load_compat(base) if system == "coq" and (base / "rocq_compat.json").is_file() else {}
    wanted = set(names) if names else None
    problems = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            if split is not None and rec["split"] != split:
                continue
            if wanted is not None and rec["name"] not in wanted:
                continue
            if system == "coq":
                theorem = _coq_theorem(rec, compat)
            elif system == "lean4":
                theorem = _lean_theorem(rec)
            else:
                theorem = _isabelle_theorem(rec)
            problems.append(Problem(rec["name"], rec["split"], system, theorem, rec.get("source", {}), rec))
    if wanted is not None:
        missing = wanted - {p.name for p in problems}
        if missing:
            raise ValueError(f"not in the data: {', '.join(sorted(missing))}")
    return problems[:limit] if limit else problems
