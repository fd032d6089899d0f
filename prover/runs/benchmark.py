"""`prover minif2f`: load the benchmark, skip what a resumed file holds, run, log, show progress."""
from __future__ import annotations

import hashlib
import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .minif2f import default_data_dir, load
from .results import ResultsLog
from .runner import Job, LocalPool, RayPool, RunSpec, collect_versions

SYSTEM_OF_BACKEND = {"coq": "coq", "lean-repl": "lean4", "leandojo": "lean4", "isabelle": "isabelle"}


def run_config(spec: RunSpec, split: str | None, data_dir: Path, jobs: list[Job], workers: int,
               ray: str | None) -> dict:
    commits = sorted({j.source.get("commit") for j in jobs if j.source.get("commit")})
    tactics_sha256 = None
    if spec.tactics_file:  # the same path with other tactics in it is another configuration
        tactics_sha256 = hashlib.sha256(Path(spec.tactics_file).read_bytes()).hexdigest()
    return {"backend": spec.backend, "split": split, "generator": spec.generator,
            "tactics_file": spec.tactics_file, "tactics_sha256": tactics_sha256, "model": spec.model.model,
            "model_options": asdict(spec.model), "budgets": spec.budgets(), "seed": spec.seed,
            "versions": spec.versions, "data_dir": str(Path(data_dir).resolve()), "dataset_commits": commits,
            "workers": workers, "ray": ray, "started_at": time.time(),
            "search": asdict(spec.search)}


def run_minif2f(spec: RunSpec, split: str | None, names: list[str] | None, limit: int | None,
                data_dir: str | None, out: str, workers: int, resume: bool, ray: str | None,
                console: Console, quiet: bool) -> dict:
    system = SYSTEM_OF_BACKEND[spec.backend]
    base = Path(data_dir) if data_dir else default_data_dir()
    problems = load(system, split=split, names=names, data_dir=base, limit=limit)
    jobs = [Job.of(p) for p in problems]
    spec = RunSpec(**{**spec.__dict__, "versions": collect_versions(spec.backend, spec.backend_options)})
    counts = {"proved": 0, "failed": 0}
    with ResultsLog(out, run_config(spec, split, base, jobs, workers, ray), resume) as log:
        done = log.existing.done
        todo = [j for j in jobs if (j.name, j.split) not in done]
        for r in log.existing.results:
            counts["proved" if r.get("proved") else "failed"] += 1
        columns = (TextColumn("[bold]miniF2F {task.fields[split]}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("[green]{task.fields[proved]} proved[/] · [red]{task.fields[failed]} not[/]"),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
        with Progress(*columns, console=console, disable=quiet) as bar:
            task = bar.add_task("run", total=len(jobs), completed=len(jobs) - len(todo), split=split or "all",
                                **counts)

            def on_result(record: dict) -> None:
                log.append(record)
                counts["proved" if record.get("proved") else "failed"] += 1
                bar.update(task, advance=1, **counts)
                if quiet:
                    status = "proved" if record.get("proved") else record.get("failure_reason")
                    console.print(f"{record['name']}: {status} ({record['elapsed']:.1f} s)", highlight=False)

            pool = RayPool(spec, workers, None if ray == "local" else ray) if ray else LocalPool(spec, workers)
            pool.run(todo, on_result)
    return {"total": len(jobs), "ran": len(todo), **counts}
