"""The `prover` command line."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from . import __version__
from .backends.base import Theorem
from .backends.process import TempRoot
from .backends.coq.text import theorem_name
from .backends.lean.text import declaration_name
from .backends.coq.hammer import HammerConfig
from .runs.budgets import COQLIB_MAX_EXPANSIONS, COQLIB_TACTIC_ALLOWANCE, COQLIB_TIMEOUT
from .components import (BACKENDS, GENERATORS, LEARNED_GENERATORS, MODEL_GENERATORS, BackendOptions, ConfigError,
                         ModelOptions, check_generator, cores_per_worker, hammer_warning, make_backend,
                         make_generator, make_scorer_for)
from .search.best_first import PRIORITIES, SearchConfig, SearchResult, search

EXIT_PROVED, EXIT_NOT_PROVED, EXIT_BAD_INPUT = 0, 1, 2
LEAN_BACKENDS = ("lean-repl", "leandojo")
FILTER_BACKENDS = ("coq", "lean", "isabelle")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise ConfigError(message)


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value
    return parse


def add_coq_project_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Coq project (FILE's nearest _CoqProject is read; these add to it)")
    g.add_argument("-R", nargs=2, action="append", default=[], metavar=("DIR", "LIB"), dest="coq_R",
                   help="map DIR recursively to the logical name LIB (as coqc -R)")
    g.add_argument("-Q", nargs=2, action="append", default=[], metavar=("DIR", "LIB"), dest="coq_Q",
                   help="map DIR to LIB, qualified names only (as coqc -Q)")
    g.add_argument("--coq-flag", action="append", default=[], metavar="FLAG",
                   help="any other flag for coqtop and coqc, e.g. --coq-flag=-impredicative-set (repeatable)")
    g.add_argument("--project", metavar="DIR",
                   help="read the _CoqProject at or above DIR (or this _CoqProject file) instead of the one "
                        "nearest FILE; with --statement, the only way to get a project's flags")
    g.add_argument("--add-imports", action="store_true",
                   help="FILE mode: let the search use the prelude's tactics (lia, lra, psatz, ring, field, "
                        "sauto, ...) even where FILE does not load them; a proof that needs them gets the "
                        "smallest `Require Import` before the theorem's outermost section/module (reported)")


def coq_flags(args: argparse.Namespace) -> tuple[str, ...]:
    flags: list[str] = []
    for flag, pairs in (("-R", args.coq_R), ("-Q", args.coq_Q)):
        for directory, lib in pairs:
            flags += [flag, directory, lib]
    return tuple(flags + list(args.coq_flag))


def add_search_options(p: argparse.ArgumentParser) -> None:
    d = SearchConfig()
    g = p.add_argument_group("search budget")
    g.add_argument("--max-expansions", type=_positive(int), default=d.max_expansions,
                   help="states expanded at most (default %(default)s)")
    g.add_argument("--candidates", type=_positive(int), default=d.candidates,
                   help=f"tactics tried per expansion (default {d.candidates})")
    g.add_argument("--timeout", type=_positive(float), default=d.timeout,
                   help="wall-clock seconds per theorem (default %(default)g)")
    g.add_argument("--tactic-timeout", type=_positive(float), default=d.tactic_timeout,
                   help=f"seconds per tactic (default {d.tactic_timeout:g})")
    g.add_argument("--tactic-allowance", type=_positive(float), default=d.tactic_allowance, metavar="S",
                   help="seconds one tactic may spend failing or timing out in one search; once spent, it is "
                        "tried there only when nothing else is left "
                        f"(default: no limit; bench coqlib: {COQLIB_TACTIC_ALLOWANCE:g})")
    g.add_argument("--check-timeout", type=_positive(float), default=BackendOptions().check_timeout,
                   help="seconds for the full re-check of a found proof (default %(default)g)")
    g.add_argument("--memory-mb", type=_positive(int), default=BackendOptions().memory_mb,
                   help="address-space cap of each prover process in MiB (default: Coq 6144, Lean 32768, "
                        "Isabelle 32768 at least: the JVM and Poly/ML reserve that much)")
    g.add_argument("--priority", choices=PRIORITIES, default=d.priority,
                   help="node priority: llemma = sum of -mean token log-probs on the path; "
                        "reprover = -cumulative log-prob; value = llemma plus -log of a learned scorer's "
                        "probability that the state is proved within the budget (default %(default)s)")
    g.add_argument("--value-model", metavar="FILE",
                   help="the learned scorer for --priority value (from `prover train scorer`)")
    g.add_argument("--expand-batch", type=_positive(int), default=d.expand_batch,
                   help="open states sent to the generator at once (default %(default)s)")
    h = p.add_argument_group("hammer step (Coq: CoqHammer's premise selection + ATPs, then a reconstruction "
                             "tactic; the proof keeps only that tactic)")
    dh = HammerConfig()
    h.add_argument("--no-hammer", action="store_true", help="never run the hammer step")
    h.add_argument("--hammer-timeout", type=_positive(float), default=dh.timeout, metavar="S",
                   help="seconds for one hammer step, at most the time left (default %(default)g)")
    h.add_argument("--hammer-atp-limit", type=_positive(int), default=dh.atp_limit, metavar="S",
                   help="seconds per ATP run (default %(default)s)")
    h.add_argument("--hammer-reconstr-limit", type=_positive(int), default=dh.reconstr_limit, metavar="S",
                   help="seconds per batch of reconstruction tactics (default %(default)s)")
    h.add_argument("--hammer-threads", type=_positive(int), metavar="N",
                   help="ATP runs at once (default: the cores each worker gets)")
    m = p.add_argument_group("generator")
    m.add_argument("--generator", choices=GENERATORS,
                   help="tactic generator (default: combined for Coq, portfolio otherwise; portfolio with "
                        "--tactics or --model). portfolio: model-free ranked tactics, with Coq's hammer step on "
                        "the states where it pays; hammer: CoqHammer alone; knn: tactics of the most similar "
                        "states of real proofs (Coq); combined: knn mixed with the portfolio, hammer step "
                        "included (its model is built once by `prover models build`, or on first use: about "
                        "10 minutes); hf: a causal LM; mix: the LM's candidates interleaved with the portfolio's")
    m.add_argument("--knn-model", metavar="FILE",
                   help="k-NN model for --generator knn/combined (from `prover train knn`; default: the built-in "
                        "one, see `prover models info`)")
    m.add_argument("--tactics", metavar="FILE",
                   help="your own ranked tactic list, one per line (replaces the portfolio)")
    m.add_argument("--model", metavar="PATH_OR_ID",
                   help="causal LM for hf/mix: a local directory (e.g. from `prover train`) or a Hub id such "
                        "as EleutherAI/llemma_7b (offline: from the local cache only)")
    m.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default %(default)s)")
    m.add_argument("--decoding", choices=("beam", "sample"), default="beam",
                   help="beam search with width = --candidates, or sampling (default %(default)s)")
    m.add_argument("--temperatures", type=_temperatures, metavar="T[,T...]",
                   help="sampling temperatures, one run of --candidates samples each, merged "
                        "(default 1.0; 0 = a beam-search run)")
    m.add_argument("--max-new-tokens", type=_positive(int), default=ModelOptions().max_new_tokens,
                   help="longest tactic in tokens (default %(default)s)")
    m.add_argument("--batch-states", type=_positive(int), default=ModelOptions().batch_states,
                   help="states per model call, across workers when the model is served (memory: states x "
                        "candidates sequences; default %(default)s)")
    m.add_argument("--gather-ms", type=_non_negative_float, default=ModelOptions().gather_seconds * 1000,
                   help="served model (minif2f, repl): ms a request waits for others to join its batch "
                        "(default %(default)g)")


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Options of every benchmark run: which theorems, where the results go, how many workers."""
    p.add_argument("--limit", type=_positive(int), help="only the first N theorems (file order)")
    p.add_argument("--names", help="comma-separated theorem names")
    p.add_argument("--out", required=True, metavar="RESULTS.jsonl", help="results file")
    p.add_argument("--resume", action="store_true", help="skip theorems already in --out and append")
    p.add_argument("--workers", type=_positive(int), default=os.cpu_count() or 1,
                   help="worker processes, each with its own prover (default: number of cores)")
    p.add_argument("--ray", metavar="local", choices=("local",), help="run as Ray actors on a local Ray")
    p.add_argument("--ray-address", metavar="ADDR", help="run as Ray actors on this Ray cluster")
    p.add_argument("--seed", type=int, default=0, help="seed recorded with the run (sampling generators)")
    p.add_argument("--grace", type=_positive(float), default=30.0,
                   help="seconds beyond --timeout + --check-timeout after which the runner stops a worker "
                        "and marks its theorem timeout (default %(default)g)")
    p.add_argument("--quiet", action="store_true", help="a log line per theorem instead of the progress bar")
    p.add_argument("--online", action="store_true",
                   help="online learning: each verified proof's steps join the generator (knn, combined) before "
                        "the next theorems, as in Tactician; recorded in the run's configuration")
    p.add_argument("--trees", metavar="DIR",
                   help="keep each theorem's search tree in DIR (training data for `prover train scorer`)")
    p.add_argument("--learn-file", action=argparse.BooleanOptionalAction, default=None,
                   help="before each theorem of a file (coqlib), trace the proofs written before it in its file "
                        "and let the generator (knn, combined) learn them for that theorem, as Tactician does, "
                        "and offer the lemmas proved there by name (apply/rewrite) "
                        "(default: on for coqlib with knn or combined)")


