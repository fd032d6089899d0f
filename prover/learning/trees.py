"""Search trees kept from runs, and the labelled states the node scorer learns from.

A run with ``--trees DIR`` writes one ``DIR/<split>/<name>.json.gz`` per theorem: the states the search
reached (goals text, proved/failed/open, expanded or not, depth) and whether the theorem was proved.
Labels: a proved state is 1; a state the search expanded but did not prove, in a search that ended
without a proof, is 0 (it was not proved within the budget); states never expanded say nothing.
Trees of runs on held-out or test theorems are refused, like their proofs.
"""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Iterator

from ..corpus.records import Step, TheoremRecord, corpus_files, read_file, split_of
from .knn import usable_tactic
from .training import TRAINING_RUN_SPLITS, TrainingDataError
from .value import LabelledState


def tree_record(tree, name: str, split: str, proved: bool) -> dict:
    return {"theorem": name, "split": split, "proved": proved,
            "nodes": [{"goals": n.goals, "status": n.status.value, "expanded": n.expanded, "depth": n.depth}
                      for n in tree.nodes]}


def save_tree(directory: str | Path, name: str, split: str, proved: bool, tree) -> Path:
    """Write one theorem's tree atomically (a worker stopped mid-write leaves no half file)."""
    out = Path(directory) / (split or "all") / f"{name}.json.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        json.dump(tree_record(tree, name, split, proved), f)
    os.replace(tmp, out)
    return out


def tree_states(directory: str | Path) -> Iterator[LabelledState]:
    base = Path(directory)
    files = sorted(base.rglob("*.json.gz"))
    if not files:
        raise TrainingDataError(f"no search trees (*.json.gz) under {directory}")
    for path in files:
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                tree = json.load(f)
        except (OSError, ValueError):
            raise TrainingDataError(f"{path}: not a search tree file") from None
        split = tree.get("split")
        if split not in TRAINING_RUN_SPLITS:
            raise TrainingDataError(f"{path}: a tree of split {split!r}; only runs on "
                                    f"{' or '.join(TRAINING_RUN_SPLITS)} theorems are training data")
        proved = bool(tree.get("proved"))
        for node in tree.get("nodes", []):
            if not node.get("goals"):
                continue
            if node.get("status") == "proved":
                yield LabelledState(node["goals"], 1.0, "trees")
            elif node.get("expanded") and (node.get("status") == "failed" or not proved):
                yield LabelledState(node["goals"], 0.0, "trees")


def corpus_states(corpus: str | Path, gamma: float) -> Iterator[LabelledState]:
    """States on the real proofs of the corpus's training split, target ``gamma ** (tactics left - 1)``."""
    files = corpus_files(corpus)
    if not files:
        raise TrainingDataError(f"no corpus files (*.jsonl, *.jsonl.gz) under {corpus}")
    for path in files:
        proof: list[Step] = []
        for r in [*read_file(path), None]:  # a theorem's line comes before its steps
            if isinstance(r, Step):
                proof.append(r)
                continue
            usable = [s for s in proof if usable_tactic(s.tactic) and split_of(s.file) == "train"]
            for i, s in enumerate(usable):
                yield LabelledState(s.goals, gamma ** (len(usable) - i - 1), "corpus")
            proof = []
