"""Lean 4 backend on LeanDojo (lean-dojo 4.20.0): ``Dojo(Theorem(LeanGitRepo(...), path, name))``.

A Dojo runs ``lake env lean`` on a copy of the theorem's file whose proof is LeanDojo's REPL tactic,
and answers ``run_tac(state, tactic)`` with ``TacticState | ProofFinished | LeanError |
ProofGivenUp``. Its per-tactic timeout is the only one, and after ``DojoTacticTimeoutError`` the Lean
process keeps running: its late reply would be read as the answer to the next tactic. So a Dojo that
timed out is discarded, and the next tactic runs in a fresh one after replaying its path.

``lean_dojo`` is imported only here, lazily: importing it runs ``git --version``, creates its cache
directory (``CACHE_DIR``, default ``~/.cache/lean_dojo``), loads a ``.env`` file, replaces loguru's
handlers, and calls the GitHub API when ``GITHUB_ACCESS_TOKEN`` is set. The repository it traces is
the git snapshot of ``lean_project/`` that ``prover lean trace`` commits (``DISABLE_REMOTE_CACHE``
is set for it unless the user set it: LeanDojo's remote cache never holds a local repository).

Opening a theorem never starts a trace: LeanDojo would trace a repository it does not find in its
cache (hours), so the cache is checked first and a missing trace is a one-line error pointing to
``prover lean trace``.

Known upstream problems, named when the failure looks like them: LeanDojo is deprecated in favour
of LeanDojo-v2; lean-dojo 4.20.0 has been reported to fail with Lean >= 4.19 (its ``--memory`` flag
becomes an unknown ``max_memory`` option, and its REPL's output is captured by Lean's message log,
so LeanDojo meets the end of Lean's output where it expects its REPL).
"""
from __future__ import annotations

import math
import os
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..base import (Closing, BackendCrash, BackendInfo, CheckResult, Failed, Finished, InitError, Next, Outcome,
                   State, Theorem, TimedOut)
from .project import (LeanNotInstalled, default_project_dir, find_theorem_file, require_lean,
                           snapshot_dir, toolchain_version)
from .repl import LeanChecker, LeanReplConfig, OutOfTime, reopen_limit
from .text import check_tactic, declaration_name, proof_body
from ..process import stop_group

LEAN_DOJO_VERSION = "4.20.0"
DEPRECATION = "LeanDojo is deprecated upstream in favour of LeanDojo-v2"
MAX_MEMORY_PROBLEM = ("Lean >= 4.19 rejects lean-dojo 4.20.0's `--memory` flag as an unknown `max_memory` "
                      "option")
NEW_LEAN_PROBLEM = ("lean-dojo 4.20.0 is reported to fail this way with Lean >= 4.19 (Lean rejects its "
                    "`--memory` flag as an unknown `max_memory` option, or its REPL's output is captured by "
                    "Lean's message log)")
# How lean-dojo reports that Lean's output ended, or was not its REPL's, before the REPL answered.
_NO_REPL_SIGNS = ("Unexpected EOF", "Invalid JSON")


def import_lean_dojo() -> Any:
    """``lean_dojo``, imported on first use (with ``DISABLE_REMOTE_CACHE`` set unless the user set it)."""
    os.environ.setdefault("DISABLE_REMOTE_CACHE", "1")
    try:
        import lean_dojo
    except ImportError as e:
        raise LeanNotInstalled(f"lean-dojo is not installed: pip install lean-dojo=={LEAN_DOJO_VERSION} "
                               f"(or use --backend lean-repl)") from e
    return lean_dojo


