"""The k-NN tactic model: proof states of real proofs, indexed by their features, and the tactic that
was run in each.

To propose tactics for a state, the model finds the stored states most similar to it (``index.py``),
adapts each one's tactic to the current hypothesis names (``names.py``) and ranks the distinct
tactics: each neighbour votes for its tactic with weight ``exp(similarity / temperature)``, and a
tactic's log-probability is the log of its share of the votes. Proofs found while the model is in use
can join it (``learn``), as in Tactician's online learning.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..backends.coq.text import check_tactic
from . import modelfile
from .features import FeatureConfig, Featurizer
from .goals import Goal, first_goal
from .index import FeatureIndex, IndexArrays
from .names import Target, decode_used, encode_used, name_map, rename, used_hypotheses
from .steps import first_step

KIND = "prover-knn"
EXACT = 1.0 - 1e-9  # similarity of a stored state with the query's very features
STEP_BEST = 1.0 - 1e-6  # the best similarity a first step is credited with: below EXACT
VERSION = 1
_ARRAYS = ("keys", "indptr", "rows", "ex_indptr", "ex_cols", "tactic_of", "tactics_blob", "tactics_offsets",
           "contexts_blob", "contexts_offsets")


@dataclass(frozen=True)
class KnnConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    neighbours: int = 100  # stored states that vote
    temperature: float = 0.1  # of the vote weights exp(similarity / temperature)
    normalize: bool = True  # weighted-Jaccard similarity (False: Tactician's plain idf sum)
    # How distinct tactics are ordered: "max" by the best neighbour that proposed it (Tactician), votes
    # breaking ties; "vote" by summed weights; "exact" as vote, but the tactics of stored states with the
    # very same features (similarity 1) first.
    ranking: str = "exact"
    # A compound tactic's vote also goes, times this, to its first step (learning/steps.py): the
    # neighbour's sentence may fail here where its first step moves the proof on.
    step_share: float = 0.5
    # At most this many such first steps (none of the neighbours ran it whole) among a state's
    # answers: more would push whole sentences that prove the goal past the search's candidate cut.
    step_slots: int = 3

    def to_json(self) -> dict:
        d = asdict(self)
        d["features"] = self.features.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict) -> "KnnConfig":
        return cls(FeatureConfig.from_json(d.get("features", {})),
                   **{k: d[k] for k in ("neighbours", "temperature", "normalize", "ranking", "step_share",
                                                    "step_slots") if k in d})


def usable_tactic(tactic: str) -> str | None:
    """The tactic as the model stores it, or None for what the search never runs (bullets, braces,
    commands, anything the tactic filter refuses)."""
    sentence, _ = check_tactic(tactic)
    if sentence is None:
        return None
    return sentence[:-1].strip()


def context_of(tactic: str, goal: Goal) -> str:
    """What name adaptation needs of the stored state: the hypotheses the tactic names (often none)."""
    return encode_used(used_hypotheses(tactic, goal))


@dataclass
class Suggestion:
    tactic: str
    logprob: float
    votes: float  # summed weight of the neighbours that proposed it
    best: float  # the best similarity among them
    whole: bool = True  # False: only offered as the first step of neighbours' compound sentences


class KnnModel:
    def __init__(self, config: KnnConfig, arrays: IndexArrays, tactics: list[str] | modelfile.PackedStrings,
                 tactic_of: np.ndarray, contexts: list[str] | modelfile.PackedStrings, meta: dict | None = None) -> None:
        self.config = config
        self.featurizer = Featurizer(config.features)
        self.index = FeatureIndex(arrays, normalize=config.normalize)
        self._tactics = tactics
        self._tactic_of = tactic_of
        self._contexts = contexts
        self.meta = dict(meta or {})
        # Online additions (learn): appended beside the frozen tables.
        self._extra_tactics: list[str] = []
        self._extra_ids: dict[str, int] = {}
        self._extra_tactic_of: list[int] = []
        self._extra_contexts: list[str] = []
        self.learned = 0
        self._used_cache: dict[int, list] = {}  # decoded contexts of stored states, by id

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def build(cls, examples: Iterable[tuple[str, str]], config: KnnConfig | None = None,
              meta: dict | None = None, on_progress: Callable[[int], None] | None = None) -> "KnnModel":
        """A model from (goals text, tactic) pairs; pairs with no goal or an unusable tactic are skipped."""
        config = config or KnnConfig()
        featurizer = Featurizer(config.features)
        feature_sets: list[np.ndarray] = []
        tactic_ids: dict[str, int] = {}
        tactic_of: list[int] = []
        contexts: list[str] = []
        seen = 0
        for goals, tactic in examples:
            seen += 1
            if on_progress is not None and seen % 1000 == 0:
                on_progress(seen)
            tactic = usable_tactic(tactic)
            goal = first_goal(goals)
            if tactic is None or goal is None:
                continue
            feats = featurizer.features(goals)
            if len(feats) == 0:
                continue
            feature_sets.append(feats)
            tactic_of.append(tactic_ids.setdefault(tactic, len(tactic_ids)))
            contexts.append(context_of(tactic, goal))
        if on_progress is not None:
            on_progress(seen)
        arrays = IndexArrays.build(feature_sets)
        meta = {**(meta or {}), "examples": len(feature_sets), "tactics": len(tactic_ids),
                "built_at": time.time()}
        return cls(config, arrays, list(tactic_ids), np.array(tactic_of, dtype=np.int32), contexts, meta)

    # -- files -----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        a = self.index.a
        tactics = self._tactics if isinstance(self._tactics, list) else self._tactics.to_list()
        contexts = self._contexts if isinstance(self._contexts, list) else self._contexts.to_list()
        tactic_of = self._tactic_of
        if self.learned:  # a model saved after learning keeps what it learned
            raise ValueError("save the model before online learning (learned states are not persisted)")
        tb, to = modelfile.pack_strings(tactics)
        cb, co = modelfile.pack_strings(contexts)
        modelfile.save(path, KIND, VERSION, {"config": self.config.to_json(), "meta": self.meta},
                       {"keys": a.keys, "indptr": a.indptr, "rows": a.rows, "ex_indptr": a.ex_indptr,
                        "ex_cols": a.ex_cols, "tactic_of": tactic_of, "tactics_blob": tb, "tactics_offsets": to,
                        "contexts_blob": cb, "contexts_offsets": co})

    @classmethod
    def load(cls, path: str | Path) -> "KnnModel":
        header, z = modelfile.load(path, KIND, VERSION, _ARRAYS)
        try:
            config = KnnConfig.from_json(header["config"])
            arrays = IndexArrays(z["keys"], z["indptr"], z["rows"], z["ex_indptr"], z["ex_cols"])
            n = arrays.size
            ok = (len(z["tactic_of"]) == n and len(z["contexts_offsets"]) == n + 1
                  and arrays.indptr[-1] == len(arrays.rows) and arrays.ex_indptr[-1] == len(arrays.ex_cols))
        except (KeyError, TypeError, ValueError, IndexError):
            ok = False
        if not ok:
            raise modelfile.ModelFileError(f"{path} is an inconsistent {KIND} model: rebuild it")
        return cls(config, arrays, modelfile.PackedStrings(z["tactics_blob"], z["tactics_offsets"]),
                   z["tactic_of"], modelfile.PackedStrings(z["contexts_blob"], z["contexts_offsets"]),
                   header.get("meta", {}))

    # -- use ---------------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return self.index.size

    def _tactic(self, sid: int) -> str:
        frozen = len(self._tactic_of)
        if sid < frozen:
            return self._tactics[int(self._tactic_of[sid])]
        return self._extra_tactics[self._extra_tactic_of[sid - frozen]]

    def _context(self, sid: int) -> str:
        frozen = len(self._tactic_of)
        return self._contexts[sid] if sid < frozen else self._extra_contexts[sid - frozen]

    def neighbours(self, goals: str, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        return self.index.query(self.featurizer.features(goals), k or self.config.neighbours)

    def suggest(self, goals: str, n: int) -> list[Suggestion]:
        """Up to ``n`` distinct tactics for the first goal of ``goals``, best first."""
        ids, sims = self.neighbours(goals)
        if len(ids) == 0:
            return []
        target: Target | None = None
        weights = np.exp((sims - sims[0]) / max(self.config.temperature, 1e-6))
        votes: dict[str, Suggestion] = {}
        for sid, sim, w in zip(ids.tolist(), sims.tolist(), weights.tolist()):
            tactic = self._tactic(sid)
            context = self._context(sid)
            if context:
                if target is None:
                    target = Target(first_goal(goals) or Goal((), ""))
                used = self._used_cache.get(sid)
                if used is None:
                    used = self._used_cache[sid] = decode_used(context)
                tactic = rename(tactic, name_map(used, target))
            self._vote(votes, tactic, w, sim, True)
            step = first_step(tactic) if self.config.step_share > 0 else None
            if step is not None:  # never an exact match: the stored state's own sentence was the compound
                self._vote(votes, step, w * self.config.step_share, min(sim, STEP_BEST), False)
        total = sum(s.votes for s in votes.values())
        ranked: list[Suggestion] = []
        steps = 0
        for s in sorted(votes.values(), key=self._rank_key):
            if len(ranked) == n:
                break
            if not s.whole:
                if steps == self.config.step_slots:
                    continue
                steps += 1
            ranked.append(s)
        for s in ranked:
            s.logprob = math.log(s.votes / total)
        return ranked

    @staticmethod
    def _vote(votes: dict[str, Suggestion], tactic: str, weight: float, sim: float, whole: bool) -> None:
        s = votes.get(tactic)
        if s is None:
            votes[tactic] = Suggestion(tactic, 0.0, weight, sim, whole)
        else:
            s.votes += weight
            s.best = max(s.best, sim)
            s.whole = s.whole or whole

    def forget_after(self, size: int) -> None:
        """Forget the states learned after the model held ``size`` (a theorem's file context)."""
        frozen = len(self._tactic_of)
        self.index.truncate(size)
        keep = size - frozen
        del self._extra_tactic_of[keep:]
        del self._extra_contexts[keep:]
        for sid in [s for s in self._used_cache if s >= size]:
            del self._used_cache[sid]
        self.learned = min(self.learned, keep)

    def _rank_key(self, s: Suggestion) -> tuple:
        if self.config.ranking == "max":
            return (-s.best, -s.votes)
        if self.config.ranking == "exact":
            return (-(self.config.normalize and s.best >= EXACT), -s.votes, -s.best)
        return (-s.votes, -s.best)

    def learn(self, goals: str, tactic: str) -> bool:
        """Add one (state, tactic) pair found during a run; False when it cannot be used."""
        tactic = usable_tactic(tactic)
        goal = first_goal(goals)
        if tactic is None or goal is None:
            return False
        feats = self.featurizer.features(goals)
        if len(feats) == 0:
            return False
        if tactic not in self._extra_ids:
            self._extra_ids[tactic] = len(self._extra_tactics)
            self._extra_tactics.append(tactic)
        self._extra_tactic_of.append(self._extra_ids[tactic])
        self._extra_contexts.append(context_of(tactic, goal))
        self.index.add(feats)
        self.learned += 1
        return True


def held_out_files(path: str | Path | None) -> list[str]:
    """The held-out corpus files a model file was built from (none, for a model of the training split);
    the default model when ``path`` is None."""
    from ..corpus.records import is_held_out
    from .default import default_models

    model = KnnModel.load(path if path is not None else default_models().knn)
    return [f for f in model.meta.get("files", []) if is_held_out(f)]
