"""The default learned models: traced from the installed Coq libraries once, then cached.

``prover models build`` (``make models``) traces the training split of the installed
libraries into the cache, then builds the k-NN model and the node scorer from it; a first use of
a learned generator (or ``--priority value``) without them does the same, with progress bars. Every step resumes: a killed
build continues where it stopped. The cache is ``$PROVER_CACHE_DIR`` or ``~/.cache/prover``
(``$XDG_CACHE_HOME/prover``). Nothing is downloaded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import knn as knn_module
from . import value as value_module

NO_BUILD_ENV = "PROVER_NO_MODEL_BUILD"  # set: never build the default models on first use


def cache_dir() -> Path:
    explicit = os.environ.get("PROVER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "prover"


@dataclass(frozen=True)
class DefaultModels:
    root: Path

    @property
    def corpus(self) -> Path:
        return self.root / "corpus-train"

    @property
    def knn(self) -> Path:
        return self.root / "models" / f"knn-v{knn_module.VERSION}.npz"

    @property
    def value(self) -> Path:
        return self.root / "models" / f"value-v{value_module.VERSION}.npz"

    @property
    def ready(self) -> bool:
        return self.knn.is_file() and self.value.is_file()


def default_models() -> DefaultModels:
    return DefaultModels(cache_dir())


def build_allowed() -> bool:
    return os.environ.get(NO_BUILD_ENV, "") in ("", "0")


def build_default_models(console: Console, workers: int | None = None, corpus: str | Path | None = None,
                         force: bool = False) -> DefaultModels:
    """Trace (unless ``corpus`` is given), then build what is missing; returns the paths."""
    from ..corpus.build import CorpusBuild
    from ..corpus.sources import library_sources
    from .build import build_knn
    from .cli import _progress
    from .trees import corpus_states

    models = default_models()
    corpus_dir = Path(corpus) if corpus else models.corpus
    if corpus is None:
        job = CorpusBuild(library_sources(None, split="train"), corpus_dir, None, None)
        if job.todo:
            total, done = len(job.sources), len(job.sources) - len(job.todo)
            console.print(f"tracing the installed Coq libraries' training split into {corpus_dir} "
                          f"({len(job.todo)} of {total} files to go; resumable)", highlight=False, soft_wrap=True)
            columns = (TextColumn("[bold]tracing proofs"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[last]}"), TimeElapsedColumn(), TextColumn("eta"),
                       TimeRemainingColumn())
            with Progress(*columns, console=console) as bar:
                task = bar.add_task("trace", total=total, completed=done, last="")
                job.run(workers or os.cpu_count() or 1,
                        lambda r: bar.update(task, advance=1, last=r.file))
    if force or not models.knn.is_file():
        with _progress(console, False) as bar:
            model = build_knn(corpus_dir, [], knn_module.KnnConfig(), bar)
        model.save(models.knn)
        console.print(f"k-NN model: {model.meta['examples']:,} proof states -> {models.knn}", highlight=False,
                      soft_wrap=True)
    if force or not models.value.is_file():
        config = value_module.ValueConfig()
        with _progress(console, False) as bar:
            task = bar.add_task("training the node scorer", total=config.epochs, info="")
            states = list(corpus_states(corpus_dir, config.gamma))
            scorer = value_module.ValueModel.train(states, config, {"corpus": str(corpus_dir.resolve())},
                                                   on_epoch=lambda e, loss: bar.update(task, completed=e,
                                                                                       info=f"loss {loss:.4f}"))
        scorer.save(models.value)
        console.print(f"node scorer: {scorer.meta['states']:,} states -> {models.value}", highlight=False,
                      soft_wrap=True)
    return models