def _temperatures(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not values or any(not (0 <= t < float("inf")) for t in values):
        raise argparse.ArgumentTypeError(f"temperatures must be >= 0: {text!r}")
    return values


def model_options(args: argparse.Namespace) -> ModelOptions:
    return ModelOptions(args.model, args.device, args.decoding, args.temperatures, args.max_new_tokens,
                        args.batch_states, args.gather_ms / 1000, args.knn_model)


def backend_options(args: argparse.Namespace, workers: int = 1, flags: tuple[str, ...] = ()) -> BackendOptions:
    hammer = HammerConfig(enabled=not args.no_hammer, timeout=args.hammer_timeout, atp_limit=args.hammer_atp_limit,
                          reconstr_limit=args.hammer_reconstr_limit,
                          threads=args.hammer_threads or cores_per_worker(workers))
    return BackendOptions(args.check_timeout, args.memory_mb, coq_flags=flags, hammer=hammer)


def warn_about_hammer(args: argparse.Namespace, options: BackendOptions, console: Console) -> None:
    """One warning when the generator would use a hammer that is not installed (or an error for
    hammer alone), before anything starts."""
    line = hammer_warning(args.backend, args.generator, options)
    if line:
        console.print(f"[yellow]warning:[/yellow] {line}", highlight=False, soft_wrap=True)


def search_config(args: argparse.Namespace) -> SearchConfig:
    try:
        return SearchConfig(max_expansions=args.max_expansions, candidates=args.candidates,
                            timeout=args.timeout, tactic_timeout=args.tactic_timeout,
                            tactic_allowance=args.tactic_allowance,
                            priority=args.priority, expand_batch=args.expand_batch,
                            value_model=args.value_model)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="prover", description="Best-first formal theorem proving with real proof "
                     "assistants and language models.")
    parser.add_argument("--version", action="version", version=f"prover {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("prove", help="search for a proof of one theorem",
                       description="Search for a proof of one theorem. Exit code: 0 proved, "
                       "1 not proved, 2 bad input.")
    p.add_argument("file", nargs="?", help="a .v file (Coq) or .thy file (Isabelle) holding the theorem "
                   "(its proof missing, Admitted. or sorry)")
    p.add_argument("--theorem", metavar="NAME", help="the theorem to prove in FILE")
    p.add_argument("--statement", help='the statement itself, e.g. "Theorem t : 1 + 1 = 2."')
    p.add_argument("--header", default="", help="imports and definitions before --statement (Isabelle: "
                   "'imports THEORIES' then definitions; default 'imports Complex_Main')")
    p.add_argument("--backend", choices=BACKENDS, default="coq", help="proof assistant (default %(default)s)")
    p.add_argument("--allow-axiom", action="append", default=[], metavar="NAME",
                   help="an axiom the statement itself relies on, accepted by the full check (repeatable)")
    add_coq_project_options(p)
    add_search_options(p)
    p.add_argument("--learn-file", action=argparse.BooleanOptionalAction, default=None,
                   help="FILE mode: trace the proofs written before the theorem in FILE and let the generator "
                        "(knn, combined) learn them first, as Tactician does, and offer the lemmas proved there "
                        "by name (apply/rewrite) (default: on for a theorem of a Coq file with knn or combined)")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print one JSON object with the result")
    out.add_argument("--write", action="store_true",
                     help="put the found proof into FILE in place of the missing one: only that proof changes; "
                          "backup FILE.bak (FILE.bak.1, ... when it exists); nothing is written when the file "
                          "changed during the search")
    out.add_argument("--graph", metavar="FILE", help="write the search graph as node-link JSON")
    out.add_argument("--quiet", action="store_true", help="no live progress")
    p.set_defaults(run=cmd_prove)

    t = sub.add_parser("traces", help="collect (goals, tactic) training pairs from proofs of miniF2F-rocq valid",
                       description="Run the search on miniF2F-rocq problems of the valid split and write the "
                       "steps of every verified proof as JSONL for `prover train`. The test split is refused.")
    t.add_argument("--split", default="valid", help="miniF2F split (only valid: never train on test)")
    t.add_argument("--limit", type=_positive(int), help="first N problems of the split")
    t.add_argument("--names", nargs="+", metavar="NAME", help="only these problems")
    t.add_argument("--data", metavar="DIR", help="miniF2F data directory (default: shared/data/minif2f)")
    t.add_argument("--out", required=True, metavar="FILE", help="trace file to write (JSONL)")
    t.add_argument("--quiet", action="store_true", help="no live progress")
    add_search_options(t)
    t.set_defaults(run=cmd_traces, backend="coq", json=False)

    r = sub.add_parser("train", help="train a tactic model on the Coq corpus or a trace file",
                       description="Train a tactic model on (goals, next tactic) pairs in the backend's prompt "
                       "format, the loss on the completion only, and save it to DIR, which `prover prove "
                       "--generator hf --model DIR` loads. From scratch (a byte-level BPE tokenizer and a small "
                       "Llama-architecture model), or from a local pretrained checkpoint (--base; --lora R "
                       "trains LoRA adapters, merged into the saved weights). From a corpus directory (`prover "
                       "corpus build`), one training theorem in 20 is kept for validation and the held-out "
                       "files are never trained on; next-tactic accuracy on both is reported.")
    r.add_argument("--data", metavar="CORPUS_DIR|TRACES.jsonl",
                   help="a corpus directory (from `prover corpus build`) or a trace file (from `prover traces`)")
    r.add_argument("--out", metavar="DIR", help="output directory")
    r.add_argument("--backend", choices=("coq", "lean4", "isabelle"), default="coq",
                   help="prompt format of the traces (default %(default)s; a corpus is Coq)")
    dt = _train_defaults()
    r.add_argument("--base", metavar="DIR", help="start from this local pretrained checkpoint (its tokenizer too)")
    r.add_argument("--lora", type=_positive(int), metavar="R", help="with --base: train LoRA adapters of rank R")
    r.add_argument("--steps", type=_positive(int), default=dt.steps, help="optimizer steps (default %(default)s)")
    r.add_argument("--batch-size", type=_positive(int), default=dt.batch_size, help="default %(default)s")
    r.add_argument("--lr", type=_positive(float),
                   help=f"peak learning rate (default {dt.lr:g} from scratch, 1e-3 with --lora, 1e-4 with --base)")
    r.add_argument("--max-len", type=_positive(int), default=dt.max_len,
                   help="examples longer than this many tokens are left out (default %(default)s)")
    r.add_argument("--eval-limit", type=_positive(int), default=dt.eval_limit,
                   help="validation and held-out steps evaluated at most, a seeded sample (default %(default)s)")
    r.add_argument("--vocab-size", type=_positive(int), default=dt.vocab_size, help="default %(default)s")
    r.add_argument("--hidden", type=_positive(int), default=dt.hidden, help="model width (default %(default)s)")
    r.add_argument("--layers", type=_positive(int), default=dt.layers, help="default %(default)s")
    r.add_argument("--heads", type=_positive(int), default=dt.heads, help="default %(default)s")
    r.add_argument("--intermediate", type=_positive(int), default=dt.intermediate,
                   help="MLP width (default %(default)s)")
    r.add_argument("--seed", type=int, default=dt.seed, help="default %(default)s")
    r.add_argument("--quiet", action="store_true", help="no live progress")
    r.set_defaults(run=cmd_train)
    from .learning.cli import add_train_commands
    add_train_commands(r.add_subparsers(dest="train_kind", parser_class=_Parser, metavar="{knn,scorer}",
                                        help="other models: knn (k-NN tactic model from a proof corpus), scorer "
                                             "(the learned node scorer for --priority value)"), _Parser)

    m = sub.add_parser("minif2f", help="run the miniF2F benchmark, one JSON line per theorem",
                       description="Run miniF2F: every found proof is re-checked from scratch before it is "
                       "logged as proved. Results are appended (flushed, fsynced) as each theorem finishes.")
    m.add_argument("--backend", choices=BACKENDS, default="coq", help="proof assistant (default %(default)s)")
    m.add_argument("--split", choices=("valid", "test"), help="benchmark split (default: both)")
    m.add_argument("--data", metavar="DIR", help="miniF2F JSONL directory (default ../shared/data/minif2f)")
    add_run_options(m)
    add_search_options(m)
    m.set_defaults(run=cmd_minif2f)

    bench = sub.add_parser("bench", help="run a benchmark other than miniF2F (coqlib: held-out Coq library theorems)")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, parser_class=_Parser)
    q = bench_sub.add_parser(
        "coqlib", help="held-out theorems of the installed Coq libraries, each in its file context",
        description="Prove the theorems of the held-out library files (never in the training corpus), each "
        "opened in its installed file with everything before it and nothing after it; a proof counts only "
        "when the whole file, with the proof in place, compiles from the installed source. The test set is "
        "a fixed seeded sample listed in prover/runs/data/coqlib-test.jsonl. Same results format, "
        "--resume, `prover verify` and `prover report` as `prover minif2f`.")
    q.add_argument("--split", choices=("test",), default="test", help="benchmark split (default %(default)s)")
    add_run_options(q)
    add_search_options(q)
    q.set_defaults(run=cmd_bench_coqlib, backend="coq", timeout=COQLIB_TIMEOUT,  # the budget is time
                   max_expansions=COQLIB_MAX_EXPANSIONS, tactic_allowance=COQLIB_TACTIC_ALLOWANCE)

    v = sub.add_parser("verify", help="re-check every proved line of results files from scratch")
    v.add_argument("results", nargs="+", metavar="RESULTS.jsonl")
    v.add_argument("--data", metavar="DIR", help="miniF2F JSONL directory (default ../shared/data/minif2f)")
    v.add_argument("--check-timeout", type=_positive(float), default=BackendOptions().check_timeout)
    v.set_defaults(run=cmd_verify)

    r = sub.add_parser("report", help="pass rates, times and failure reasons of results files")
    r.add_argument("results", nargs="+", metavar="RESULTS.jsonl")
    r.add_argument("--plot", metavar="FILE.png", help="draw cumulative proved vs wall time (matplotlib)")
    r.add_argument("--data", metavar="DIR", help="miniF2F directory, for the Rocq reference numbers")
    r.set_defaults(run=cmd_report)

    f = sub.add_parser("filter", help="which candidate steps the search would refuse (JSON lines)",
                       description="Read candidate steps, one JSON string per line, from FILE or stdin; "
                       "print one JSON object per line: {\"accepted\": bool, \"reason\": why it is refused}. "
                       "It is the backend's own step filter, the one the search applies before the prover "
                       "sees a step. Exit code: 0, or 2 on a line that is not a JSON string.")
    f.add_argument("file", nargs="?", help="input file (default: stdin)")
    f.add_argument("--backend", choices=FILTER_BACKENDS, required=True, help="whose filter")
    f.set_defaults(run=cmd_filter)

    isa = sub.add_parser("isabelle", help="Isabelle project tasks",
                         description="Isabelle project tasks (the bridge itself is --backend isabelle).")
    isa_sub = isa.add_subparsers(dest="isabelle_command", required=True, parser_class=_Parser)
    s = isa_sub.add_parser("setup", help="write the miniF2F theories (statement + sorry) and their ROOT",
                           description="Write one theory per miniF2F problem (imports, preamble, statement, "
                           "sorry) into isabelle/minif2f/{valid,test}/ with a ROOT for `isabelle build`.")
    s.add_argument("--data", metavar="DIR", help="miniF2F data directory (default: shared/data/minif2f)")
    s.add_argument("--out", metavar="DIR", help="output directory (default: isabelle/minif2f in the checkout)")
    s.add_argument("--split", choices=("valid", "test"), help="only this split")
    s.set_defaults(run=cmd_isabelle_setup)

    r = sub.add_parser("repl", help="serve editors and scripts: JSON Lines requests (docs/repl.md)",
                       description="Answer prove/suggest/check/cancel/shutdown requests, one JSON object a "
                       "line, on stdin/stdout (or on 127.0.0.1:PORT). The options set the defaults of "
                       "the requests' fields. Protocol: docs/repl.md.")
    r.add_argument("--port", type=int, metavar="N",
                   help="serve on 127.0.0.1:N (0: any free port, printed on stderr) instead of stdin/stdout")
    r.add_argument("--backend", choices=BACKENDS, default="coq", help="default backend (default %(default)s)")
    r.add_argument("--workers", type=_positive(int), default=4,
                   help="requests run at once (default %(default)s)")
    r.add_argument("--keep-sessions", type=int, default=2, metavar="N",
                   help="idle suggest sessions kept open for the next request on the same theorem "
                        "(default %(default)s; 0: none)")
    r.add_argument("--online", action="store_true",
                   help="online learning: proofs found by prove requests join the generator (knn) for later "
                        "requests")
    add_search_options(r)
    r.set_defaults(run=cmd_repl)

    c = sub.add_parser("client", help="send requests to a prover repl and print its responses",
                       description="Send requests (JSON objects, from the arguments or one a line on stdin) "
                       "to a new `prover repl`, or to `prover repl --port N`, and print every response "
                       "line. Exit code: 0, 1 when a response is an error, 2 bad input.")
    c.add_argument("requests", nargs="*", metavar="REQUEST", help='e.g. \'{"cmd": "suggest", "goal": "..."}\'')
    c.add_argument("--port", type=int, metavar="N", default=_env_port(),
                   help="connect to 127.0.0.1:N rather than start a REPL (default: $PROVER_REPL_PORT)")
    c.add_argument("--no-progress", action="store_true", help="leave out progress lines")
    c.set_defaults(run=cmd_client)

    from .corpus.command import add_corpus_parser
    add_corpus_parser(sub, _Parser, _positive)
    from .learning.cli import add_models_parser
    add_models_parser(sub, _Parser, _positive)

    lean = sub.add_parser("lean", help="set up and trace lean_project/ (the Lean 4 backends' project)",
                          description="Lean 4 project commands. `make lean` runs setup, then builds the project.")
    lean_sub = lean.add_subparsers(dest="lean_command", required=True, parser_class=_Parser)
    ls = lean_sub.add_parser("setup", help="write the MiniF2F library (one file per theorem) into lean_project/")
    ls.add_argument("--project", help="the Lake project (default: lean_project/ of this checkout)")
    ls.add_argument("--data", help="directory holding lean4.jsonl (default: shared/data/minif2f)")
    ls.set_defaults(run=cmd_lean_setup)
    lt = lean_sub.add_parser("trace", help="commit the library into a git snapshot and trace it with LeanDojo "
                             "(needs Lean, lean-dojo 4.20.0 and internet; hours)")
    lt.add_argument("--project", help="the Lake project (default: lean_project/ of this checkout)")
    lt.set_defaults(run=cmd_lean_trace)
    return parser


