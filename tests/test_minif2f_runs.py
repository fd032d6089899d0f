"""miniF2F runs end to end: real workers, real Coq, real results files."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prover.runs.minif2f import load, problem_source
from prover.runs.results import ResultsError, ResultsLog, read_results

from .conftest import ROOT, SHARED_DATA, cli_env, processes_with_marker, run_cli, wait_dead, wait_for

# Quick ones (proved in a few seconds) and ones the portfolio gives up on quickly.
NAMES = ["mathd_numbertheory_200", "mathd_numbertheory_466", "mathd_algebra_422", "mathd_numbertheory_269"]
BUDGET = ["--timeout", "6", "--tactic-timeout", "1", "--check-timeout", "60"]
DATA = ["--data", str(SHARED_DATA / "minif2f")]


def result_lines(path):
    lines = path.read_text().splitlines()
    return [json.loads(x) for x in lines[1:]], json.loads(lines[0])


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """A run SIGKILLed after its first result, then resumed: (results path, leftover pids after the kill)."""
    out = tmp_path_factory.mktemp("run") / "results.jsonl"
    mark = f"resume-{os.getpid()}-{time.time()}"
    args = [sys.executable, "-m", "prover", "minif2f", "--split", "valid", "--names", ",".join(NAMES),
            "--workers", "1", "--out", str(out), "--quiet", *BUDGET, *DATA]
    driver = subprocess.Popen(args, cwd=ROOT, env=cli_env({"PROVER_TEST_MARK": mark}),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 2, 120)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    leftovers_gone = wait_for(lambda: processes_with_marker(mark) == [], 10)
    first = len(out.read_text().splitlines()) - 1
    resumed = subprocess.run(args + ["--resume"], cwd=ROOT, env=cli_env({"PROVER_TEST_MARK": mark}),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    return out, leftovers_gone, first, processes_with_marker(mark)


def test_killed_run_resumes_with_one_line_per_theorem(killed_and_resumed):
    out, leftovers_gone, first, after = killed_and_resumed
    assert leftovers_gone, "workers or coqtop survived the SIGKILLed driver"
    assert 1 <= first < len(NAMES)
    results, config = result_lines(out)
    assert config["type"] == "config" and config["backend"] == "coq" and config["split"] == "valid"
    assert sorted(r["name"] for r in results) == sorted(NAMES)
    assert after == []  # nothing survives a finished run
    for r in results:
        assert r["type"] == "result" and r["elapsed"] > 0 and r["split"] == "valid"
        assert r["dataset"]["commit"] and r["versions"]["coq"].startswith("8.16")
        assert r["budgets"]["timeout"] == 6 and r["generator"] == "portfolio" and r["host"]
        assert r["verified"] == r["proved"]
        assert r["category"] == problem_source(r["name"])
        if r["proved"]:
            assert r["proof"].startswith("Proof.") and r["tactics"] and r["failure_reason"] is None
        else:
            assert r["failure_reason"] in ("exhausted", "budget", "timeout") and r["proof"] == ""
    assert any(r["proved"] for r in results)


def test_verify_confirms_proofs_and_catches_a_forged_line(killed_and_resumed, tmp_path):
    out = killed_and_resumed[0]
    ok = run_cli("verify", str(out), *DATA, timeout=300)
    proved = sum(r["proved"] for r in result_lines(out)[0])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"{proved}/{proved} proofs re-checked ok" in ok.stdout
    forged = tmp_path / "forged.jsonl"
    lines = out.read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    for r in recs[1:]:
        if not r["proved"]:  # claim a proof for a theorem that was not proved
            r.update(proved=True, verified=True, tactics=["intros", "lia"])
            break
    forged.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    bad = run_cli("verify", str(forged), *DATA, timeout=300)
    assert bad.returncode == 1 and "MISMATCH" in bad.stdout


def test_report_and_plot(killed_and_resumed, tmp_path):
    out = killed_and_resumed[0]
    png = tmp_path / "curve.png"
    run = run_cli("report", str(out), "--plot", str(png), *DATA)
    assert run.returncode == 0, run.stderr
    proved = sum(r["proved"] for r in result_lines(out)[0])
    assert f"{proved}/{len(NAMES)}" in run.stdout
    assert "split valid" in run.stdout and "mathd_numbertheory" in run.stdout
    assert "model-free baseline" in run.stdout and "62/244" in run.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_existing_file_needs_resume_and_matching_config(killed_and_resumed, tmp_path):
    out = tmp_path / "r.jsonl"
    shutil.copy(killed_and_resumed[0], out)
    again = run_cli("minif2f", "--split", "valid", "--names", NAMES[0], "--out", str(out), *DATA)
    assert again.returncode == 2 and "--resume" in again.stderr
    other = run_cli("minif2f", "--split", "test", "--limit", "1", "--out", str(out), "--resume", *DATA)
    assert other.returncode == 2 and "split" in other.stderr
    seeded = run_cli("minif2f", "--split", "valid", "--names", NAMES[0], "--out", str(out), "--resume", "--seed", "1",
                     *BUDGET, *DATA)
    assert seeded.returncode == 2 and "its seed is 0, this run's is 1" in seeded.stderr
    assert out.read_bytes() == killed_and_resumed[0].read_bytes()  # nothing appended


def test_resume_refuses_every_setting_that_changes_results(tmp_path):
    from dataclasses import replace

    from prover.components import BackendOptions, ModelOptions
    from prover.runs.benchmark import Suite, run_config
    from prover.runs.runner import RunSpec
    from prover.search.best_first import SearchConfig

    tactics = tmp_path / "tactics.txt"
    tactics.write_text("intros\nlia\n")
    base = RunSpec("coq", "mix", str(tactics), SearchConfig(), BackendOptions(), seed=0,
                   model=ModelOptions(model="some/model"))

    def config(spec, data=SHARED_DATA / "minif2f", split="valid"):
        base = Path(data).resolve()
        suite = Suite("minif2f", "miniF2F", split, [], {"data_dir": str(base), "dataset_commits": []})
        return run_config(spec, suite, 1, None)

    path = tmp_path / "r.jsonl"
    ResultsLog(path, config(base), resume=False).close()
    # What does not change results may differ: workers, grace, the device, the tactics file's path.
    moved = tmp_path / "moved.txt"
    moved.write_text(tactics.read_text())
    same = {**config(replace(base, grace=5, tactics_file=str(moved), model=ModelOptions("some/model", "cpu"))),
            "workers": 8}
    ResultsLog(path, same, resume=True).close()
    changed = {
        "split": config(base, split="test"),
        "generator": config(replace(base, generator="hf", tactics_file=None)),
        "model": config(replace(base, model=ModelOptions(model="other/model"))),
        "model_options.decoding": config(replace(base, model=ModelOptions("some/model", decoding="sample"))),
        "model_options.temperatures": config(replace(base, model=ModelOptions("some/model", temperatures=(0.5,)))),
        "model_options.max_new_tokens": config(replace(base, model=ModelOptions("some/model", max_new_tokens=64))),
        "budgets": config(replace(base, search=SearchConfig(candidates=8))),
        "seed": config(replace(base, seed=1)),
        "data_dir": config(base, data=tmp_path),
    }
    tactics.write_text("intros\nnia\n")  # same path, other tactics
    changed["tactics_sha256"] = config(base)
    before = path.read_bytes()
    for key, cfg in changed.items():
        with pytest.raises(ResultsError, match=f"its {key.replace('.', '[.]')} is"):
            ResultsLog(path, cfg, resume=True)
    assert path.read_bytes() == before


def test_partial_last_line_is_cut_on_resume(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"type": "config", "backend": "coq"}\n{"type": "result", "name": "a", "split": "valid"}\n'
                    '{"type": "result", "name": "b", "spl')
    rf = read_results(path)
    assert rf.partial_bytes > 0 and [r["name"] for r in rf.results] == ["a"]
    with ResultsLog(path, {"backend": "coq"}, resume=True) as log:
        assert log.existing.done == {("a", "valid")}
        log.append({"name": "b", "split": "valid"})
    assert [r["name"] for r in read_results(path).results] == ["a", "b"]
    assert path.read_text().count("\n") == 3
    path.write_text("not json\n")
    with pytest.raises(ResultsError):
        read_results(path)


def test_runner_stops_an_overrunning_worker(tmp_path, marker):
    out = tmp_path / "r.jsonl"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    args = [sys.executable, "-m", "prover", "minif2f", "--split", "valid", "--names", ",".join(NAMES[:2]),
            "--workers", "1", "--out", str(out), "--quiet", "--timeout", "2", "--check-timeout", "2",
            "--grace", "1", *DATA]
    driver = subprocess.Popen(args, cwd=ROOT, env=cli_env({"TMPDIR": str(tmp)}), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)

    def worker_pids():
        pids = []
        for pid in processes_with_marker(marker):
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read()
            except OSError:
                continue
            if b"spawn_main" in cmd:  # a worker, not the resource tracker
                pids.append(pid)
        return pids

    assert wait_for(lambda: worker_pids(), 60)
    frozen = worker_pids()[0]
    os.kill(frozen, signal.SIGSTOP)  # a worker that stops answering, as a wedged prover would
    stdout, stderr = driver.communicate(timeout=120)
    assert driver.returncode == 0, stderr
    results, _ = result_lines(out)
    assert len(results) == 2
    # The frozen worker never answers: its theorem is logged by the runner. (Under load the other one
    # may overrun its 5 s deadline too; it is then logged the same way.)
    stopped = [r for r in results if "stopped by the runner" in r.get("failure_message", "")]
    assert stopped and all(r["failure_reason"] == "timeout" and r["worker_pid"] is None for r in stopped)
    assert wait_dead(frozen)
    assert processes_with_marker(marker) == []
    assert os.listdir(tmp) == []  # its working directories went with it


def test_loader_applies_the_rocq_fixes():
    problems = {p.name: p for p in load("coq", data_dir=SHARED_DATA / "minif2f")}
    assert len(problems) == 488
    assert sum(p.split == "valid" for p in problems.values()) == 244
    assert problems["amc12a_2016_p3"].theorem.allowed_axioms == ("Rfloor", "Rfloor_spec")
    assert "Fixpoint Cpow" in problems["amc12a_2020_p15"].theorem.header
    assert all("From Stdlib" not in p.theorem.header for p in problems.values())
    with pytest.raises(ValueError):
        load("coq", names=["no_such_problem"], data_dir=SHARED_DATA / "minif2f")


def test_ray_local_writes_the_same_results_format(killed_and_resumed, tmp_path, marker):
    pytest.importorskip("ray", reason="Ray is the cluster extra: pip install 'prover[cluster]'")
    out = tmp_path / "ray.jsonl"
    run = run_cli("minif2f", "--split", "valid", "--names", ",".join(NAMES[:2]), "--ray", "local", "--workers", "2",
                  "--out", str(out), "--quiet", *BUDGET, *DATA, timeout=300)
    assert run.returncode == 0, run.stderr
    results, config = result_lines(out)
    local, _ = result_lines(killed_and_resumed[0])
    assert config["ray"] == "local"
    assert sorted(r["name"] for r in results) == sorted(NAMES[:2])
    assert {tuple(sorted(r)) for r in results} == {tuple(sorted(local[0]))}
    by_name = {r["name"]: r for r in local}
    for r in results:  # the portfolio is deterministic: same verdicts as the local run
        assert r["proved"] == by_name[r["name"]]["proved"]
    assert wait_for(lambda: processes_with_marker(marker) == [], 30)


@pytest.mark.parametrize("backend,tool,hint", [("lean-repl", "lake", "make lean"), ("leandojo", "lake", "make lean"),
                                               ("isabelle", "isabelle", "make isabelle")])
def test_minif2f_without_the_prover_installed_fails_at_once(backend, tool, hint, tmp_path):
    if shutil.which(tool):
        pytest.skip(f"{tool} is installed here: the backend would start")
    out = tmp_path / "r.jsonl"
    run = run_cli("minif2f", "--backend", backend, "--split", "test", "--limit", "1", "--out", str(out), *DATA)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2 and len(lines) == 1 and hint in lines[0] and "Traceback" not in run.stderr
    assert not out.exists()
