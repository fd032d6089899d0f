"""Benchmark runs (`prover minif2f`, `prover bench coqlib`): load a suite, skip what a resumed file holds,
run, log, show progress."""
from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..backends.coq.hammer import HammerConfig
from .minif2f import default_data_dir, load
from .results import ResultsLog
from .runner import Job, LocalPool, OnlineSteps, RayPool, RunSpec, collect_versions

SYSTEM_OF_BACKEND = {"coq": "coq", "lean-repl": "lean4", "leandojo": "lean4", "isabelle": "isabelle"}


@dataclass(frozen=True)
class Suite:
    """A benchmark to run: its theorems as jobs, and what the results file records about its data."""

    name: str  # the results' "benchmark": minif2f | coqlib
    title: str  # the progress bar's label
    split: str | None
    jobs: list[Job]
    config: dict = field(default_factory=dict)  # data location, dataset commits, sample file, ...


def minif2f_suite(backend: str, split: str | None, names: list[str] | None, limit: int | None,
                  data_dir: str | None) -> Suite:
    base = Path(data_dir) if data_dir else default_data_dir()
    jobs = [Job.of(p) for p in load(SYSTEM_OF_BACKEND[backend], split=split, names=names, data_dir=base, limit=limit)]
    commits = sorted({j.source.get("commit") for j in jobs if j.source.get("commit")})
    return Suite("minif2f", "miniF2F", split, jobs, {"data_dir": str(base.resolve()), "dataset_commits": commits})


def coqlib_suite(backend: str, split: str, names: list[str] | None, limit: int | None) -> Suite:
    from . import coqlib

    if backend != "coq":
        raise ValueError(f"the coqlib benchmark is Coq's libraries: --backend coq, not {backend}")
    problems = coqlib.load(split, names, limit)
    jobs = [Job(p.entry.name, split, p.entry.library, p.theorem, p.source) for p in problems]
    sample = coqlib.SAMPLE_FILE
    return Suite("coqlib", "coqlib", split, jobs,
                 {"sample": sample.name, "sample_sha1": hashlib.sha1(sample.read_bytes()).hexdigest(),
                  "coq_root": str(coqlib.coq_root())})


def run_config(spec: RunSpec, suite: Suite, workers: int, ray: str | None) -> dict:
    tactics_sha256 = None
    if spec.tactics_file:  # the same path with other tactics in it is another configuration
        tactics_sha256 = hashlib.sha256(Path(spec.tactics_file).read_bytes()).hexdigest()
    return {"benchmark": suite.name, "backend": spec.backend, "split": suite.split, "generator": spec.generator,
            "tactics_file": spec.tactics_file, "tactics_sha256": tactics_sha256, "model": spec.model.model,
            "model_options": asdict(spec.model),
            "budgets": spec.budgets(), "seed": spec.seed, "online": spec.online, "learn_file": spec.learn_file,
            "trees": spec.trees, "versions": spec.versions, **suite.config,
            "workers": workers, "hammer_threads": (spec.backend_options.hammer or HammerConfig()).threads, "ray": ray,
            "started_at": time.time(), "search": asdict(spec.search)}


def run_benchmark(spec: RunSpec, suite: Suite, out: str, workers: int, resume: bool, ray: str | None,
                  console: Console, quiet: bool) -> dict:
    """Run a suite's jobs (those a resumed file does not hold yet), log each result, show progress."""
    jobs = suite.jobs
    spec = RunSpec(**{**spec.__dict__, "versions": collect_versions(spec.backend, spec.backend_options)})
    counts = {"proved": 0, "failed": 0}
    with ResultsLog(out, run_config(spec, suite, workers, ray), resume) as log:
        done = log.existing.done
        todo = [j for j in jobs if (j.name, j.split) not in done]
        for r in log.existing.results:
            if (r["name"], r.get("split", "")) in done:  # not the lines to run again
                counts["proved" if r.get("proved") else "failed"] += 1
        columns = (TextColumn(f"[bold]{suite.title} {{task.fields[split]}}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("[green]{task.fields[proved]} proved[/] · [red]{task.fields[failed]} not[/]"),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
        with Progress(*columns, console=console, disable=quiet) as bar:
            task = bar.add_task("run", total=len(jobs), completed=len(jobs) - len(todo),
                                split=suite.split or "all", **counts)

            def on_result(record: dict) -> None:
                log.append(record)
                counts["proved" if record.get("proved") else "failed"] += 1
                bar.update(task, advance=1, **counts)
                if quiet:
                    status = "proved" if record.get("proved") else record.get("failure_reason")
                    console.print(f"{record['name']}: {status} ({record['elapsed']:.1f} s)", highlight=False)

            pool = RayPool(spec, workers, None if ray == "local" else ray) if ray else LocalPool(spec, workers)
            pool.run(todo, on_result, OnlineSteps(spec.online, log.existing.results))
    return {"total": len(jobs), "ran": len(todo), **counts}