def _step_filter(backend: str):
    """(text) -> (accepted, reason): the filter the search applies for ``backend``."""
    if backend == "coq":
        from .backends.coq.text import check_tactic
    elif backend == "lean":
        from .backends.lean.text import check_tactic
    else:
        from .backends.isabelle.text import filter_step
        return filter_step

    def verdict(text: str) -> tuple[bool, str]:
        accepted, why = check_tactic(text)
        return accepted is not None, why
    return verdict


def cmd_filter(args: argparse.Namespace, console: Console) -> int:
    verdict = _step_filter(args.backend)
    try:
        stream = open(args.file, encoding="utf-8") if args.file else sys.stdin
    except OSError as e:
        raise ConfigError(f"cannot read {args.file}: {e.strerror or e}") from None
    with stream:
        try:
            for number, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                try:
                    step = json.loads(line)
                except json.JSONDecodeError:
                    step = None
                if not isinstance(step, str):
                    raise ConfigError(f"line {number}: expected a JSON string (a candidate step), "
                                      f"got {line.strip()[:80]}")
                accepted, reason = verdict(step)
                sys.stdout.write(json.dumps({"accepted": accepted, "reason": "" if accepted else reason}) + "\n")
                sys.stdout.flush()
        except UnicodeDecodeError as e:
            raise ConfigError(f"the input is not UTF-8 text: {e.reason}") from None
    return 0


