"""The k-NN tactic model on real proofs: a traced slice of the standard library (``coq_slice``)."""
import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from prover.backends.coq.text import find_theorem
from prover.corpus.records import Step, TheoremRecord, is_held_out, read_file, steps
from prover.corpus.sources import coq_root
from prover.learning.features import Featurizer
from prover.learning.goals import first_goal
from prover.learning.index import FeatureIndex, IndexArrays
from prover.learning.knn import EXACT, KnnModel, usable_tactic
from prover.learning.modelfile import ModelFileError
from prover.models.knn import KnnGenerator

from .conftest import run_cli

BOOL = coq_root() / "theories/Bool/Bool.v"


@pytest.fixture(scope="module")
def model_file(coq_slice, tmp_path_factory):
    out = tmp_path_factory.mktemp("knn") / "model.npz"
    r = run_cli("train", "knn", "--corpus", str(coq_slice), "--out", str(out), "--quiet", timeout=300)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def model(model_file):
    return KnnModel.load(model_file)


def by_theorem(corpus: Path, logical: str):
    path = corpus.joinpath(*logical.split(".")).with_suffix(".jsonl.gz")
    out = {}
    for r in read_file(path):
        if isinstance(r, TheoremRecord):
            out[r.theorem] = (r, [])
        else:
            out[r.theorem][1].append(r)
    return out


def test_the_model_holds_only_the_training_split(coq_slice, model):
    """The slice holds a held-out file (Coq.ZArith.Zbool): none of its states reach the model."""
    assert any(is_held_out(s.file) for s in steps(coq_slice))
    assert model.meta["files"] and not any(is_held_out(f) for f in model.meta["files"])
    usable = [s for s in steps(coq_slice, "train") if usable_tactic(s.tactic) and first_goal(s.goals)]
    assert model.size == len(usable)
    # Every held-out state is new to the model: none is stored with its very features and tactic.
    held = [s for s in steps(coq_slice, "test") if usable_tactic(s.tactic)]
    train_pairs = {(s.goals, usable_tactic(s.tactic)) for s in usable}
    assert held and all((s.goals, usable_tactic(s.tactic)) not in train_pairs for s in held)


def test_index_matches_brute_force(coq_slice):
    """The postings budget and re-ranking find the same nearest states as scoring every state."""
    featurizer = Featurizer()
    sets = [f for f in (featurizer.features(s.goals) for s in steps(coq_slice, "train")) if len(f)][:1500]
    arrays = IndexArrays.build(sets)
    exact = FeatureIndex(arrays, budget=10**9, rerank=10**9)
    n = len(sets)
    keys = arrays.keys
    counts = np.diff(arrays.indptr)
    idf = np.log((1.0 + n) / (1.0 + counts))
    rng = np.random.default_rng(0)
    for q in rng.choice(n, 25, replace=False):
        query = sets[q]
        qidf = idf[np.searchsorted(keys, query)]
        brute = []
        for f in sets:
            shared = np.isin(query, f)
            inter = qidf[shared].sum()
            union = qidf.sum() + idf[np.searchsorted(keys, f)].sum() - inter
            brute.append(inter / union)
        brute = np.array(brute)
        ids, sims = exact.query(query, 5)
        assert np.allclose(sims, np.sort(brute)[::-1][:5])
        budgeted = FeatureIndex(arrays)  # the default budget: the query's own state still comes first
        ids, sims = budgeted.query(query, 1)
        assert sims[0] == pytest.approx(1.0) and brute[ids[0]] == pytest.approx(1.0)


def test_renaming_a_hypothesis_changes_only_its_name_features(coq_slice):
    """A local variable reads as its type's head (and its name): renaming one everywhere in the state
    keeps every other feature and swaps its name features."""
    from prover.learning.features import FeatureConfig

    featurizer = Featurizer()
    by_type = Featurizer(FeatureConfig(variables="type"))
    tried = 0
    for s in steps(coq_slice, "train"):
        goal = first_goal(s.goals)
        if goal is None or not goal.hypotheses:
            continue
        name = goal.hypotheses[-1].names[0]
        renamed = re.sub(rf"(?<![\w'.]){re.escape(name)}(?![\w'])", name + "_renamed", s.goals)
        assert np.array_equal(by_type.features(renamed), by_type.features(s.goals)), s.goals
        before, after = featurizer.feature_strings(s.goals), featurizer.feature_strings(renamed)
        assert {f for f in before if not f.endswith("$name:" + name)} == \
               {f for f in after if not f.endswith("$name:" + name + "_renamed")}
        tried += 1
    assert tried > 100


