"""Gathering concurrent generation requests into one model call.

Many prover workers ask one model for candidates. Each request (one or more goal states, ``n``
candidates each) waits in a queue; a single thread takes the oldest request, gathers what else is
queued with the same ``n`` until the batch holds ``max_states`` states or the oldest request has waited
``gather_seconds``, and runs one ``generate_batch`` over all of them. While the model is busy, new
requests pile up, so under load a batch fills at once and the window costs nothing; when idle, a
request waits at most the window for company.

The batch changes nothing a request gets under beam search: the Hugging Face generator's batched
candidates equal its one-at-a-time candidates (same tactics, log-probs up to float rounding). Sampled
candidates depend on which requests share the random stream, as with any batched sampler.
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

from .base import Candidate, Generator, GeneratorError


@dataclass(frozen=True)
class BatchRecord:
    """One model call: which clients' requests it held (one entry per request), states, seconds."""

    clients: tuple[str, ...]
    states: int
    seconds: float


@dataclass(frozen=True)
class BatcherStats:
    max_states: int
    gather_seconds: float
    batches: int
    requests: int
    states: int
    busy_seconds: float  # time spent inside the model
    pending: int  # requests waiting now
    recent: tuple[BatchRecord, ...] = field(default=(), repr=False)  # the last batches, oldest first

    @property
    def clients(self) -> set[str]:
        return {c for b in self.recent for c in b.clients}


class _Request:
    def __init__(self, client: str, goals: list[str], n: int) -> None:
        self.client, self.goals, self.n = client, goals, n
        self.arrived = time.monotonic()
        self.done = threading.Event()
        self.result: list[list[Candidate]] | None = None
        self.error: str | None = None


class Batcher:
    """Runs a generator for many threads at once, one batch at a time. ``submit`` is thread-safe."""

    def __init__(self, generator: Generator, max_states: int = 4, gather_seconds: float = 0.02,
                 keep_records: int = 10_000) -> None:
        if max_states < 1 or gather_seconds < 0:
            raise ValueError("max_states must be at least 1 and gather_seconds at least 0")
        self.generator, self.max_states, self.gather_seconds = generator, max_states, gather_seconds
        self._queue: collections.deque[_Request] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._records: collections.deque[BatchRecord] = collections.deque(maxlen=keep_records)
        self._batches = self._requests = self._states = 0
        self._busy = 0.0
        self._thread = threading.Thread(target=self._loop, name="prover-batcher", daemon=True)
        self._thread.start()

    def submit(self, client: str, goals: list[str], n: int) -> list[list[Candidate]]:
        """Candidates for ``goals`` (one list per state); blocks until its batch has run."""
        if not goals:
            return []
        request = _Request(client, list(goals), n)
        with self._cond:
            if self._closed:
                raise GeneratorError("the generator service is shutting down")
            self._queue.append(request)
            self._cond.notify_all()
        request.done.wait()
        if request.error is not None:
            raise GeneratorError(request.error)
        return request.result

    def stats(self) -> BatcherStats:
        with self._cond:
            return BatcherStats(self.max_states, self.gather_seconds, self._batches, self._requests, self._states,
                                self._busy, len(self._queue), tuple(self._records))

    def close(self) -> None:
        """Refuse new requests; those queued get an error."""
        with self._cond:
            self._closed = True
            left = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for r in left:
            r.error = "the generator service is shutting down"
            r.done.set()

    # -- the batching thread
    def _take(self) -> list[_Request] | None:
        """The next batch: the oldest request and what joins it, once full or its window is over."""
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            first = self._queue[0]
            deadline = first.arrived + self.gather_seconds
            while True:
                queued = sum(len(r.goals) for r in self._queue if r.n == first.n)
                left = deadline - time.monotonic()
                if queued >= self.max_states or left <= 0 or self._closed:
                    break
                self._cond.wait(left)
            batch, states = [], 0
            for r in list(self._queue):
                if r.n != first.n:
                    continue
                if batch and states + len(r.goals) > self.max_states:
                    break
                batch.append(r)
                states += len(r.goals)
            for r in batch:
                self._queue.remove(r)
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            goals = [g for r in batch for g in r.goals]
            start = time.monotonic()
            try:
                out = self.generator.generate_batch(goals, batch[0].n)
                error = None
            except Exception as e:  # the model failed on this batch: its requests get the error, others go on
                out, error = None, f"{type(e).__name__}: {e}"
            took = time.monotonic() - start
            at = 0
            for r in batch:
                if error is None:
                    r.result = out[at:at + len(r.goals)]
                    at += len(r.goals)
                else:
                    r.error = error
            with self._cond:
                self._batches += 1
                self._requests += len(batch)
                self._states += len(goals)
                self._busy += took
                self._records.append(BatchRecord(tuple(r.client for r in batch), len(goals), took))
            for r in batch:
                r.done.set()
