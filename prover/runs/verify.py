"""Re-check every proved line of a results file from scratch, against the trusted dataset statement."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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


def verify_results(rf: ResultsFile, data_dir: str | None, options: BackendOptions,
                   on_verdict: Callable[[Verdict], None] | None = None) -> list[Verdict]:
    """One verdict per proved line. The statement comes from the dataset, never from the results file."""
    proved = [r for r in rf.results if r.get("proved")]
    verdicts: list[Verdict] = []
    by_backend: dict[str, list[dict]] = {}
    for r in proved:
        by_backend.setdefault(r["backend"], []).append(r)
    for backend_name, records in by_backend.items():
        system = SYSTEM_OF_BACKEND.get(backend_name)
        if system is None:
            raise ValueError(f"unknown backend {backend_name!r} in {rf.path}")
        problems = {(p.name, p.split): p for p in load(system, data_dir=data_dir,
                                                       names=sorted({r["name"] for r in records}))}
        backend = make_backend(backend_name, options)
        try:
            for r in records:
                problem = problems.get((r["name"], r["split"]))
                if problem is None:
                    v = Verdict(r["name"], r["split"], False, "not in the dataset's split")
                else:
                    check = backend.check(problem.theorem, list(r.get("tactics") or []))
                    v = Verdict(r["name"], r["split"], check.ok, check.message)
                verdicts.append(v)
                if on_verdict:
                    on_verdict(v)
        finally:
            backend.close()
    return verdicts
