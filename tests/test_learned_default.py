"""The learned default for Coq: knn and the portfolio mixed, its models built into a cache, online learning
in runs and in the REPL."""
import gzip
import json
import math
import os

import numpy as np
import pytest

from prover.components import make_generator, ModelOptions
from prover.learning.default import DefaultModels
from prover.learning.knn import KnnModel
from prover.models.combined import CombinedGenerator
from prover.models.knn import KnnGenerator
from prover.repl.client import ReplClient
from prover.runs.runner import Job, OnlineSteps

from .conftest import ROOT, SHARED_DATA, run_cli


@pytest.fixture(scope="module")
def cache(coq_slice, tmp_path_factory):
    """A model cache holding the default models built from the slice (as `make install` would from the
    whole training split)."""
    root = tmp_path_factory.mktemp("cache")
    r = run_cli("models", "build", "--corpus", str(coq_slice), env={"PROVER_CACHE_DIR": str(root)}, timeout=600)
    assert r.returncode == 0, r.stderr
    return root


def test_models_build_and_info(cache):
    models = DefaultModels(cache)
    assert models.ready
    r = run_cli("models", "info", env={"PROVER_CACHE_DIR": str(cache)})
    assert r.returncode == 0 and str(models.knn) in r.stdout and "states" in r.stdout


def test_the_default_for_coq_is_combined_once_its_models_are_built(cache, tmp_path):
    statement = "Theorem t : forall a b : nat, a + b = b + a."
    r = run_cli("prove", "--statement", statement, "--json", env={"PROVER_CACHE_DIR": str(cache)})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["generator"] == "combined" and out["model"] == str(DefaultModels(cache).knn) and out["verified"]
    # Your own tactic list replaces the portfolio alone, as before.
    tactics = tmp_path / "tactics.txt"
    tactics.write_text("intros; lia\n")
    r = run_cli("prove", "--statement", statement, "--json", "--tactics", str(tactics),
                env={"PROVER_CACHE_DIR": str(cache)})
    assert r.returncode == 0 and json.loads(r.stdout)["generator"] == "tactics:tactics.txt", r.stderr
    empty = tmp_path / "empty"
    # Models not built and the build turned off: the model-free portfolio.
    r = run_cli("prove", "--statement", statement, "--json", env={"PROVER_CACHE_DIR": str(empty)})
    assert r.returncode == 0 and json.loads(r.stdout)["generator"] == "portfolio", r.stderr
    # Asking for a learned generator without its models is a clear error.
    r = run_cli("prove", "--statement", statement, "--generator", "knn", env={"PROVER_CACHE_DIR": str(empty)})
    assert r.returncode == 2 and "prover models build" in r.stderr


