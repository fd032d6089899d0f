"""`prover prove` as a user runs it: a real subprocess, real Coq, real files."""
import json
import signal
import subprocess
import sys
import time

import psutil
import pytest

from .conftest import ROOT, cli_env, default_sigint, processes_with_marker, run_cli, wait_for

DEMO = """Require Import Arith.

Theorem add_zero_r : forall n : nat, n + 0 = n.
Admitted.

Theorem later : True.
Proof.
Admitted.
"""


def test_prove_file_json_and_write(tmp_path, marker):
    src = tmp_path / "demo.v"
    src.write_text(DEMO)
    run = run_cli("prove", str(src), "--theorem", "add_zero_r", "--json", "--write")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    for key in ("proved", "proof", "tactics", "expansions", "tactic_calls", "elapsed", "failure_reason",
                "backend", "generator"):
        assert key in out
    assert out["proved"] and out["backend"] == "coq" and out["generator"] == "portfolio"
    assert out["elapsed"] > 0 and out["tactic_calls"] >= 1 and out["failure_reason"] is None
    written = src.read_text()
    assert (tmp_path / "demo.v.bak").read_text() == DEMO
    assert out["proof"] in written and "Theorem later : True.\nProof.\nAdmitted." in written
    assert written.count("Admitted.") == 1
    # The written file is a real Coq file: prove the second theorem in it too.
    again = run_cli("prove", str(src), "--theorem", "later", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["proved"]
    assert processes_with_marker(marker) == []


def test_written_file_compiles_with_the_proof(tmp_path):
    src = tmp_path / "One.v"
    src.write_text("Require Import ZArith Lia.\nOpen Scope Z_scope.\n"
                   "Theorem lin : forall x : Z, x > 0 -> 2 * x > x.\nAdmitted.\n")
    assert run_cli("prove", str(src), "--theorem", "lin", "--write", "--quiet").returncode == 0
    compiled = subprocess.run(["coqc", "-q", "One.v"], cwd=tmp_path, capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr
    assert "Admitted" not in src.read_text()


def test_statement_mode_not_proved_exits_1(tmp_path):
    # --no-hammer: on a false goal the hammer step would spend its whole budget (tested in test_coq_hammer).
    run = run_cli("prove", "--statement", "Theorem f : forall n : nat, n + 1 = n.", "--max-expansions", "3",
                  "--tactic-timeout", "2", "--json", "--no-hammer")
    assert run.returncode == 1
    out = json.loads(run.stdout)
    assert not out["proved"] and out["failure_reason"] in ("exhausted", "budget")


def test_human_output_shows_the_proof():
    run = run_cli("prove", "--statement", "Theorem z : forall x y : Z, x < y -> x + 1 <= y.",
                  "--header", "Require Import ZArith. Open Scope Z_scope.")
    assert run.returncode == 0, run.stderr
    assert "proved z" in run.stdout and "Proof." in run.stdout and "Qed." in run.stdout


@pytest.mark.parametrize("args,fragment", [
    (["prove", "missing.v", "--theorem", "t"], "no such file"),
    (["prove", "examples/demo.v", "--theorem", "nope"], "not found"),
    (["prove", "examples/demo.v"], "--theorem"),
    (["prove"], "nothing to prove"),
    (["prove", "--statement", "Theorem x : 1 + true = 2."], "does not type-check"),
    (["prove", "--statement", "Definition x := 1."], "Theorem"),
    (["prove", "--statement", "Theorem x : True.", "--header", "Require Import Nope."], "header"),
    (["prove", "--statement", "Theorem x : True.", "--max-expansions", "0"], "positive"),
    (["prove", "--statement", "Theorem x : True.", "--timeout", "soon"], "not a number"),
    (["prove", "--statement", "Theorem x : True.", "--tactics", "EMPTY"], "no tactics"),
    (["prove", "--statement", "Theorem x : True.", "--tactics", "missing.txt"], "cannot read"),
    (["prove", "--statement", "Theorem x : True.", "--write"], "--write needs FILE"),
    (["prove", "--statement", "Theorem x : True.", "--backend", "nope"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(args, fragment, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# only a comment\n")
    args = [str(empty) if a == "EMPTY" else a for a in args]
    run = run_cli(*args)
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in run.stderr
    assert run.stdout == ""


def test_false_statement_with_escaping_tactics_file_is_not_proved(tmp_path):
    tactics = tmp_path / "evil.txt"
    tactics.write_text("Admitted.\nadmit\nlia. Qed.\nAbort.\nexact_no_check I\nAxiom cheat : False.\n"
                       "intros. Admitted.\nfix IH 1\nexact IH\nUnset Guard Checking.\napply IH\n")
    run = run_cli("prove", "--statement", "Theorem bad : forall n : nat, n = S n.", "--tactics", str(tactics),
                  "--json", "--tactic-timeout", "2")
    assert run.returncode == 1
    out = json.loads(run.stdout)
    assert not out["proved"] and out["proof"] == "" and out["failure_reason"] == "rejected"


def test_graph_export(tmp_path):
    graph = tmp_path / "g.json"
    run = run_cli("prove", "--statement", "Theorem t : forall n : nat, n = n.", "--graph", str(graph), "--quiet")
    assert run.returncode == 0
    data = json.loads(graph.read_text())
    assert data["nodes"] and any(e["kind"] == "finished" for e in data["edges"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_prove_leaves_no_prover_process(tmp_path, marker, sig):
    tactics = tmp_path / "slow.txt"
    tactics.write_text("let rec loop x := loop x in loop 0\nintros\nlet rec loop2 x := loop2 (S x) in loop2 0\n")
    proc = subprocess.Popen([sys.executable, "-m", "prover", "prove", "--statement",
                             "Theorem s : forall n : nat, n * n = 2 -> False.", "--tactics", str(tactics),
                             "--tactic-timeout", "30", "--quiet"], cwd=ROOT, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    def coqtop_runs() -> bool:  # the CLI has other children too (its temp directory's guardian)
        names = []
        for p in processes_with_marker(marker):
            try:
                names.append(psutil.Process(p).name())
            except psutil.Error:
                continue
        return "coqtop" in names

    assert wait_for(coqtop_runs, 60), "coqtop did not start"
    time.sleep(1.0)
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"prove did not stop on {sig!r}: {proc.communicate()[1][-2000:]}") from None
    assert proc.returncode != 0, err
    assert processes_with_marker(marker) == []
