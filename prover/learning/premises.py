"""Local premises: the lemmas proved earlier in a theorem's file, offered as ``apply L`` and ``rewrite L``.

A library lemma is most often proved from the lemmas just before it (``add_pred_r`` by ``add_pred_l``
after a commutation, ``sub_add_simpl_r_r`` by ``sub_add_simpl_r_l``). Their names are in no earlier
proof, so retrieving tactics cannot propose them; ranking the lemmas themselves can. Each earlier lemma
is kept with the features of its statement (the state its proof starts from, read by the k-NN model's
featurizer) and ranked against the current goal by the k-NN index's own similarity: the idf mass of the
shared features over that of their union, rare features weighing most. Ties go to the later lemma,
the nearer one in the file.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

# The forms a premise is offered in, with their shares of its probability: a lemma that concludes the
# goal is applied; an equation (or iff) is rewritten with, left to right more often than back.
FORMS = (("apply {}", 0.5), ("rewrite {}", 0.3), ("rewrite <- {}", 0.2))


@dataclass(frozen=True)
class Premise:
    name: str
    features: np.ndarray  # sorted int64 feature hashes of its statement


class LocalPremises:
    """The earlier lemmas of one file, for one theorem at a time (``truncate`` forgets a file's)."""

    def __init__(self, features: Callable[[str], np.ndarray],
                 idf: Callable[[np.ndarray], np.ndarray]) -> None:
        self._features = features  # goals text -> feature hashes
        self._idf = idf  # feature hashes -> their idf weights
        self.premises: list[Premise] = []

    @property
    def size(self) -> int:
        return len(self.premises)

    def add(self, name: str, goals: str) -> bool:
        """Keep one lemma (its name as the file declares it, the state its proof starts from)."""
        feats = np.unique(np.asarray(self._features(goals), dtype=np.int64))
        if not name or len(feats) == 0:
            return False
        self.premises.append(Premise(name, feats))
        return True

    def truncate(self, size: int) -> None:
        del self.premises[size:]

    def rank(self, goals: str, k: int) -> list[tuple[str, float]]:
        """The ``k`` lemmas most similar to the goal, as (name, similarity in [0, 1]), best first."""
        if not self.premises or k <= 0:
            return []
        query = np.unique(np.asarray(self._features(goals), dtype=np.int64))
        if len(query) == 0:
            return []
        query_idf = self._idf(query)
        query_mass = float(query_idf.sum())
        scored: dict[str, tuple[float, int]] = {}
        for position, p in enumerate(self.premises):
            in_premise = np.isin(query, p.features, assume_unique=True)
            if not in_premise.any():
                continue
            shared = float(query_idf[in_premise].sum())
            union = query_mass + float(self._idf(p.features).sum()) - shared
            # A name declared twice: the later one is the one in scope.
            scored[p.name] = (shared / max(union, 1e-12), position)
        ranked = sorted(scored.items(), key=lambda kv: (-kv[1][0], -kv[1][1]))[:k]
        return [(name, sim) for name, (sim, _) in ranked]
