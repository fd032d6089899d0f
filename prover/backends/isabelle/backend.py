"""Isabelle/HOL backend: stepwise proof search through the official Isabelle server.

Transport, and why. Three ways exist to drive Isabelle one step at a time:

* **The Isabelle server** (``isabelle server``; System Manual, chapter "The Isabelle server"): JSON
  over TCP, shipped and documented with every Isabelle release, kept working by the Isabelle
  developers themselves. It checks theories (``use_theories``) in a resident PIDE session, reports
  every message at the line of the command that printed it, and can ``cancel`` a running task.
* Isa-REPL: a third-party Isabelle component with a stepwise API and state rollback (msgpack over
  TCP). It must be fetched and built for the exact Isabelle release; its protocol is not covered by
  the Isabelle documentation.
* pexpect on ``isabelle console``/``isabelle process``: the raw ML toplevel, no positions, no
  structured messages.

We use the server, and keep the proof states in Isabelle's ML process like PISA and Isa-REPL do:
``isabelle/Prover_Bridge.thy`` holds a table from state ids to ``Toplevel.state`` values. Opening a
theorem checks one theory (imports, preamble, ``prover_open`` with the statement); every later step
checks a one-command theory ``prover_steps PARENT ... ID "STEP"`` that vets the step inside Isabelle
and applies it to the stored parent state under ``Timeout.apply``: one step costs one step, however
deep the proof. ``State.key`` is a ``StateKey``: the state's id and the concrete steps from the
statement (the proof text for the full check, and for rebuilding the states after a restart). A
state's candidate steps, and the sledgehammer step's heuristics and suggestions, go to Isabelle in
one request each, and run there in parallel.

What the bridge prints is read from the bridge command's own line only, as one JSON report carrying
a nonce made fresh for that command (``bridge.py``). The full check runs in a fresh server that
never saw a model's step: a vetting pass (``prover_vet``), then the whole theory as plain text, then
``prover_audit`` (oracle names as a JSON list).

Timeouts really interrupt: the ML side stops a step at its limit; past the limit plus a grace period
the server task is cancelled, and if the server does not confirm, its whole process tree is stopped
and a fresh server started; the states are rebuilt from their proof texts when next used. The same
happens after a crash (the request is retried once) and after ``restart_every`` requests. Every
process starts through ``process.py``.
"""
from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pexpect

from ..base import (Closing, BackendCrash, BackendInfo, CheckResult, Failed, Finished, InitError, Next, Outcome,
                    State, Theorem, TimedOut)
from . import bridge
from .bridge import BridgeOutputError, StepResult
from .protocol import (ProtocolError, ServerConnection, ServerError, ServerGone, ServerTimeout,
                       TaskResult, parse_banner)
from .text import (Message, TheoryText, bridge_theory, check_step, check_theory, clean_message,
                   imports_sum_of_squares, is_sledgehammer, node_messages, normalize_goals, parse_sledgehammer,
                   result_errors, split_header, theorem_name, theory_imports)
from ..process import InteractiveProcess, ProcessLimits, WorkDir

# Llemma's Isabelle checker (after DSP) tries these before calling Sledgehammer.
DSP_HEURISTICS = ("by auto", "by simp", "by blast", "by fastforce", "by force", "by eval", "by presburger",
                  "by sos", "by arith", "by linarith", "by (auto simp: field_simps)")
# An address-space cap, not a resident-memory one: the JVM (its heap, code cache, a 16 MB stack per
# thread) and Poly/ML reserve far more address space than they touch; a lower cap stops them at start.
MIN_MEMORY_MB = 32768
ISABELLE_DIR = Path(__file__).resolve().parents[3] / "isabelle"
INSTALL_HINT = "run `make isabelle` (downloads Isabelle2025 and builds the Prover_Base heap), " \
               "or set PROVER_ISABELLE to the isabelle executable"


def default_isabelle() -> str:
    return os.environ.get("PROVER_ISABELLE", "isabelle")


def default_project_dir() -> str:
    return os.environ.get("PROVER_ISABELLE_DIR", str(ISABELLE_DIR))


