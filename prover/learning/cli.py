"""Commands of the learned parts: ``prover train knn`` (and the scorer), hooked under ``prover train``."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ..components import ConfigError


def add_train_commands(kinds, parser_class) -> None:
    from .knn import KnnConfig

    d = KnnConfig()
    k = kinds.add_parser("knn", help="build the k-NN tactic model from a proof corpus",
                         description="Index every proof state of the corpus's training split (held-out files "
                         "are never read) with the tactic run in it; write one model file for "
                         "`--generator knn --knn-model FILE`.")
    k.add_argument("--corpus", required=True, metavar="DIR", help="corpus directory (from `prover corpus build`)")
    k.add_argument("--out", required=True, metavar="MODEL", help="model file to write (.npz)")
    k.add_argument("--runs", nargs="+", default=[], metavar="RESULTS.jsonl",
                   help="also learn the verified proofs of these runs on training theorems (miniF2F valid, "
                        "the corpus's training split): expert iteration")
    k.add_argument("--neighbours", type=int, default=d.neighbours,
                   help="stored states that vote on the tactics (default %(default)s)")
    k.add_argument("--temperature", type=float, default=d.temperature,
                   help="temperature of the votes' weights exp(similarity / T) (default %(default)s)")
    k.add_argument("--quiet", action="store_true", help="no live progress")
    k.set_defaults(run=cmd_train_knn)


def _progress(console: Console, quiet: bool) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console, transient=True,
                    disable=quiet)


def cmd_train_knn(args: argparse.Namespace, console: Console) -> int:
    from .knn import KnnConfig
    from .training import TrainingDataError
    from .build import build_knn

    if args.neighbours < 1 or args.temperature <= 0:
        raise ConfigError("--neighbours must be at least 1 and --temperature positive")
    config = KnnConfig(neighbours=args.neighbours, temperature=args.temperature)
    if not Path(args.corpus).is_dir():
        raise ConfigError(f"no corpus directory at {args.corpus}")
    start = time.monotonic()
    try:
        with _progress(console, args.quiet) as bar:
            model = build_knn(args.corpus, args.runs, config, bar)
        model.save(args.out)
    except TrainingDataError as e:
        raise ConfigError(str(e)) from None
    except OSError as e:
        raise ConfigError(f"cannot write {args.out}: {e.strerror or e}") from None
    m = model.meta
    Console().print(f"indexed {m['examples']:,} proof states ({m['tactics']:,} distinct tactics) from "
                    f"{len(m.get('files', []))} corpus files and {m.get('run_steps', 0)} run steps in "
                    f"{time.monotonic() - start:.0f} s; wrote {args.out} "
                    f"({Path(args.out).stat().st_size / 2**20:.1f} MiB)", highlight=False, soft_wrap=True)
    return 0
