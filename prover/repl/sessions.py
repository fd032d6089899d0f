"""Proof sessions kept open between `suggest` requests.

Opening a theorem costs seconds (coqtop loads its libraries and the header), a suggestion a few
milliseconds: an editor asks again and again about the same theorem, so a session that finished a
request is kept, idle, for the next one on the same theorem. A session belongs to one request at a
time; the pool only holds idle ones, and closes the least recently used beyond its size.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from ..backends.base import Backend, Failed, Next, State, Theorem, TimedOut
from ..components import BackendOptions

MAX_REMEMBERED_STATES = 512


@dataclass(frozen=True)
class SessionKey:
    backend: str
    theorem: Theorem
    options: BackendOptions


class TacticFailed(Exception):
    """A tactic of the proof so far does not run."""

    def __init__(self, index: int, tactic: str, message: str) -> None:
        super().__init__(f"tactic {index + 1} ({tactic!r}) fails: {message}")


class Session:
    """A backend with one theorem open, and the states reached from its root so far."""

    def __init__(self, key: SessionKey, backend: Backend) -> None:
        self.key, self.backend = key, backend
        self.root: State | None = None
        self.healthy = True  # False after a crash or a cancel: never reused
        self._states: dict[tuple[str, ...], State | None] = {}  # None: the proof is complete there

    def open(self) -> State:
        if self.root is None:
            self.root = self.backend.open(self.key.theorem)
        return self.root

    def state_after(self, tactics: tuple[str, ...], timeout: float) -> State | None:
        """The state the tactics lead to from the root (None when they complete the proof)."""
        state: State | None = self.open()
        for i, tactic in enumerate(tactics):
            if state is None:
                raise TacticFailed(i, tactic, "the proof is already complete")
            path = tactics[: i + 1]
            if path in self._states:
                state = self._states[path]
                continue
            outcome = self.backend.apply(state, tactic, timeout)
            if isinstance(outcome, (Failed, TimedOut)):
                message = outcome.message if isinstance(outcome, Failed) else f"timed out ({outcome.seconds:.1f} s)"
                raise TacticFailed(i, tactic, message)
            state = outcome.state if isinstance(outcome, Next) else None
            if len(self._states) >= MAX_REMEMBERED_STATES:
                self._states.clear()
            self._states[path] = state
        return state

    def close(self) -> None:
        self.backend.close()


def _same_file(a: SessionKey, b: SessionKey) -> bool:
    ta, tb = a.theorem, b.theorem
    da, db = getattr(ta, "document", None), getattr(tb, "document", None)
    return (a.backend, a.options) == (b.backend, b.options) and da is not None and db is not None and \
        (da.path, da.flags) == (db.path, db.flags)


class SessionPool:
    """Idle sessions by theorem, at most ``keep`` of them (0: every session is closed after use)."""

    def __init__(self, keep: int, make_backend: Callable[[SessionKey], Backend]) -> None:
        self.keep = keep
        self._make = make_backend
        self._idle: OrderedDict[int, Session] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False

    def take(self, key: SessionKey) -> Session:
        """An idle session on the same theorem; else the prover of one on another theorem of the same
        file (it goes back to the shared prefix of the file instead of running it again); else a new one."""
        with self._lock:
            for sid, session in self._idle.items():
                if session.key == key:
                    del self._idle[sid]
                    return session
            for sid, session in self._idle.items():
                if _same_file(session.key, key):
                    del self._idle[sid]
                    return Session(key, session.backend)
        return Session(key, self._make(key))

    def give_back(self, session: Session) -> None:
        evicted: list[Session] = []
        with self._lock:
            if session.healthy and session.root is not None and self.keep > 0 and not self._closed:
                self._idle[id(session)] = session
                while len(self._idle) > self.keep:
                    evicted.append(self._idle.popitem(last=False)[1])
            else:
                evicted.append(session)
        for s in evicted:
            s.close()

    def close_all(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = list(self._idle.values()), OrderedDict()
        for s in idle:
            s.close()

    def __len__(self) -> int:
        return len(self._idle)
