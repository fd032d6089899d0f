"""Tactic models trained here: from scratch (a byte-level BPE tokenizer and a small Llama-architecture model)
or from a local pretrained checkpoint (every weight, or LoRA adapters through peft).

No weights can be downloaded on the machines this project is built on, so it can make its own: the model
reads exactly the prompt a large model reads (the backend's few-shot prompt with the goals filled in) and
learns to write the next tactic and the closing stop line. The loss covers only that completion; the
prompt is context. Steps held out from training are evaluated: next-tactic accuracy (greedy decoding
writes the reference tactic) and loss. The directory is written with ``save_pretrained`` (LoRA adapters
merged) and loads through the same code path as Llemma (``HFGenerator.load``).
"""
from __future__ import annotations

import inspect
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from .prompts import PromptFormat
from .traces import TraceStep

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")  # ids 0, 1, 2
SMALL_MODEL = 50_000_000  # parameters; below this, one torch thread (as HFGenerator does on CPU)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 300
    batch_size: int = 8
    lr: float = 3e-3
    warmup: int = 20
    vocab_size: int = 1024
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    intermediate: int = 192
    max_len: int = 1024  # examples longer than this many tokens are left out
    seed: int = 0
    lora_rank: int = 0  # with a base checkpoint: train LoRA adapters of this rank (0: every weight)
    eval_limit: int = 2000  # validation and held-out steps evaluated at most (a seeded sample)
    share_prefix: bool = True  # run the few-shot prefix once per batch, not once per example

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "vocab_size", "hidden", "layers", "heads", "intermediate", "max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.hidden % self.heads:
            raise ValueError("hidden must be a multiple of heads")
        if not self.lr > 0:
            raise ValueError("lr must be positive")
        if self.lora_rank < 0 or self.warmup < 0:
            raise ValueError("lora_rank and warmup must be 0 or more")


@dataclass(frozen=True)
class Evaluation:
    """Next-tactic accuracy on steps never trained on."""

    examples: int
    accuracy: float  # share of steps where greedy decoding writes the reference tactic (and stops)
    loss: float  # mean negative log-likelihood per completion token
    too_long: int = 0  # steps over max_len tokens (counted as wrong)


@dataclass(frozen=True)
class TrainReport:
    out_dir: str
    examples: int
    skipped: int
    parameters: int
    steps: int
    first_loss: float
    final_loss: float
    seconds: float
    trainable_parameters: int = 0
    base: str | None = None  # the pretrained checkpoint trained from, if any
    valid: Evaluation | None = None
    held_out: Evaluation | None = None


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer (the ``tokenizers`` library) that prepends ``<s>``, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   padding_side="left")


def build_model(vocab_size: int, config: TrainConfig):
    from transformers import LlamaConfig, LlamaForCausalLM

    llama = LlamaConfig(vocab_size=vocab_size, hidden_size=config.hidden, intermediate_size=config.intermediate,
                        num_hidden_layers=config.layers, num_attention_heads=config.heads,
                        num_key_value_heads=config.heads, max_position_embeddings=4096,
                        bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=True)
    model = LlamaForCausalLM(llama)
    model.generation_config.bos_token_id, model.generation_config.eos_token_id = 1, 2
    model.generation_config.pad_token_id = 0
    return model