def cmd_isabelle_setup(args: argparse.Namespace, console: Console) -> int:
    from .backends.isabelle.backend import default_project_dir
    from .backends.isabelle.theories import setup

    out = Path(args.out) if args.out else Path(default_project_dir()) / "minif2f"
    try:
        report = setup(out, args.data, args.split)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    except OSError as e:
        raise ConfigError(f"cannot write {out}: {e.strerror or e}") from None
    splits = ", ".join(f"{n} {s}" for s, n in report.per_split.items())
    Console().print(f"wrote {report.written} theories ({splits}) and ROOT under {report.out_dir}", highlight=False)
    if report.outside_root:
        Console().print(f"left out of ROOT (need AFP sessions): {', '.join(report.outside_root)}", highlight=False)
    return 0




def _env_port() -> int | None:
    value = os.environ.get("PROVER_REPL_PORT", "")
    return int(value) if value.isdigit() else None


def _lean_project(args: argparse.Namespace) -> Path:
    from .backends.lean.project import default_project_dir

    return Path(args.project).resolve() if args.project else default_project_dir()


def cmd_lean_setup(args: argparse.Namespace, console: Console) -> int:
    from .backends.lean.project import setup

    project = _lean_project(args)
    try:
        report = setup(project, args.data)
    except (ValueError, FileNotFoundError) as e:
        raise ConfigError(str(e)) from None
    console.print(f"MiniF2F library in {report.project}: {len(report.files)} theorems "
                  f"({report.written} written, {report.unchanged} unchanged)", highlight=False, soft_wrap=True)
    return 0


