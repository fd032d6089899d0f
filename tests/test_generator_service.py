"""One model for many provers: the generator service process, its batches, its failure, and runs that use it.

Real processes throughout: the service is a real child process holding a tiny model trained here, workers are
real processes (or the runner's own workers with real Coq), and a dying service is really killed.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest

from prover.backends.process import WorkerProcess
from prover.components import BackendOptions, ModelOptions
from prover.models.base import GeneratorUnavailable
from prover.models.service import GeneratorService, ServiceConfig
from prover.runs.results import read_results
from prover.search.best_first import SearchConfig

from .conftest import ROOT, SHARED_DATA, TINY_STATES, cli_env, processes_with_marker, wait_for
from .service_worker import ask

pytest.importorskip("torch")

N = 4  # candidates per state
NAMES = ["mathd_numbertheory_200", "mathd_numbertheory_466", "mathd_numbertheory_22"]


def options(model, **kw) -> ModelOptions:
    return ModelOptions(str(model), device="cpu", max_new_tokens=16, **kw)


def in_process(model):
    from prover.models.hf import HFConfig, HFGenerator
    from prover.models.prompts import COQ

    return HFGenerator.load(HFConfig(str(model), device="cpu", max_new_tokens=16), COQ)


def assert_same_candidates(got, want) -> None:
    """Same tactics, token counts and log-probs (up to float rounding: batched rows are padded)."""
    assert sorted(c.tactic for c in got) == sorted(c.tactic for c in want)
    by_tactic = {c.tactic: c for c in want}
    for c in got:
        assert c.num_tokens == by_tactic[c.tactic].num_tokens
        assert c.logprob == pytest.approx(by_tactic[c.tactic].logprob, abs=1e-4)


def leftovers(marker: str) -> list[int]:
    """Processes of this test still alive, but this process's own multiprocessing resource tracker."""
    found = []
    for pid in processes_with_marker(marker):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"resource_tracker" in f.read():
                    continue
        except OSError:
            continue
        found.append(pid)
    return found


def test_two_workers_share_one_service_and_get_in_process_candidates(tiny_model):
    # A batch runs once it holds 2 states (or after 30 s): the two workers' requests meet in one batch.
    config = ServiceConfig("coq", options(tiny_model, batch_states=2, gather_seconds=30.0))
    with GeneratorService(config) as service:
        halves = [TINY_STATES[0::2], TINY_STATES[1::2]]
        workers = [WorkerProcess(ask, service.address, h, N) for h in halves]
        try:
            for w in workers:
                assert w.conn.recv() == "ready"
            for w in workers:
                w.conn.send("go")
            replies = [w.conn.recv() for w in workers]
            stats = service.client().stats()
        finally:
            for w in workers:
                w.stop()
    reference = in_process(tiny_model)
    for half, reply in zip(halves, replies):
        assert not reply["torch_loaded"]  # the workers hold a client, not a copy of the model
        for state, got in zip(half, reply["candidates"]):
            assert got, "no candidates"
            assert_same_candidates(got, reference.generate(state, N))
    pids = {str(r["pid"]) for r in replies}
    shared = [b for b in stats.batcher.recent if {c.split(":")[1] for c in b.clients} == pids]
    assert shared, f"no batch held requests of both workers: {stats.batcher.recent}"
    assert all(len(b.clients) == 2 and b.states == 2 for b in shared)
    assert stats.batcher.requests == 4 and stats.batcher.states == 4
    assert stats.pid == service.pid and stats.rss_bytes > 0


def test_a_request_to_a_dead_service_fails_within_a_second(tiny_model):
    # The request waits in the service's gather window when the service dies.
    service = GeneratorService(ServiceConfig("coq", options(tiny_model, batch_states=8, gather_seconds=120.0)))
    client = service.client()
    outcome: dict = {}

    def ask() -> None:
        try:
            outcome["candidates"] = client.generate(TINY_STATES[0], N)
        except GeneratorUnavailable as e:
            outcome["error"], outcome["at"] = e, time.monotonic()

    try:
        asking = threading.Thread(target=ask)
        asking.start()
        assert wait_for(lambda: client.stats().batcher.pending == 1)
        os.kill(service.pid, signal.SIGKILL)
        killed = time.monotonic()
        asking.join(10)
        assert "error" in outcome and "stopped while answering" in str(outcome["error"])
        assert outcome["at"] - killed < 1.0
        start = time.monotonic()
        with pytest.raises(GeneratorUnavailable, match="not running|stopped"):
            client.generate(TINY_STATES[1], N)
        assert time.monotonic() - start < 1.0
    finally:
        service.stop()


