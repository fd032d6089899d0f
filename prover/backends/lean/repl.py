"""Lean 4 backend on the Lean REPL (``lake exe repl`` in ``lean_project/``), and the Lean full check.

One REPL process per backend. The header is imported once per process (``{"cmd": header}`` gives
an environment) and every theorem is opened in that environment as ``statement sorry``; the
``sorry``'s proof state is the root. Tactics run on numbered proof states that stay valid, so
backtracking is free. A State's key is the tactic path from the root: the live process maps paths
to its proof-state numbers, and after a restart (a tactic ran past its time limit, the process
answered too many commands, or grew too large) the path is replayed in the new process. A restart
after a tactic timeout (re-import the header, reopen, replay) gets what is left of the search's
budget (``set_deadline``), not a fresh ``open_timeout``: past it, the tactic counts as timed out.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..base import (BackendCrash, BackendError, BackendInfo, CheckResult, Closing, Failed, Finished, InitError,
                    Next, Outcome, State, Theorem, TimedOut)
from .project import default_project_dir, require_lean
from .protocol import (CommandReply, ProtocolError, ReplError, ReplExited, ReplSession,
                                 ReplTimeout, TacticReply)
from .text import STANDARD_AXIOMS, audit_messages, check_tactic, declaration_name, pp_goals, proof_body
from ..process import ProcessLimits

GiB = 1024**3
COMPLETED = "Completed"
OPEN_GOALS = "Incomplete: open goals remain"


class OutOfTime(BackendCrash):
    """Reopening the theorem after a restart ran into the search's deadline: apply() reports the
    tactic as timed out (the search then stops on its own clock)."""


def reopen_limit(deadline: float | None, open_timeout: float) -> float:
    """Seconds a restart (re-import, reopen, replay) may take: ``open_timeout``, or what is left
    before the search's ``deadline`` (``time.monotonic()``) when that is less."""
    if deadline is None:
        return open_timeout
    return max(0.001, min(open_timeout, deadline - time.monotonic()))


@dataclass(frozen=True)
class LeanReplConfig:
    project: Path = field(default_factory=default_project_dir)
    argv: tuple[str, ...] = ("lake", "exe", "repl")
    # Importing Mathlib maps its .olean files into memory: the address-space cap must leave room.
    limits: ProcessLimits = field(default_factory=lambda: ProcessLimits(memory_bytes=32 * GiB))
    open_timeout: float = 600.0  # importing the header, elaborating a statement, replaying a path
    check_timeout: float = 600.0
    max_commands: int = 2000  # restart the REPL after this many requests (long sessions degrade)
    max_rss_bytes: int | None = 16 * GiB  # ... or when its resident memory grows past this
    standard_axioms: tuple[str, ...] = STANDARD_AXIOMS
    check_argv: tuple[str, ...] | None = None  # the full check's REPL; default: ``argv``
    require_installed: bool = True  # fail at construction when Lean or the project is missing


def outcome_of(reply: TacticReply | ReplError, path: tuple[str, ...]) -> Outcome:
    """Map one tactic reply onto the search's outcomes. Any error message fails the tactic (Lean
    recovers from errors and may still report goals); a tactic that used ``sorry`` fails too."""
    if isinstance(reply, ReplError):
        if reply.lean_error is not None:
            return Failed(reply.lean_error)
        raise BackendCrash(f"the REPL refused the request: {reply.message}")
    errors = reply.errors
    if errors:
        return Failed("\n".join(m.data for m in errors))
    if reply.sorries:
        return Failed("the tactic left a sorry")
    if reply.goals:
        if reply.proof_status != OPEN_GOALS:
            return Failed(reply.proof_status or "unexpected proof status")
        return Next(State(path, pp_goals(reply.goals)))
    if reply.proof_status == COMPLETED:
        return Finished(State(path, ""))
    return Failed(reply.proof_status or "no goals, but the proof is not complete")