def cmd_lean_trace(args: argparse.Namespace, console: Console) -> int:
    from .backends.lean.project import LeanNotInstalled
    from .backends.lean.dojo import trace

    try:
        trace(_lean_project(args), progress=lambda line: console.print(line, highlight=False, soft_wrap=True))
    except (LeanNotInstalled, FileNotFoundError) as e:
        raise ConfigError(str(e)) from None
    return 0


def _train_defaults():
    from .models.train import TrainConfig

    return TrainConfig()


def _load_theorem(args: argparse.Namespace) -> tuple[Theorem, object]:
    """The theorem to prove, and for FILE mode what --write needs: a CoqFileTheorem is its own (it
    knows its file), Isabelle gives the source and the span its proof occupies."""
    coq_options = [o for o, given in (("-R/-Q/--coq-flag", coq_flags(args)), ("--project", args.project),
                                      ("--add-imports", args.add_imports)) if given]
    if coq_options and args.backend != "coq":
        raise ConfigError(f"{', '.join(coq_options)}: Coq options, not for --backend {args.backend}")
    if args.add_imports and not args.file:
        raise ConfigError("--add-imports goes with FILE (a statement always has the prelude)")
    if args.backend == "isabelle":
        from .backends.isabelle.text import load_theorem

        try:
            return load_theorem(args.file, args.theorem, args.statement, args.header, args.write,
                                tuple(args.allow_axiom))
        except ValueError as e:
            raise ConfigError(str(e)) from None
    if args.file and args.statement:
        raise ConfigError("give either FILE --theorem NAME or --statement, not both")
    lean = args.backend in LEAN_BACKENDS
    if args.statement:
        if args.write:
            raise ConfigError("--write needs FILE")
        name = declaration_name(args.statement) if lean else theorem_name(args.statement)
        if name is None:
            raise ConfigError("--statement must start with " + ("theorem NAME" if lean else "Theorem/Lemma/... NAME"))
        return Theorem(name, args.statement.strip(), args.header, tuple(args.allow_axiom)), None
    if not args.file:
        raise ConfigError("nothing to prove: give FILE --theorem NAME or --statement")
    if lean:
        raise ConfigError("FILE mode reads Coq files; for Lean give --statement 'theorem NAME ... := by' "
                          "and --header 'import Mathlib ...'")
    if not args.theorem:
        raise ConfigError("FILE needs --theorem NAME")
    from .backends.coq.document import CoqDocument, FileContextError

    try:
        document = CoqDocument.read(args.file, extra_flags=coq_flags(args), project_root=args.project)
        theorem = document.theorem(args.theorem, tuple(args.allow_axiom), args.add_imports)
    except FileContextError as e:
        raise ConfigError(str(e)) from None
    return theorem, theorem


class WriteRefused(Exception):
    """--write found the file changed on disk since it was read."""


def _free_backup(path: str) -> str:
    """FILE.bak, or FILE.bak.1, FILE.bak.2, ... when taken: a backup is never overwritten."""
    backup = path + ".bak"
    n = 0
    while os.path.lexists(backup):
        n += 1
        backup = f"{path}.bak.{n}"
    return backup


def _replace_file(path: str, original: str, new_text: str, newline: str | None = "") -> str:
    """Write ``new_text`` over ``path`` if it still holds ``original`` (read with ``newline`` as
    ``original`` was); returns the backup's path."""
    try:
        with open(path, encoding="utf-8", newline=newline) as f:
            current = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise WriteRefused(f"cannot read {path} again: {e}") from None
    if current != original:
        raise WriteRefused(f"{path} changed on disk during the search; not written (the proof is above)")
    backup = _free_backup(path)
    shutil.copy2(path, backup)
    tmp = f"{path}.prover-tmp"
    with open(tmp, "w", encoding="utf-8", newline=newline) as f:
        f.write(new_text)
        f.flush()
        os.fsync(f.fileno())
    shutil.copymode(path, tmp)
    os.replace(tmp, path)
    return backup