def encode_examples(steps: list[TraceStep], prompt: PromptFormat, tokenizer,
                    max_len: int) -> tuple[list[tuple[list[int], int]], int]:
    """``(ids, prompt_length)`` per distinct example: the prompt as generation tokenizes it, then the
    completion and EOS. Returns the examples and how many were too long."""
    seen, out, skipped = set(), [], 0
    for s in steps:
        key = (s.goals, s.tactic)
        if key in seen:
            continue
        seen.add(key)
        p = tokenizer(prompt.prompt(s.goals)).input_ids
        c = tokenizer(prompt.completion(s.tactic), add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
        if len(p) + len(c) > max_len:
            skipped += 1
            continue
        out.append((p + c, len(p)))
    return out, skipped


def _batch(examples: list[tuple[list[int], int]], pad_id: int):
    """Right-padded ids, attention mask and labels (-100 outside each completion) for a batch."""
    import torch

    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for r, (seq, plen) in enumerate(examples):
        ids[r, :len(seq)] = torch.tensor(seq)
        mask[r, :len(seq)] = 1
        labels[r, plen:len(seq)] = torch.tensor(seq[plen:])
    return ids, mask, labels


def prefix_ids(tokenizer, prompt: PromptFormat) -> list[int]:
    """The tokens every prompt starts with (the few-shot prefix, one short: its last token may merge with
    the state's first characters), as ``HFGenerator`` caches them."""
    return tokenizer(prompt.prefix).input_ids[:-1]


def forward(model, rows: list[tuple[list[int], int]], pad_id: int, shared: list[int] = ()):
    """Logits and labels (-100 outside each completion) for a batch of ``(ids, prompt_length)`` rows.

    The few-shot prefix is most of every prompt. When every row starts with ``shared``, it is run once and
    its keys and values are repeated for the batch (gradients flow back through them), so a step costs the
    states and completions, not B copies of the prefix; the logits then cover the part after the prefix.
    Either way the loss and the predictions are the same up to float rounding (the tests compare them).
    """
    import torch

    k = len(shared)
    if k < 2 or not all(len(seq) > k and seq[:k] == list(shared) and plen > k for seq, plen in rows):
        ids, mask, labels = _batch(rows, pad_id)
        return model(input_ids=ids, attention_mask=mask).logits, labels
    ids, mask, labels = _batch([(seq[k:], plen - k) for seq, plen in rows], pad_id)
    out = model(input_ids=torch.tensor([list(shared)]), use_cache=True)
    cache = out.cache if "cache" in out else out.past_key_values
    cache.batch_repeat_interleave(len(rows))
    full_mask = torch.cat([torch.ones((len(rows), k), dtype=mask.dtype), mask], dim=1)
    positions = torch.arange(k, k + ids.shape[1]).expand(len(rows), -1)
    cache_kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    logits = model(input_ids=ids, attention_mask=full_mask, position_ids=positions, **{cache_kw: cache}).logits
    return logits, labels


def completion_loss(logits, labels):
    """Mean negative log-likelihood of the completion tokens (position j predicts token j + 1)."""
    import torch

    return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                                             ignore_index=-100)


def greedy_hits(model, rows: list[tuple[list[int], int]], pad_id: int, batch_size: int = 16,
                shared: list[int] = ()) -> tuple[list[bool], float, int]:
    """For each ``(ids, prompt_length)`` row, whether greedy decoding after the prompt writes the rest of
    ``ids`` exactly; also the summed negative log-likelihood of those tokens and their count. One
    teacher-forced pass per batch: greedy decoding reproduces a sequence exactly when each of its tokens
    is the arg-max given the ones before."""
    import torch

    hits = [False] * len(rows)
    nll, tokens = 0.0, 0
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))  # similar lengths together: less padding
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            logits, labels = forward(model, [rows[i] for i in chunk], pad_id, shared)
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # position j predicts token j + 1
            target = labels[:, 1:]
            scored = target != -100
            picked = logp.gather(-1, target.clamp(min=0)[..., None])[..., 0]
            nll -= picked[scored].sum().item()
            tokens += int(scored.sum())
            right = (logp.argmax(-1) == target) | ~scored
            for r, i in enumerate(chunk):
                hits[i] = bool(right[r].all())
    return hits, nll, tokens


def evaluate(model, tokenizer, prompt: PromptFormat, steps: list[TraceStep], max_len: int = 1024,
             batch_size: int = 16) -> tuple[Evaluation, list[bool]]:
    """Next-tactic accuracy and loss on ``steps`` (each one counted, duplicates too), and per step whether
    it was right: greedy decoding after the prompt writes the reference tactic and its stop line, token for
    token. Steps longer than ``max_len`` tokens count as wrong."""
    rows, where = [], []
    for i, s in enumerate(steps):
        p = tokenizer(prompt.prompt(s.goals)).input_ids
        c = tokenizer(prompt.completion(s.tactic), add_special_tokens=False).input_ids
        if len(p) + len(c) <= max_len:
            rows.append((p + c, len(p)))
            where.append(i)
    was_training = model.training
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    hits, nll, tokens = greedy_hits(model, rows, pad, batch_size, prefix_ids(tokenizer, prompt))
    if was_training:
        model.train()
    correct = [False] * len(steps)
    for i, hit in zip(where, hits):
        correct[i] = hit
    accuracy = sum(correct) / len(steps) if steps else 0.0
    return Evaluation(len(steps), accuracy, nll / tokens if tokens else float("nan"),
                      len(steps) - len(rows)), correct