def known_problems(project: Path, error: str = "") -> str:
    """The upstream problems that may explain this failure, as one line: the Lean >= 4.19 ones
    only when the error shows them (``max_memory`` named, or Lean's output ending before LeanDojo's
    REPL answered on such a Lean), never for a failure of another kind."""
    notes = []
    version = toolchain_version(project)
    pinned = f"; lean_project pins Lean {'.'.join(map(str, version))}" if version else ""
    if "max_memory" in error:
        notes.append(MAX_MEMORY_PROBLEM + pinned)
    elif version is not None and version >= (4, 19, 0) and any(sign in error for sign in _NO_REPL_SIGNS):
        notes.append(NEW_LEAN_PROBLEM + pinned)
    notes.append(DEPRECATION + "; --backend lean-repl runs the same Lean without LeanDojo")
    return "; ".join(notes)


# A factory opens a Dojo for a theorem: a context manager whose ``__enter__`` gives (dojo, initial state).
DojoFactory = Callable[[Theorem, float], AbstractContextManager]


@dataclass(frozen=True)
class LeanDojoConfig:
    project: Path = field(default_factory=default_project_dir)
    repo_path: Path | None = None  # the git repository LeanDojo traces; default: the trace snapshot
    commit: str | None = None  # default: that repository's HEAD
    open_timeout: float = 600.0  # seconds LeanDojo may take to start Lean on a theorem (import Mathlib)
    build_deps: bool = False  # False: `lake exe cache get` for Mathlib instead of building it
    check: LeanReplConfig = field(default_factory=lambda: LeanReplConfig(require_installed=False))
    require_installed: bool = True