def _write_proof(path: str, target, result: SearchResult) -> str:
    from .backends.coq.document import CoqFileTheorem

    if isinstance(target, CoqFileTheorem):
        requires = tuple(getattr(result.check, "requires", ()))
        return _replace_file(path, target.document.source, target.written(result.tactics, requires))
    source, start, end = target
    return _replace_file(path, source, source[:start] + "\n" + result.proof + source[end:], newline=None)


def cmd_prove(args: argparse.Namespace, console: Console) -> int:
    theorem, span = _load_theorem(args)
    config = search_config(args)
    generator = _make_generator(args, console)
    context = None
    if args.learn_file:
        context = _learn_file(args, theorem, generator, console)
    flags = _statement_flags(args) if span is None and args.backend == "coq" else ()
    options = backend_options(args, flags=flags)
    warn_about_hammer(args, options, console)
    backend = make_backend(args.backend, options)
    try:
        result = _run_search(theorem, backend, generator, config, console, quiet=args.quiet or args.json)
    finally:
        backend.close()
    if result.failure_reason == "init_error":
        raise ConfigError(result.failure_message)
    if args.graph:
        Path(args.graph).write_text(result.graph_json(), encoding="utf-8")
    backup, refused = None, None
    if args.write and result.proved:
        try:
            backup = _write_proof(args.file, span, result)
        except WriteRefused as e:
            refused = str(e)
    file_info = _file_info(result) if hasattr(span, "document") else {}  # a Coq file theorem
    if args.json:
        out = {"theorem": theorem.name, "backend": args.backend, "generator": generator.name,
               "model": generator.model_id, "verified": result.proved, **result.to_dict(), **file_info,
               **(context or {})}
        if args.write:
            out["written"] = backup is not None
            out["backup"] = backup
            if refused:
                out["write_error"] = refused
        print(json.dumps(out))
    else:
        _print_result(console, result, backup, file_info)
        if refused:
            console.print(f"[red]error:[/red] {refused}", highlight=False, soft_wrap=True)
    if refused:
        return EXIT_NOT_PROVED
    return EXIT_PROVED if result.proved else EXIT_NOT_PROVED


def _statement_flags(args: argparse.Namespace) -> tuple[str, ...]:
    """--statement mode: the flags of --project's _CoqProject (if given) and the command line's."""
    from .backends.coq.project import CoqProject, ProjectError, check_flags

    try:
        if args.project:
            return CoqProject.for_file(args.project, coq_flags(args), root=args.project).flags
        return check_flags(coq_flags(args))
    except ProjectError as e:
        raise ConfigError(str(e)) from None


def _file_info(result: SearchResult) -> dict:
    """What a file check adds: the imports the written file gets, the file's own axioms it uses."""
    check = result.check
    return {"added_imports": list(getattr(check, "requires", ())),
            "file_axioms": list(getattr(check, "file_axioms", ()))} if result.proved else {}


def _learn_file(args: argparse.Namespace, theorem, generator, console: Console) -> dict:
    """Let the generator learn the proofs written before the theorem in its file (--learn-file)."""
    from .learning.context import earlier_proof_steps, learn_context

    if getattr(theorem, "document", None) is None:
        raise ConfigError("--learn-file needs FILE --theorem NAME (a Coq file)")
    quiet = args.quiet or args.json
    if quiet:
        context = earlier_proof_steps(theorem)
    else:
        with console.status("learning the proofs before the theorem in its file"):
            context = earlier_proof_steps(theorem)
    learned = learn_context(generator, context)
    if not quiet:
        console.print(f"learned {learned['context_steps']} proof steps and {learned['context_lemmas']} lemmas "
                      f"written before {theorem.name} ({context.seconds:.1f} s)"
                      + (f"; tracing stopped early: {context.error}" if context.error else ""), highlight=False,
                      soft_wrap=True)
    return learned


def _make_generator(args: argparse.Namespace, console: Console):
    if args.generator in ("portfolio", "knn", "combined") or args.quiet or getattr(args, "json", False):
        return make_generator(args.generator, args.backend, args.tactics, model_options(args))
    with console.status(f"loading model {args.model}"):
        return make_generator(args.generator, args.backend, args.tactics, model_options(args))


def _run_search(theorem, backend, generator, config, console: Console, quiet: bool) -> SearchResult:
    scorer = make_scorer_for(config)
    if quiet:
        return search(theorem, backend, generator, config, scorer=scorer)
    columns = (SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"proving {theorem.name}", total=config.max_expansions, info="")
        if hasattr(backend, "on_load"):  # a long file runs up to the theorem first
            backend.on_load = lambda done, total: bar.update(task, info=f"running the file: {done}/{total} sentences")
        def on_progress(p):
            bar.update(task, completed=p.expansions,
                       info=f"nodes {p.nodes} · tactics {p.tactic_calls} · depth {p.best_depth}")
        return search(theorem, backend, generator, config, on_progress=on_progress, scorer=scorer)


def _print_result(console: Console, r: SearchResult, backup: str | None, file_info: dict | None = None) -> None:
    out = Console()
    stats = (f"{r.expansions} expansions, {r.tactic_calls} tactic calls, {r.elapsed:.2f} s "
             f"(full check {r.check_seconds:.2f} s)")
    if r.proved:
        axioms = f"; axioms: {', '.join(r.axioms)}" if r.axioms else ""
        out.print(Panel(r.proof, title=f"[green]proved {r.theorem}[/green]", expand=False))
        out.print(f"verified by a full re-check; {stats}{axioms}", highlight=False, soft_wrap=True)
        info = file_info or {}
        if info.get("file_axioms"):
            out.print(f"uses axioms the file itself declares: {', '.join(info['file_axioms'])}", highlight=False)
        if info.get("added_imports"):
            out.print(f"the proof needs imports the file lacks: {' '.join(info['added_imports'])} (added before "
                      "the theorem's outermost section/module when written)", highlight=False, soft_wrap=True)
        if backup:
            out.print(f"wrote the proof into the file (backup: {backup})", highlight=False)
    else:
        msg = f": {r.failure_message}" if r.failure_message else ""
        out.print(f"[red]not proved[/red] {r.theorem} ({r.failure_reason}{msg})", highlight=False)
        out.print(stats, highlight=False)