class LeanChecker:
    """The full check: header + statement + proof compiled from scratch in a fresh REPL process,
    then ``#print axioms NAME``. Used by both Lean backends."""

    def __init__(self, argv: tuple[str, ...], project: Path, limits: ProcessLimits, timeout: float,
                 standard_axioms: tuple[str, ...] = STANDARD_AXIOMS) -> None:
        self.argv, self.project, self.limits, self.timeout = argv, project, limits, timeout
        self.standard_axioms = standard_axioms

    @staticmethod
    def source(theorem: Theorem, tactics: list[str]) -> str:
        """The file the check compiles: the trusted header and statement, then the filtered tactics."""
        body = []
        for t in tactics:
            text, why = check_tactic(t)
            if text is None:
                raise ValueError(f"tactic {t!r} refused: {why}")
            body.append(text)
        statement = theorem.statement.rstrip()
        if not statement.endswith("by"):
            statement += " by"
        head = f"{theorem.header.rstrip()}\n\n" if theorem.header.strip() else ""
        return f"{head}{statement}\n{proof_body(body)}\n\n#print axioms {theorem.name}\n"

    def check(self, theorem: Theorem, tactics: list[str]) -> CheckResult:
        if declaration_name(theorem.statement) != theorem.name:
            return CheckResult(False, "the statement does not declare the theorem's name")
        try:
            source = self.source(theorem, tactics)
        except ValueError as e:
            return CheckResult(False, str(e))
        start = time.monotonic()
        try:
            session = ReplSession(list(self.argv), str(self.project), self.limits)
        except ReplExited as e:
            return CheckResult(False, f"cannot start the checking REPL: {e}", source=source)
        try:
            reply = session.command(source, None, self.timeout)
        except ReplTimeout:
            return CheckResult(False, f"the full check ran past {self.timeout:g} s",
                               elapsed=time.monotonic() - start, source=source)
        except (ReplExited, ProtocolError) as e:
            return CheckResult(False, f"the full check failed: {e}", elapsed=time.monotonic() - start,
                               source=source)
        finally:
            session.stop()
        elapsed = time.monotonic() - start
        if not isinstance(reply, CommandReply):
            text = reply.message if isinstance(reply, ReplError) else repr(reply)
            return CheckResult(False, f"the full check failed: {text}", elapsed=elapsed, source=source)
        verdict = audit_messages(list(reply.messages), theorem.name,
                                 set(self.standard_axioms) | set(theorem.allowed_axioms))
        if verdict.ok and reply.sorries:
            return CheckResult(False, "the proof uses sorry", verdict.axioms, elapsed, source)
        return CheckResult(verdict.ok, verdict.message, verdict.axioms, elapsed, source)


