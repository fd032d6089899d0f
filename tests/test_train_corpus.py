"""`prover train` on a real proof corpus slice (traced here from installed Coq library files): the splits,
completion-only training, next-tactic accuracy, LoRA on a pretrained checkpoint, bad input."""
from __future__ import annotations

import json
import shutil

import pytest

from prover.corpus.records import is_held_out, steps as corpus_steps
from prover.corpus.sources import coq_root
from prover.models.corpus_examples import is_validation, load_corpus

from .conftest import TINY_STATES, run_cli

pytestmark = pytest.mark.skipif(shutil.which("coqtop") is None, reason="needs Coq (coqtop)")
torch = pytest.importorskip("torch")

THEORIES = coq_root() / "theories"
# Four training files (Zerob has bullets) and one held-out file (Coq.Bool.IfProp).
FILES = [THEORIES / "Init/Logic.v", THEORIES / "Bool/Zerob.v", THEORIES / "Arith/Factorial.v",
         THEORIES / "Wellfounded/Inverse_Image.v", THEORIES / "Bool/IfProp.v"]
SMALL = ["--vocab-size", "500", "--hidden", "32", "--intermediate", "64", "--quiet"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    run = run_cli("corpus", "build", "--files", *map(str, FILES), "--out", str(out), "--workers", "1", "--quiet",
                  timeout=600)
    assert run.returncode == 0, run.stderr
    return out


def test_the_corpus_splits_three_ways_and_keeps_what_the_search_can_run(corpus):
    examples = load_corpus(corpus)
    raw = list(corpus_steps(corpus))
    assert examples.train and examples.valid and examples.held_out
    assert len(examples.train) + len(examples.valid) + len(examples.held_out) + examples.refused == len(raw)
    files = {s.theorem: s.file for s in raw}
    assert all(is_held_out(files[s.theorem]) for s in examples.held_out)
    assert not any(is_held_out(files[s.theorem]) for s in examples.train + examples.valid)
    assert all(is_validation(s.theorem) for s in examples.valid)
    assert not any(is_validation(s.theorem) for s in examples.train)
    # Bullets and braces are refused (the search never sends them); tactics lose their final period.
    bullets = [s for s in raw if s.tactic[0] in "-+*{}"]
    assert bullets and examples.refused >= len(bullets)
    kept = examples.train + examples.valid + examples.held_out
    assert all(not s.tactic.endswith(".") and s.tactic[0] not in "-+*{}" for s in kept)
    by_key = {(s.theorem, s.index): s.tactic for s in raw}
    assert all(by_key[(s.theorem, s.step)] == s.tactic + "." for s in kept if not s.tactic.endswith("..."))


def test_only_the_completion_is_trained_on():
    from prover.models.train import _batch

    ids, mask, labels = _batch([([5, 6, 7, 8, 9], 3), ([5, 6, 7], 2)], pad_id=0)
    assert ids.tolist() == [[5, 6, 7, 8, 9], [5, 6, 7, 0, 0]] and mask.tolist() == [[1] * 5, [1, 1, 1, 0, 0]]
    assert labels.tolist() == [[-100, -100, -100, 8, 9], [-100, -100, 7, -100, -100]]


def test_train_on_a_corpus_reports_validation_and_held_out_accuracy(corpus, tmp_path):
    out = tmp_path / "model"
    run = run_cli("train", "--data", str(corpus), "--out", str(out), "--steps", "30", *SMALL, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "validation next-tactic accuracy" in run.stdout and "held-out next-tactic accuracy" in run.stdout
    meta = json.loads((out / "prover_train.json").read_text())
    examples = load_corpus(corpus)
    assert meta["data"]["train_steps"] == len(examples.train) and meta["data"]["held_out_steps"] == len(
        examples.held_out)
    report = meta["report"]
    assert report["examples"] == len({(s.goals, s.tactic) for s in examples.train})  # distinct training pairs
    assert report["valid"]["examples"] == len(examples.valid)
    assert report["held_out"]["examples"] == len(examples.held_out)
    assert 0 <= report["valid"]["accuracy"] <= 1 and report["valid"]["loss"] > 0
    assert report["final_loss"] < report["first_loss"]

    from prover.models.hf import HFConfig, HFGenerator
    from prover.models.prompts import COQ

    generator = HFGenerator.load(HFConfig(str(out), device="cpu", max_new_tokens=16), COQ)
    assert all(c.tactic for c in generator.generate(examples.valid[0].goals, 4))


def test_accuracy_counts_exactly_what_greedy_decoding_writes(tiny_model):
    """A row is right exactly when greedy decoding after its prompt writes its completion: the model's own
    greedy continuations (from a plain token-by-token loop) are right, the same with one token changed are
    wrong, in padded batches of mixed lengths; the loss is the plain per-token negative log-likelihood."""
    from prover.models.hf import load_model
    from prover.models.prompts import COQ
    from prover.models.traces import TraceStep
    from prover.models.train import evaluate, greedy_hits

    model, tokenizer, _ = load_model(str(tiny_model), "cpu")
    rows, expected, nll = [], [], 0.0
    for k, goals in enumerate(TINY_STATES):
        prompt = tokenizer(COQ.prompt(goals)).input_ids
        ids = list(prompt)
        for _ in range(2 + k):  # continuations of different lengths
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, -1].float(), -1)
            ids.append(int(logp.argmax()))
            nll -= logp.max().item()
        rows.append((ids, len(prompt)))
        expected.append(True)
        wrong = ids[:-1] + [(ids[-1] + 1) % len(tokenizer)]
        rows.append((wrong, len(prompt)))
        expected.append(False)
    hits, _, _ = greedy_hits(model, rows, tokenizer.pad_token_id, batch_size=3)
    assert hits == expected
    right_only, summed, count = greedy_hits(model, rows[0::2], tokenizer.pad_token_id, batch_size=4)
    assert right_only == [True] * len(TINY_STATES)
    assert count == sum(2 + k for k in range(len(TINY_STATES))) and summed == pytest.approx(nll, rel=1e-4)
    # On steps: a tactic is scored with its stop line; an unlikely tactic is wrong.
    evaluation, correct = evaluate(model, tokenizer, COQ, [TraceStep(TINY_STATES[0], "idtac 7 ; idtac 8")])
    assert correct == [False] and evaluation.accuracy == 0 and evaluation.loss > 0