def cmd_traces(args: argparse.Namespace, console: Console) -> int:
    from .models.traces import FORBIDDEN_SPLITS, collect_traces, write_traces
    from .runs import minif2f

    if args.split in FORBIDDEN_SPLITS:
        raise ConfigError(f"traces come from the valid split only: training on {args.split!r} would leak "
                          "the benchmark")
    try:
        problems = minif2f.load("coq", args.split, args.names, args.data, args.limit)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    config = search_config(args)
    generator = _make_generator(args, console)
    options = backend_options(args)
    warn_about_hammer(args, options, console)
    backend = make_backend("coq", options)
    proved = []
    try:
        with Progress(SpinnerColumn(), TextColumn("[bold]traces"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console,
                      disable=args.quiet) as bar:
            task = bar.add_task("traces", total=len(problems), info="")

            def on_result(problem, result) -> None:
                if result.proved:
                    proved.append(problem.name)
                bar.update(task, advance=1, info=f"proved {len(proved)} · {problem.name}")
            steps = collect_traces(problems, backend, generator, config, on_result)
    finally:
        backend.close()
    n = write_traces(args.out, steps)
    Console().print(f"{len(proved)}/{len(problems)} proved; wrote {n} steps to {args.out}", highlight=False)
    return 0


def _training_data(args: argparse.Namespace):
    """(train, valid, held-out steps, a summary) from a corpus directory or a trace file."""
    from .models.corpus_examples import load_corpus
    from .models.traces import read_traces

    path = Path(args.data)
    if path.is_dir():
        if args.backend != "coq":
            raise ConfigError("a corpus directory holds Coq proofs: --backend coq")
        try:
            corpus = load_corpus(path)
        except (OSError, ValueError) as e:
            raise ConfigError(str(e)) from None
        summary = {"corpus": str(path), "files": corpus.files, "train_steps": len(corpus.train),
                   "valid_steps": len(corpus.valid), "held_out_steps": len(corpus.held_out),
                   "refused_steps": corpus.refused}
        if not corpus.train:
            raise ConfigError(f"{args.data}: no training steps in the corpus (only held-out files?)")
        return corpus.train, corpus.valid, corpus.held_out, summary
    try:
        steps = read_traces(path)
    except FileNotFoundError:
        raise ConfigError(f"no such file or corpus directory: {args.data}") from None
    except OSError as e:
        raise ConfigError(f"cannot read {args.data}: {e.strerror}") from None
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if not steps:
        raise ConfigError(f"{args.data}: no steps to train on")
    return steps, [], [], {"traces": str(path), "train_steps": len(steps)}


def cmd_train(args: argparse.Namespace, console: Console) -> int:
    from .models.prompts import format_for
    from .models.train import TrainConfig, train

    if not args.data or not args.out:
        raise ConfigError("prover train needs --data and --out (or: prover train knn|scorer ...)")
    if args.lora and not args.base:
        raise ConfigError("--lora adapts a pretrained model: give --base DIR")
    if args.base and not Path(args.base).is_dir():
        raise ConfigError(f"base model directory not found: {args.base}")
    lr = args.lr or (1e-3 if args.lora else 1e-4 if args.base else _train_defaults().lr)
    try:
        config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=lr, vocab_size=args.vocab_size,
                             hidden=args.hidden, layers=args.layers, heads=args.heads,
                             intermediate=args.intermediate, max_len=args.max_len, seed=args.seed,
                             lora_rank=args.lora or 0, eval_limit=args.eval_limit)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    steps, valid, held_out, summary = _training_data(args)
    with Progress(SpinnerColumn(), TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console, transient=True,
                  disable=args.quiet) as bar:
        task = bar.add_task("train", total=config.steps, info="")
        try:
            report = train(steps, args.out, format_for(args.backend), config,
                           on_step=lambda i, loss: bar.update(task, completed=i, info=f"loss {loss:.3f}"),
                           valid=valid, held_out=held_out, base=args.base, data=summary)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    out = Console()
    how = f"LoRA rank {config.lora_rank} on {args.base}" if config.lora_rank else \
        f"from {args.base}" if args.base else "from scratch"
    out.print(f"trained {report.trainable_parameters:,} of {report.parameters:,} parameters ({how}) on "
              f"{report.examples} examples ({report.skipped} too long) in {report.seconds:.1f} s; loss "
              f"{report.first_loss:.3f} -> {report.final_loss:.3f}; saved to {report.out_dir}",
              highlight=False, soft_wrap=True)
    for name, ev in (("validation", report.valid), ("held-out", report.held_out)):
        if ev is not None:
            out.print(f"{name} next-tactic accuracy {100 * ev.accuracy:.1f}% of {ev.examples} steps "
                      f"(loss {ev.loss:.3f} per token)", highlight=False)
    return 0


def cmd_minif2f(args: argparse.Namespace, console: Console) -> int:
    from .runs.benchmark import minif2f_suite

    return _run_suite(args, console, lambda names: minif2f_suite(args.backend, args.split, names, args.limit,
                                                                 args.data))


def cmd_bench_coqlib(args: argparse.Namespace, console: Console) -> int:
    from .runs.benchmark import coqlib_suite

    return _run_suite(args, console, lambda names: coqlib_suite(args.backend, args.split, names, args.limit))


def _run_suite(args: argparse.Namespace, console: Console, make_suite) -> int:
    from .runs.benchmark import run_benchmark
    from .runs.results import ResultsError
    from .runs.runner import RunSpec, RunStopped

    if args.ray and args.ray_address:
        raise ConfigError("give --ray local or --ray-address, not both")
    check_generator(args.generator, args.backend, args.tactics, model_options(args))  # bad options fail here
    options = backend_options(args, args.workers)
    warn_about_hammer(args, options, console)
    spec = RunSpec(args.backend, args.generator, args.tactics, search_config(args), options, args.seed,
                   grace=args.grace, model=model_options(args), online=args.online, trees=args.trees,
                   learn_file=args.learn_file)
    names = [n.strip() for n in args.names.split(",") if n.strip()] if args.names else None
    ray = args.ray_address or args.ray
    try:
        suite = make_suite(names)
        if suite.name == "coqlib" and suite.split == "test" and args.generator in LEARNED_GENERATORS:
            from .learning.knn import held_out_files
            leaked = held_out_files(args.knn_model)
            if leaked:
                raise ConfigError(f"{args.knn_model} was built from held-out files ({', '.join(leaked[:3])}"
                                  f"{', ...' if len(leaked) > 3 else ''}): it cannot be evaluated on them")
        with _served(spec, ray, args, console) as spec:  # a model: one service process for every worker
            summary = run_benchmark(spec, suite, args.out, args.workers, args.resume, ray, console, args.quiet)
    except RunStopped as e:
        console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        return 1
    except (ResultsError, ValueError) as e:
        raise ConfigError(str(e)) from None
    Console().print(f"{summary['proved']}/{summary['total']} proved ({summary['ran']} run now); results in "
                    f"{args.out}", highlight=False)
    return 0


