"""The learned node scorer (--priority value): trained on a real corpus slice and real search trees."""
import json
import shutil

import numpy as np
import pytest

from prover.backends.base import Theorem
from prover.backends.coq.backend import CoqBackend
from prover.components import make_generator
from prover.learning.trees import corpus_states
from prover.learning.value import ValueModel
from prover.models.base import Candidate, Generator
from prover.search.best_first import SearchConfig, search
from prover.search.scoring import ValueScorer

from .conftest import run_cli


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """Search trees of a short portfolio run on two miniF2F valid problems."""
    d = tmp_path_factory.mktemp("run")
    r = run_cli("minif2f", "--split", "valid", "--limit", "2", "--workers", "1", "--generator", "portfolio",
                "--out", str(d / "r.jsonl"), "--trees", str(d / "trees"), "--timeout", "15", "--quiet",
                timeout=600)
    assert r.returncode == 0, r.stderr
    return d / "trees"


@pytest.fixture(scope="module")
def scorer_file(coq_slice, trees, tmp_path_factory):
    out = tmp_path_factory.mktemp("scorer") / "value.npz"
    r = run_cli("train", "scorer", "--corpus", str(coq_slice), "--trees", str(trees), "--out", str(out), "--quiet",
                timeout=600)
    assert r.returncode == 0, r.stderr
    assert "trees" in r.stdout and "corpus" in r.stdout
    return out


def test_the_scorer_ranks_states_near_the_end_of_proofs_higher(coq_slice, scorer_file):
    model = ValueModel.load(scorer_file)
    states = list(corpus_states(coq_slice, 0.7))
    last = [model.probability(s.goals) for s in states if s.target == 1.0]
    far = [model.probability(s.goals) for s in states if s.target < 0.7 ** 3]
    assert last and far and all(0.0 < p < 1.0 for p in last + far)
    assert np.mean(last) > np.mean(far)
    assert model.meta["sources"]["trees"] > 0 and model.meta["sources"]["corpus"] == len(states)


def test_trees_of_a_test_split_run_are_refused(coq_slice, tmp_path):
    d = tmp_path
    r = run_cli("minif2f", "--split", "test", "--limit", "1", "--workers", "1", "--generator", "portfolio",
                "--out", str(d / "r.jsonl"), "--trees", str(d / "trees"), "--timeout", "5", "--quiet", timeout=300)
    assert r.returncode == 0, r.stderr
    r = run_cli("train", "scorer", "--corpus", str(coq_slice), "--trees", str(d / "trees"), "--out",
                str(d / "v.npz"))
    assert r.returncode == 2 and "split 'test'" in r.stderr and not (d / "v.npz").exists()


def test_priority_value_proves_with_the_learned_scorer(scorer_file, tmp_path):
    graph = tmp_path / "g.json"
    r = run_cli("prove", "--statement", "Theorem t : forall a b : nat, a <= b -> a < S b.", "--generator",
                "portfolio", "--priority", "value", "--value-model", str(scorer_file), "--json", "--graph",
                str(graph))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["verified"]
    nodes = json.loads(graph.read_text())["nodes"]
    model = ValueModel.load(scorer_file)
    # Each child's priority is its path cost plus -log V(child).
    for n in nodes:
        if isinstance(n["id"], int) and n["id"] > 0:
            assert n["cost"] >= -np.log(model.probability(n["goals"])) - 1e-9


@pytest.mark.parametrize("args,fragment", [
    (["--priority", "value"], "prover models build"),
    (["--priority", "value", "--value-model", "MISSING"], "no model file"),
    (["--priority", "value", "--value-model", "KNN"], "is not a prover-value model"),
])
def test_priority_value_bad_input(args, fragment, coq_slice, tmp_path):
    knn = tmp_path / "knn.npz"
    if "KNN" in args:
        assert run_cli("train", "knn", "--corpus", str(coq_slice), "--out", str(knn), "--quiet").returncode == 0
    args = [str(knn) if a == "KNN" else str(tmp_path / "missing.npz") if a == "MISSING" else a for a in args]
    r = run_cli("prove", "--statement", "Theorem t : 1 = 1.", "--generator", "portfolio", *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0]


class _Prefers:
    """A stand-in value function (the scorer's protocol: probability of a goals text)."""

    def __init__(self, word: str) -> None:
        self.word = word

    def probability(self, goals: str) -> float:
        return 0.9 if self.word in goals else 0.01


class _Two(Generator):
    name = "two"

    def generate(self, goals, n):
        if "forall" in goals:
            return [Candidate("intros a", -0.1), Candidate("intros b", -0.2)]
        return []


@pytest.mark.skipif(shutil.which("coqtop") is None, reason="needs Coq")
def test_the_value_reorders_the_search():
    """Two first steps lead to states named by their variable; the value decides which is expanded first."""
    theorem = Theorem("t", "Theorem t : forall n : nat, n = n.")
    for word, expected in (("a", "intros a"), ("b", "intros b")):
        backend = CoqBackend()
        try:
            scorer = ValueScorer(_Prefers(f"{word} : nat"))
            result = search(theorem, backend, _Two(), SearchConfig(max_expansions=2, timeout=60), scorer=scorer)
        finally:
            backend.close()
        tree = result.tree
        second = [n for n in tree.nodes if n.expanded and n.id != 0]
        assert second and tree.path(second[0])[0].tactic == expected