@dataclass(frozen=True)
class IsabelleConfig:
    isabelle: str = field(default_factory=default_isabelle)  # the `isabelle` executable
    project_dir: str = field(default_factory=default_project_dir)  # holds ROOT and Prover_Bridge.thy
    session: str = "Prover_Base"  # logic image: the benchmark imports + the bridge commands
    bridge_import: str = '"Prover_Base.Prover_Bridge"'
    session_dirs: tuple[str, ...] = ()  # more ROOT directories (e.g. the AFP's thys)
    include_sessions: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # Isabelle system options for session_start, e.g. "threads=4"
    limits: ProcessLimits = field(default_factory=lambda: ProcessLimits(memory_bytes=MIN_MEMORY_MB * 1024**2))
    start_timeout: float = 120.0  # until `isabelle server` prints its address
    session_timeout: float = 3600.0  # session_start builds the heap if it is missing
    open_timeout: float = 300.0  # header + statement (imports outside the heap load here)
    grace: float = 10.0  # beyond a request's own limit, before it is cancelled; for the cancel to work
    check_timeout: float = 600.0
    check_delay: float = 0.05  # how often the server looks whether a theory is done (its default: 0.5 s)
    restart_every: int = 1000  # requests per server, bounding PIDE's memory growth
    heuristics: tuple[str, ...] = DSP_HEURISTICS
    heuristic_timeout: float = 10.0
    sledgehammer_timeout: float = 30.0
    # Oracles a proof may use: `by eval` trusts the code generator's evaluation oracle.
    allowed_oracles: tuple[str, ...] = ("holds_by_evaluation",)


@dataclass(frozen=True)
class StateKey:
    """An Isabelle proof state: its id in the bridge's state table, and the concrete steps (closers
    and resolved sledgehammer steps included) that lead to it from the statement."""

    sid: int
    steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Checked:
    """One theory checked by the server, read back."""

    theory: TheoryText
    timed_out: bool = False
    messages: tuple[Message, ...] = ()
    errors: tuple[Message, ...] = ()  # every error, wherever it is
    elapsed: float = 0.0

    def own_texts(self) -> list[str]:
        """The writeln messages at the bridge command's own line: the only place its report is read."""
        line = self.theory.marker_line
        return [m.text for m in self.messages if m.line == line and m.kind == "writeln"]

    def own_messages(self) -> list[Message]:
        return [m for m in self.messages if m.line == self.theory.marker_line]

    def errors_before(self, line: int) -> list[Message]:
        return [m for m in self.errors if m.line is None or m.line < line]


class _Lost(Exception):
    """The server died or stopped answering during a request."""


class _Deaf(_Lost):
    """The server did not confirm the cancel of a request past its time limit."""


def _millis(seconds: float) -> int:
    return max(1, int(round(seconds * 1000)))


