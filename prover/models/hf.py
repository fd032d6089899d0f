"""Tactic generation with a Hugging Face causal LM (Llemma, any Llama-style checkpoint, or a local one).

Decoding follows Llemma: beam search with width = candidates at temperature 0, or ``n`` samples at each
of several temperatures. Generation stops when the continuation contains the prompt's stop line.

Scores. A candidate's score is the mean of its tokens' true log-probabilities: the tokens up to and
including the one that completes the stop sequence (or the EOS token, or all ``max_new_tokens``), so the
score also prices the model's decision to end the tactic there. They are computed by one extra forward
pass over the distinct candidates rather than taken from ``generate``: its ``scores`` are warped by the
temperature when sampling, and keeping raw ``logits`` for every step and beam costs
steps x beams x vocabulary floats per state (a gigabyte for Llemma at beam 32 and 256 tokens).

Prefix cache. Every prompt starts with the same few-shot examples. Their keys and values are computed
once per generator and handed to ``generate`` and to the scoring pass, so only the state and the
continuation are computed per call. Rows are laid out as ``[prefix][padding][rest of prompt]``: the
prefix stays at the same positions in every row, and position ids come from the attention mask, so a row
sees exactly what it would see unpadded. A prompt whose tokenization does not start with the cached
prefix tokens (a tokenizer merging across the boundary) is run without the cache, in an ordinary
left-padded batch. Cached and uncached runs agree up to float rounding (the tests compare them).
"""
from __future__ import annotations

import copy
import inspect
import math
import os
import re
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .base import Candidate, Generator, rank_candidates
from .prompts import PromptFormat

DECODINGS = ("beam", "sample")
DEFAULT_SAMPLE_TEMPERATURES = (1.0,)
_HUB_HOST = ("huggingface.co", 443)


class ModelLoadError(ValueError):
    """The model or its tokenizer cannot be loaded (the CLI reports it as one line)."""


@dataclass(frozen=True)
class HFConfig:
    """How to load and decode. ``temperatures``: 0 means beam search, > 0 sampling; one run per entry."""

    model: str
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    temperatures: tuple[float, ...] = (0.0,)
    max_new_tokens: int = 256
    batch_states: int = 4  # states per generate call (memory: states x candidates rows of KV cache)
    score_batch: int = 64  # rows per scoring forward pass
    prefix_cache: bool = True
    seed: int | None = 0
    # torch threads on CPU. None: 1 for small models (under 50M parameters), else torch's default. A small
    # model's matmuls are too short to share: with the cores busy (coqtop, other workers) one expansion of
    # a 135k-parameter model took 0.5 s on 1 thread and 5-6 s on 2 on the 2-core build machine.
    cpu_threads: int | None = None

    def __post_init__(self) -> None:
        if not self.temperatures or any(t < 0 or not math.isfinite(t) for t in self.temperatures):
            raise ValueError("temperatures must be finite and >= 0 (0 = beam search)")
        if self.max_new_tokens < 1 or self.batch_states < 1 or self.score_batch < 1:
            raise ValueError("max_new_tokens, batch_states and score_batch must be at least 1")

    @staticmethod
    def temperatures_for(decoding: str, temperatures: tuple[float, ...] | None) -> tuple[float, ...]:
        """The temperature list a ``--decoding`` choice means when ``--temperatures`` is not given."""
        if decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {', '.join(DECODINGS)}")
        if temperatures:
            if decoding == "beam" and any(t != 0 for t in temperatures):
                raise ValueError("beam search runs at temperature 0; use --decoding sample for others")
            return tuple(temperatures)
        return (0.0,) if decoding == "beam" else DEFAULT_SAMPLE_TEMPERATURES


@dataclass(frozen=True)
class Completion:
    """One decoded continuation: the tactic, the tokens that were scored and their log-probs."""

    tactic: str
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...] = field(default=(), repr=False)

    def candidate(self) -> Candidate:
        return Candidate(self.tactic, float(sum(self.logprobs)), len(self.token_ids))


# ----------------------------------------------------------------------------------------------- loading

