"""Re-check every proved line of a results file from scratch, against the trusted statement.

The statement never comes from the results file: for miniF2F it is the dataset's, for the coqlib
benchmark the installed library file itself (the proof goes in place of the original one and the
whole file is compiled).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..backends.base import Theorem
from ..components import BackendOptions, make_backend
from .minif2f import load
from .results import ResultsFile

SYSTEM_OF_BACKEND = {"coq": "coq", "lean-repl": "lean4", "leandojo": "lean4", "isabelle": "isabelle"}


@dataclass(frozen=True)
class Verdict:
    name: str
    split: str
    ok: bool
    message: str


def benchmark_of(rf: ResultsFile) -> str:
    return (rf.config or {}).get("benchmark", "minif2f")


def trusted_theorems(benchmark: str, backend_name: str, names: list[str],
                     data_dir: str | None) -> dict[tuple[str, str], Theorem]:
    """The trusted theorem of each name that the benchmark knows, by (name, split)."""
    if benchmark == "coqlib":
        from . import coqlib

        known = {e.name for e in coqlib.read_sample()}
        wanted = [n for n in names if n in known]
        if not wanted:
            return {}
        return {(p.entry.name, "test"): p.theorem for p in coqlib.load("test", wanted)}
    if benchmark != "minif2f":
        raise ValueError(f"unknown benchmark {benchmark!r}")
    system = SYSTEM_OF_BACKEND.get(backend_name)
    if system is None:
        raise ValueError(f"unknown backend {backend_name!r}")
    return {(p.name, p.split): p.theorem for p in load(system, data_dir=data_dir, names=names)}


def verify_results(rf: ResultsFile, data_dir: str | None, options: BackendOptions,
                   on_verdict: Callable[[Verdict], None] | None = None) -> list[Verdict]:
    """One verdict per proved line."""
    proved = [r for r in rf.results if r.get("proved")]
    verdicts: list[Verdict] = []
    by_backend: dict[str, list[dict]] = {}
    for r in proved:
        by_backend.setdefault(r["backend"], []).append(r)
    for backend_name, records in by_backend.items():
        if backend_name not in SYSTEM_OF_BACKEND:
            raise ValueError(f"unknown backend {backend_name!r} in {rf.path}")
        theorems = trusted_theorems(benchmark_of(rf), backend_name, sorted({r["name"] for r in records}), data_dir)
        backend = make_backend(backend_name, options)
        try:
            for r in records:
                theorem = theorems.get((r["name"], r["split"]))
                if theorem is None:
                    v = Verdict(r["name"], r["split"], False, "not in the benchmark's split")
                else:
                    check = backend.check(theorem, list(r.get("tactics") or []))
                    v = Verdict(r["name"], r["split"], check.ok, check.message)
                verdicts.append(v)
                if on_verdict:
                    on_verdict(v)
        finally:
            backend.close()
    return verdicts
