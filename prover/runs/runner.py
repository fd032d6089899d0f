"""Benchmark runs: theorems fanned out to workers, results back to the driver, which alone writes.

Locally, each of N worker processes owns its prover process and working directory; the driver
enforces the per-theorem wall clock too, stopping an overrunning worker by its process group. With
Ray (``--ray local`` or ``--ray-address``), the same jobs run as Ray actors; Ray is imported only then.
"""
from __future__ import annotations

import collections
import multiprocessing.connection
import os
import platform
import random
import subprocess
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from .. import __version__
from ..backends.base import Theorem
from ..backends.coq.hammer import HammerConfig
from ..backends.process import WorkerProcess, stop_workers
from ..components import (MODEL_GENERATORS, BackendOptions, ModelOptions, make_backend, make_generator,
                          make_scorer_for)
from ..models.base import GeneratorUnavailable
from ..search.best_first import SearchConfig, search
from .minif2f import Problem



@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to rebuild the same backend, generator and budgets."""

    backend: str
    generator: str = "portfolio"
    tactics_file: str | None = None
    search: SearchConfig = field(default_factory=SearchConfig)
    backend_options: BackendOptions = field(default_factory=BackendOptions)
    seed: int = 0
    versions: dict = field(default_factory=dict)
    grace: float = 30.0  # beyond search timeout + check timeout before the driver stops a worker
    model: ModelOptions = field(default_factory=ModelOptions)  # for --generator hf|mix
    online: bool = False  # proofs found earlier in the run join the generator before later theorems
    trees: str | None = None  # directory for each theorem's search tree (node scorer training data)
    learn_file: bool = False  # the proofs before a file theorem join the generator for that theorem
    # Where the served model is (a SocketAddress or a RayModelAddress); None: each worker loads its own.
    service: object | None = None

    @property
    def deadline(self) -> float:
        return self.search.timeout + self.backend_options.check_timeout + self.grace

    def budgets(self) -> dict:
        out = {**asdict(self.search), "check_timeout": self.backend_options.check_timeout,
               "memory_mb": self.backend_options.memory_mb}
        if out["tactic_allowance"] is None:  # no limit: recorded as files written before it existed
            del out["tactic_allowance"]
        if self.backend == "coq":  # the hammer step's limits; its thread count follows the workers, as
            # the workers themselves, and is recorded apart (hammer_threads), never compared by --resume
            hammer = asdict(self.backend_options.hammer or HammerConfig())
            hammer.pop("threads")
            out["hammer"] = hammer
        return out


@dataclass(frozen=True)
class Job:
    name: str
    split: str
    category: str
    theorem: Theorem
    source: dict
    learn: tuple[tuple[str, str], ...] = ()  # online learning: proof steps found since this worker's last job

    @classmethod
    def of(cls, problem: Problem) -> "Job":
        return cls(problem.name, problem.split, problem.category, problem.theorem, problem.source)


def git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def collect_versions(backend_name: str, options: BackendOptions) -> dict:
    backend = make_backend(backend_name, options)
    try:
        info = backend.info()
    finally:
        backend.close()
    return {"prover": __version__, "git_commit": git_commit(), backend_name: info.version,
            "python": platform.python_version()}


def base_record(job: Job, spec: RunSpec, generator_name: str, model: str | None) -> dict:
    return {"name": job.name, "split": job.split, "category": job.category, "backend": spec.backend,
            "generator": generator_name, "model": model, "budgets": spec.budgets(), "seed": spec.seed,
            "versions": spec.versions, "dataset": job.source, "host": platform.node()}


def prove_job(job: Job, spec: RunSpec, backend, generator) -> dict:
    """Search one theorem; the record carries everything needed to reproduce and re-verify it."""
    record = base_record(job, spec, generator.name, getattr(generator, "model_id", None))
    start = time.monotonic()
    if job.learn:
        generator.learn(list(job.learn))
    mark = None
    if spec.learn_file:
        from ..learning.context import earlier_proof_steps, learn_context

        context = earlier_proof_steps(job.theorem)
        if context is not None:
            mark = generator.checkpoint()
            record.update(learn_context(generator, context))
    try:
        result = search(job.theorem, backend, generator, spec.search, scorer=make_scorer_for(spec.search))
        if spec.trees and result.tree is not None:
            from ..learning.trees import save_tree
            save_tree(spec.trees, job.name, job.split, result.proved, result.tree)
        out = result.to_dict()
        out.pop("theorem")
        record.update(out)
        record["verified"] = result.proved  # a proof is only reported after the full check
    except GeneratorUnavailable as e:  # the model's service died: no verdict on this theorem
        record.update(proved=False, verified=False, proof="", tactics=[], expansions=0, tactic_calls=0,
                      elapsed=time.monotonic() - start, failure_reason=GENERATOR_UNAVAILABLE,
                      failure_message=str(e))
    except Exception as e:  # a bug or a backend failure must not stop the whole run
        record.update(proved=False, verified=False, proof="", tactics=[], expansions=0, tactic_calls=0,
                      elapsed=time.monotonic() - start, failure_reason="crash",
                      failure_message=f"{type(e).__name__}: {e}")
    finally:
        if mark is not None:
            generator.rollback(mark)
    record["worker_pid"] = os.getpid()
    record["finished_at"] = time.time()
    return record


class RunStopped(RuntimeError):
    """The run stopped before its last theorem (the generator service died); what ran is logged."""


GENERATOR_UNAVAILABLE = "generator_unavailable"  # failure reason: --resume runs such theorems again


def _stop_message(record: dict, left: int) -> str:
    plural = "" if left == 1 else "s"
    return f"stopped: {record['failure_message']}; {left} theorem{plural} not run (run again with --resume)"


def worker_generator(spec: RunSpec):
    """The worker's generator: a client of the served model when there is one."""
    served = spec.service.connect() if spec.service is not None else None
    return make_generator(spec.generator, spec.backend, spec.tactics_file, spec.model, served)