def _env_offline() -> bool:
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the Hub answers a TCP connect; DNS cannot hang us either (it runs in a daemon thread)."""
    ok = threading.Event()

    def probe() -> None:
        try:
            with socket.create_connection(_HUB_HOST, timeout=timeout):
                ok.set()
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return ok.is_set()


_DEVICE_NAME = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device_name(device: str) -> None:
    """``ValueError`` for a device name that is not auto, cpu, cuda, cuda:N or mps (no torch needed)."""
    if not _DEVICE_NAME.match(device):
        raise ValueError(f"unknown device {device!r} (auto, cpu, cuda, cuda:N, mps)")


def resolve_device(device: str):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ModelLoadError(f"unknown device {device!r} (auto, cpu, cuda, cuda:N, mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} asked for, but CUDA is not available")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ModelLoadError(f"device {device!r} asked for, but only {torch.cuda.device_count()} GPUs exist")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError("device 'mps' asked for, but it is not available")
    return dev


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def load_model(name: str, device: str = "auto"):
    """``(model, tokenizer, device)`` for a local directory or a Hub id; bf16 on CUDA, fp32 elsewhere.

    With no network (``HF_HUB_OFFLINE`` set, or the Hub unreachable) a Hub id resolves only from the
    local cache, so a missing model fails at once with ``ModelLoadError`` instead of retrying.
    """
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the CLI shows its own progress

    dev = resolve_device(device)
    local_dir = Path(name).expanduser()
    is_dir = local_dir.is_dir()
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1  # Hub ids are "org/name"
    if not is_dir and looks_like_path:
        raise ModelLoadError(f"model directory not found: {name}")
    offline = is_dir or _env_offline() or not hub_reachable()
    source = str(local_dir) if is_dir else name
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    dtype_kw = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
        model = AutoModelForCausalLM.from_pretrained(source, local_files_only=offline, **{dtype_kw: dtype})
    except (OSError, ValueError, KeyError) as e:
        if not is_dir and offline:
            raise ModelLoadError(f"model {name!r} not found: not a local directory and not in the "
                                 "Hugging Face cache (offline)") from None
        raise ModelLoadError(f"cannot load model {name!r}: {_first_line(e)}") from None
    model.to(dev).eval()
    if tokenizer.pad_token_id is None:
        # Llama tokenizers have no pad token; padded positions are masked, so any id works.
        tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
    tokenizer.padding_side = "left"
    return model, tokenizer, dev


# -------------------------------------------------------------------------------------------- generation

class _StopOnText:
    """Stops a row once its generated text (never the prompt) contains the stop sequence.

    Only the last few tokens are decoded each step: the stop was not there one token earlier, or the row
    would already have stopped.
    """

    def __init__(self, tokenizer, stop: str, prompt_len: int) -> None:
        self.tokenizer, self.stop, self.prompt_len = tokenizer, stop, prompt_len
        self.window = len(stop) + 2

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        gen = input_ids[:, self.prompt_len:]
        if gen.shape[1] == 0:
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        tails = self.tokenizer.batch_decode(gen[:, -self.window:].tolist())
        return torch.tensor([self.stop in t for t in tails], dtype=torch.bool, device=input_ids.device)


def _stopping_list(criterion):
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Wrapped(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return criterion(input_ids, scores, **kwargs)

    return StoppingCriteriaList([Wrapped()])


class HFGenerator(Generator):
    """Proposes tactics with a causal LM; candidates carry the model's true mean token log-prob."""

    def __init__(self, model, tokenizer, prompt: PromptFormat, config: HFConfig, device=None) -> None:
        import torch

        self.model, self.tokenizer, self.prompt, self.config = model, tokenizer, prompt, config
        self.device = device if device is not None else next(model.parameters()).device
        self.name = "hf"
        self.model_id = config.model
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.pad_id = self.tokenizer.pad_token_id
        self.eos_ids = self._eos_ids()
        forward_params = set(inspect.signature(model.forward).parameters)
        self._cache_kw = "cache" if "cache" in forward_params else "past_key_values"
        self._torch = torch
        if self.device.type == "cpu":
            threads = config.cpu_threads
            if threads is None and sum(p.numel() for p in model.parameters()) < 50_000_000:
                threads = 1
            if threads:
                torch.set_num_threads(threads)  # process-wide: the generator owns this process's CPU work
        if config.seed is not None:
            torch.manual_seed(config.seed)
        self._prefix_ids: list[int] = []
        self._prefix_cache = None
        if config.prefix_cache:
            self._build_prefix_cache()

    @classmethod
    def load(cls, config: HFConfig, prompt: PromptFormat) -> "HFGenerator":
        model, tokenizer, dev = load_model(config.model, config.device)
        return cls(model, tokenizer, prompt, config, dev)

    def _eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        if ids is None:
            ids = self.tokenizer.eos_token_id
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        return {int(i) for i in ids}

    # ---- prefix cache
    def _build_prefix_cache(self) -> None:
        from transformers import DynamicCache

        ids = self.tokenizer(self.prompt.prefix).input_ids
        # The last prefix token may merge with the state's first characters; stop one short of it.
        ids = ids[:-1]
        if len(ids) < 2:
            return
        with self._torch.no_grad():
            out = self.model(input_ids=self._torch.tensor([ids], device=self.device), use_cache=True)
        cache = out.cache if hasattr(type(out), "cache") or "cache" in out else out.past_key_values
        if not isinstance(cache, DynamicCache):
            return  # sliding-window or hybrid caches: run without the prefix cache
        self._prefix_ids, self._prefix_cache = ids, cache

    def _cache_rows(self, rows: int):
        cache = copy.deepcopy(self._prefix_cache)
        if rows > 1:
            cache.batch_repeat_interleave(rows)
        return cache

    def _prompt_ids(self, goals: list[str]) -> list[list[int]]:
        return [self.tokenizer(self.prompt.prompt(g)).input_ids for g in goals]

    def _use_cache(self, prompt_ids: list[list[int]]) -> bool:
        k = len(self._prefix_ids)
        return self._prefix_cache is not None and all(p[:k] == self._prefix_ids and len(p) > k
                                                       for p in prompt_ids)

    def _layout(self, rows: list[list[int]], cached: bool):
        """Input ids and attention mask: ``[prefix][pad][rest]`` with the cache, else left-padded."""
        torch = self._torch
        k = len(self._prefix_ids) if cached else 0
        rests = [r[k:] for r in rows]
        width = max(len(r) for r in rests)
        ids, mask = [], []
        for r in rests:
            pad = width - len(r)
            ids.append(self._prefix_ids[:k] + [self.pad_id] * pad + r)
            mask.append([1] * k + [0] * pad + [1] * len(r))
        return (torch.tensor(ids, dtype=torch.long, device=self.device),
                torch.tensor(mask, dtype=torch.long, device=self.device))

    # ---- decoding
    def complete(self, goals: list[str], n: int) -> list[list[Completion]]:
        """Per state: the distinct completions of every decoding run, scored, in no particular order."""
        out: list[list[Completion]] = [[] for _ in goals]
        step = self.config.batch_states
        for start in range(0, len(goals), step):
            chunk = goals[start:start + step]
            prompt_ids = self._prompt_ids(chunk)
            cached = self._use_cache(prompt_ids)
            seen: list[dict[tuple[int, ...], str]] = [{} for _ in chunk]
            for temperature in self.config.temperatures:
                for i, conts in enumerate(self._generate(prompt_ids, cached, n, temperature)):
                    for tokens in conts:
                        tokens, tactic = self._cut(tokens)
                        if tactic and tokens not in seen[i]:
                            seen[i][tokens] = tactic
            flat = [(i, toks, tac) for i, s in enumerate(seen) for toks, tac in s.items()]
            logprobs = self._score([prompt_ids[i] for i, _, _ in flat], [list(t) for _, t, _ in flat], cached)
            for (i, toks, tac), lps in zip(flat, logprobs):
                out[start + i].append(Completion(tac, toks, tuple(lps)))
        return out

    def _generate(self, prompt_ids: list[list[int]], cached: bool, n: int, temperature: float):
        """Per prompt, ``n`` generated token lists (beam search at 0, sampling above)."""
        from transformers import GenerationConfig

        torch = self._torch
        input_ids, mask = self._layout(prompt_ids, cached)
        beam = temperature == 0
        # Every knob is set, so a checkpoint's own generation defaults (top_p, penalties) cannot leak in.
        sampling = {} if beam else {"temperature": temperature, "top_k": 0, "top_p": 1.0}
        gen = GenerationConfig(
            max_new_tokens=self.config.max_new_tokens, num_return_sequences=n, do_sample=not beam,
            num_beams=n if beam else 1, repetition_penalty=1.0, no_repeat_ngram_size=0, length_penalty=1.0,
            early_stopping=False, pad_token_id=self.pad_id, eos_token_id=sorted(self.eos_ids) or None,
            bos_token_id=self.tokenizer.bos_token_id, return_dict_in_generate=True, **sampling)
        kwargs = {"input_ids": input_ids, "attention_mask": mask, "generation_config": gen,
                  "stopping_criteria": _stopping_list(_StopOnText(self.tokenizer, self.prompt.stop,
                                                                  input_ids.shape[1]))}
        if cached:
            kwargs[self._cache_kw] = self._cache_rows(len(prompt_ids) * n)
        with torch.no_grad():
            out = self.model.generate(**kwargs)
        seqs = out.sequences[:, input_ids.shape[1]:].tolist()
        return [seqs[i * n:(i + 1) * n] for i in range(len(prompt_ids))]

    def _cut(self, tokens: list[int]) -> tuple[tuple[int, ...], str]:
        """The scored tokens (through the stop or EOS) and the tactic they spell."""
        stop = self.prompt.stop
        end = next((k for k, t in enumerate(tokens) if t in self.eos_ids), None)
        if stop not in self._decode(tokens[:end]):
            kept = tokens if end is None else tokens[:end + 1]
            return tuple(kept), self.prompt.cut(self._decode(tokens[:end]))
        for k, t in enumerate(tokens):
            if t in self.eos_ids:
                return tuple(tokens[:k + 1]), self.prompt.cut(self._decode(tokens[:k]))
            text = self._decode(tokens[:k + 1])
            if stop in text:
                return tuple(tokens[:k + 1]), self.prompt.cut(text)
        return tuple(tokens), self.prompt.cut(self._decode(tokens))

    def _decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    def _score(self, prompts: list[list[int]], conts: list[list[int]], cached: bool) -> list[list[float]]:
        """True log-probs of each continuation's tokens after its prompt, by forward passes."""
        torch = self._torch
        results: list[list[float]] = []
        step = self.config.score_batch
        for start in range(0, len(conts), step):
            ps, cs = prompts[start:start + step], conts[start:start + step]
            rows = [p + c for p, c in zip(ps, cs)]
            input_ids, mask = self._layout(rows, cached)
            k = len(self._prefix_ids) if cached else 0
            tail = input_ids[:, k:]
            positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, k:]
            keep = max(len(c) for c in cs) + 1
            kwargs = {"input_ids": tail, "attention_mask": mask, "position_ids": positions,
                      "logits_to_keep": keep, "use_cache": cached}
            if cached:
                kwargs[self._cache_kw] = self._cache_rows(len(rows))
            with torch.no_grad():
                logits = self.model(**kwargs).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1)  # position j predicts the token at j + 1
            for r, c in enumerate(cs):
                target = torch.tensor(c, device=logp.device)
                rowlp = logp[r, logp.shape[1] - len(c):]
                results.append(rowlp.gather(-1, target[:, None])[:, 0].tolist())
        return results

    def generate(self, goals: str, n: int) -> list[Candidate]:
        return self.generate_batch([goals], n)[0]

    def generate_batch(self, goals: list[str], n: int) -> list[list[Candidate]]:
        return [rank_candidates([c.candidate() for c in comps], n) for comps in self.complete(goals, n)]


