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

    from .value import ValueConfig

    v = ValueConfig()
    s = kinds.add_parser("scorer", help="train the node scorer (--priority value) from a corpus and search trees",
                         description="Train a logistic model of the probability that a proof state is proved "
                         "within the budget: states of the corpus's real proofs (target gamma^(tactics left - 1)) "
                         "and the proved and dead states of earlier runs' search trees (`--trees DIR` of a run "
                         "on training theorems).")
    s.add_argument("--corpus", required=True, metavar="DIR", help="corpus directory (training split is read)")
    s.add_argument("--trees", nargs="+", default=[], metavar="DIR", help="search trees of runs (from --trees)")
    s.add_argument("--out", required=True, metavar="MODEL", help="model file to write (.npz)")
    s.add_argument("--gamma", type=float, default=v.gamma,
                   help="corpus target per remaining tactic (default %(default)s)")
    s.add_argument("--epochs", type=int, default=v.epochs, help="default %(default)s")
    s.add_argument("--quiet", action="store_true", help="no live progress")
    s.set_defaults(run=cmd_train_scorer)


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


def cmd_train_scorer(args: argparse.Namespace, console: Console) -> int:
    from .training import TrainingDataError
    from .trees import corpus_states, tree_states
    from .value import ValueConfig, ValueModel

    if not 0 < args.gamma <= 1 or args.epochs < 1:
        raise ConfigError("--gamma must be in (0, 1] and --epochs at least 1")
    if not Path(args.corpus).is_dir():
        raise ConfigError(f"no corpus directory at {args.corpus}")
    for d in args.trees:
        if not Path(d).is_dir():
            raise ConfigError(f"no search-tree directory at {d}")
    config = ValueConfig(gamma=args.gamma, epochs=args.epochs)
    start = time.monotonic()
    try:
        with _progress(console, args.quiet) as bar:
            task = bar.add_task("reading states", total=None, info="")
            states = list(corpus_states(args.corpus, config.gamma))
            for d in args.trees:
                states += list(tree_states(d))
            bar.update(task, description="training", total=config.epochs, completed=0,
                       info=f"{len(states):,} states")
            model = ValueModel.train(states, config, {"corpus": str(Path(args.corpus).resolve()),
                                                      "trees": [str(Path(d).resolve()) for d in args.trees]},
                                     on_epoch=lambda e, loss: bar.update(task, completed=e, info=f"loss {loss:.4f}"))
        model.save(args.out)
    except (TrainingDataError, ValueError) as e:
        raise ConfigError(str(e)) from None
    except OSError as e:
        raise ConfigError(f"cannot write {args.out}: {e.strerror or e}") from None
    m = model.meta
    Console().print(f"trained the scorer on {m['states']:,} states ({', '.join(f'{k} {v:,}' for k, v in m['sources'].items())}) "
                    f"in {time.monotonic() - start:.0f} s, final loss {m['final_loss']:.4f}; wrote {args.out}",
                    highlight=False, soft_wrap=True)
    return 0


def add_models_parser(sub, parser_class, positive) -> None:
    import os

    m = sub.add_parser("models", help="the default learned models (k-NN generator, node scorer): build, info",
                       description="The learned models behind the default generator: traced once from the "
                       "installed Coq libraries' training split and cached (`make models` builds them).")
    m_sub = m.add_subparsers(dest="models_command", required=True, parser_class=parser_class)
    b = m_sub.add_parser("build", help="trace the libraries (resumable) and build the default models",
                         description="Trace the training split of the installed Coq libraries into the cache "
                         "(resumable), then build the k-NN model and the node scorer from it. About an hour on "
                         "2 busy cores; minutes with more cores.")
    b.add_argument("--corpus", metavar="DIR", help="use this corpus (from `prover corpus build`) instead of tracing")
    b.add_argument("--workers", type=positive(int), default=os.cpu_count() or 1,
                   help="files traced at once (default: number of cores)")
    b.add_argument("--force", action="store_true", help="rebuild the models even when they exist")
    b.set_defaults(run=cmd_models_build)
    i = m_sub.add_parser("info", help="where the default models are and what they hold")
    i.set_defaults(run=cmd_models_info)