@contextlib.contextmanager
def _served(spec, ray, args: argparse.Namespace, console: Console):
    """The run's spec with its model served by one generator service process (local runs)."""
    from .runs.serving import served_model

    if spec.generator not in MODEL_GENERATORS or ray or args.quiet:
        with served_model(spec, bool(ray)) as served:
            yield served
        return
    status = console.status(f"loading model {spec.model.model} into the generator service")
    status.start()
    try:
        with served_model(spec, bool(ray)) as served:
            status.stop()
            yield served
    finally:
        status.stop()


def _read_all(paths: list[str]):
    from .runs.results import ResultsError, read_results
    try:
        return [read_results(p) for p in paths]
    except ResultsError as e:
        raise ConfigError(str(e)) from None


def cmd_verify(args: argparse.Namespace, console: Console) -> int:
    from .runs.verify import verify_results

    out = Console()
    bad = total = 0
    for rf in _read_all(args.results):
        def show(v):
            mark = "[green]ok[/green]" if v.ok else f"[red]MISMATCH[/red] {v.message}"
            out.print(f"{v.split}/{v.name}: {mark}", highlight=False, soft_wrap=True)
        try:
            verdicts = verify_results(rf, args.data, BackendOptions(args.check_timeout), show)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        total += len(verdicts)
        bad += sum(not v.ok for v in verdicts)
    out.print(f"{total - bad}/{total} proofs re-checked ok" + (f", {bad} mismatches" if bad else ""),
              highlight=False)
    return 0 if bad == 0 else 1


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from .runs.minif2f import default_data_dir, load_compat
    from .runs.report import plot, report

    files = _read_all(args.results)
    base = Path(args.data) if args.data else default_data_dir()
    compat = load_compat(base) if (base / "rocq_compat.json").is_file() else None
    report(files, Console(), compat)
    if args.plot:
        try:
            plot(files, args.plot)
        except ImportError:
            raise ConfigError("--plot needs matplotlib: pip install 'prover[plot]'") from None
        Console().print(f"plot written to {args.plot}", highlight=False)
    return 0

def cmd_repl(args: argparse.Namespace, console: Console) -> int:
    from .repl.protocol import Defaults
    from .repl.server import Server, ServerConfig, serve_stdio, serve_tcp

    if args.port is not None and not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, not {args.port}")
    if args.keep_sessions < 0:
        raise ConfigError("--keep-sessions must be 0 or more")
    options = backend_options(args, args.workers)
    warn_about_hammer(args, options, console)
    defaults = Defaults(search_config(args), options, args.backend, args.generator, args.tactics)
    server = Server(ServerConfig(defaults, args.workers, args.keep_sessions, online=args.online),
                    _repl_generators(args))
    try:
        if args.generator in MODEL_GENERATORS:
            with console.status(f"loading model {args.model} into the generator service"):
                server.generators.get(args.generator, args.backend, args.tactics)  # load it now: errors at once
        else:
            server.generators.get(args.generator, args.backend, args.tactics)
    except BaseException:
        server.generators.close()
        raise
    if args.port is None:
        return serve_stdio(server)
    try:
        return serve_tcp(server, args.port, lambda host, port: console.print(
            f"prover repl: listening on {host}:{port}", highlight=False))
    except OSError as e:
        raise ConfigError(f"cannot listen on 127.0.0.1:{args.port}: {e.strerror}") from None


def _repl_generators(args: argparse.Namespace):
    """The REPL's generator factory: a model is served by a generator service process (one per backend's
    prompt), which batches concurrent requests and is started again if it dies; others run in-process."""
    from .models.service import ServedModel, ServiceConfig

    served: dict[str, ServedModel] = {}

    def make(name: str, backend: str, tactics: str | None):
        options = model_options(args)
        if name not in MODEL_GENERATORS:
            return make_generator(name, backend, tactics, options)
        check_generator(name, backend, tactics, options)
        if backend not in served:
            served[backend] = ServedModel(ServiceConfig(backend, options))
        return make_generator(name, backend, tactics, options, served=served[backend])

    return make


def cmd_client(args: argparse.Namespace, console: Console) -> int:
    from .repl.client import ReplClient, run_requests

    lines = args.requests or [line for line in sys.stdin if line.strip()]
    requests = []
    for line in lines:
        try:
            request = json.loads(line)
        except ValueError as e:
            raise ConfigError(f"a request is not JSON: {e}") from None
        if not isinstance(request, dict):
            raise ConfigError("a request is a JSON object")
        requests.append(request)
    if args.port is not None:
        try:
            client = ReplClient.connect(args.port)
        except OSError as e:
            raise ConfigError(f"cannot connect to 127.0.0.1:{args.port}: {e.strerror}") from None
    else:
        client = ReplClient.spawn()
    lock = threading.Lock()  # responses arrive on several threads: one whole line at a time

    def emit(message: dict) -> None:
        with lock:
            sys.stdout.write(json.dumps(message) + "\n")
            sys.stdout.flush()

    with client:
        return run_requests(client, requests, emit, progress=not args.no_progress)


def main(argv: list[str] | None = None) -> int:
    console = Console(stderr=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds, so prover processes stop
    try:
        args = build_parser().parse_args(argv)
        from .learning.cli import resolve_learned
        with TempRoot():  # whatever this command and its provers write to TMPDIR goes with it
            resolve_learned(args, console)
            return args.run(args, console)
    except ConfigError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