def test_the_default_learns_the_proofs_above_a_file_theorem(cache, tmp_path):
    """With a learned generator, a theorem of a file is proved with the file's earlier proofs learned first
    (Tactician's setting); --no-learn-file turns it off; a statement has no file to learn."""
    v = tmp_path / "Sib.v"
    v.write_text("Lemma sib_first : forall n : nat, n + 0 = n.\nProof. intros n. induction n; simpl; auto. Qed.\n\n"
                 "Lemma sib_second : forall m : nat, m + 0 = m.\nProof. Admitted.\n")
    env = {"PROVER_CACHE_DIR": str(cache)}
    r = run_cli("prove", str(v), "--theorem", "sib_second", "--json", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["generator"] == "combined" and out["context_steps"] == 2 and out["context_error"] is None
    r = run_cli("prove", str(v), "--theorem", "sib_second", "--json", "--no-learn-file", env=env)
    assert r.returncode == 0 and "context_steps" not in json.loads(r.stdout), r.stderr
    r = run_cli("prove", "--statement", "Theorem t : forall m : nat, m + 0 = m.", "--json", env=env)
    assert r.returncode == 0 and "context_steps" not in json.loads(r.stdout), r.stderr


def test_the_repl_does_not_build_the_models_on_start(cache, tmp_path):
    """An editor starts the REPL: with no models built it answers at once with the portfolio (building would
    take minutes), and with models built its default is combined."""
    statement = "Theorem t : forall a b : nat, a + b = b + a."
    empty = tmp_path / "empty"
    for root, expected in ((empty, "portfolio"), (cache, "combined")):
        env = {**os.environ, "PROVER_CACHE_DIR": str(root), "PROVER_NO_MODEL_BUILD": "0"}
        with ReplClient.spawn([], cwd=str(ROOT), env=env) as client:
            proved = client.request("prove", statement=statement)
        assert proved["type"] == "result" and proved["proved"] and proved["generator"] == expected, proved
    assert not (empty / "corpus-train").exists()


def test_the_mixture_is_a_distribution_over_both_parts(cache, coq_slice):
    from prover.corpus.records import steps

    knn = KnnGenerator.load(DefaultModels(cache).knn)
    portfolio = make_generator("portfolio", "coq")
    combined = CombinedGenerator([(knn, 0.5), (portfolio, 0.5)])
    for s in list(steps(coq_slice, "test"))[:40]:
        cands = combined.generate(s.goals, 64)
        p = {c.tactic: math.exp(c.logprob) for c in cands}
        assert len(p) == len(cands) and sum(p.values()) <= 1.0 + 1e-9
        assert [c.logprob for c in cands] == sorted((c.logprob for c in cands), reverse=True)
        k = {c.tactic: math.exp(c.logprob) for c in knn.generate(s.goals, 64)}
        f = {c.tactic: math.exp(c.logprob) for c in portfolio.generate(s.goals, 64)}
        kz, fz = sum(k.values()), sum(f.values())
        for t, prob in p.items():  # each tactic's share is the weighted sum of its shares in the parts
            assert prob == pytest.approx(0.5 * k.get(t, 0) / kz + 0.5 * f.get(t, 0) / fz)


def test_online_steps_reach_every_worker_once():
    online = OnlineSteps(True)
    job = Job("a", "valid", "", None, {})
    first = online.for_worker("w1", job)
    assert first.learn == ()
    online.add({"proved": True, "proof_goals": ["g1", "g2"], "tactics": ["t1", "t2"]})
    online.add({"proved": False, "proof_goals": [], "tactics": []})
    assert online.for_worker("w1", job).learn == (("g1", "t1"), ("g2", "t2"))
    assert online.for_worker("w1", job).learn == ()
    assert online.for_worker("w2", job).learn == (("g1", "t1"), ("g2", "t2"))  # a new worker gets all
    resumed = OnlineSteps(True, [{"proved": True, "proof_goals": ["g"], "tactics": ["t"]}])
    assert resumed.for_worker("w", job).learn == (("g", "t"),)
    assert OnlineSteps(False, [{"proved": True, "proof_goals": ["g"], "tactics": ["t"]}]).for_worker("w", job).learn == ()


def test_an_online_minif2f_run_records_it_and_its_proofs_states(cache, tmp_path):
    out = tmp_path / "r.jsonl"
    trees = tmp_path / "trees"
    # Two theorems the default proves in a second or two, one it does not prove in 10 s.
    names = "mathd_algebra_190,induction_sum2kp1npqsqm1,aimeII_2001_p3"
    r = run_cli("minif2f", "--split", "valid", "--names", names, "--workers", "1", "--out", str(out), "--online",
                "--trees", str(trees), "--timeout", "10", "--check-timeout", "60", "--quiet", "--generator", "combined",
                env={"PROVER_CACHE_DIR": str(cache)}, timeout=600)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["type"] == "config" and lines[0]["online"] is True and lines[0]["generator"] == "combined"
    results = lines[1:]
    assert len(results) == 3 and any(rec["proved"] for rec in results)
    for rec in results:
        assert len(rec["proof_goals"]) == (len(rec["tactics"]) if rec["proved"] else 0)
        tree = json.loads(gzip.open(trees / "valid" / f"{rec['name']}.json.gz", "rt").read())
        assert tree["proved"] == rec["proved"] and tree["nodes"][0]["goals"]
    # Resuming an online run with online off is refused (the configuration must match).
    r = run_cli("minif2f", "--split", "valid", "--limit", "4", "--workers", "1", "--out", str(out), "--resume",
                "--timeout", "10", "--check-timeout", "60", "--generator", "combined", env={"PROVER_CACHE_DIR": str(cache)})
    assert r.returncode == 2 and "online" in r.stderr


def test_repl_online_learning_raises_the_found_tactic(cache):
    statement = "Theorem t : forall a b : nat, a + b = b + a."
    env = {**os.environ, "PROVER_CACHE_DIR": str(cache)}
    client = ReplClient.spawn(["--online", "--generator", "combined"], cwd=str(ROOT), env=env)
    with client:
        root = client.request("suggest", statement=statement, n=64)
        proved = client.request("prove", statement=statement)
        assert proved["type"] == "result" and proved["proved"], proved
        first = proved["tactics"][0]
        after = client.request("suggest", statement=statement, n=64)
    score = {s["tactic"]: s["score"] for s in root["candidates"]}
    new = {s["tactic"]: s["score"] for s in after["candidates"]}
    assert new[first] > score.get(first, -math.inf)