def test_every_state_gives_features(coq_slice):
    featurizer = Featurizer()
    for s in steps(coq_slice):
        assert len(featurizer.features(s.goals)) > 0, s.goals


def test_hypothesis_names_are_adapted(coq_slice):
    """A stored state whose tactic names a hypothesis, with that hypothesis renamed: the top suggestion
    is the stored tactic with the new name. (Features that ignore names, so the renamed state is still
    the stored one's exact match; the default features also read names.)"""
    from prover.learning.features import FeatureConfig
    from prover.learning.knn import KnnConfig

    model = KnnModel.build([(s.goals, s.tactic) for s in steps(coq_slice, "train")],
                           KnnConfig(FeatureConfig(variables="type")))
    checked = 0
    for s in steps(coq_slice, "train"):
        tactic = usable_tactic(s.tactic)
        goal = first_goal(s.goals)
        if tactic is None or goal is None:
            continue
        used = [n for n in goal.names if re.search(rf"(?<![\w'.]){re.escape(n)}(?![\w'])", tactic)]
        if not used:
            continue
        top = model.suggest(s.goals, 1)
        if not top or top[0].tactic != tactic or top[0].best < EXACT:
            continue  # another stored state with the same features votes otherwise
        name = used[0]
        new = name + "_renamed"
        pattern = rf"(?<![\w'.]){re.escape(name)}(?![\w'])"
        renamed_goals = re.sub(pattern, new, s.goals)
        expected = re.sub(pattern, new, tactic)
        assert model.suggest(renamed_goals, 1)[0].tactic == expected, (s.goals, tactic)
        checked += 1
        if checked >= 20:
            break
    assert checked >= 5


def _rename_binders(statement: str) -> str | None:
    """``Lemma n : forall x y, P x y.`` with each leading binder name primed; None if no leading forall."""
    m = re.match(r"^(Lemma|Theorem)\s+\w+\s*:\s*forall\s+([^,]*),", statement)
    if not m:
        return None
    names = set(re.findall(r"(?:^|[\s(])([a-z]\w*)(?=[^:]*:|\s*$|\s)", m.group(2).split(":")[0] + " "))
    names |= set(re.findall(r"\(([a-z][\w ]*?)\s*:", m.group(2)))
    names = {w for n in names for w in n.split()}
    if not names:
        return None
    body = statement[statement.index(":") + 1:]
    for n in names:
        body = re.sub(rf"(?<![\w'.]){re.escape(n)}(?![\w'])", n + "'", body)
    return body