def overrun_record(job: Job, spec: RunSpec, elapsed: float, reason: str, message: str) -> dict:
    record = base_record(job, spec, spec.generator, None)
    record.update(proved=False, verified=False, proof="", tactics=[], expansions=0, tactic_calls=0,
                  elapsed=elapsed, failure_reason=reason, failure_message=message, worker_pid=None,
                  finished_at=time.time())
    return record


class OnlineSteps:
    """Online learning across workers: the driver keeps every verified proof's steps in finding order
    and hands each worker, with its next job, the steps it has not seen yet (its own proofs included)."""

    def __init__(self, enabled: bool, known: list[dict] = ()) -> None:
        self.enabled = enabled
        self.steps: list[tuple[str, str]] = []
        self._seen: dict[object, int] = {}
        for record in known:  # a resumed run starts from what the earlier part found
            self.add(record)

    def add(self, record: dict) -> None:
        if not self.enabled or not record.get("proved"):
            return
        goals, tactics = record.get("proof_goals") or [], record.get("tactics") or []
        if len(goals) == len(tactics):
            self.steps.extend(zip(goals, tactics))

    def for_worker(self, worker: object, job: Job) -> Job:
        if not self.enabled:
            return job
        start = self._seen.get(worker, 0)
        self._seen[worker] = len(self.steps)
        return replace(job, learn=tuple(self.steps[start:]))


def _worker_loop(conn, spec: RunSpec) -> None:
    random.seed(spec.seed)
    generator = worker_generator(spec)
    backend = make_backend(spec.backend, spec.backend_options)
    try:
        while True:
            try:
                job = conn.recv()
            except EOFError:
                return
            if job is None:
                return
            conn.send(prove_job(job, spec, backend, generator))
    finally:
        backend.close()


class LocalPool:
    """N worker processes; the driver assigns jobs, collects results and enforces deadlines.

    However the run ends (done, an error, SIGTERM or Ctrl-C of the driver), every worker is told
    to exit and leaves through its own cleanup, so its provers and working directories go with it.
    """

    def __init__(self, spec: RunSpec, workers: int) -> None:
        self.spec, self.size = spec, max(1, workers)

    def run(self, jobs: list[Job], on_result: Callable[[dict], None], online: OnlineSteps | None = None) -> None:
        online = online or OnlineSteps(False)
        pending = collections.deque(jobs)
        idle: list[WorkerProcess] = []
        busy: dict[WorkerProcess, tuple[Job, float]] = {}
        stopped: dict | None = None  # the record that stopped the run
        try:
            for _ in range(min(self.size, len(jobs))):
                idle.append(WorkerProcess(_worker_loop, self.spec))
            while pending or busy:
                while idle and pending:
                    worker, job = idle.pop(), pending.popleft()
                    worker.conn.send(online.for_worker(worker, job))
                    busy[worker] = (job, time.monotonic())
                by_conn = {w.conn: w for w in busy}
                for conn in multiprocessing.connection.wait(list(by_conn), timeout=0.5):
                    worker = by_conn[conn]
                    job, started = busy.pop(worker)
                    try:
                        record = conn.recv()
                    except (EOFError, OSError):
                        worker.stop()
                        record = overrun_record(job, self.spec, time.monotonic() - started, "crash",
                                                "the worker process died")
                        worker = WorkerProcess(_worker_loop, self.spec) if pending else None
                    if worker is not None:
                        idle.append(worker)
                    online.add(record)
                    on_result(record)
                    if record.get("failure_reason") == GENERATOR_UNAVAILABLE and stopped is None:
                        stopped = record  # no new theorems; those in flight finish (or fail fast too)
                        left = len(pending)
                        pending.clear()
                now = time.monotonic()
                for worker, (job, started) in list(busy.items()):
                    if now - started > self.spec.deadline:
                        worker.stop()
                        del busy[worker]
                        on_result(overrun_record(job, self.spec, now - started, "timeout",
                                                 f"stopped by the runner after {self.spec.deadline:.0f} s"))
                        if pending:
                            idle.append(WorkerProcess(_worker_loop, self.spec))
        finally:
            stop_workers(idle, list(busy))
        if stopped is not None:
            raise RunStopped(_stop_message(stopped, left))


