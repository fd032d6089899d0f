"""The protocol every proof assistant backend implements.

A backend opens a theorem into a root state, applies one tactic at a time to any state reached so far
(Coq replays a branch, the Lean REPL keeps numbered proof states, Isabelle names its states), prints
the goals a model reads, and re-checks a finished proof from scratch in a fresh process.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Union


@dataclass(frozen=True)
class Theorem:
    """A statement to prove, with the trusted text it lives in."""

    name: str
    statement: str  # e.g. "Theorem foo : forall n, n + 0 = n."  (no proof)
    header: str = ""  # imports, scopes, auxiliary definitions that come before it
    allowed_axioms: tuple[str, ...] = ()  # axioms the statement itself brings, beyond the standard ones


@dataclass(frozen=True)
class State:
    """A handle on a proof state. ``key`` is backend-specific (a path, a REPL id, a state name)."""

    key: object
    goals: str  # pretty-printed goals: exactly the text a model reads
    # What else tells this state apart from another with the same printed goals, not for models: Coq
    # prints only the first goal's hypotheses, so destruct n and induction n print the same goals, and
    # only the second goal's hypotheses (the induction hypothesis) differ.
    detail: str = ""


@dataclass(frozen=True)
class Next:
    """The tactic succeeded and left goals."""

    state: State
    # The tactic the prover really ran, when the proposed step resolved to another (Coq's hammer step
    # runs as the reconstruction tactic it found): what the proof records, checks and writes.
    tactic: str | None = None


@dataclass(frozen=True)
class Finished:
    """The tactic closed the last goal."""

    state: State
    tactic: str | None = None  # as in Next


@dataclass(frozen=True)
class Failed:
    """The prover rejected the tactic (or the filter did, before the prover saw it)."""

    message: str
    rejected: bool = False  # True when refused before reaching the prover


@dataclass(frozen=True)
class TimedOut:
    """The tactic ran past the per-tactic limit and was cut."""

    seconds: float


Outcome = Union[Next, Finished, Failed, TimedOut]


@dataclass(frozen=True)
class CheckResult:
    """The verdict of an independent full re-check of a proof."""

    ok: bool
    message: str = ""
    axioms: tuple[str, ...] = ()
    elapsed: float = 0.0
    source: str = ""  # the exact file that was checked


class BackendError(Exception):
    """Base class of backend failures the search reports as a failure reason."""


class InitError(BackendError):
    """The theorem could not be opened (bad header, statement that does not type-check, ...)."""


class BackendCrash(BackendError):
    """The prover process died or stopped answering."""


@dataclass(frozen=True)
class BackendInfo:
    name: str
    version: str
    extra: dict = field(default_factory=dict)


class Closing:
    """``with backend:`` closes the backend (and stops its prover processes) on the way out."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Backend(Protocol):
    """One proof assistant session. Not thread-safe: one search drives one backend.

    Optional: ``set_deadline(t)``, called by the search with its wall-clock deadline
    (``time.monotonic()``), for backends whose restart after a timeout is slow (the Lean ones).
    """

    name: str

    def open(self, theorem: Theorem) -> State: ...

    def apply(self, state: State, tactic: str, timeout: float) -> Outcome: ...

    def goals(self, state: State) -> str: ...

    def check(self, theorem: Theorem, tactics: list[str]) -> CheckResult: ...

    def proof_text(self, tactics: list[str]) -> str: ...

    def info(self) -> BackendInfo: ...

    def close(self) -> None: ...
