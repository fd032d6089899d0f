"""The Hugging Face generator on a tiny Llama model and BPE tokenizer built here (no downloads)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")

from prover.models.base import Candidate, rank_candidates  # noqa: E402
from prover.models.hf import HFConfig, HFGenerator, MixGenerator  # noqa: E402
from prover.models.portfolio import PortfolioGenerator  # noqa: E402
from prover.models.prompts import COQ  # noqa: E402
from prover.models.traces import TraceStep  # noqa: E402
from prover.models.train import TrainConfig, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

STATES = [
    "1 goal\n============================\nforall a b : nat, a + b = b + a",
    "1 goal\na, b : nat\n============================\na + b = b + a",
    "1 goal\nx : R\nH : 0 < x\n============================\nx * 1 = x",
    "1 goal\n============================\nforall P Q : Prop, P /\\ Q -> Q /\\ P",
]
TACTICS = ["intros", "lia", "ring", "tauto"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A 60-step model: it has learned the frame (tactic, then the stop line) but is far from certain."""
    out = tmp_path_factory.mktemp("tiny")
    steps = [TraceStep(g, t) for g, t in zip(STATES, TACTICS)]
    train(steps, out, COQ, TrainConfig(steps=60, batch_size=4, hidden=32, intermediate=64, vocab_size=400,
                                         lr=1e-2, warmup=5))
    return out


def make(model_dir, **kw) -> HFGenerator:
    kw.setdefault("max_new_tokens", 16)
    return HFGenerator.load(HFConfig(str(model_dir), device="cpu", **kw), COQ)


@pytest.fixture(scope="module")
def gen(model_dir):
    return make(model_dir)


def manual_logprobs(g: HFGenerator, state: str, tokens) -> list[float]:
    """Log-probs of ``tokens`` after the prompt by one plain, unpadded, uncached forward pass."""
    prompt = g.tokenizer(COQ.prompt(state)).input_ids
    ids = torch.tensor([prompt + list(tokens)])
    with torch.no_grad():
        logp = torch.log_softmax(g.model(input_ids=ids).logits[0].float(), dim=-1)
    return [logp[len(prompt) - 1 + j, t].item() for j, t in enumerate(tokens)]


@pytest.mark.parametrize("temperatures", [(0.0,), (2.0,)], ids=["beam", "sample-T2"])
def test_scores_are_the_true_mean_token_logprob(gen, temperatures):
    g = HFGenerator(gen.model, gen.tokenizer, COQ, HFConfig("tiny", temperatures=temperatures,
                                                                max_new_tokens=16), gen.device)
    completions = g.complete(STATES[:3], 6)
    assert all(completions)
    for state, comps in zip(STATES, completions):
        for c in comps:
            manual = manual_logprobs(g, state, c.token_ids)
            assert len(c.logprobs) == len(c.token_ids)
            assert c.candidate().score == pytest.approx(sum(manual) / len(manual), abs=1e-4)
    # generate() ranks these same scores (at T=2 the warped scores transformers keeps would be about half).
    best: dict[str, float] = {}
    for c in completions[0]:
        best[c.tactic] = max(best.get(c.tactic, -1e9), c.candidate().score)
    if temperatures == (0.0,):
        for cand in g.generate(STATES[0], 6):
            assert cand.score == pytest.approx(best[cand.tactic], abs=1e-4)


def test_beam_search_and_sampling_both_propose(model_dir, gen):
    beam = gen.generate(STATES[1], 8)
    sampler = make(model_dir, temperatures=(1.0, 0.5), seed=1)
    sampled = sampler.generate(STATES[1], 8)
    for cands in (beam, sampled):
        assert 0 < len(cands) <= 8
        assert [c.score for c in cands] == sorted((c.score for c in cands), reverse=True)
        assert all(c.tactic and c.tactic == c.tactic.strip() and c.num_tokens >= 1 for c in cands)
    # Beam search is deterministic (what the tiny model learned is not asserted: it varies with the
    # libraries a fresh environment installs).
    assert [c.tactic for c in gen.generate(STATES[1], 8)] == [c.tactic for c in beam]


def dash_model(gen: HFGenerator) -> HFGenerator:
    """The tiny model rewired to prefer "-" at every step, whatever its weights learned: its final
    norm zeroes the hidden state, and a new output layer's bias picks "-" (the stop is "---")."""
    import copy

    model = copy.deepcopy(gen.model)
    model.model.norm.weight.data.zero_()
    [dash] = gen.tokenizer("-", add_special_tokens=False).input_ids
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    head.weight.data.zero_()
    head.bias.data.zero_()
    head.bias.data[dash] = 10.0
    model.lm_head = head
    return HFGenerator(model, gen.tokenizer, COQ, HFConfig("dash", max_new_tokens=16), gen.device)