class MixGenerator(Generator):
    """A model's candidates interleaved with the portfolio's, each keeping its own score.

    The search tries every candidate of an expansion, so the mix decides which tactics get tried; the
    interleaving gives the model and the portfolio an equal share of the ``n`` slots.
    """

    def __init__(self, model: Generator, portfolio: Generator) -> None:
        self.model, self.portfolio = model, portfolio
        self.name = "mix"
        self.model_id = model.model_id
        self.concurrent = model.concurrent  # the portfolio is a pure function of the goals

    def close(self) -> None:
        self.model.close()

    def generate(self, goals: str, n: int) -> list[Candidate]:
        return self.generate_batch([goals], n)[0]

    def learn(self, steps: list[tuple[str, str]]) -> int:
        return max(self.model.learn(steps), self.portfolio.learn(steps))

    def learn_lemmas(self, lemmas: list[tuple[str, str]]) -> int:
        return max(self.model.learn_lemmas(lemmas), self.portfolio.learn_lemmas(lemmas))

    def checkpoint(self) -> object:
        return (self.model.checkpoint(), self.portfolio.checkpoint())

    def rollback(self, mark: object) -> None:
        self.model.rollback(mark[0])
        self.portfolio.rollback(mark[1])

    def generate_batch(self, goals: list[str], n: int) -> list[list[Candidate]]:
        out = []
        for ms, ps in zip(self.model.generate_batch(goals, n), self.portfolio.generate_batch(goals, n)):
            merged: dict[str, Candidate] = {}
            for pair in zip_longest_skip(ms, ps):
                for c in pair:
                    if c.tactic not in merged:
                        merged[c.tactic] = c
            out.append(list(merged.values())[:n])
        return out


def zip_longest_skip(a: list, b: list):
    """Pairs (a0, b0), (a1, b1), ... with the shorter list's missing items left out."""
    for i in range(max(len(a), len(b))):
        yield tuple(x[i] for x in (a, b) if i < len(x))