class LeanDojoBackend(Closing):
    name = "leandojo"

    def __init__(self, config: LeanDojoConfig | None = None, dojo_factory: DojoFactory | None = None) -> None:
        self.config = config or LeanDojoConfig()
        if dojo_factory is None:
            if self.config.require_installed:
                require_lean(self.config.project)
            self._ld = import_lean_dojo()
            dojo_factory = self._real_factory
        else:
            self._ld = import_lean_dojo()
        self._factory = dojo_factory
        c = self.config.check
        self.checker = LeanChecker(c.check_argv or c.argv, c.project, c.limits, c.check_timeout, c.standard_axioms)
        self._cm: AbstractContextManager | None = None
        self._dojo: Any = None
        self._states: dict[tuple[str, ...], Any] = {}  # tactic path -> TacticState of the live Dojo
        self._theorem: Theorem | None = None
        self._repo: Any = None
        self._traced = False  # the trace cache was found to hold the repository
        self._deadline: float | None = None  # the search's wall-clock deadline (time.monotonic())
        self.discarded = 0  # Dojos dropped after a timeout or a crash

    def set_deadline(self, deadline: float | None) -> None:
        """When the search running on this backend ends: a new Dojo after a timeout gets what is
        left of it to start, not a fresh ``open_timeout``."""
        self._deadline = deadline

    # -- the real Dojo ---------------------------------------------------------------------------
    def _repository(self) -> Any:
        if self._repo is None:
            path = self.config.repo_path or snapshot_dir(self.config.project)
            if not (path / ".git").exists():
                raise LeanNotInstalled(f"no traced miniF2F repository at {path}: run `prover lean trace`")
            commit = self.config.commit
            if commit is None:
                from git import Repo  # GitPython, a lean-dojo dependency

                commit = Repo(path).head.commit.hexsha
            self._repo = self._ld.LeanGitRepo(str(path), commit)
        return self._repo

    def _require_trace(self, repo: Any) -> None:
        """Fail at once unless LeanDojo's cache holds the trace: a Dojo would start the trace itself."""
        if self._traced:
            return
        from lean_dojo.data_extraction.trace import is_available_in_cache

        if not is_available_in_cache(repo):
            from lean_dojo.constants import CACHE_DIR

            raise LeanNotInstalled(f"{repo.url} @ {repo.commit[:12]} is not traced in LeanDojo's cache {CACHE_DIR}: "
                                   "run `prover lean trace` first (it takes hours; opening a theorem never "
                                   "starts it)")
        self._traced = True

    def _real_factory(self, theorem: Theorem, timeout: float) -> AbstractContextManager:
        repo = self._repository()
        rel = find_theorem_file(Path(repo.url), theorem.name)
        if rel is None:
            raise InitError(f"{theorem.name} is not in the traced library {repo.url}")
        self._require_trace(repo)
        return self._ld.Dojo(self._ld.Theorem(repo, rel, theorem.name), timeout=max(1, math.ceil(timeout)),
                             build_deps=self.config.build_deps)

    # -- Dojo lifecycle ----------------------------------------------------------------------------
    def _enter(self, limit: float | None = None) -> Any:
        """Start a Dojo on the open theorem within ``limit`` s (default ``open_timeout``); return its
        initial state."""
        assert self._theorem is not None
        limit = self.config.open_timeout if limit is None else limit
        cm = self._factory(self._theorem, limit)
        ld = self._ld
        status = ""
        try:
            try:
                dojo, init = cm.__enter__()
            except BaseException:
                status = self._abandon(cm)  # __exit__ never runs for a failed __enter__: stop what it started
                raise
        except ld.DojoInitError as e:
            if "Timeout" in str(e) and limit < self.config.open_timeout:
                raise OutOfTime(f"a new Dojo ran into the search's deadline ({limit:.1f} s left)") from e
            raise InitError(f"LeanDojo could not start: {e}{status}; "
                            f"{known_problems(self.config.project, str(e))}") from e
        except LeanNotInstalled:
            raise
        except Exception as e:  # CalledProcessError from `lake build`, bad JSON from a Lean >= 4.19 log, ...
            raise InitError(f"LeanDojo could not start ({type(e).__name__}: {str(e)[:300]}){status}; "
                            f"{known_problems(self.config.project, str(e))}") from e
        if not isinstance(init, ld.TacticState):
            self._exit(cm, dojo)
            raise InitError(f"LeanDojo gave no tactic state for {self._theorem.name}")
        self._cm, self._dojo = cm, dojo
        self._states = {(): init}
        return init

    @staticmethod
    def _abandon(cm: AbstractContextManager) -> str:
        """Stop what a failed ``__enter__`` started; return how its Lean ended (", Lean exited
        with status N"), or "" when it had not ended or never started."""
        proc = getattr(cm, "proc", None)
        ended = ""
        if proc is not None and getattr(proc, "pid", None):
            try:
                if not proc.isalive():
                    if proc.signalstatus is not None:
                        ended = f", Lean was killed by signal {proc.signalstatus}"
                    elif proc.exitstatus is not None:
                        ended = f", Lean exited with status {proc.exitstatus}"
            except Exception:
                pass
            stop_group(proc.pid, grace=0.5)
        tmp = getattr(cm, "modified_file", None)
        if tmp is not None:
            try:
                tmp.__exit__(None, None, None)
            except Exception:
                pass
        return ended

    @staticmethod
    def _exit(cm: AbstractContextManager, dojo: Any) -> None:
        try:
            cm.__exit__(None, None, None)
        except Exception:
            pass
        proc = getattr(dojo, "proc", None)
        if proc is not None and getattr(proc, "pid", None):
            # pexpect runs Lean in a new session: stop its whole group, LeanDojo only kills descendants.
            stop_group(proc.pid, grace=0.5)

    def _discard(self) -> None:
        if self._cm is not None:
            self._exit(self._cm, self._dojo)
            self.discarded += 1
        self._cm = self._dojo = None
        self._states = {}

    def close(self) -> None:
        self._discard()
        self._theorem = None

    # -- theorem -----------------------------------------------------------------------------------
    def open(self, theorem: Theorem) -> State:
        name = declaration_name(theorem.statement)
        if name != theorem.name:
            raise InitError(f"the statement names {name!r}, expected {theorem.name!r}")
        self._discard()
        self._theorem = theorem
        init = self._enter()
        return State((), init.pp)

    def goals(self, state: State) -> str:
        return state.goals

    def _run(self, tactic_state: Any, tactic: str, timeout: float) -> Any:
        dojo = self._dojo
        dojo.timeout = max(1, math.ceil(timeout))
        dojo.proc.timeout = timeout  # pexpect's read limit is the tactic's limit
        return dojo.run_tac(tactic_state, tactic)

    def _resolve(self, path: tuple[str, ...]) -> Any:
        if self._dojo is None:
            try:
                self._enter(reopen_limit(self._deadline, self.config.open_timeout))
            except InitError as e:  # it opened before: a new Dojo that fails is a crash
                raise BackendCrash(f"a new Dojo for the theorem failed: {e}") from e
        if path in self._states:
            return self._states[path]
        parent = self._resolve(path[:-1])
        try:
            result = self._run(parent, path[-1], self.config.open_timeout)
        except (self._ld.DojoTacticTimeoutError, self._ld.DojoCrashError) as e:
            self._discard()
            raise BackendCrash(f"replaying {path[-1]!r} in a new Dojo failed: {type(e).__name__}") from e
        if not isinstance(result, self._ld.TacticState):
            raise BackendCrash(f"replaying {path[-1]!r} in a new Dojo gave {type(result).__name__}")
        self._states[path] = result
        return result

    def apply(self, state: State, tactic: str, timeout: float) -> Outcome:
        if self._theorem is None:
            raise BackendCrash("no theorem is open")
        text, why = check_tactic(tactic)
        if text is None:
            return Failed(why, rejected=True)
        path = tuple(state.key)
        start = time.monotonic()
        try:
            parent = self._resolve(path)
        except OutOfTime:
            return TimedOut(time.monotonic() - start)
        ld = self._ld
        start = time.monotonic()
        try:
            result = self._run(parent, text, timeout)
        except ld.DojoTacticTimeoutError:
            self._discard()  # its Lean is still working: a late reply would answer the next tactic
            return TimedOut(time.monotonic() - start)
        except ld.DojoCrashError as e:
            self._discard()
            oom = " (out of memory)" if e.is_out_of_memory else ""
            raise BackendCrash(f"LeanDojo's Lean crashed{oom}: {e}") from e
        return self.outcome(result, path + (text,))

    def outcome(self, result: Any, path: tuple[str, ...]) -> Outcome:
        """Map a ``run_tac`` result onto the search's outcomes."""
        ld = self._ld
        if isinstance(result, ld.TacticState):
            self._states[path] = result
            return Next(State(path, result.pp))
        if isinstance(result, ld.ProofFinished):
            return Finished(State(path, ""))
        if isinstance(result, ld.LeanError):
            return Failed(result.error)
        if isinstance(result, ld.ProofGivenUp):
            return Failed("the proof gave up (sorry)")
        raise BackendCrash(f"unknown LeanDojo result {result!r:.200}")

    # -- proof text and the full check ------------------------------------------------------------
    def proof_text(self, tactics: list[str]) -> str:
        return proof_body([check_tactic(t)[0] or t for t in tactics])

    def check(self, theorem: Theorem, tactics: list[str]) -> CheckResult:
        """The same full check as the REPL backend: LeanDojo's own ``check_proof`` passes Lean the
        ``--memory`` flag that newer Lean rejects, and reads only its ``sorry`` warnings."""
        return self.checker.check(theorem, tactics)

    def info(self) -> BackendInfo:
        version = getattr(self._ld, "__version__", "unknown")
        return BackendInfo("leandojo", version, {"deprecated": DEPRECATION, "discarded_dojos": self.discarded})


def trace(project: Path, progress: Callable[[str], None] = print) -> Path:
    """``prover lean trace``: commit the library into its snapshot repository and trace it with
    LeanDojo (hours for Mathlib's dependents; the result lands in LeanDojo's ``CACHE_DIR``)."""
    from .project import make_snapshot

    require_lean(project)
    ld = import_lean_dojo()
    path, commit = make_snapshot(project)
    progress(f"snapshot {path} @ {commit[:12]}")
    progress(f"note: {known_problems(project)}")
    repo = ld.LeanGitRepo(str(path), commit)
    traced = ld.get_traced_repo_path(repo, build_deps=False)
    progress(f"traced into {traced}")
    return Path(traced)