class LeanReplBackend(Closing):
    name = "lean-repl"

    def __init__(self, config: LeanReplConfig | None = None) -> None:
        self.config = config or LeanReplConfig()
        if self.config.require_installed:
            require_lean(self.config.project)
        self.checker = LeanChecker(self.config.check_argv or self.config.argv, self.config.project,
                                   self.config.limits, self.config.check_timeout, self.config.standard_axioms)
        self._session: ReplSession | None = None
        self._envs: dict[str, int] = {}  # header -> environment, in the live process
        self._ids: dict[tuple[str, ...], int] = {}  # tactic path -> proof state, in the live process
        self._theorem: Theorem | None = None
        self._deadline: float | None = None  # the search's wall-clock deadline (time.monotonic())
        self.restarts = 0

    def set_deadline(self, deadline: float | None) -> None:
        """When the search running on this backend ends (``time.monotonic()``; None: no limit)."""
        self._deadline = deadline

    def _reopen_limit(self) -> float:
        return reopen_limit(self._deadline, self.config.open_timeout)

    # -- process ---------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._session.pid if self._session else None

    def _live(self) -> ReplSession:
        if self._session is None:
            try:
                self._session = ReplSession(list(self.config.argv), str(self.config.project), self.config.limits)
            except ReplExited as e:
                raise InitError(str(e)) from e
        return self._session

    def _stop(self) -> None:
        if self._session is not None:
            self._session.stop()
            self._session = None
        self._envs.clear()
        self._ids.clear()

    def _restart(self) -> None:
        self._stop()
        self.restarts += 1

    def _recycle_if_worn(self) -> None:
        s = self._session
        if s is None:
            return
        worn = s.requests >= self.config.max_commands
        if not worn and self.config.max_rss_bytes is not None:
            worn = s.rss_bytes() > self.config.max_rss_bytes
        if worn:
            self._restart()

    def _request(self, kind: str, text: str, number: int | None, timeout: float):
        session = self._live()
        try:
            if kind == "cmd":
                return session.command(text, number, timeout)
            return session.tactic(text, number, timeout)
        except ReplExited as e:
            self._stop()
            raise BackendCrash(str(e)) from e
        except ProtocolError as e:
            self._stop()
            raise BackendCrash(f"unreadable REPL reply: {e}") from e

    def close(self) -> None:
        self._stop()
        self._theorem = None

    # -- theorem ---------------------------------------------------------------------------------
    def _overran(self, what: str, limit: float, cause: Exception) -> BackendError:
        self._stop()
        if limit < self.config.open_timeout:
            return OutOfTime(f"{what} ran into the search's deadline ({limit:.1f} s left)")
        return InitError(f"{what} ran past {limit:g} s")

    def _header_env(self, header: str, limit: float) -> int | None:
        header = header.strip()
        if not header:
            return None
        if header not in self._envs:
            try:
                reply = self._request("cmd", header, None, limit)
            except ReplTimeout as e:
                raise self._overran("importing the header", limit, e) from e
            if not isinstance(reply, CommandReply):
                raise InitError(f"the header fails: {getattr(reply, 'message', reply)}")
            if reply.errors:
                raise InitError(f"the header fails: {reply.errors[0].data}")
            self._envs[header] = reply.env
        return self._envs[header]

    def _open_root(self, theorem: Theorem, limit: float) -> tuple[int, str]:
        env = self._header_env(theorem.header, limit)
        try:
            reply = self._request("cmd", theorem.statement.rstrip() + " sorry", env, limit)
        except ReplTimeout as e:
            raise self._overran("elaborating the statement", limit, e) from e
        if not isinstance(reply, CommandReply):
            raise InitError(f"the statement was refused: {getattr(reply, 'message', reply)}")
        if reply.errors:
            raise InitError(f"the statement does not elaborate: {reply.errors[0].data}")
        roots = [s for s in reply.sorries if s.proof_state is not None]
        if len(roots) != 1:
            raise InitError(f"expected one sorry in the statement, found {len(roots)}")
        return roots[0].proof_state, roots[0].goal

    def open(self, theorem: Theorem) -> State:
        name = declaration_name(theorem.statement)
        if name is None:
            raise InitError("the statement does not start with theorem/lemma NAME")
        if name != theorem.name:
            raise InitError(f"the statement names {name!r}, expected {theorem.name!r}")
        self._theorem = theorem
        self._ids.clear()
        root, goal = self._open_root(theorem, self.config.open_timeout)
        self._ids[()] = root
        return State((), goal)

    def _resolve(self, path: tuple[str, ...]) -> int:
        """The live process's proof state for ``path``, replaying the path after a restart."""
        if path in self._ids:
            return self._ids[path]
        if not path:
            assert self._theorem is not None
            try:
                self._ids[()] = self._open_root(self._theorem, self._reopen_limit())[0]
            except InitError as e:  # it opened before: reopening it is the process's failure
                raise BackendCrash(f"reopening the theorem after a restart failed: {e}") from e
            return self._ids[()]
        parent = self._resolve(path[:-1])
        limit = self._reopen_limit()
        try:
            reply = self._request("tactic", path[-1], parent, limit)
        except ReplTimeout as e:
            overran = self._overran(f"replaying {path[-1]!r}", limit, e)
            raise overran if isinstance(overran, OutOfTime) else BackendCrash(str(overran)) from e
        outcome = outcome_of(reply, path) if isinstance(reply, (TacticReply, ReplError)) else None
        if not isinstance(outcome, Next):
            raise BackendCrash(f"replaying {path[-1]!r} after a restart gave a different result")
        self._ids[path] = reply.proof_state
        return reply.proof_state

    def goals(self, state: State) -> str:
        return state.goals

    def apply(self, state: State, tactic: str, timeout: float) -> Outcome:
        if self._theorem is None:
            raise BackendCrash("no theorem is open")
        text, why = check_tactic(tactic)
        if text is None:
            return Failed(why, rejected=True)
        self._recycle_if_worn()
        path = tuple(state.key)
        start = time.monotonic()
        try:
            parent = self._resolve(path)
        except OutOfTime:
            return TimedOut(time.monotonic() - start)
        start = time.monotonic()
        try:
            reply = self._request("tactic", text, parent, timeout)
        except ReplTimeout:
            self._restart()  # the REPL cannot be interrupted: stop its group, restart on demand
            return TimedOut(time.monotonic() - start)
        if isinstance(reply, ReplError) and reply.lean_error is None:
            self._stop()
            raise BackendCrash(f"the REPL lost proof state {parent}: {reply.message}")
        if not isinstance(reply, (TacticReply, ReplError)):
            raise BackendCrash(f"a command reply to a tactic: {reply!r:.200}")
        new_path = path + (text,)
        outcome = outcome_of(reply, new_path)
        if isinstance(outcome, (Next, Finished)):
            self._ids[new_path] = reply.proof_state
        return outcome

    # -- proof text and the full check -------------------------------------------------------------
    def proof_text(self, tactics: list[str]) -> str:
        """The proof as it goes after the statement's ``:= by``."""
        return proof_body([check_tactic(t)[0] or t for t in tactics])

    def check(self, theorem: Theorem, tactics: list[str]) -> CheckResult:
        return self.checker.check(theorem, tactics)

    def info(self) -> BackendInfo:
        from .project import toolchain_version

        v = toolchain_version(self.config.project)
        return BackendInfo("lean-repl", ".".join(map(str, v)) if v else "unknown",
                           {"project": str(self.config.project), "restarts": self.restarts})