def _sample(steps: list[TraceStep], limit: int, seed: int) -> list[TraceStep]:
    if len(steps) <= limit:
        return list(steps)
    return random.Random(seed).sample(steps, limit)


def load_base(base: str):
    """A pretrained causal LM and its tokenizer from a local directory (no downloads), in fp32."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(base).expanduser()
    if not path.is_dir():
        raise ValueError(f"base model directory not found: {base}")
    dtype_kw = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, **{dtype_kw: torch.float32})
    except (OSError, ValueError, KeyError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"cannot load base model {base}: {first}") from None
    if tokenizer.eos_token_id is None:
        raise ValueError(f"base model {base}: its tokenizer has no end-of-sequence token")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # padded positions are masked: any id works
    return model, tokenizer


def _with_lora(model, rank: int):
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ValueError("LoRA needs peft: pip install 'prover[train]'") from None
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear",
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def train(steps: list[TraceStep], out_dir: str | Path, prompt: PromptFormat, config: TrainConfig | None = None,
          on_step: Callable[[int, float], None] | None = None, valid: list[TraceStep] = (),
          held_out: list[TraceStep] = (), base: str | None = None, data: dict | None = None) -> TrainReport:
    """Train on the steps' completions and save model and tokenizer to ``out_dir``.

    From scratch (a BPE tokenizer and a small Llama model), or from the local checkpoint ``base`` (every
    weight, or LoRA adapters of rank ``config.lora_rank``, merged into the saved weights). ``valid`` and
    ``held_out`` are never trained on: the accuracy on (a seeded sample of) each is reported.
    """
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the CLI shows its own progress
    config = config or TrainConfig()
    if not steps:
        raise ValueError("no training steps")
    if config.lora_rank and base is None:
        raise ValueError("LoRA adapts a pretrained model: give the base model too")
    t0 = time.monotonic()
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    if base is None:
        texts = [prompt.prefix] + [s.goals for s in steps] + [prompt.completion(s.tactic) for s in steps] \
            + [prompt.suffix]
        tokenizer = train_tokenizer(texts, config.vocab_size)
    else:
        model, tokenizer = load_base(base)
    examples, skipped = encode_examples(steps, prompt, tokenizer, config.max_len)
    if not examples:
        raise ValueError(f"every example is longer than max_len={config.max_len} tokens")
    if base is None:
        model = build_model(len(tokenizer), config)
    if config.lora_rank:
        model = _with_lora(model, config.lora_rank)
    if sum(p.numel() for p in model.parameters()) < SMALL_MODEL:
        torch.set_num_threads(1)  # a small model's matmuls are too short to share between busy cores
    model.train()
    params = sum(p.numel() for p in model.parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.01)

    def lr_at(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        progress = (step - config.warmup) / max(1, config.steps - config.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    shared = prefix_ids(tokenizer, prompt) if config.share_prefix else []
    first = last = float("nan")
    order: list[int] = []
    for step in range(config.steps):
        if len(order) < config.batch_size:  # epochs in shuffled order, so every example is seen
            more = list(range(len(examples)))
            rng.shuffle(more)
            order.extend(more)
        batch = [examples[i] for i in order[:config.batch_size]]
        del order[:config.batch_size]
        loss = completion_loss(*forward(model, batch, pad, shared))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        sched.step()
        last = loss.item()
        if step == 0:
            first = last
        if on_step is not None:
            on_step(step + 1, last)
    if config.lora_rank:
        model = model.merge_and_unload()
        params = sum(p.numel() for p in model.parameters())
    model.eval()
    evaluations = {}
    for name, part in (("valid", valid), ("held_out", held_out)):
        if part:
            evaluations[name] = evaluate(model, tokenizer, prompt, _sample(list(part), config.eval_limit,
                                                                           config.seed), config.max_len)[0]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    report = TrainReport(str(out), len(examples), skipped, params, config.steps, first, last,
                         time.monotonic() - t0, sum(p.numel() for p in trainable), base,
                         evaluations.get("valid"), evaluations.get("held_out"))
    meta = {"prompt_format": prompt.name, "train_config": asdict(config), "report": asdict(report),
            "data": data or {}}
    (out / "prover_train.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return report