def _spec(model, **model_kw):
    from prover.runs.runner import RunSpec

    return RunSpec("coq", "hf", None, SearchConfig(max_expansions=2, candidates=N, timeout=60, tactic_timeout=10),
                   BackendOptions(check_timeout=120), model=options(model, **model_kw))


def test_a_run_records_a_dead_service_stops_and_resumes(tiny_model, tmp_path, marker):
    """The service dies while both workers wait on it: both theorems are logged as generator_unavailable at
    once, the run stops without starting the third, and --resume (a served model again) runs all three."""
    from rich.console import Console

    from prover.runs.benchmark import minif2f_suite, run_benchmark
    from prover.runs.runner import RunStopped

    out = tmp_path / "results.jsonl"
    spec = _spec(tiny_model, batch_states=8, gather_seconds=120.0)
    outcome: dict = {}
    with GeneratorService(ServiceConfig("coq", spec.model)) as service:
        client = service.client()

        def run() -> None:
            try:
                suite = minif2f_suite("coq", "valid", NAMES, None, str(SHARED_DATA / "minif2f"))
                run_benchmark(replace(spec, service=service.address), suite, str(out), 2, False, None,
                              Console(quiet=True), True)
            except RunStopped as e:
                outcome["stopped"] = str(e)
            outcome["at"] = time.monotonic()

        runner = threading.Thread(target=run)
        runner.start()
        assert wait_for(lambda: client.stats().batcher.pending == 2, 120)  # both workers wait on the model
        os.kill(service.pid, signal.SIGKILL)
        killed = time.monotonic()
        runner.join(120)
    assert not runner.is_alive()
    assert "1 theorem not run" in outcome["stopped"] and "--resume" in outcome["stopped"]
    assert outcome["at"] - killed < 10  # no hang: the in-flight searches failed at once
    lines = [json.loads(x) for x in out.read_text().splitlines()[1:]]
    assert len(lines) == 2
    assert all(r["failure_reason"] == "generator_unavailable" and not r["proved"] for r in lines)
    assert read_results(out).done == set()  # not a verdict: --resume runs them again

    # Resume through the CLI, with the model served again (two workers, one service process).
    args = ["minif2f", "--split", "valid", "--names", ",".join(NAMES), "--out", str(out), "--resume", "--quiet",
            "--workers", "2", "--generator", "hf", "--model", str(tiny_model), "--device", "cpu",
            "--max-new-tokens", "16", "--candidates", str(N), "--max-expansions", "2", "--timeout", "60",
            "--tactic-timeout", "10", "--check-timeout", "120", "--data", str(SHARED_DATA / "minif2f")]
    run = subprocess.run([sys.executable, "-m", "prover", *args], cwd=ROOT, env=cli_env(), capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    results = read_results(out).results
    assert sorted(r["name"] for r in results) == sorted(NAMES)
    assert all(r["failure_reason"] != "generator_unavailable" and r["generator"] == "hf" for r in results)
    assert all(r["model"] == str(tiny_model) for r in results)
    assert wait_for(lambda: leftovers(marker) == [], 30)  # services, workers, coqtops: all gone

    # The served model's searches are the in-process searches: same candidates, same trees, same verdicts.
    from prover.backends.coq.backend import CoqBackend
    from prover.runs.minif2f import load
    from prover.search.best_first import search

    generator, backend = in_process(tiny_model), CoqBackend()
    try:
        by_name = {r["name"]: r for r in results}
        for problem in load("coq", "valid", names=NAMES, data_dir=SHARED_DATA / "minif2f"):
            local = search(problem.theorem, backend, generator, spec.search)
            served = by_name[problem.name]
            assert (served["proved"], served["tactics"], served["expansions"], served["tactic_calls"]) == \
                (local.proved, local.tactics, local.expansions, local.tactic_calls), problem.name
    finally:
        backend.close()


RAY_SCRIPT = """
import json, sys
from prover.components import BackendOptions, ModelOptions
from prover.runs.minif2f import load
from prover.runs.runner import Job, RayPool, RunSpec
from prover.search.best_first import SearchConfig

model, data = sys.argv[1], sys.argv[2]
spec = RunSpec("coq", "hf", None, SearchConfig(max_expansions=1, candidates=4, timeout=60, tactic_timeout=10),
               BackendOptions(check_timeout=120),
               model=ModelOptions(model, device="cpu", max_new_tokens=16, batch_states=2, gather_seconds=5.0))
jobs = [Job.of(p) for p in load("coq", "valid", names=sys.argv[3].split(","), data_dir=data)]
pool = RayPool(spec, 2, None)
records = []
pool.run(jobs, records.append)
stats = pool.service_stats[0]
print(json.dumps({"model_actors": len(pool.model_addresses), "prover_actors": pool.prover_actors_started,
                  "service_pid": stats.pid, "clients": sorted(stats.batcher.clients),
                  "batches": [list(b.clients) for b in stats.batcher.recent],
                  "records": [{k: r[k] for k in ("name", "generator", "model", "failure_reason", "worker_pid")}
                              for r in records]}))
"""


def test_ray_starts_one_model_actor_for_n_prover_actors(tiny_model, tmp_path):
    pytest.importorskip("ray", reason="Ray is the cluster extra: pip install 'prover[cluster]'")
    run = subprocess.run([sys.executable, "-c", RAY_SCRIPT, str(tiny_model), str(SHARED_DATA / "minif2f"),
                          ",".join(NAMES)], cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["model_actors"] == 1 and out["prover_actors"] == 2
    records = out["records"]
    assert sorted(r["name"] for r in records) == sorted(NAMES)
    assert all(r["generator"] == "hf" and r["model"] == str(tiny_model) for r in records)
    assert all(r["failure_reason"] not in ("crash", "generator_unavailable") for r in records)
    # Both prover actors asked the one model actor, and never the model actor's own process.
    asked = {c.split(":")[1].split("/")[0] for c in out["clients"]}
    assert asked == {str(r["worker_pid"]) for r in records} and len(asked) == 2
    assert str(out["service_pid"]) not in asked


def _service_children(pid: int) -> list[int]:
    """The generator service processes a REPL started (spawned Python children)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != b"Z" and b"spawn_main" in cmd:
            found.append(int(entry))
    return found


def test_repl_batches_concurrent_suggests_and_restarts_a_dead_service(tiny_model):
    from .test_repl import Repl

    reference = in_process(tiny_model)
    # A batch runs once it holds 2 states (or after 120 s): two concurrent suggests share one.
    repl = Repl("--generator", "hf", "--model", str(tiny_model), "--device", "cpu", "--max-new-tokens", "16",
                "--batch-states", "2", "--gather-ms", "120000")
    try:
        def ask_two(first_id: int) -> list[dict]:
            for i, state in enumerate(TINY_STATES[:2]):
                repl.send(id=first_id + i, cmd="suggest", goal=state, n=N)
            replies = [repl.until(first_id + i, timeout=300)[-1] for i in range(2)]
            # Batched together: alone, a request would wait out the 120 s window.
            assert all(r.get("elapsed", 0) < 100 for r in replies), replies
            return replies

        for reply, state in zip(ask_two(1), TINY_STATES):
            assert reply["type"] == "suggestions", reply
            want = reference.generate(state, N)
            assert sorted(c["tactic"] for c in reply["candidates"]) == sorted(c.tactic for c in want)
        services = _service_children(repl.proc.pid)
        assert len(services) == 1  # loaded once, in a process of its own

        # One suggest alone waits in the gather window; the service dies under it.
        repl.send(id=3, cmd="suggest", goal=TINY_STATES[2], n=N)
        time.sleep(3.0)  # it reaches the service and waits there
        os.kill(services[0], signal.SIGKILL)
        killed = time.monotonic()
        reply = repl.until(3, timeout=30)[-1]
        assert time.monotonic() - killed < 5  # at once (the client's own bound is tested above), no hang
        assert reply["type"] == "error" and reply["code"] == "generator_unavailable", reply

        # The REPL goes on: the next requests start a fresh service and get the same candidates.
        for reply, state in zip(ask_two(4), TINY_STATES):
            assert reply["type"] == "suggestions", reply
            assert sorted(c["tactic"] for c in reply["candidates"]) == \
                sorted(c.tactic for c in reference.generate(state, N))
        restarted = _service_children(repl.proc.pid)
        assert len(restarted) == 1 and restarted != services
    finally:
        repl.close()
    assert repl.proc.returncode == 0
    assert _service_children(repl.proc.pid) == []