def test_stop_sequence_ends_generation_and_cuts_candidates(gen):
    prompt_ids = gen._prompt_ids(STATES[:2])
    rows = [r for rows in gen._generate(prompt_ids, gen._use_cache(prompt_ids), 4, 0.0) for r in rows]
    for row in rows:  # whichever rows the tiny model ends with the stop line
        texts = [gen.tokenizer.decode(row[:k + 1]) for k in range(len(row))]
        first = next((k for k, t in enumerate(texts) if "---" in t), None)
        if first is not None:
            # Generation stopped the row there: only EOS fill after the stop.
            assert set(row[first + 1:]) <= gen.eos_ids | {gen.pad_id}
            tokens, tactic = gen._cut(row)
            assert len(tokens) == first + 1 and "---" not in tactic
            assert tactic == texts[first].split("---")[0].strip()
    # A model that writes "-" at once, whatever it learned: its best rows are the stop line, cut there.
    dash = dash_model(gen)
    [one] = dash.tokenizer("-", add_special_tokens=False).input_ids
    best = [rows[0] for rows in dash._generate(prompt_ids, dash._use_cache(prompt_ids), 4, 0.0)]
    for row in best:
        assert row[:3] == [one] * 3 and set(row[3:]) <= dash.eos_ids | {dash.pad_id}
        assert dash._cut(row) == ((one, one, one), "")
    # The cut on a hand-made continuation: the first stop line ends the tactic, its tokens are scored.
    ids = gen.tokenizer("\nlia\n---\nring\n---\n", add_special_tokens=False).input_ids
    tokens, tactic = gen._cut(ids)
    assert tactic == "lia" and gen.tokenizer.decode(tokens).rstrip().endswith("---")
    assert "ring" not in gen.tokenizer.decode(tokens)
    empty = gen.tokenizer("\n---", add_special_tokens=False).input_ids
    assert gen._cut(empty)[1] == ""


def test_dedupe_and_empty_candidates(model_dir):
    # Two beam runs (temperatures 0, 0) draw the very same sequences: every one comes twice, whatever
    # the model learned, and each is kept once.
    g = make(model_dir, temperatures=(0.0, 0.0))
    prompt_ids = g._prompt_ids([STATES[0]])
    rows = g._generate(prompt_ids, g._use_cache(prompt_ids), 8, 0.0)[0]
    raw = [g._cut(r) for r in rows] * 2
    assert len(raw) == 16
    [completions] = g.complete([STATES[0]], 8)
    assert sorted(c.token_ids for c in completions) == sorted({toks for toks, tactic in raw if tactic})
    cands = g.generate(STATES[0], 8)
    assert sorted(c.tactic for c in cands) == sorted({tactic for _, tactic in raw if tactic})  # once, none empty
    ranked = rank_candidates([Candidate(" lia ", -1.0, 2), Candidate("lia", -0.2, 2), Candidate("  ", 0.0, 1),
                              Candidate("ring", -0.5, 1)], 8)
    assert [(c.tactic, c.logprob) for c in ranked] == [("lia", -0.2), ("ring", -0.5)]


def test_batched_equals_unbatched_under_beam_search(model_dir, gen):
    batched = gen.generate_batch(STATES, 6)
    single = [gen.generate(s, 6) for s in STATES]
    uncached = make(model_dir, prefix_cache=False)
    assert gen._prefix_cache is not None and uncached._prefix_cache is None
    plain = uncached.generate_batch(STATES, 6)
    for b, s, p in zip(batched, single, plain):
        assert [c.tactic for c in b] == [c.tactic for c in s] == [c.tactic for c in p]
        assert [c.num_tokens for c in b] == [c.num_tokens for c in s] == [c.num_tokens for c in p]
        for x, y, z in zip(b, s, p):
            assert x.logprob == pytest.approx(y.logprob, abs=1e-4) == pytest.approx(z.logprob, abs=1e-4)


def test_mix_interleaves_model_and_portfolio(gen):
    portfolio = PortfolioGenerator(["lia", "nra", "field", "ring", "auto"])
    mix = MixGenerator(gen, portfolio)
    model = [c.tactic for c in gen.generate(STATES[1], 6)]
    ranked = [c.tactic for c in portfolio.generate(STATES[1], 6)]
    tactics = [c.tactic for c in mix.generate(STATES[1], 6)]
    # Whatever the model proposes (it may propose a portfolio tactic too): model first, then turns,
    # a tactic both propose kept once, where it first came.
    assert len(tactics) == len(set(tactics)) == min(6, len(set(model) | set(ranked)))
    assert set(tactics) <= set(model) | set(ranked)
    assert tactics[0] == model[0]
    assert tactics[1] == next(t for t in ranked if t != model[0])
    expected = []
    for pair in zip(model + [None] * 6, ranked + [None] * 6):
        expected += [t for t in pair if t is not None and t not in expected]
    assert tactics == expected[:6]
    assert mix.name == "mix" and mix.model_id == gen.model_id


def test_options_are_checked_before_any_loading():
    from prover.components import ConfigError, ModelOptions, make_generator

    assert HFConfig.temperatures_for("beam", None) == (0.0,)
    assert HFConfig.temperatures_for("sample", None) == (1.0,)
    assert HFConfig.temperatures_for("sample", (0.0, 0.8)) == (0.0, 0.8)
    with pytest.raises(ValueError, match="temperature 0"):
        HFConfig.temperatures_for("beam", (0.7,))
    with pytest.raises(ConfigError, match="needs --model"):
        make_generator("hf", "coq")
    with pytest.raises(ConfigError, match="--model needs --generator hf or mix"):
        make_generator("portfolio", "coq", None, ModelOptions(model="x"))
    with pytest.raises(ConfigError, match="unknown device"):
        make_generator("hf", "coq", None, ModelOptions(model="x", device="tpu9"))


def run_cli(*args, env=None, timeout=120):
    full = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "prover", *args], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("model,message", [
    ("nobody-here/no-such-model-xyz", "not found: not a local directory and not in the Hugging Face cache"),
    ("/nonexistent/prover-model", "model directory not found"),
], ids=["hub-id-offline", "missing-dir"])
def test_missing_model_is_one_line_exit_2(tmp_path, model, message):
    r = run_cli("prove", "--statement", "Theorem t : 1 = 1.", "--generator", "hf", "--model", model,
                env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr
