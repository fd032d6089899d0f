"""The learned node scorer: the probability that a proof state is proved within the search's budget.

A logistic model over the state's features (``features.py``, hashed into a fixed number of buckets)
and a few size features (open goals, hypotheses, length of the conclusion). Trained from:

- the corpus: every state on a real proof path, with the soft target ``gamma ** (steps left - 1)``
  (a state one tactic from the end is certain; each further step multiplies in the chance of finding it);
- the search trees of earlier runs on training theorems (``trees.py``): states the search proved (1)
  and states it expanded without proving them within the budget (0): the dead ends a corpus never shows.

Trained with AdaGrad on the cross-entropy to the (soft) targets; weights stored in a model file.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import modelfile
from .features import FeatureConfig, Featurizer, stable_hash
from .goals import first_goal

KIND = "prover-value"
VERSION = 1


@dataclass(frozen=True)
class ValueConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    buckets: int = 1 << 18  # hashed feature space
    gamma: float = 0.7  # corpus target per remaining step
    epochs: int = 3
    lr: float = 0.2
    l2: float = 1e-6
    seed: int = 0

    def to_json(self) -> dict:
        d = asdict(self)
        d["features"] = self.features.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict) -> "ValueConfig":
        keys = ("buckets", "gamma", "epochs", "lr", "l2", "seed")
        return cls(FeatureConfig.from_json(d.get("features", {})), **{k: d[k] for k in keys if k in d})


def _bucket(n: int, edges: tuple[int, ...]) -> int:
    for i, e in enumerate(edges):
        if n <= e:
            return i
    return len(edges)


class ValueFeatures:
    """Goals text -> bucket indices of the logistic model."""

    def __init__(self, config: ValueConfig) -> None:
        self.config = config
        self.featurizer = Featurizer(config.features)
        self._size_hashes: dict[str, int] = {}

    def _size(self, name: str) -> int:
        h = self._size_hashes.get(name)
        if h is None:
            h = self._size_hashes[name] = stable_hash(name)
        return h

    def __call__(self, goals: str) -> np.ndarray:
        goal = first_goal(goals)
        hashes = list(self.featurizer.features(goals).tolist())
        if goal is not None:
            words = len(goal.conclusion.split())
            hashes.append(self._size(f"$goals={min(goal.count, 6)}"))
            hashes.append(self._size(f"$hyps={_bucket(len(goal.hypotheses), (0, 2, 5, 10, 20))}"))
            hashes.append(self._size(f"$concl={_bucket(words, (3, 8, 16, 32, 64, 128))}"))
        else:
            hashes.append(self._size("$nogoal"))
        return np.unique(np.array(hashes, dtype=np.int64) % self.config.buckets).astype(np.int32)


@dataclass(frozen=True)
class LabelledState:
    goals: str
    target: float  # in [0, 1]
    source: str = ""


class ValueModel:
    def __init__(self, config: ValueConfig, weights: np.ndarray, bias: float, meta: dict | None = None) -> None:
        self.config = config
        self.weights = weights.astype(np.float32)
        self.bias = float(bias)
        self.meta = dict(meta or {})
        self._features = ValueFeatures(config)

    def probability(self, goals: str) -> float:
        z = self.bias + float(self.weights[self._features(goals)].sum())
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    # -- training --------------------------------------------------------------------------------
    @classmethod
    def train(cls, states: Iterable[LabelledState], config: ValueConfig | None = None, meta: dict | None = None,
              on_epoch: Callable[[int, float], None] | None = None) -> "ValueModel":
        config = config or ValueConfig()
        features = ValueFeatures(config)
        rows: list[np.ndarray] = []
        targets: list[float] = []
        sources: dict[str, int] = {}
        for s in states:
            rows.append(features(s.goals))
            targets.append(min(1.0, max(0.0, s.target)))
            sources[s.source] = sources.get(s.source, 0) + 1
        if not rows:
            raise ValueError("no states to train the scorer on")
        y = np.array(targets)
        w = np.zeros(config.buckets)
        g2 = np.full(config.buckets, 1e-8)
        mean = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
        b, gb2 = math.log(mean / (1 - mean)), 1e-8
        rng = np.random.default_rng(config.seed)
        lengths = np.array([len(r) for r in rows])
        flat = np.concatenate(rows)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        loss = float("nan")
        for epoch in range(config.epochs):
            total = 0.0
            for i in rng.permutation(len(rows)):
                idx = flat[starts[i]:starts[i] + lengths[i]]
                z = b + w[idx].sum()
                p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
                total -= y[i] * math.log(max(p, 1e-12)) + (1 - y[i]) * math.log(max(1 - p, 1e-12))
                grad = p - y[i]
                gw = grad + config.l2 * w[idx]
                g2[idx] += gw * gw
                w[idx] -= config.lr * gw / np.sqrt(g2[idx])
                gb2 += grad * grad
                b -= config.lr * grad / math.sqrt(gb2)
            loss = total / len(rows)
            if on_epoch is not None:
                on_epoch(epoch + 1, loss)
        meta = {**(meta or {}), "states": len(rows), "sources": sources, "mean_target": float(y.mean()),
                "final_loss": loss, "built_at": time.time()}
        return cls(config, w, b, meta)

    # -- files -----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        modelfile.save(path, KIND, VERSION, {"config": self.config.to_json(), "bias": self.bias, "meta": self.meta},
                       {"weights": self.weights})

    @classmethod
    def load(cls, path: str | Path) -> "ValueModel":
        header, z = modelfile.load(path, KIND, VERSION, ("weights",))
        try:
            config = ValueConfig.from_json(header["config"])
            weights, bias = z["weights"], float(header["bias"])
            ok = weights.shape == (config.buckets,) and np.all(np.isfinite(weights))
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise modelfile.ModelFileError(f"{path} is an inconsistent {KIND} model: rebuild it")
        return cls(config, weights, bias, header.get("meta", {}))