def test_lora_and_full_fine_tuning_of_a_pretrained_checkpoint(corpus, tiny_model, tmp_path):
    from safetensors.torch import load_file

    base = load_file(str(tiny_model / "model.safetensors"))
    for extra, name in ((["--lora", "4"], "lora"), ([], "full")):
        out = tmp_path / name
        run = run_cli("train", "--data", str(corpus), "--out", str(out), "--base", str(tiny_model), "--steps", "8",
                      "--quiet", *extra, timeout=600)
        assert run.returncode == 0, run.stderr
        report = json.loads((out / "prover_train.json").read_text())["report"]
        assert report["base"] == str(tiny_model)
        tuned = load_file(str(out / "model.safetensors"))
        assert set(tuned) == set(base)  # LoRA adapters are merged: the same weights, nothing extra
        assert not (out / "adapter_config.json").exists()
        changed = [k for k in base if not torch.equal(base[k], tuned[k])]
        if name == "lora":
            assert 0 < report["trainable_parameters"] < report["parameters"] / 2
            assert changed and all("proj" in k for k in changed)  # only the adapted linear layers moved
        else:
            assert report["trainable_parameters"] == report["parameters"]
            assert any("embed" in k for k in changed)
        assert json.loads((out / "tokenizer.json").read_text()) == json.loads((tiny_model / "tokenizer.json").read_text())


def test_bad_training_input_is_one_line_exit_2(corpus, tmp_path):
    held_only = tmp_path / "held"
    held_only.mkdir()
    for f in corpus.rglob("IfProp.jsonl.gz"):
        shutil.copy(f, held_only / f.name)
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["--data", str(corpus), "--lora", "4"], "--lora adapts a pretrained model"),
        (["--data", str(corpus), "--base", str(tmp_path / "nope")], "base model directory not found"),
        (["--data", str(tmp_path / "missing")], "no such file or corpus directory"),
        (["--data", str(empty)], "no corpus files"),
        (["--data", str(held_only)], "no training steps"),
    ]
    for args, message in cases:
        run = run_cli("train", *args, "--out", str(tmp_path / "m"), "--quiet", timeout=120)
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2 and len(lines) == 1 and message in lines[0], (args, run.stderr)
        assert not (tmp_path / "m").exists()


def test_the_shared_prefix_changes_neither_loss_nor_gradients_nor_predictions(tiny_model):
    """Training runs the few-shot prefix once per batch: the same loss and gradients as running it per row."""
    from prover.models.hf import load_model
    from prover.models.prompts import COQ
    from prover.models.train import completion_loss, forward, greedy_hits, prefix_ids

    model, tokenizer, _ = load_model(str(tiny_model), "cpu")
    model.train()
    rows = []
    for goals, tactic in zip(TINY_STATES, ["intros", "lia", "ring; auto", "tauto"]):
        p = tokenizer(COQ.prompt(goals)).input_ids
        rows.append((p + tokenizer(COQ.completion(tactic), add_special_tokens=False).input_ids, len(p)))
    shared = prefix_ids(tokenizer, COQ)
    assert len(shared) > 100 and all(seq[:len(shared)] == shared for seq, _ in rows)
    results = []
    for prefix in ([], shared):
        model.zero_grad()
        logits, _ = forward(model, rows, tokenizer.pad_token_id, prefix)
        loss = completion_loss(logits, forward(model, rows, tokenizer.pad_token_id, prefix)[1])
        loss.backward()
        results.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()},
                        logits.shape[1]))
    (plain, plain_grads, plain_width), (cached, cached_grads, cached_width) = results
    assert cached_width == plain_width - len(shared)  # the prefix really was not run per row
    assert cached == pytest.approx(plain, rel=1e-5)
    for name, grad in plain_grads.items():
        assert torch.allclose(cached_grads[name], grad, atol=1e-6, rtol=1e-4), name
    model.eval()
    hits, nll, count = greedy_hits(model, rows, tokenizer.pad_token_id, 3, shared)
    plain_hits, plain_nll, plain_count = greedy_hits(model, rows, tokenizer.pad_token_id, 3)
    assert hits == plain_hits and count == plain_count and nll == pytest.approx(plain_nll, rel=1e-5)
