"""A small local tactic model: a byte-level BPE tokenizer and a Llama-architecture model trained from scratch.

No weights can be downloaded on the machines this project is built on, so it makes its own: the model
reads exactly the prompt a large model reads (the backend's few-shot prompt with the goals filled in) and
learns to write the next tactic and the closing stop line. The loss covers only that completion; the
prompt is context. The directory is written with ``save_pretrained`` and loads through the same code
path as Llemma (``HFGenerator.load``).
"""
from __future__ import annotations

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

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "vocab_size", "hidden", "layers", "heads", "intermediate", "max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.hidden % self.heads:
            raise ValueError("hidden must be a multiple of heads")
        if not self.lr > 0:
            raise ValueError("lr must be positive")


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


def train(steps: list[TraceStep], out_dir: str | Path, prompt: PromptFormat, config: TrainConfig | None = None,
          on_step: Callable[[int, float], None] | None = None) -> TrainReport:
    """Train tokenizer and model on the trace steps and save both to ``out_dir``."""
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the CLI shows its own progress
    config = config or TrainConfig()
    if not steps:
        raise ValueError("no training steps in the traces")
    t0 = time.monotonic()
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    texts = [prompt.prefix] + [s.goals for s in steps] + [prompt.completion(s.tactic) for s in steps] \
        + [prompt.suffix]
    tokenizer = train_tokenizer(texts, config.vocab_size)
    examples, skipped = encode_examples(steps, prompt, tokenizer, config.max_len)
    if not examples:
        raise ValueError(f"every example is longer than max_len={config.max_len} tokens")
    model = build_model(len(tokenizer), config)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    if params < 50_000_000:  # as in generation: a small model on more threads only spins, worst under load
        torch.set_num_threads(1)  # (100 steps of the 135k default: 19 s on 1 thread, 143 s on 2, loaded machine)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)

    def lr_at(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        progress = (step - config.warmup) / max(1, config.steps - config.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    first = last = float("nan")
    order: list[int] = []
    for step in range(config.steps):
        if len(order) < config.batch_size:  # epochs in shuffled order, so every example is seen
            more = list(range(len(examples)))
            rng.shuffle(more)
            order.extend(more)
        batch = [examples[i] for i in order[:config.batch_size]]
        del order[:config.batch_size]
        width = max(len(ids) for ids, _ in batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for r, (seq, plen) in enumerate(batch):
            ids[r, :len(seq)] = torch.tensor(seq)
            mask[r, :len(seq)] = 1
            labels[r, plen:len(seq)] = torch.tensor(seq[plen:])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        last = loss.item()
        if step == 0:
            first = last
        if on_step is not None:
            on_step(step + 1, last)
    model.eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    report = TrainReport(str(out), len(examples), skipped, params, config.steps, first, last,
                         time.monotonic() - t0)
    meta = {"prompt_format": prompt.name, "train_config": asdict(config), "report": asdict(report)}
    (out / "prover_train.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return report
