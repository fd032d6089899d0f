"""Tactic generation throughput on one GPU with a Llemma-7B-shaped model (random bf16 weights, no download).

Builds LlamaConfig(hidden 4096, 32 layers, 32 heads, intermediate 11008, vocab 32016) on CUDA, a ~600-token
Llemma Lean 4 prompt, and measures 64-token generation with beam search (width 32) and sampling (n = 32),
for one state and for a batch of states, first with ``model.generate`` alone and then through
``HFGenerator`` (prefix cache, stop check, scoring pass). The bound is the memory-bandwidth floor of one
decode step, weight bytes / measured copy bandwidth; "of bound" = 64 x that floor / measured time.

    python benchmarks/generation_gpu.py            # needs a CUDA GPU; about 2-4 minutes on an H100
    python benchmarks/generation_gpu.py --smoke    # a tiny model on any device: checks the script only

Record the table with the card name in benchmarks/RESULTS.md. Not yet run on a GPU (none was available
where it was written; `--smoke` ran on CPU). One cost to look for: transformers' beam search re-gathers
the whole KV cache every step (``reorder_cache``; the largest item in a CPU profile of the smoke run), and
at width 32 x ~650 tokens that cache is larger than the weights, so beam rows may sit far below the bound.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NEW_TOKENS = 64
WIDTH = 32
PROMPT_TOKENS = 600
LLEMMA_7B = dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                 intermediate_size=11008, vocab_size=32016)
SMOKE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
             intermediate_size=128, vocab_size=32016)
STATE_LINES = ["α : Type u_1", "inst✝ : LinearOrderedField α", "a b c : α", "h₀ : 0 < a ∧ 0 < b ∧ 0 < c",
               "h₁ : a * b * c = 1", "h₂ : a + b + c ≤ 3 * (a ^ 2 + b ^ 2 + c ^ 2)"]


def sync(torch, device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bandwidth(torch, device, gib: float = 2.0) -> float:
    """Bytes/s of a large device-to-device copy (read + write), the best of 5."""
    n = int(gib * 2**30) // 2
    src = torch.empty(n, dtype=torch.bfloat16, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = float("inf")
    for _ in range(5):
        sync(torch, device)
        t0 = time.perf_counter()
        dst.copy_(src)
        sync(torch, device)
        best = min(best, time.perf_counter() - t0)
    del src, dst
    return 2 * n * 2 / best


def build_tokenizer(vocab_size: int):
    """A byte-level BPE tokenizer trained on the prompt, padded with extra tokens to the model's vocabulary."""
    from prover.models.prompts import LEAN4
    from prover.models.train import train_tokenizer

    tok = train_tokenizer([LEAN4.prefix, LEAN4.suffix, "\n".join(STATE_LINES)] * 4, 1000)
    tok.add_tokens([f"<x{i}>" for i in range(vocab_size - len(tok))])
    return tok


def make_state(tok, prompt_tokens: int) -> str:
    from prover.models.prompts import LEAN4

    lines = []
    while len(tok(LEAN4.prompt("\n".join(lines + ["⊢ a * b + b * c + c * a ≤ 3"]))).input_ids) < prompt_tokens:
        lines.append(STATE_LINES[len(lines) % len(STATE_LINES)].replace("h", f"h{len(lines)}", 1))
    return "\n".join(lines + ["⊢ a * b + b * c + c * a ≤ 3"])


def timed(torch, device, fn, repeats: int) -> float:
    fn()  # warm-up: kernels, allocator
    times = []
    for _ in range(repeats):
        sync(torch, device)
        t0 = time.perf_counter()
        fn()
        sync(torch, device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny model on any device: checks the script only")
    ap.add_argument("--states", type=int, default=4, help="states in the batched rows (default %(default)s)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from prover.models.hf import HFConfig, HFGenerator
    from prover.models.prompts import LEAN4

    if args.smoke:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif not torch.cuda.is_available():
        print("error: this benchmark needs a CUDA GPU and none is visible (torch.cuda.is_available() is False); "
              "use --smoke to check the script on CPU", file=sys.stderr)
        return 2
    else:
        device = torch.device("cuda")
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    t0 = time.perf_counter()
    torch.manual_seed(0)
    config = LlamaConfig(**(SMOKE if args.smoke else LLEMMA_7B), max_position_embeddings=4096,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    with torch.device(device):
        model = LlamaForCausalLM(config).eval()  # random weights, allocated on the device directly
    torch.set_default_dtype(previous)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    bw = bandwidth(torch, device, 0.25 if args.smoke else 2.0)
    step_floor = weight_bytes / bw
    tok = build_tokenizer(config.vocab_size)
    state = make_state(tok, PROMPT_TOKENS)
    prompt_ids = tok(LEAN4.prompt(state)).input_ids
    print(f"{card}: {weight_bytes / 2**30:.1f} GiB weights, copy bandwidth {bw / 1e9:.0f} GB/s, decode-step floor "
          f"{step_floor * 1e3:.2f} ms; prompt {len(prompt_ids)} tokens; setup {time.perf_counter() - t0:.0f} s",
          flush=True)

    rows = []

    def record(label: str, seconds: float, sequences: int, candidates: int) -> None:
        tokens = sequences * NEW_TOKENS
        rows.append((label, seconds, tokens / seconds, candidates / seconds, NEW_TOKENS * step_floor / seconds))
        print(f"  {label}: {seconds:.2f} s", flush=True)

    for states in (1, args.states):
        ids = torch.tensor([prompt_ids] * states, device=device)
        mask = torch.ones_like(ids)
        for mode in ("beam", "sample"):
            beam = mode == "beam"
            gen = GenerationConfig(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, num_return_sequences=WIDTH,
                                   num_beams=WIDTH if beam else 1, do_sample=not beam,
                                   **({} if beam else {"temperature": 1.0, "top_k": 0, "top_p": 1.0}),
                                   pad_token_id=0, eos_token_id=2)

            def run(gen=gen, ids=ids, mask=mask):
                with torch.no_grad():
                    model.generate(input_ids=ids, attention_mask=mask, generation_config=gen)
            seconds = timed(torch, device, run, args.repeats)
            record(f"generate {mode} {WIDTH} x {states} state(s)", seconds, states * WIDTH, states * WIDTH)
            if device.type == "cuda":
                torch.cuda.empty_cache()

    for temps, mode in (((0.0,), "beam"), ((1.0,), "sample")):
        g = HFGenerator(model, tok, LEAN4, HFConfig("random-llemma-7b-shape", temperatures=temps,
                                                    max_new_tokens=NEW_TOKENS, batch_states=args.states), device)
        for states in (1, args.states):
            got = []

            def run(g=g, states=states, got=got):
                got[:] = g.generate_batch([state] * states, WIDTH)
            seconds = timed(torch, device, run, args.repeats)
            record(f"HFGenerator {mode} {WIDTH} x {states} state(s)", seconds, states * WIDTH,
                   sum(len(c) for c in got))
            if device.type == "cuda":
                torch.cuda.empty_cache()

    print()
    print(f"{card}{' (SMOKE: tiny model, not a benchmark)' if args.smoke else ''}; {NEW_TOKENS} new tokens, "
          f"prompt {len(prompt_ids)} tokens; floor = weights / bandwidth = {step_floor * 1e3:.2f} ms a step")
    print(f"{'run':40s} {'seconds':>8s} {'tokens/s':>10s} {'cands/s':>9s} {'of bound':>9s}")
    for label, seconds, tps, cps, ratio in rows:
        print(f"{label:40s} {seconds:8.2f} {tps:10.0f} {cps:9.1f} {ratio:9.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
