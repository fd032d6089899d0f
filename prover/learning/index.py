"""An inverted index over feature sets with Tactician's rare-features-weigh-most similarity.

The similarity of a stored state ``e`` to a query ``q`` is the sum over their shared features of
``idf(f) = log((1 + N) / (1 + df(f)))`` (N stored states, df how many hold f), divided by the idf mass of
their union (a weighted Jaccard; ``normalize=False`` gives Tactician's plain sum).

A query reads the postings of its rarest features first and stops after ``budget`` postings: common
features (``=``, ``nat``) have postings as long as the corpus and weigh little. The best ``rerank``
states of that partial score are then scored exactly on all their features. States added after the
index was built (online learning) live in a small dict-of-lists beside the arrays and are scored in full.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IndexArrays:
    """The frozen part, as stored in a model file (CSC and CSR views of the state x feature matrix)."""

    keys: np.ndarray  # (F,) int64 sorted feature hashes
    indptr: np.ndarray  # (F+1,) int64: postings of feature j are rows[indptr[j]:indptr[j+1]]
    rows: np.ndarray  # (nnz,) int32 state ids, ascending within a feature
    ex_indptr: np.ndarray  # (N+1,) int64: features of state i are ex_cols[ex_indptr[i]:ex_indptr[i+1]]
    ex_cols: np.ndarray  # (nnz,) int32 column ids (positions in keys), ascending within a state

    @classmethod
    def build(cls, feature_sets: list[np.ndarray]) -> "IndexArrays":
        n = len(feature_sets)
        lengths = np.array([len(f) for f in feature_sets], dtype=np.int64)
        flat = np.concatenate(feature_sets) if n else np.zeros(0, np.int64)
        keys, cols = np.unique(flat, return_inverse=True)
        cols = cols.astype(np.int32).ravel()
        ex_indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=ex_indptr[1:])
        state_of = np.repeat(np.arange(n, dtype=np.int32), lengths)
        # Within a state the hashes were sorted, so the column ids are sorted as well.
        order = np.lexsort((state_of, cols))
        rows = state_of[order]
        counts = np.bincount(cols, minlength=len(keys))
        indptr = np.zeros(len(keys) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(keys.astype(np.int64), indptr, rows.astype(np.int32), ex_indptr, cols)

    @property
    def size(self) -> int:
        return len(self.ex_indptr) - 1


class FeatureIndex:
    def __init__(self, arrays: IndexArrays, normalize: bool = True, budget: int = 30_000,
                 rerank: int = 256) -> None:
        self.a = arrays
        self.normalize = normalize
        self.budget = budget
        self.rerank = rerank
        self._df = np.diff(arrays.indptr).astype(np.int64)
        # Online additions: hash -> ids of added states, and each added state's hashes.
        self._extra_postings: dict[int, list[int]] = {}
        self._extra_feats: list[np.ndarray] = []
        self._extra_df_cols: dict[int, int] = {}  # column id of a frozen feature -> extra count
        self._refresh_idf()

    @property
    def size(self) -> int:
        return self.a.size + len(self._extra_feats)

    def _refresh_idf(self) -> None:
        n = self.size
        df = self._df.astype(np.float64)
        for col, extra in self._extra_df_cols.items():
            df[col] += extra
        self._idf = np.log((1.0 + n) / (1.0 + df))
        self._n = n

    def idf_of(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Column ids (-1 where unknown to the frozen part) and idf of each query hash."""
        keys = self.a.keys
        pos = np.searchsorted(keys, hashes)
        pos = np.minimum(pos, max(0, len(keys) - 1))
        known = (keys[pos] == hashes) if len(keys) else np.zeros(len(hashes), bool)
        cols = np.where(known, pos, -1)
        idf = np.empty(len(hashes))
        idf[known] = self._idf[pos[known]]
        for i in np.nonzero(~known)[0]:  # only online additions can hold an unknown feature
            df = len(self._extra_postings.get(int(hashes[i]), ()))
            idf[i] = np.log((1.0 + self._n) / (1.0 + df))
        return cols, idf, known

    def add(self, hashes: np.ndarray) -> int:
        """Index one more state (online learning); returns its id."""
        sid = self.size
        self._extra_feats.append(np.asarray(hashes, dtype=np.int64))
        cols, _, known = self.idf_of(np.asarray(hashes, dtype=np.int64))
        for h, c, k in zip(hashes.tolist(), cols.tolist(), known.tolist()):
            self._extra_postings.setdefault(h, []).append(sid)
            if k:
                self._extra_df_cols[c] = self._extra_df_cols.get(c, 0) + 1
        self._refresh_idf()
        return sid

    def truncate(self, size: int) -> None:
        """Forget the states added after the first ``size`` (ids are handed out in order)."""
        frozen = self.a.size
        if size < frozen:
            raise ValueError("the frozen part cannot be forgotten")
        while len(self._extra_feats) > size - frozen:
            sid = frozen + len(self._extra_feats) - 1
            hashes = self._extra_feats.pop()
            cols, _, known = self.idf_of(hashes)
            for h, c, k in zip(hashes.tolist(), cols.tolist(), known.tolist()):
                postings = self._extra_postings[h]
                postings.pop()  # this state was the last to join every one of its postings
                if not postings:
                    del self._extra_postings[h]
                if k:
                    self._extra_df_cols[c] -= 1
                    if not self._extra_df_cols[c]:
                        del self._extra_df_cols[c]
            assert sid == frozen + len(self._extra_feats)
        self._refresh_idf()

    def query(self, hashes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Ids and similarities of the ``k`` most similar stored states, best first."""
        hashes = np.asarray(hashes, dtype=np.int64)
        if len(hashes) == 0 or self.size == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        cols, idf, known = self.idf_of(hashes)
        ids, scores = self._query_frozen(cols[known], idf[known], idf.sum())
        if self._extra_feats:
            ids, scores = self._merge_extra(hashes, idf, ids, scores)
        order = np.argsort(-scores, kind="stable")[:k]
        return ids[order], scores[order]

    def _query_frozen(self, qcols: np.ndarray, qidf: np.ndarray, qmass: float) -> tuple[np.ndarray, np.ndarray]:
        a = self.a
        if len(qcols) == 0 or a.size == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        df = a.indptr[qcols + 1] - a.indptr[qcols]
        order = np.argsort(df, kind="stable")
        taken = np.cumsum(df[order]) <= self.budget
        taken[0] = True  # at least the rarest feature, however common
        use = order[taken]
        starts, ends = a.indptr[qcols[use]], a.indptr[qcols[use] + 1]
        lens = ends - starts
        # Gather every posting of the used features in one go.
        idx = np.repeat(starts - np.cumsum(np.concatenate(([0], lens[:-1]))), lens) + np.arange(lens.sum())
        posting_rows = a.rows[idx]
        weights = np.repeat(qidf[use], lens)
        # A dense tally over all states costs one pass over N floats, less than sorting the postings.
        tally = np.bincount(posting_rows, weights=weights, minlength=a.size)
        cand = np.flatnonzero(tally > 0)  # (nonzero over booleans is several times faster than over floats)
        if len(cand) > self.rerank:
            cand = cand[np.argpartition(-tally[cand], self.rerank)[: self.rerank]]
        return cand.astype(np.int64), self._exact(cand, qcols, qidf, qmass)

    def _exact(self, cand: np.ndarray, qcols: np.ndarray, qidf: np.ndarray, qmass: float) -> np.ndarray:
        """Exact similarity of the candidate states to the query."""
        a = self.a
        starts, ends = a.ex_indptr[cand], a.ex_indptr[cand + 1]
        lens = ends - starts
        idx = np.repeat(starts - np.cumsum(np.concatenate(([0], lens[:-1]))), lens) + np.arange(lens.sum())
        feats = a.ex_cols[idx]
        owner = np.repeat(np.arange(len(cand)), lens)
        order = np.argsort(qcols)
        sq, sidf = qcols[order], qidf[order]
        pos = np.minimum(np.searchsorted(sq, feats), len(sq) - 1)
        hit = sq[pos] == feats
        shared = np.bincount(owner, weights=np.where(hit, sidf[pos], 0.0), minlength=len(cand))
        if not self.normalize:
            return shared
        mass = np.bincount(owner, weights=self._idf[feats], minlength=len(cand))
        return shared / np.maximum(mass + qmass - shared, 1e-9)

    def _merge_extra(self, hashes: np.ndarray, idf: np.ndarray, ids: np.ndarray,
                     scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shared: dict[int, float] = {}
        for h, w in zip(hashes.tolist(), idf.tolist()):
            for sid in self._extra_postings.get(h, ()):
                shared[sid] = shared.get(sid, 0.0) + w
        if not shared:
            return ids, scores
        extra_ids = np.array(list(shared), dtype=np.int64)
        extra = np.array(list(shared.values()))
        if self.normalize:
            qmass = idf.sum()
            masses = []
            for sid in extra_ids.tolist():
                feats = self._extra_feats[sid - self.a.size]
                _, fidf, _ = self.idf_of(feats)
                masses.append(fidf.sum())
            extra = extra / np.maximum(np.array(masses) + qmass - extra, 1e-9)
        return np.concatenate([ids, extra_ids]), np.concatenate([scores, extra])