class IsabelleServer:
    """One `isabelle server` process, one connection to it, one PIDE session in it."""

    def __init__(self, config: IsabelleConfig, workdir: str) -> None:
        self.config = config
        self.workdir = workdir
        self.proc: InteractiveProcess | None = None
        self.conn: ServerConnection | None = None
        self.session_id: str | None = None
        self.hello: Any = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        name = f"prover-{os.getpid()}-{secrets.token_hex(4)}"
        log = os.path.join(self.workdir, f"{name}.log")
        argv = [self.config.isabelle, "server", "-n", name, "-L", log]
        # glibc gives each JVM thread its own 64 MB malloc arena: a few arenas keep the address space sane
        env = {**os.environ, "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "4")}
        try:
            self.proc = InteractiveProcess(argv, self.workdir, self.config.limits, self.config.start_timeout, env)
        except (OSError, pexpect.ExceptionPexpect) as e:
            raise InitError(f"cannot start isabelle: {e}; {INSTALL_HINT}") from e
        spawn = self.proc.spawn
        try:
            spawn.expect(r'server "[^"]*" = [^\s:]+:\d+ \(password "[^"]*"\)', timeout=self.config.start_timeout)
        except (pexpect.EOF, pexpect.TIMEOUT) as e:
            out = " ".join(str(spawn.before or "").split())[-300:]
            self.stop()
            raise InitError(f"`isabelle server` did not start: {out or type(e).__name__}") from e
        banner = parse_banner(spawn.after)
        try:
            self.conn = ServerConnection(banner.host, banner.port, banner.password, self.config.start_timeout)
            self.hello = self.conn.hello
            args: dict[str, Any] = {"session": self.config.session,
                                    "dirs": [self.config.project_dir, *self.config.session_dirs]}
            if self.config.include_sessions:
                args["include_sessions"] = list(self.config.include_sessions)
            if self.config.options:
                args["options"] = list(self.config.options)
            result = self.conn.run_task("session_start", args, self.config.session_timeout)
        except (ServerGone, ServerTimeout, ServerError, ProtocolError) as e:
            self.stop()
            raise InitError(f"Isabelle session {self.config.session} did not start: {e}") from e
        if not result.finished or "session_id" not in (result.payload or {}):
            self.stop()
            raise InitError(f"Isabelle session {self.config.session} did not start: {result.message}; "
                            f"{INSTALL_HINT}")
        self.session_id = result.payload["session_id"]

    def use_theories(self, names: list[str], timeout: float) -> TaskResult | None:
        """Check theories in the work dir; None if the task was cancelled at its time limit.

        Raises ServerGone if the server died, ServerTimeout if it did not answer the cancel.
        """
        assert self.conn is not None
        args = {"session_id": self.session_id, "theories": names, "master_dir": self.workdir,
                "watchdog_timeout": 0, "check_delay": self.config.check_delay}
        deadline = time.monotonic() + timeout
        task = self.conn.start_task("use_theories", args, self.config.grace + timeout)
        try:
            return self.conn.await_task(task, deadline)
        except ServerTimeout:
            pass
        if self.conn.cancel(task, self.config.grace) is None:
            raise ServerTimeout("the server did not confirm the cancel")
        return None

    def purge(self, names: list[str]) -> None:
        assert self.conn is not None
        self.conn.command("purge_theories", {"session_id": self.session_id, "theories": names,
                                             "master_dir": self.workdir}, self.config.grace)

    def check(self, theory: TheoryText, timeout: float, keep: bool = False) -> _Checked:
        """Write the theory, check it, read its messages back, purge it (unless ``keep``).

        Raises _Lost if the server died or did not answer a cancel (it must be stopped then).
        """
        path = os.path.join(self.workdir, f"{theory.name}.thy")
        with open(path, "w", encoding="utf-8") as f:
            f.write(theory.text)
        start = time.monotonic()
        try:
            result = self.use_theories([theory.name], timeout)
        except ServerTimeout as e:  # the cancel went unanswered
            _unlink(path)
            raise _Deaf(str(e)) from e
        except (ServerGone, ProtocolError, ServerError) as e:
            _unlink(path)
            raise _Lost(str(e)) from e
        elapsed = time.monotonic() - start
        if not keep or result is None:
            try:  # drop the node, so that PIDE stops working on it and forgets it
                self.purge([theory.name])
            except (ServerGone, ServerTimeout, ServerError, ProtocolError) as e:
                _unlink(path)
                raise _Lost(f"purge_theories failed: {e}") from e
            _unlink(path)
        if result is None:
            return _Checked(theory, timed_out=True, elapsed=elapsed)
        payload = result.payload if isinstance(result.payload, dict) else {}
        if not result.finished and not payload.get("nodes"):
            # FAILED without results: the task itself broke (e.g. "Interrupt").
            msg = Message("error", result.message or "use_theories failed", None)
            return _Checked(theory, messages=(msg,), errors=(msg,), elapsed=elapsed)
        messages = node_messages(payload, theory.name)
        errors = [m for m in messages if m.kind == "error"]
        for e in result_errors(payload):
            if not e.in_file(theory.name):  # e.g. in an imported theory: not on our lines
                e = Message(e.kind, e.text, None, e.file)
            if not any(e.text == x.text and (e.line == x.line or e.line is None) for x in errors):
                errors.append(e)
        return _Checked(theory, False, tuple(messages), tuple(errors), elapsed)

    def stop(self) -> None:
        """Ask for shutdown, then stop the process tree whatever the answer."""
        if self.conn is not None:
            try:
                self.conn.command("shutdown", None, min(2.0, self.config.grace))
            except (ServerGone, ServerTimeout, ServerError, ProtocolError):
                pass
            self.conn.close()
            self.conn = None
        if self.proc is not None:
            self.proc.stop(tree=True)
            self.proc = None
        self.session_id = None


class IsabelleBackend(Closing):
    name = "isabelle"

    def __init__(self, config: IsabelleConfig | None = None) -> None:
        self.config = config or IsabelleConfig()
        self._salt = secrets.token_hex(4)  # theory names: unique, unrelated to any nonce
        self._server: IsabelleServer | None = None
        self._workdir: WorkDir | None = None
        self._theorem: Theorem | None = None
        self._root: State | None = None
        self._counter = 0
        self._next_sid = 0
        self._requests_on_server = 0
        self._depth = 0  # nesting of requests (a request may rebuild the states it needs first)
        self._live: set[int] = set()  # state ids in the current server's table
        self._open_node: str | None = None  # the theory that opened the theorem (kept while it is open)
        self._resolved: dict[tuple[int, str], StateKey] = {}  # (parent id, tactic) -> the state it led to
        self._failed: set[tuple[int, str]] = set()  # (state id, method) that failed there
        self._cache: dict[tuple[int, str], Outcome] = {}  # outcomes of prefetched candidates
        self.tactic_calls = 0  # step requests sent to Isabelle (a batch is one)
        self.restarts = 0
        self.server_pids: list[int] = []  # every step server started, for tests and diagnostics
        self.check_server_pids: list[int] = []  # every fresh server a full check ran in

    # -- server lifecycle ----------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._server.pid if self._server else None

    def _work(self) -> str:
        if self._workdir is None:
            self._workdir = WorkDir("prover-isabelle-")
        return self._workdir.path

    def _ensure_server(self) -> IsabelleServer:
        if self._server is None:
            server = IsabelleServer(self.config, self._work())
            try:
                server.start()
            except InitError as e:  # open() turns this back into InitError
                raise BackendCrash(f"cannot start the Isabelle server: {e}") from e
            self._server = server
            self._requests_on_server = 0
            if server.pid is not None:
                self.server_pids.append(server.pid)
        return self._server

    def _restart(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._live.clear()  # the state table died with the server; states are rebuilt on use
        self._open_node = None
        self.restarts += 1

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
        self._theorem = None
        self._root = None
        self._live.clear()
        self._open_node = None

    def _theory_name(self, kind: str = "Bridge") -> str:
        self._counter += 1
        return f"{kind}_{self._salt}_{self._counter}"

    def _new_sid(self) -> int:
        self._next_sid += 1
        return self._next_sid

    def _request(self, build: Callable[[], TheoryText], timeout: float, keep: bool = False) -> _Checked:
        """Check the theory ``build`` makes on the step server; restart and retry once if the server
        dies, BackendCrash the second time. A request the server does not let go of is cut: the
        server is replaced and the request reported as timed out. ``build`` may itself make requests
        (to rebuild the states it needs on a fresh server)."""
        outer = self._depth == 0
        self._depth += 1
        try:
            if outer and self._server is not None and self._requests_on_server >= self.config.restart_every:
                self._restart()  # bounds PIDE's memory; the states come back when used
            for attempt in (1, 2):
                theory = build()
                server = self._ensure_server()
                self._requests_on_server += 1
                try:
                    return server.check(theory, timeout, keep)
                except _Deaf:
                    self._restart()
                    return _Checked(theory, timed_out=True, elapsed=timeout)
                except _Lost as e:
                    self._restart()
                    if attempt == 2:
                        raise BackendCrash(f"the Isabelle server failed twice on one request: {e}") from e
            raise AssertionError("unreachable")
        finally:
            self._depth -= 1

    @staticmethod
    def _report(checked: _Checked, nonce: str, op: str) -> bridge.Report:
        """The bridge's report, or BridgeOutputError naming the bridge command's own error if any."""
        try:
            return bridge.read_report(checked.own_texts(), nonce, op)
        except BridgeOutputError as e:
            errs = [m for m in checked.errors if m.line == checked.theory.marker_line or m.line is None]
            if errs:
                raise BridgeOutputError(clean_message(errs[0].text)[:1000]) from e
            raise

    # -- theorem -----------------------------------------------------------------------------------
    def open(self, theorem: Theorem) -> State:
        name = theorem_name(theorem.statement)
        if name is None:
            raise InitError("the statement does not start with theorem/lemma NAME:")
        if name != theorem.name:
            raise InitError(f"the statement names {name!r}, expected {theorem.name!r}")
        try:
            split_header(theorem.header)
        except ValueError as e:
            raise InitError(str(e)) from e
        self._theorem = theorem
        self._root = None
        self._resolved.clear()
        self._failed.clear()
        self._cache.clear()
        sid = self._new_sid()
        try:
            goals = self._open_on_server(sid, self.config.open_timeout)
        except BackendCrash as e:
            raise InitError(str(e)) from e
        self._root = State(StateKey(sid), goals)
        return self._root

    def _open_on_server(self, sid: int, timeout: float) -> str:
        """Run prover_open: the statement's proof state becomes state ``sid`` (all others are gone)."""
        theorem = self._theorem
        assert theorem is not None
        self._purge_open_node()
        nonce = bridge.new_nonce()
        header = split_header(theorem.header)
        imports = theory_imports(theorem.header, self.config.bridge_import)

        def build() -> TheoryText:
            command = bridge.open_command(nonce, sid, _millis(timeout), theorem.statement)
            return bridge_theory(self._theory_name(), imports, header.preamble, command)

        checked = self._request(build, timeout + self.config.grace, keep=True)
        self._live.clear()  # prover_open empties the table
        if checked.timed_out:
            self._open_node = None
            raise InitError(f"the statement took more than {timeout:.0f} s to load")
        self._open_node = checked.theory.name
        marker = checked.theory.marker_line
        bad = checked.errors_before(marker)
        if bad:
            raise InitError(f"the header does not check: {clean_message(bad[0].text)[:500]}")
        try:
            report = self._report(checked, nonce, "open")
        except BridgeOutputError as e:
            raise InitError(f"the bridge did not open the theorem: {e}") from e
        result = next((r for r in report.results if r.sid == sid), None)
        if result is None:
            raise InitError("the bridge did not open the theorem: no result for the statement")
        if result.status == bridge.TIMEOUT:
            raise InitError(f"the statement took more than {timeout:.0f} s to check")
        if result.status != bridge.NEXT:
            raise InitError(f"the statement does not check: {clean_message(result.message)[:500]}")
        self._live.add(sid)
        return normalize_goals(result.goals)

    def _purge_open_node(self) -> None:
        if self._open_node is None or self._server is None:
            self._open_node = None
            return
        name, self._open_node = self._open_node, None
        try:
            self._server.purge([name])
        except (ServerGone, ServerTimeout, ServerError, ProtocolError):
            self._restart()
        _unlink(os.path.join(self._work(), f"{name}.thy"))

    def _materialize(self, key: StateKey) -> int:
        """The id under which ``key``'s state is in the current server's table, rebuilding it from its
        proof text if the server was replaced since it was made (one request, whatever its depth)."""
        if key.sid in self._live:
            return key.sid
        assert self._root is not None
        root = self._root.key
        if root.sid not in self._live:
            try:
                self._open_on_server(root.sid, self.config.open_timeout)
            except InitError as e:
                raise BackendCrash(f"cannot reopen the theorem after a restart: {e}") from e
        if key.sid == root.sid:
            return root.sid
        nonce = bridge.new_nonce()

        def build() -> TheoryText:
            command = bridge.steps_command(nonce, root.sid, _millis(self.config.open_timeout),
                                           [(key.sid, "\n".join(key.steps))])
            return bridge_theory(self._theory_name(), self.config.bridge_import, "", command)

        checked = self._request(build, self.config.open_timeout + self.config.grace)
        try:
            (result,) = self._report(checked, nonce, "steps").results
        except (BridgeOutputError, ValueError) as e:
            raise BackendCrash(f"a state could not be rebuilt after a restart: {e}") from e
        if result.status not in (bridge.NEXT, bridge.FINISHED) or result.closers:
            raise BackendCrash(f"a state could not be rebuilt after a restart: {result.status} "
                               f"{clean_message(result.message)[:300]}")
        self._live.add(key.sid)
        return key.sid

    def goals(self, state: State) -> str:
        return state.goals

    # -- steps -----------------------------------------------------------------------------------------
    def _key(self, state: State) -> StateKey:
        if self._theorem is None or self._root is None:
            raise BackendCrash("no theorem is open")
        if not isinstance(state.key, StateKey):
            raise BackendCrash("not a state of the Isabelle backend")
        return state.key

    def apply(self, state: State, tactic: str, timeout: float) -> Outcome:
        key = self._key(state)
        raw = tactic.strip()
        cached = self._cache.get((key.sid, raw))
        if cached is not None:
            return cached
        if is_sledgehammer(raw):
            outcome = self._sledgehammer(key)
        else:
            step, why = check_step(raw)
            if step is None:
                return Failed(why, rejected=True)
            (outcome,) = self._run_steps(key, [step], timeout)
        if isinstance(outcome, (Next, Finished)):
            self._resolved[(key.sid, raw)] = outcome.state.key
        return outcome

    def prefetch(self, state: State, tactics: list[str], timeout: float) -> None:
        """Run a state's candidate steps in one request (in parallel in Isabelle); ``apply`` then
        answers them from the results. Refused ones and ``sledgehammer`` are left to ``apply``."""
        key = self._key(state)
        todo: dict[str, str] = {}
        for tactic in tactics:
            raw = tactic.strip()
            if raw in todo or (key.sid, raw) in self._cache or is_sledgehammer(raw):
                continue
            step, _ = check_step(raw)
            if step is not None:
                todo[raw] = step
        if len(todo) < 2:
            return
        outcomes = self._run_steps(key, list(todo.values()), timeout)
        for raw, outcome in zip(todo, outcomes):
            self._cache[(key.sid, raw)] = outcome
            if isinstance(outcome, (Next, Finished)):
                self._resolved[(key.sid, raw)] = outcome.state.key

    def _run_steps(self, parent: StateKey, steps: list[str], timeout: float) -> list[Outcome]:
        """One request: every (filtered) step applied to ``parent``, each under ``timeout``."""
        sids = [self._new_sid() for _ in steps]
        nonce = bridge.new_nonce()

        def build() -> TheoryText:
            parent_sid = self._materialize(parent)
            command = bridge.steps_command(nonce, parent_sid, _millis(timeout), zip(sids, steps))
            return bridge_theory(self._theory_name(), self.config.bridge_import, "", command)

        # Isabelle runs the steps in parallel, each stopped at ``timeout``; the wall-clock cap allows
        # for them running one after the other on few threads.
        checked = self._request(build, timeout * len(steps) + self.config.grace)
        self.tactic_calls += 1
        if checked.timed_out:
            return [TimedOut(checked.elapsed) for _ in steps]
        try:
            report = self._report(checked, nonce, "steps")
        except BridgeOutputError as e:
            return [Failed(f"the bridge failed: {e}") for _ in steps]
        by_id = {r.sid: r for r in report.results}
        return [self._outcome(parent, step, by_id.get(sid)) for sid, step in zip(sids, steps)]

    def _outcome(self, parent: StateKey, step: str, result: StepResult | None) -> Outcome:
        if result is None:
            return Failed("the bridge reported no result for the step")
        if result.status in (bridge.NEXT, bridge.FINISHED):
            key = StateKey(result.sid, parent.steps + (step,) + result.closers)
            self._live.add(result.sid)
            if result.status == bridge.FINISHED:
                return Finished(State(key, ""))
            return Next(State(key, normalize_goals(result.goals)))
        if result.status == bridge.TIMEOUT:
            return TimedOut(result.seconds)
        if result.status == bridge.REFUSED:
            return Failed(f"refused by Isabelle's step vetting: {result.message}", rejected=True)
        return Failed(clean_message(result.message)[:2000] or "the step failed")

    def _sledgehammer(self, key: StateKey) -> Outcome:
        """The DSP heuristics (one request), then Sledgehammer (one), then its suggestions (one); the
        result is keyed by the concrete method."""
        assert self._theorem is not None
        tried: set[str] = set()
        sos = imports_sum_of_squares(self._theorem.header)
        heuristics = [h for h in self.config.heuristics if sos or h != "by sos"]
        found = self._first_success(key, heuristics, tried)
        if found is not None:
            return found
        run = self.config.sledgehammer_timeout
        nonce = bridge.new_nonce()

        def build() -> TheoryText:
            command = bridge.sledgehammer_command(nonce, self._materialize(key), max(1, int(round(run))))
            return bridge_theory(self._theory_name(), self.config.bridge_import, "", command)

        checked = self._request(build, run + 30 + self.config.grace)
        self.tactic_calls += 1
        if checked.timed_out:
            return TimedOut(checked.elapsed)
        try:
            report = self._report(checked, nonce, "sledgehammer")
        except BridgeOutputError as e:
            return Failed(f"sledgehammer: {e}")
        if report.status == bridge.TIMEOUT:
            return TimedOut(checked.elapsed)
        if report.status == bridge.FAILED:
            return Failed(f"sledgehammer: {clean_message(report.message)[:500]}")
        suggestions = [m for m in parse_sledgehammer([m for m in checked.own_messages() if m.kind != "error"])
                       if re.match(r"(using|unfolding|by)\b", m)]
        found = self._first_success(key, suggestions, tried)
        if found is not None:
            return found
        return Failed("no heuristic closed the goal and sledgehammer found no proof that checks")

    def _first_success(self, key: StateKey, methods: list[str], tried: set[str]) -> Outcome | None:
        """Run the untried methods in one request; the first (in order) that checks."""
        todo: list[str] = []
        for method in methods:
            if method in tried or (key.sid, method) in self._failed:
                continue
            tried.add(method)
            step, _ = check_step(method)
            if step is not None and step not in todo:
                todo.append(step)
        if not todo:
            return None
        outcomes = self._run_steps(key, todo, self.config.heuristic_timeout)
        found = None
        for method, outcome in zip(todo, outcomes):
            if isinstance(outcome, (Next, Finished)):
                found = found or outcome
            else:
                self._failed.add((key.sid, method))
        return found

    # -- proof text and the full check ----------------------------------------------------------------
    def concrete_steps(self, tactics: list[str], theorem: Theorem | None = None) -> tuple[str, ...]:
        """The steps Isabelle ran for these tactics (sledgehammer resolved, `done`/`qed` added), as
        found from the open theorem's root; tactics never run are taken as they are (filtered)."""
        same = self._root is not None and (theorem is None or theorem == self._theorem)
        key = self._root.key if same else StateKey(-1)
        for t in tactics:
            raw = t.strip()
            known = self._resolved.get((key.sid, raw))
            if known is not None:
                key = known
                continue
            if is_sledgehammer(raw):
                raise ValueError("a sledgehammer step that was never resolved to a method")
            step, why = check_step(raw)
            if step is None:
                raise ValueError(f"step {raw[:80]!r} refused: {why}")
            key = StateKey(-1, key.steps + (step,))
        return key.steps

    def proof_text(self, tactics: list[str]) -> str:
        try:
            steps = self.concrete_steps(tactics)
        except ValueError:
            steps = tuple(t.strip() for t in tactics)
        return "\n".join("  " + line for step in steps for line in step.splitlines())

    def check_source(self, theorem: Theorem, steps: tuple[str, ...], nonce: str) -> TheoryText:
        for step in steps:
            if check_step(step)[0] is None:
                raise ValueError(f"step {step[:80]!r} refused: {check_step(step)[1]}")
        return check_theory(self._theory_name("Check"), theorem.header, theorem.statement, steps,
                            self.config.bridge_import, bridge.audit_command(nonce, theorem.name))

    def check(self, theorem: Theorem, tactics: list[str]) -> CheckResult:
        """The whole theory from scratch, in a fresh Isabelle that never ran a model's step: vet the
        proof inside Isabelle, check the theory as plain text, audit the stored theorem."""
        if theorem_name(theorem.statement) != theorem.name:
            return CheckResult(False, "the statement does not declare the theorem's name")
        vet_nonce, audit_nonce = bridge.new_nonce(), bridge.new_nonce()
        try:
            header = split_header(theorem.header)
            steps = self.concrete_steps(tactics, theorem)
            theory = self.check_source(theorem, steps, audit_nonce)
        except ValueError as e:
            return CheckResult(False, str(e))
        vet = bridge_theory(self._theory_name("Vet"), theory_imports(theorem.header, self.config.bridge_import),
                            header.preamble, bridge.vet_command(vet_nonce, "\n".join(steps)))
        start = time.monotonic()
        server = IsabelleServer(self.config, self._work())
        try:
            server.start()
        except InitError as e:
            return CheckResult(False, f"cannot start a fresh Isabelle for the check: {e}", source=theory.text)
        if server.pid is not None:
            self.check_server_pids.append(server.pid)
        try:
            return self._verdict(server, theorem, theory, vet, vet_nonce, audit_nonce, start)
        except _Lost as e:
            return CheckResult(False, f"the Isabelle server of the check failed: {e}",
                               elapsed=time.monotonic() - start, source=theory.text)
        finally:
            server.stop()

    def _verdict(self, server: IsabelleServer, theorem: Theorem, theory: TheoryText, vet: TheoryText,
                 vet_nonce: str, audit_nonce: str, start: float) -> CheckResult:
        def result(ok: bool, message: str, oracles: tuple[str, ...] = ()) -> CheckResult:
            return CheckResult(ok, message, oracles, time.monotonic() - start, theory.text)

        left = lambda: max(1.0, self.config.check_timeout - (time.monotonic() - start))  # noqa: E731
        vetted = server.check(vet, left())
        if vetted.timed_out:
            return result(False, f"the full check ran past {self.config.check_timeout:.0f} s")
        bad = vetted.errors_before(vet.marker_line)
        if bad:
            return result(False, f"the header does not check: {clean_message(bad[0].text)[:500]}")
        try:
            verdict = self._report(vetted, vet_nonce, "vet")
        except BridgeOutputError as e:
            return result(False, f"the proof was not vetted: {e}")
        if verdict.status != bridge.ACCEPTED:
            return result(False, f"refused by Isabelle's step vetting: {verdict.message}")
        checked = server.check(theory, left())
        if checked.timed_out:
            return result(False, f"the full check ran past {self.config.check_timeout:.0f} s")
        if checked.errors:
            err = checked.errors[0]
            where = f" (line {err.line})" if err.line else ""
            return result(False, f"Isabelle error{where}: {clean_message(err.text)[:600]}")
        try:
            audit = self._report(checked, audit_nonce, "audit")
        except BridgeOutputError as e:
            return result(False, f"the theorem was not audited: {e}")
        if audit.name != theorem.name or not audit.stored:
            return result(False, "the theorem was not stored (the proof is not complete)")
        if audit.skip_proof or any(o.split(".")[-1] == "skip_proof" for o in audit.oracles):
            return result(False, "the proof depends on a skipped proof (sorry)", audit.oracles)
        allowed = set(self.config.allowed_oracles) | set(theorem.allowed_axioms)
        extra = [o for o in audit.oracles if o not in allowed and o.split(".")[-1] not in allowed]
        if extra:
            return result(False, f"the proof depends on oracles: {', '.join(extra)}", audit.oracles)
        return result(True, "", audit.oracles)

    def info(self) -> BackendInfo:
        hello = self._server.hello if self._server is not None else None
        version = hello.get("isabelle_name", "unknown") if isinstance(hello, dict) else "unknown"
        return BackendInfo("isabelle", version, {"session": self.config.session,
                                                 "transport": "isabelle server + Prover_Bridge state table"})


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