def cmd_models_build(args: argparse.Namespace, console: Console) -> int:
    from ..corpus.build import CorpusError
    from ..corpus.sources import SourceError
    from .default import build_default_models
    from .training import TrainingDataError

    if args.corpus and not Path(args.corpus).is_dir():
        raise ConfigError(f"no corpus directory at {args.corpus}")
    start = time.monotonic()
    try:
        models = build_default_models(console, args.workers, args.corpus, args.force)
    except (CorpusError, SourceError, TrainingDataError) as e:
        raise ConfigError(str(e)) from None
    Console().print(f"default models ready in {models.root} ({time.monotonic() - start:.0f} s)", highlight=False,
                    soft_wrap=True)
    return 0


def cmd_models_info(args: argparse.Namespace, console: Console) -> int:
    from .default import default_models
    from .knn import KnnModel
    from .modelfile import ModelFileError
    from .value import ValueModel

    models = default_models()
    out = Console()
    out.print(f"cache: {models.root}", highlight=False)
    for label, path, loader in (("k-NN model", models.knn, KnnModel), ("node scorer", models.value, ValueModel)):
        if not path.is_file():
            out.print(f"{label}: not built ({path}); `prover models build` builds it", highlight=False)
            continue
        try:
            meta = loader.load(path).meta
        except ModelFileError as e:
            out.print(f"{label}: unusable: {e}", highlight=False)
            continue
        what = (f"{meta.get('examples', 0):,} states, {meta.get('tactics', 0):,} tactics, "
                f"{len(meta.get('files', []))} files" if loader is KnnModel else f"{meta.get('states', 0):,} states")
        out.print(f"{label}: {path} ({path.stat().st_size / 2**20:.1f} MiB; {what})", highlight=False, soft_wrap=True)
    return 0


def resolve_learned(args: argparse.Namespace, console: Console) -> None:
    """Fill in the default generator and the default models' paths, building the models on first use;
    then whether the proofs before a file theorem are learned (--learn-file: on by default with a learned
    generator for Coq where theorems come from files: `prove FILE` and `bench coqlib`)."""
    from ..components import LEARNED_GENERATORS

    _resolve_generator(args, console)
    if getattr(args, "learn_file", False) is None:
        learned = args.generator in LEARNED_GENERATORS and getattr(args, "backend", "coq") == "coq"
        from_files = getattr(args, "file", None) is not None or getattr(args, "command", None) == "bench"
        args.learn_file = learned and from_files


def _resolve_generator(args: argparse.Namespace, console: Console) -> None:
    from ..components import LEARNED_GENERATORS, default_generator
    from ..corpus.build import CorpusError
    from ..corpus.sources import SourceError
    from .default import build_allowed, build_default_models, default_models
    from .training import TrainingDataError

    if not hasattr(args, "generator"):
        return
    explicit = args.generator is not None
    if not explicit:
        # your own tactic list or language model replaces the portfolio alone, as it always did
        own = getattr(args, "tactics", None) or getattr(args, "model", None)
        args.generator = "portfolio" if own else default_generator(getattr(args, "backend", "coq"))
    needs_knn = args.generator in LEARNED_GENERATORS and not getattr(args, "knn_model", None)
    needs_value = getattr(args, "priority", None) == "value" and not getattr(args, "value_model", None)
    if not (needs_knn or needs_value):
        return
    models = default_models()
    if not models.ready:
        # An editor must not wait for the build when it starts the REPL: the implicit default
        # there is the model-free portfolio until the models are built.
        quiet_default = not explicit and not needs_value and getattr(args, "command", None) == "repl"
        if build_allowed() and not quiet_default:
            console.print("[bold]first use:[/bold] building the default learned models from the installed Coq "
                          "libraries (once; about 10 minutes on 2 idle cores, resumable; `make models` does "
                          "this; `--generator portfolio` needs none)", highlight=False, soft_wrap=True)
            try:
                build_default_models(console)
            except (CorpusError, SourceError, TrainingDataError) as e:
                if explicit or needs_value:
                    raise ConfigError(f"cannot build the default learned models: {e}") from None
                console.print(f"[yellow]warning:[/yellow] cannot build the default learned models ({e}); "
                              "using --generator portfolio", highlight=False, soft_wrap=True)
                args.generator = "portfolio"
                return
        elif not explicit and not needs_value:  # opted out of the build (or the REPL): the model-free default
            if quiet_default and build_allowed():
                console.print("the default learned models are not built yet (`prover models build`): the REPL "
                              "uses --generator portfolio", highlight=False, soft_wrap=True)
            args.generator = "portfolio"
            return
        else:
            raise ConfigError("the default learned models are not built: run `prover models build`")
    if needs_knn:
        args.knn_model = str(models.knn)
    if needs_value:
        args.value_model = str(models.value)