class RayPool:
    """The same jobs as Ray actors, one prover per actor; only the driver writes results.

    With a model generator, one model actor per GPU (one on CPU) serves every prover actor.
    """

    def __init__(self, spec: RunSpec, workers: int, address: str | None) -> None:
        self.spec, self.size, self.address = spec, max(1, workers), address
        self.model_addresses: list = []  # the model actors of the last run
        self.prover_actors_started = 0
        self.service_stats: list = []  # each model actor's ServiceStats at the end of the last run

    def run(self, jobs: list[Job], on_result: Callable[[dict], None], online: OnlineSteps | None = None) -> None:
        online = online or OnlineSteps(False)
        try:
            import ray
        except ImportError:
            from ..components import ConfigError
            raise ConfigError("Ray is not installed: pip install 'prover[cluster]'") from None
        served = self.spec.generator in MODEL_GENERATORS and self.spec.service is None
        provers = min(self.size, len(jobs))
        if self.address:
            ray.init(address=self.address, log_to_driver=False)
        else:
            from ..models.ray_service import model_actor_count
            extra = model_actor_count(0, provers) if served else 0  # a CPU for the model actor
            ray.init(num_cpus=self.size + extra, include_dashboard=False, log_to_driver=False)
        stopped: dict | None = None
        try:
            if served and jobs:
                from ..models.ray_service import start_model_actors
                from ..models.service import ServiceConfig
                self.model_addresses = start_model_actors(ServiceConfig(self.spec.backend, self.spec.model), provers)
            actor_cls = ray.remote(num_cpus=1)(ProverActor)

            def new_actor():
                spec = self.spec
                if self.model_addresses:  # round robin over the model actors
                    spec = replace(spec, service=self.model_addresses[self.prover_actors_started
                                                                        % len(self.model_addresses)])
                self.prover_actors_started += 1
                return actor_cls.remote(spec)

            pending = collections.deque(jobs)
            running: dict = {}  # ObjectRef -> (actor, job, started)
            actors = [new_actor() for _ in range(provers)]
            while pending or running:
                while actors and pending:
                    actor, job = actors.pop(), pending.popleft()
                    running[actor.prove.remote(online.for_worker(actor, job))] = (actor, job, time.monotonic())
                done, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
                for ref in done:
                    actor, job, started = running.pop(ref)
                    try:
                        record = ray.get(ref)
                        actors.append(actor)
                    except ray.exceptions.RayError as e:
                        record = overrun_record(job, self.spec, time.monotonic() - started, "crash", str(e)[:500])
                        ray.kill(actor)
                        actors.append(new_actor())
                    online.add(record)
                    on_result(record)
                    if record.get("failure_reason") == GENERATOR_UNAVAILABLE and stopped is None:
                        stopped, left = record, len(pending)
                        pending.clear()
                now = time.monotonic()
                for ref, (actor, job, started) in list(running.items()):
                    if now - started > self.spec.deadline:
                        ray.kill(actor)  # its prover dies with it (parent-death signal)
                        del running[ref]
                        on_result(overrun_record(job, self.spec, now - started, "timeout",
                                                 f"stopped by the runner after {self.spec.deadline:.0f} s"))
                        actors.append(new_actor())
            for actor in actors:
                ray.get(actor.close.remote())
            if stopped is None:
                self.service_stats = [ray.get(a.handle.stats.remote()) for a in self.model_addresses]
        finally:
            ray.shutdown()
        if stopped is not None:
            raise RunStopped(_stop_message(stopped, left))


class ProverActor:
    """A Ray actor owning one backend and one generator (wrapped by ray.remote in RayPool)."""

    def __init__(self, spec: RunSpec) -> None:
        random.seed(spec.seed)
        self.spec = spec
        self.generator = worker_generator(spec)
        self.backend = make_backend(spec.backend, spec.backend_options)

    def prove(self, job: Job) -> dict:
        return prove_job(job, self.spec, self.backend, self.generator)

    def close(self) -> None:
        self.backend.close()
