"""Building the k-NN model from a corpus directory (and runs' proofs), with progress."""
from __future__ import annotations

from pathlib import Path

from rich.progress import Progress

from .knn import KnnConfig, KnnModel
from .training import Example, corpus_examples, results_steps


def build_knn(corpus: str | Path, runs: list[str], config: KnnConfig, bar: Progress | None = None) -> KnnModel:
    """The model of the corpus's training split plus the verified proofs of ``runs``."""
    extra: list[Example] = []
    for path in runs:
        extra += results_steps(path)
    files: set[str] = set()
    task = bar.add_task("reading the corpus", total=None, info="") if bar is not None else None

    def on_file(done: int, total: int) -> None:
        if bar is not None:
            bar.update(task, completed=done, total=total, info=f"{len(files)} files")

    def examples():
        for ex in corpus_examples(corpus, on_file):
            files.add(ex.source)
            yield ex.goals, ex.tactic
        for ex in extra:
            yield ex.goals, ex.tactic

    meta = {"corpus": str(Path(corpus).resolve()), "runs": [str(Path(r).resolve()) for r in runs],
            "run_steps": len(extra)}
    model = KnnModel.build(examples(), config, meta)
    model.meta["files"] = sorted(files)
    return model