def test_a_sibling_lemma_gets_its_proofs_tactics_first(coq_slice, model, model_file, tmp_path):
    """A new lemma stating a stored lemma again (other name, renamed variables) in a copy of its file: the
    search's first try on it is the stored proof's first tactic, and the k-NN generator proves it."""
    theorems = by_theorem(coq_slice, "Coq.Bool.Bool")
    source = BOOL.read_text(encoding="utf-8")
    chosen = None
    for name, (record, record_steps) in theorems.items():
        tactics = [usable_tactic(s.tactic) for s in record_steps]
        body = _rename_binders(" ".join(record.statement.split()))
        if body is None or not tactics or None in tactics:
            continue
        # The stored states must be matched exactly and only by themselves (else another proof's
        # tactic may come first, which would be right too).
        if all(model.suggest(s.goals, 1)[0].tactic == t and model.suggest(s.goals, 1)[0].best >= EXACT
               for s, t in zip(record_steps, tactics)):
            chosen = (record, tactics, body)
            if len(tactics) > 1:
                break
    assert chosen is not None
    record, tactics, body = chosen
    found = find_theorem(source, record.name)
    sibling = f"{record.name}_sibling"
    copy = tmp_path / "Bool.v"
    copy.write_text(source[:found.proof_end] + f"\n\nLemma {sibling} :{body}\nAdmitted.\n"
                    + source[found.proof_end:], encoding="utf-8")
    graph = tmp_path / "graph.json"
    r = run_cli("prove", str(copy), "--theorem", sibling, "--generator", "knn", "--knn-model", str(model_file),
                "--json", "--graph", str(graph), "--timeout", "120", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["proved"] and out["generator"] == "knn"
    edges = json.loads(graph.read_text())["edges"]
    first_try = [e for e in edges if e["source"] == 0][0]
    assert first_try["tactic"] == tactics[0]


def test_online_learning_changes_the_next_answer(coq_slice, model_file):
    """A held-out proof the model has never seen: once its steps are learned, the same state's top
    suggestion is the learned tactic."""
    generator = KnnGenerator.load(model_file)
    theorems = by_theorem(coq_slice, "Coq.ZArith.Zbool")
    changed = 0
    for name, (record, record_steps) in theorems.items():
        pairs = [(s.goals, usable_tactic(s.tactic)) for s in record_steps if usable_tactic(s.tactic)]
        if not pairs:
            continue
        goals, tactic = pairs[0]
        before = [c.tactic for c in generator.generate(goals, 5)]
        if before and before[0] == tactic:
            continue
        assert generator.learn(pairs) == len(pairs)
        after = generator.generate(goals, 5)
        assert after[0].tactic == tactic and [c.tactic for c in after] != before
        assert all(c.logprob <= 0 for c in after)
        changed += 1
        if changed >= 3:
            break
    assert changed >= 1
    assert generator.model.learned > 0


def test_scores_are_log_probabilities(coq_slice, model):
    for s in list(steps(coq_slice, "test"))[:50]:
        cands = KnnGenerator(model).generate(s.goals, 32)
        assert cands and len({c.tactic for c in cands}) == len(cands)
        probs = np.exp([c.logprob for c in cands])
        assert np.all(probs > 0) and probs.sum() <= 1.0 + 1e-9


@pytest.mark.parametrize("kind", ["garbage", "foreign", "truncated", "missing"])
def test_a_corrupt_or_foreign_model_is_one_line_exit_2(kind, model_file, tmp_path):
    bad = tmp_path / "bad.npz"
    if kind == "garbage":
        bad.write_bytes(b"\x00not a model\xff" * 100)
    elif kind == "foreign":
        np.savez(bad, weights=np.arange(10))
    elif kind == "truncated":
        data = model_file.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    r = run_cli("prove", "--statement", "Theorem t : 1 + 1 = 2.", "--generator", "knn", "--knn-model", str(bad))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in r.stderr
    with pytest.raises(ModelFileError):
        KnnModel.load(bad)


def test_train_knn_bad_input(tmp_path):
    r = run_cli("train", "knn", "--corpus", str(tmp_path / "nothing"), "--out", str(tmp_path / "m.npz"))
    assert r.returncode == 2 and "no corpus directory" in r.stderr
    (tmp_path / "empty").mkdir()
    r = run_cli("train", "knn", "--corpus", str(tmp_path / "empty"), "--out", str(tmp_path / "m.npz"))
    assert r.returncode == 2 and "no corpus files" in r.stderr
    r = run_cli("train")
    assert r.returncode == 2 and "--data" in r.stderr


def test_a_model_of_held_out_files_is_refused_on_the_held_out_benchmark(coq_slice, tmp_path):
    """Defence in depth: `prover train knn` never reads a held-out file, and a model that holds one anyway
    (built through the API) cannot be evaluated on the coqlib test split."""
    pairs = [(s.goals, s.tactic) for s in steps(coq_slice)]  # both splits
    leaky = KnnModel.build(pairs, meta={"files": sorted({s.file for s in steps(coq_slice)})})
    path = tmp_path / "leaky.npz"
    leaky.save(path)
    r = run_cli("bench", "coqlib", "--split", "test", "--limit", "1", "--generator", "knn", "--knn-model", str(path),
                "--out", str(tmp_path / "r.jsonl"))
    assert r.returncode == 2 and "held-out" in r.stderr and "Coq.ZArith.Zbool" in r.stderr
    assert not (tmp_path / "r.jsonl").exists()


def test_learn_file_traces_only_the_proofs_before_the_theorem(coq_slice, tmp_path):
    """--learn-file's steps are exactly the traced proof steps of the theorems above it in its file."""
    from prover.backends.coq.document import CoqDocument
    from prover.learning.context import earlier_proof_steps

    zbool = coq_root() / "theories/ZArith/Zbool.v"
    records = by_theorem(coq_slice, "Coq.ZArith.Zbool")
    ordered = sorted(records.values(), key=lambda rs: rs[0].line)
    target = ordered[len(ordered) // 2][0]
    doc = CoqDocument.read(zbool, flags=())
    theorem = doc.theorem(target.name)
    context = earlier_proof_steps(theorem)
    assert context.error is None
    expected = [(s.goals, s.tactic) for r, ss in ordered if r.line < target.line for s in ss]
    assert context.steps == expected and expected
    # The lemmas above it, by name, each with the state its proof starts from.
    lemmas = [(r.name, ss[0].goals) for r, ss in ordered if r.line < target.line and ss]
    assert context.lemmas == lemmas and lemmas


def test_a_lemma_proved_above_in_the_file_is_offered_by_name(coq_slice, model_file):
    """Zbool's Zeq_bool_eq is proved by `apply Zeq_is_eq_bool`, a lemma of the same (held-out) file: no
    proof the model has seen names it, so retrieval alone cannot propose it; the file's lemmas can."""
    from prover.backends.coq.document import CoqDocument
    from prover.learning.context import earlier_proof_steps

    records = by_theorem(coq_slice, "Coq.ZArith.Zbool")
    record, proof = records["Coq.ZArith.Zbool.Zeq_bool_eq"]
    assert proof[0].tactic == "apply Zeq_is_eq_bool."
    context = earlier_proof_steps(CoqDocument.read(coq_root() / "theories/ZArith/Zbool.v", flags=())
                                  .theorem("Zeq_bool_eq"))
    assert "Zeq_is_eq_bool" in [name for name, _ in context.lemmas]
    generator = KnnGenerator.load(model_file)
    goals = proof[0].goals
    assert not any("Zeq_is_eq_bool" in c.tactic for c in generator.generate(goals, 32))
    mark = generator.checkpoint()
    assert generator.learn_lemmas(context.lemmas) == len(context.lemmas)
    offered = [c.tactic for c in generator.generate(goals, 32)]
    assert "apply Zeq_is_eq_bool" in offered[:8], offered
    assert all(c.logprob <= 0 for c in generator.generate(goals, 32))
    generator.rollback(mark)  # the next theorem, of another file, does not see them
    assert not any("Zeq_is_eq_bool" in c.tactic for c in generator.generate(goals, 32))


def test_a_file_theorem_gets_the_lemma_search_step_where_its_goal_gives_a_pattern(coq_slice, model_file):
    from prover.backends.coq.document import CoqDocument
    from prover.learning.context import earlier_proof_steps
    from prover.models.knn import LEMMA_SEARCH

    context = earlier_proof_steps(CoqDocument.read(coq_root() / "theories/ZArith/Zbool.v", flags=())
                                  .theorem("Zeq_bool_eq"))
    generator = KnnGenerator.load(model_file)
    goal = "1 goal\nx, y : Z\nH : Zeq_bool x y = true\n============================\nx = y"
    product = "1 goal\n============================\nforall x y : Z, Zeq_bool x y = true -> x = y"
    assert LEMMA_SEARCH not in [c.tactic for c in generator.generate(goal, 32)]  # a statement: no file
    mark = generator.checkpoint()
    generator.learn_lemmas(context.lemmas)
    assert LEMMA_SEARCH not in [c.tactic for c in generator.generate(goal, 32)]  # x = y: nothing to match
    specific = goal.replace("x = y", "Z.succ x = Z.succ y")
    offered = generator.generate(specific, 32)
    assert LEMMA_SEARCH in [c.tactic for c in offered] and all(c.logprob <= 0 for c in offered)
    # a product too: its binders are holes (Zeq_bool _ _ = true -> _ = _)
    assert LEMMA_SEARCH in [c.tactic for c in generator.generate(product, 32)]
    generator.rollback(mark)
    assert LEMMA_SEARCH not in [c.tactic for c in generator.generate(specific, 32)]


def test_a_coqlib_run_learns_each_theorems_file_for_that_theorem(model_file, tmp_path):
    out = tmp_path / "r.jsonl"
    r = run_cli("bench", "coqlib", "--split", "test", "--limit", "2", "--workers", "1", "--generator", "knn",
                "--knn-model", str(model_file), "--learn-file", "--timeout", "10", "--out", str(out), "--quiet",
                timeout=900)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["learn_file"] is True
    for rec in lines[1:]:
        assert rec["context_steps"] > 0 and rec["context_error"] is None


def test_rollback_forgets_what_was_learned_for_one_theorem(coq_slice, model_file):
    generator = KnnGenerator.load(model_file)
    held = [(s.goals, s.tactic) for s in steps(coq_slice, "test") if usable_tactic(s.tactic)]
    probe = held[:20]
    before = [generator.generate(g, 8) for g, _ in probe]
    start = generator.checkpoint()
    size = generator.model.size
    generator.learn(held[:5])  # permanent (online)
    kept = [generator.generate(g, 8) for g, _ in probe]
    mark = generator.checkpoint()
    assert generator.learn(held[5:]) > 0
    assert [generator.generate(g, 8) for g, _ in probe] != kept
    generator.rollback(mark)
    assert generator.model.size == size + 5
    assert [generator.generate(g, 8) for g, _ in probe] == kept
    generator.rollback(start)
    assert [generator.generate(g, 8) for g, _ in probe] == before


def test_local_premises_rank_by_rare_shared_features_and_prefer_the_nearer_lemma():
    """The ranking on its own: features and idf given, so each expected order follows from the definition."""
    from prover.learning.premises import LocalPremises

    features = {"g": [1, 2, 3], "a": [1, 9], "b": [3, 8], "c": [1, 2, 3, 4], "d": [7]}
    idf = {1: 0.1, 2: 5.0, 3: 0.1, 4: 0.1, 7: 1.0, 8: 0.1, 9: 0.1}
    premises = LocalPremises(lambda text: np.array(features[text]), lambda h: np.array([idf[int(x)] for x in h]))
    for name, text in [("a", "a"), ("b", "b"), ("c", "c"), ("d", "d")]:
        assert premises.add(name, text)
    ranked = premises.rank("g", 4)
    # c shares the rare feature 2; a and b share one common feature each, with the same mass: the later
    # lemma (b) first; d shares nothing and is not offered.
    assert [name for name, _ in ranked] == ["c", "b", "a"]
    assert ranked[0][1] == pytest.approx(5.2 / 5.3) and 0 < ranked[2][1] < 1
    premises.truncate(1)
    assert [name for name, _ in premises.rank("g", 4)] == ["a"]


@pytest.mark.parametrize("tactic, step", [
    ("rewrite <- add_opp_r, opp_add_distr", "rewrite <- add_opp_r"),
    ("rewrite 2 opp_involutive, add_comm", "rewrite 2 opp_involutive"),
    ("induction n; simpl; auto", "induction n"),
    ("split; [apply H | lia]", "split"),
    ("destruct (in_app_or _ _ _ H); auto", "destruct (in_app_or _ _ _ H)"),
    ("rewrite A by lia; auto", "rewrite A by lia"),
    ("rewrite A, B in H", None),  # its clause belongs to both rewrites
    ("rewrite A, B at 2", None),
    ("now rewrite A, B", None),  # a finisher: without now it is another tactic
    ("try (rewrite A; auto)", None),
    ("do 2 (split; auto)", None),
    ("match goal with H : _ |- _ => destruct H; auto end", None),  # the ; is the branch's
    ("intros", None),
])
def test_the_first_step_of_a_compound_tactic(tactic, step):
    from prover.learning.steps import first_step

    assert first_step(tactic) == step


ZADD_SUB_OPP_R = "Coq.Numbers.Integer.Abstract.ZAdd.ZAddProp.sub_opp_r"


def test_a_neighbours_sentence_that_fails_here_still_offers_its_first_step(model_file):
    """ZAdd's sub_opp_r (held out) is `rewrite <- add_opp_r; now rewrite opp_involutive`. The file's
    earlier proofs say `rewrite <- add_opp_r, opp_add_distr` and the like on similar states; those fail
    here, their first step is the proof's first step."""
    from dataclasses import replace

    from prover.backends.base import Failed, Finished, Next
    from prover.backends.coq.backend import CoqBackend
    from prover.learning.context import earlier_proof_steps
    from prover.runs import coqlib
    from prover.search.best_first import SearchConfig, search

    theorem = coqlib.load("test", [ZADD_SUB_OPP_R], None)[0].theorem
    context = earlier_proof_steps(theorem)
    generator = KnnGenerator.load(model_file)
    assert generator.learn(list(context.steps)) > 0
    backend = CoqBackend()
    try:
        root = backend.open(theorem)
        offered = [c.tactic for c in generator.generate(root.goals, 32)]
        compounds = [t for t in offered if t.startswith("rewrite <- add_opp_r,")]
        assert compounds and "rewrite <- add_opp_r" in offered, offered
        assert offered.index("rewrite <- add_opp_r") < 8, offered
        for t in compounds:
            assert isinstance(backend.apply(root, t, 10), Failed)
        step = backend.apply(root, "rewrite <- add_opp_r", 10)
        assert isinstance(step, Next)
        assert isinstance(backend.apply(step.state, "now rewrite opp_involutive", 10), Finished)
        # Without the first steps' votes, it is not offered: no stored state says it alone.
        generator.model.config = replace(generator.model.config, step_share=0.0)
        assert "rewrite <- add_opp_r" not in [c.tactic for c in generator.generate(root.goals, 32)]
        generator.model.config = replace(generator.model.config, step_share=0.5)
        result = search(theorem, backend, generator, SearchConfig(timeout=60, tactic_timeout=5))
        assert result.proved and result.tactics[0] == "rewrite <- add_opp_r", result.tactics
    finally:
        backend.close()


def test_first_steps_take_at_most_their_slots_and_never_push_out_whole_sentences(model_file):
    """On sub_opp_r (the file's earlier proofs learned) several first steps are offered that no
    neighbour ran alone. Capped at one, the best of them stays, and the other places among the answers
    go to the whole sentences, in the order they had without the cap."""
    from dataclasses import replace

    from prover.backends.coq.backend import CoqBackend
    from prover.learning.context import earlier_proof_steps
    from prover.runs import coqlib

    theorem = coqlib.load("test", [ZADD_SUB_OPP_R], None)[0].theorem
    generator = KnnGenerator.load(model_file)
    assert generator.learn(list(earlier_proof_steps(theorem).steps)) > 0
    backend = CoqBackend()
    try:
        goals = backend.open(theorem).goals
    finally:
        backend.close()
    model = generator.model
    model.config = replace(model.config, step_slots=10**6)
    every = model.suggest(goals, 10**6)
    steps = [s.tactic for s in every if not s.whole]
    whole = [s.tactic for s in every if s.whole]
    assert len(steps) >= 2 and len(whole) >= 32, (steps, whole)
    assert "rewrite <- add_opp_r" in steps  # no neighbour ran it alone (the test above)
    model.config = replace(model.config, step_slots=1)
    capped = model.suggest(goals, 32)
    assert [s.tactic for s in capped if not s.whole] == steps[:1]
    assert [s.tactic for s in capped if s.whole] == whole[:31]
    assert [s.tactic for s in capped] == [s.tactic for s in every if s.tactic in {c.tactic for c in capped}]
