"""Faults a user (or a hostile one) inflicts, survived, with nothing left behind: killed and
interrupted benchmark drivers, a killed `prover repl`, a prover that dies under its memory cap.
(coqtop killed in the middle of a search: test_search.py and test_coq_backend.py.) Every test runs
the real CLI with a private TMPDIR, and ends by checking that no prover process is left and that
the temp directory is empty."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prover.runs.results import read_results

from .conftest import ROOT, SHARED_DATA, cli_env, default_sigint, processes_with_marker, wait_for

# Quick ones: proved, or given up on, in a few seconds each.
NAMES = ["mathd_numbertheory_200", "mathd_numbertheory_466", "mathd_algebra_422", "mathd_numbertheory_211",
         "mathd_numbertheory_22", "mathd_numbertheory_81"]
RUN = ["--split", "valid", "--names", ",".join(NAMES), "--workers", "2", "--quiet", "--timeout", "6",
       "--tactic-timeout", "4", "--check-timeout", "60", "--data", str(SHARED_DATA / "minif2f")]
# Each theorem of a run spins for the tactic timeout before it ends (the portfolio, with a coqtop kept across
# theorems, proves them in well under a second each): a run lasts long enough to be interrupted midway.
SLOW = "let rec loop x := loop x in loop 0\n"


def run_args(out: Path) -> list[str]:
    tactics = out.parent / "slow.txt"
    tactics.write_text(SLOW)
    return [sys.executable, "-m", "prover", "minif2f", *RUN, "--tactics", str(tactics), "--out", str(out)]
MEMORY_HOG = "let x := eval vm_compute in (List.seq 0 40000000) in idtac"  # far past 1200 MB


@pytest.fixture
def tmpdir_env(tmp_path, marker):
    """A private TMPDIR, and the environment that hands it (and the marker) to the CLI."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return tmp, cli_env({"TMPDIR": str(tmp), "PROVER_TEST_MARK": marker})


def assert_nothing_left(tmp: Path, marker: str) -> None:
    assert wait_for(lambda: processes_with_marker(marker) == [], 30), processes_with_marker(marker)
    assert wait_for(lambda: os.listdir(tmp) == [], 30), os.listdir(tmp)


def result_names(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["type"] == "config"
    return [json.loads(line)["name"] for line in lines[1:]]


def start_driver(out: Path, env: dict) -> subprocess.Popen:
    # Its own session, as a shell gives a foreground job: Ctrl-C reaches the whole group.
    return subprocess.Popen(run_args(out), cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=default_sigint)


def resume(out: Path, env: dict) -> None:
    run = subprocess.run([*run_args(out), "--resume"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr


def test_killed_driver_then_resume_with_two_workers(tmp_path, tmpdir_env, marker):
    tmp, env = tmpdir_env
    out = tmp_path / "results.jsonl"
    driver = start_driver(out, env)
    assert wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 2, 120)
    driver.kill()  # SIGKILL: no handler runs in the driver
    driver.communicate()
    # Its workers notice (parent-death signal) and leave through their own cleanup.
    assert_nothing_left(tmp, marker)
    before = out.read_bytes()
    done = result_names(out)
    assert 1 <= len(done) < len(NAMES)
    resume(out, env)
    after = out.read_bytes()
    assert after.startswith(before[: before.rfind(b"\n") + 1])  # no whole line lost or rewritten
    names = result_names(out)
    assert sorted(names) == sorted(NAMES) and names[: len(done)] == done  # each theorem exactly once
    assert_nothing_left(tmp, marker)


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_interrupted_driver_stops_cleanly_and_resumes(tmp_path, tmpdir_env, marker, how):
    tmp, env = tmpdir_env
    out = tmp_path / "results.jsonl"
    driver = start_driver(out, env)
    assert wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 2, 120)
    if how == "SIGTERM":
        driver.send_signal(signal.SIGTERM)
    else:
        os.killpg(driver.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    _, stderr = driver.communicate(timeout=60)
    assert driver.returncode == (143 if how == "SIGTERM" else 130), stderr
    assert "Traceback" not in stderr
    assert_nothing_left(tmp, marker)
    results = read_results(out)
    assert results.partial_bytes == 0  # every line the driver wrote is whole
    done = [r["name"] for r in results.results]
    resume(out, env)
    names = result_names(out)
    assert sorted(names) == sorted(NAMES) and names[: len(done)] == done
    assert_nothing_left(tmp, marker)


def test_sigkill_of_prover_repl_holding_sessions_leaves_no_prover(tmp_path, tmpdir_env, marker):
    tmp, env = tmpdir_env
    spin = tmp_path / "spin.txt"
    spin.write_text("do 1000000000 idtac\n")
    repl = subprocess.Popen([sys.executable, "-m", "prover", "repl"], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def ask(request: dict) -> None:
        repl.stdin.write((json.dumps(request) + "\n").encode())
        repl.stdin.flush()

    try:
        for i, statement in enumerate(["Theorem a : forall n : nat, n + 0 = n.", "Theorem b : True /\\ True."]):
            ask({"id": i, "cmd": "suggest", "statement": statement, "check": True, "n": 2})
            reply = json.loads(repl.stdout.readline())
            assert reply["id"] == i and reply["type"] == "suggestions", reply
        ask({"id": "p", "cmd": "prove", "statement": "Theorem c : True.", "tactics_file": str(spin),
             "tactic_timeout": 300, "timeout": 300, "progress": False})
        # Two idle sessions and a prove inside a tactic: three coqtops besides the REPL.
        assert wait_for(lambda: len(processes_with_marker(marker)) >= 4, 60)
        time.sleep(1.0)
        repl.kill()
        repl.wait()
    finally:
        if repl.poll() is None:
            repl.kill()
            repl.wait()
    assert_nothing_left(tmp, marker)


def test_a_tactic_past_the_memory_cap_then_a_proving_one(tmp_path, tmpdir_env, marker):
    tmp, env = tmpdir_env
    tactics = tmp_path / "tactics.txt"
    tactics.write_text(f"{MEMORY_HOG}\nlia\n")
    graph = tmp_path / "graph.json"
    run = subprocess.run([sys.executable, "-m", "prover", "prove", "--statement",
                          "Theorem t : forall n : nat, n + 0 = n.", "--tactics", str(tactics), "--memory-mb", "1200",
                          "--json", "--graph", str(graph)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["proved"] and out["verified"] and out["tactics"] == ["lia"]
    data = json.loads(graph.read_text())
    [hog] = [e for e in data["edges"] if e["tactic"] == MEMORY_HOG]
    [end] = [n for n in data["nodes"] if n["id"] == hog["target"]]  # a failed try ends at a terminal node
    assert hog["kind"] == "failed" and "coqtop exited (signal" in end["message"] and "restarted" in end["message"]
    assert_nothing_left(tmp, marker)
