"""Traces from real Coq proofs, `prover train` on them, and the trained model proving a theorem end to end."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prover.backends.base import Failed, Finished, Next, Theorem, TimedOut
from prover.backends.coq.backend import DEFAULT_PRELUDE, CoqBackend
from prover.models.portfolio import PortfolioGenerator
from prover.models.traces import TraceStep, proof_steps, read_traces, write_traces
from prover.search.best_first import SearchConfig, SearchResult, search

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("coqtop") is None, reason="needs Coq (coqtop)")

STATEMENTS = [
    "Theorem s1 : forall a b : nat, a + b = b + a.",
    "Theorem s2 : forall a b c : nat, a + (b + c) = c + b + a.",
    "Theorem s3 : forall n : nat, 2 * n = n + n.",
    "Theorem s4 : forall m n : nat, m <= m + n.",
    "Theorem s5 : forall P Q : Prop, P /\\ Q -> Q /\\ P.",
    "Theorem s6 : forall A B : Prop, A -> A \\/ B.",
]
TARGET = "Theorem e2e : forall x y : nat, x + y + 1 = 1 + y + x."


def run_cli(*args, timeout=180):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "prover", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    """Steps of real proofs found by the model-free search, written as a trace file."""
    backend = CoqBackend()
    generator = PortfolioGenerator(["intros", "lia", "tauto"])
    steps, results = [], []
    try:
        for statement in STATEMENTS:
            name = statement.split()[1]
            result = search(Theorem(name, statement), backend, generator, SearchConfig(max_expansions=4))
            results.append(result)
            steps.extend(proof_steps(result, split="valid", system="coq"))
    finally:
        backend.close()
    path = tmp_path_factory.mktemp("traces") / "traces.jsonl"
    write_traces(path, steps)
    return path, results


def test_proof_steps_follow_the_verified_proof(traces):
    path, results = traces
    assert all(r.proved for r in results)
    steps = read_traces(path)
    by_theorem: dict[str, list[TraceStep]] = {}
    for s in steps:
        by_theorem.setdefault(s.theorem, []).append(s)
    for r in results:
        got = by_theorem[r.theorem]
        assert [s.tactic for s in got] == r.tactics and [s.step for s in got] == list(range(len(r.tactics)))
        assert got[0].goals == r.tree.root.goals and got[0].split == "valid"
    assert proof_steps(SearchResult("x", False, [], "", 0, 0, 0.0, "exhausted")) == []


def test_train_refuses_test_split_and_bad_records(tmp_path):
    leak = tmp_path / "leak.jsonl"
    leak.write_text(json.dumps({"goals": "g", "tactic": "lia", "split": "test"}) + "\n")
    r = run_cli("train", "--data", str(leak), "--out", str(tmp_path / "m"), "--quiet")
    assert r.returncode == 2 and "test" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"goals": "g"}\n')
    r = run_cli("train", "--data", str(bad), "--out", str(tmp_path / "m"), "--quiet")
    assert r.returncode == 2 and "bad.jsonl:1" in r.stderr and not (tmp_path / "m").exists()
    r = run_cli("traces", "--split", "test", "--out", str(tmp_path / "t.jsonl"))
    assert r.returncode == 2 and "valid split only" in r.stderr and not (tmp_path / "t.jsonl").exists()


def test_trained_model_drives_the_search_end_to_end(traces, tmp_path):
    """Traces -> `prover train` -> `prover prove --generator hf` on the trained directory. What a
    ~135k-parameter model learns in 100 steps varies with the libraries a fresh environment installs,
    so the expected outcome is computed here, independently: the model's candidates at the root (the
    same beam search, in this process) and what real Coq makes of each. The run must agree."""
    path, _ = traces
    model = tmp_path / "model"
    r = run_cli("train", "--data", str(path), "--out", str(model), "--steps", "100", "--vocab-size", "400",
                "--lr", "0.01", "--quiet")
    assert r.returncode == 0, r.stderr
    for f in ("config.json", "model.safetensors", "tokenizer.json", "prover_train.json"):
        assert (model / f).is_file()
    assert json.loads((model / "prover_train.json").read_text())["report"]["examples"] == len(read_traces(path))

    graph = tmp_path / "graph.json"
    r = run_cli("prove", "--statement", TARGET, "--generator", "hf", "--model", str(model), "--candidates", "8",
                "--max-new-tokens", "16", "--device", "cpu", "--max-expansions", "1", "--json", "--graph", str(graph))
    assert r.returncode in (0, 1), r.stderr
    out = json.loads(r.stdout)
    assert out["generator"] == "hf" and out["model"] == str(model) and out["verified"] == out["proved"]
    assert r.returncode == (0 if out["proved"] else 1)

    from prover.models.hf import HFConfig, HFGenerator
    from prover.models.prompts import COQ

    generator = HFGenerator.load(HFConfig(str(model), device="cpu", max_new_tokens=16), COQ)
    with CoqBackend() as coq:
        root = coq.open(Theorem("e2e", TARGET))
        proposed = [c.tactic for c in generator.generate(root.goals, 8)]
        outcomes = [coq.apply(root, t, 5) for t in proposed]
        closing = [t for t, o in zip(proposed, outcomes) if isinstance(o, Finished)]
        verified = [t for t in closing if coq.check(Theorem("e2e", TARGET), [t]).ok]
    edges = [e for e in json.loads(graph.read_text())["edges"] if e["source"] == 0]
    # The search tried the model's candidates, in its order, until the first verified proof.
    assert [e["tactic"] for e in edges] == proposed[:len(edges)]
    assert all(e["num_tokens"] >= 1 and e["logprob"] < 0 for e in edges)
    expected = {Finished: {"finished", "unverified"}, Next: {"next", "duplicate"}, Failed: {"failed", "rejected"},
                TimedOut: {"timeout"}}
    for e, outcome in zip(edges, outcomes):
        assert e["kind"] in expected[type(outcome)], (e, outcome)
    # One expansion: proved iff a root candidate closes the goal and passes the full check.
    assert out["proved"] == bool(verified)
    if out["proved"]:
        assert out["tactics"] == [verified[0]] and len(edges) == proposed.index(verified[0]) + 1
        # An independent re-check of the printed proof with coqc: the tactic prelude, the statement as given.
        source = tmp_path / "E2e.v"
        source.write_text(f"{DEFAULT_PRELUDE}\n{TARGET}\n{out['proof']}\nPrint Assumptions e2e.\n")
        check = subprocess.run(["coqc", str(source)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert check.returncode == 0, check.stderr
        assert "Closed under the global context" in check.stdout
    else:
        assert len(edges) == len(proposed)
        assert out["failure_reason"] == ("rejected" if closing else "budget" if any(
            isinstance(o, Next) for o in outcomes) else "exhausted")

