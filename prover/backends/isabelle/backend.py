"""Isabelle/HOL backend: stepwise proof search through the official Isabelle server.

Transport, and why. Three ways exist to drive Isabelle one step at a time:

* **The Isabelle server** (``isabelle server``; System Manual, chapter "The Isabelle server"): JSON
  over TCP, shipped and documented with every Isabelle release, kept working by the Isabelle
  developers themselves. It checks whole theories (``use_theories``) in a resident PIDE session,
  reports every message with its line, and can ``cancel`` a running task.
* Isa-REPL: a third-party Isabelle component with a stepwise API and state rollback (msgpack over
  TCP). Faster per step, but it must be fetched and built for the exact Isabelle release, and its
  protocol is not covered by the Isabelle documentation.
* pexpect on ``isabelle console``/``isabelle process``: the old raw ML toplevel. Unsupported for
  Isar interaction since the PIDE rewrite; no positions, no structured messages.

We use the server. The price is that it has no "apply one step to state N" command, so a state is
named by its proof prefix (State.key = the tuple of concrete steps from the statement), and
applying a step checks a small theory: trusted header, statement, the prefix, the new step, and
``prover_goals TAG`` — a diagnostic command from ``isabelle/Prover_Bridge.thy`` that prints the
proof state (or says the theorem is proved) as one writeln message; TAG is a per-backend random
word a step cannot forge. Errors are attributed to the new step by their line. Backtracking to any
earlier state is free: every check starts from the statement. The goals the model reads are
``Toplevel.string_of_state`` output, Isabelle symbols in their ASCII form (``\\<forall>``).

Timeouts really interrupt: past the step limit the task is cancelled; if the server does not
confirm within a grace period, its whole process tree is stopped and a fresh server started (the
states stay valid: they are proof texts). The server is also restarted after a crash (and the step
retried once) and after ``restart_every`` checks. Every process starts through ``process.py``.

The ``sledgehammer`` step resolves to a concrete method: the DSP heuristics first (``by auto``,
``by simp``, ... as Llemma's Isabelle checker), then Sledgehammer, whose "Try this:" suggestions
are each verified as a step. The full check writes the whole theory once more under a fresh name
(trusted imports, preamble, statement, the concrete steps) and requires: no error anywhere, the
theorem stored under its name, no ``skip_proof`` oracle (sorry) and no oracle beyond the allowed
ones, reported by ``prover_audit``.
"""
from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pexpect

from ..base import (Closing, BackendCrash, BackendInfo, CheckResult, Failed, Finished, InitError, Next, Outcome,
                   State, Theorem, TimedOut)
from .protocol import (ProtocolError, ServerConnection, ServerError, ServerGone, ServerTimeout,
                                TaskResult, parse_banner)
from .text import (Message, ProofState, TheoryText, build_theory, check_step, is_sledgehammer,
                            node_messages, parse_sledgehammer, read_audit, read_proof_state, result_errors,
                            split_header, theorem_name, clean_message)
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
    grace: float = 10.0  # for cancel to take effect before the server is restarted
    check_timeout: float = 600.0
    restart_every: int = 1000  # checks per server, bounding PIDE's memory growth
    heuristics: tuple[str, ...] = DSP_HEURISTICS
    heuristic_timeout: float = 10.0
    sledgehammer_timeout: float = 30.0
    # Oracles a proof may use: `by eval` trusts the code generator's evaluation oracle.
    allowed_oracles: tuple[str, ...] = ("holds_by_evaluation",)


@dataclass(frozen=True)
class _Checked:
    """One theory checked by the server, read back."""

    theory: TheoryText
    timed_out: bool = False
    messages: tuple[Message, ...] = ()
    errors: tuple[Message, ...] = ()  # every error, wherever it is
    elapsed: float = 0.0

    def errors_in(self, first: int, last: int) -> list[Message]:
        return [m for m in self.errors if m.line is not None and first <= m.line <= last]

    @property
    def unplaced_errors(self) -> list[Message]:
        return [m for m in self.errors if m.line is None]


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
                "watchdog_timeout": 0}
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
        self.tag = f"prover_{secrets.token_hex(8)}"  # marks the bridge's own output lines
        self._server: IsabelleServer | None = None
        self._workdir: WorkDir | None = None
        self._theorem: Theorem | None = None
        self._root: State | None = None
        self._counter = 0
        self._checks_on_server = 0
        self._resolved: dict[tuple[tuple[str, ...], str], tuple[str, ...]] = {}  # (key, tactic) -> key
        self._failed: set[tuple[tuple[str, ...], str]] = set()
        self.tactic_calls = 0  # theories sent to Isabelle
        self.restarts = 0
        self.server_pids: list[int] = []  # every server started, for tests and diagnostics

    # -- server lifecycle ----------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._server.pid if self._server else None

    def _ensure_server(self) -> IsabelleServer:
        if self._server is not None and self._checks_on_server >= self.config.restart_every:
            self._restart()
        if self._server is None:
            if self._workdir is None:
                self._workdir = WorkDir("prover-isabelle-")
            server = IsabelleServer(self.config, self._workdir.path)
            server.start()
            self._server = server
            self._checks_on_server = 0
            if server.pid is not None:
                self.server_pids.append(server.pid)
        return self._server

    def _restart(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
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

    # -- one theory through the server ---------------------------------------------------------------
    def _theory(self, steps: tuple[str, ...], marker: str, tail: str = "") -> TheoryText:
        assert self._theorem is not None
        self._counter += 1
        name = f"Prover_{self.tag[len('prover_'):]}_{self._counter}"
        return build_theory(name, self._theorem.header, self._theorem.statement, steps,
                            self.config.bridge_import, marker, tail)

    def _goals_theory(self, steps: tuple[str, ...]) -> TheoryText:
        return self._theory(steps, f"prover_goals {self.tag}", "oops")

    def _run(self, theory: TheoryText, timeout: float) -> _Checked:
        """Check one theory; restart and retry once if the server dies; BackendCrash the second time."""
        for attempt in (1, 2):
            try:
                server = self._ensure_server()
            except InitError as e:  # open() turns this back into InitError
                raise BackendCrash(f"cannot start the Isabelle server: {e}") from e
            assert self._workdir is not None
            path = os.path.join(self._workdir.path, f"{theory.name}.thy")
            with open(path, "w", encoding="utf-8") as f:
                f.write(theory.text)
            start = time.monotonic()
            self.tactic_calls += 1
            self._checks_on_server += 1
            try:
                result = server.use_theories([theory.name], timeout)
            except ServerTimeout:  # the cancel went unanswered: stop it all, start afresh later
                self._restart()
                _unlink(path)
                return _Checked(theory, timed_out=True, elapsed=time.monotonic() - start)
            except (ServerGone, ProtocolError, ServerError) as e:
                self._restart()
                _unlink(path)
                if attempt == 2:
                    raise BackendCrash(f"the Isabelle server failed twice on one theory: {e}") from e
                continue
            elapsed = time.monotonic() - start
            try:  # drop the node, so that PIDE stops working on it and forgets it
                server.purge([theory.name])
            except (ServerGone, ServerTimeout, ServerError, ProtocolError):
                self._restart()
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
        raise AssertionError("unreachable")

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
        theory = self._goals_theory(())
        try:
            checked = self._run(theory, self.config.open_timeout)
        except BackendCrash as e:
            raise InitError(str(e)) from e
        if checked.timed_out:
            raise InitError(f"the statement took more than {self.config.open_timeout:.0f} s to load")
        first = theory.statement_lines[0]
        bad = [m for m in checked.errors if m.line is None or m.line <= theory.statement_lines[1]]
        if bad:
            where = "statement" if bad[0].line and bad[0].line >= first else "header"
            raise InitError(f"the {where} does not check: {clean_message(bad[0].text)[:500]}")
        state = read_proof_state(list(checked.messages), self.tag)
        if state is None or not state.in_proof:
            why = f": {clean_message(checked.errors[0].text)[:300]}" if checked.errors else ""
            raise InitError(f"Isabelle printed no proof state for the statement{why} (is the "
                            f"{self.config.session} session with Prover_Bridge in use?)")
        self._root = State((), state.text)
        return self._root

    def goals(self, state: State) -> str:
        return state.goals

    def apply(self, state: State, tactic: str, timeout: float) -> Outcome:
        if self._theorem is None:
            raise BackendCrash("no theorem is open")
        raw = tactic.strip()
        key = tuple(state.key)
        if is_sledgehammer(raw):
            outcome = self._sledgehammer(key)
        else:
            step, why = check_step(raw)
            if step is None:
                return Failed(why, rejected=True)
            outcome = self._step(key, step, timeout)
        if isinstance(outcome, (Next, Finished)):
            self._resolved[(key, raw)] = tuple(outcome.state.key)
        return outcome

    def _step(self, key: tuple[str, ...], step: str, timeout: float) -> Outcome:
        """Run one filtered step after ``key``; close a goal-less proof block by itself."""
        new_key = key + (step,)
        outcome = self._state_after(new_key, timeout)
        for _ in range(4):  # `done`/`qed` after a step that solved every goal of its block
            if not (isinstance(outcome, Next) and _no_subgoals(outcome.state.goals)):
                break
            closer = "done" if outcome.state.goals.startswith("proof (prove)") else "qed"
            closed = self._state_after(tuple(outcome.state.key) + (closer,), timeout)
            if not isinstance(closed, (Next, Finished)):
                break
            outcome = closed
        return outcome

    def _state_after(self, key: tuple[str, ...], timeout: float) -> Outcome:
        theory = self._goals_theory(key)
        checked = self._run(theory, timeout)
        if checked.timed_out:
            return TimedOut(checked.elapsed)
        last_first, last_end = theory.step_lines[-1]
        own = checked.errors_in(last_first, last_end) + checked.unplaced_errors
        if own:
            return Failed(clean_message(own[0].text)[:2000])
        before = checked.errors_in(1, last_first - 1)
        if before:
            return Failed(f"the proof prefix no longer checks: {clean_message(before[0].text)[:1000]}")
        state = read_proof_state(list(checked.messages), self.tag)
        if state is None:
            return Failed("Isabelle printed no proof state after the step")
        if not state.in_proof:
            return Finished(State(key, ""))
        return Next(State(key, state.text))

    def _sledgehammer(self, key: tuple[str, ...]) -> Outcome:
        """The DSP heuristics, then Sledgehammer; the result is keyed by the concrete method."""
        tried: set[str] = set()
        for method in self.config.heuristics:
            outcome = self._try_method(key, method, tried)
            if outcome is not None:
                return outcome
        run = self.config.sledgehammer_timeout
        theory = self._goals_theory(key + (f"sledgehammer [timeout = {run:g}]",))
        checked = self._run(theory, run + 2 * self.config.grace)
        if checked.timed_out:
            return TimedOut(checked.elapsed)
        first, last = theory.step_lines[-1]
        on_line = [m for m in checked.messages if m.line is not None and first <= m.line <= last]
        if checked.errors_in(first, last):
            return Failed(f"sledgehammer: {clean_message(checked.errors_in(first, last)[0].text)[:500]}")
        for method in parse_sledgehammer(on_line):
            if not re.match(r"(using|unfolding|by)\b", method):
                continue
            outcome = self._try_method(key, method, tried)
            if outcome is not None:
                return outcome
        return Failed("no heuristic closed the goal and sledgehammer found no proof that checks")

    def _try_method(self, key: tuple[str, ...], method: str, tried: set[str]) -> Outcome | None:
        if method in tried or (key, method) in self._failed:
            return None
        tried.add(method)
        step, _ = check_step(method)
        if step is None:
            return None
        outcome = self._step(key, step, self.config.heuristic_timeout)
        if isinstance(outcome, (Next, Finished)):
            return outcome
        self._failed.add((key, method))
        return None

    # -- proof text and the full check ----------------------------------------------------------------
    def concrete_steps(self, tactics: list[str]) -> tuple[str, ...]:
        """The steps Isabelle ran for these tactics (sledgehammer resolved, `done`/`qed` added)."""
        key: tuple[str, ...] = ()
        for t in tactics:
            raw = t.strip()
            known = self._resolved.get((key, raw))
            if known is not None:
                key = known
                continue
            if is_sledgehammer(raw):
                raise ValueError("a sledgehammer step that was never resolved to a method")
            step, why = check_step(raw)
            if step is None:
                raise ValueError(f"step {raw[:80]!r} refused: {why}")
            key = key + (step,)
        return key

    def proof_text(self, tactics: list[str]) -> str:
        try:
            steps = self.concrete_steps(tactics)
        except ValueError:
            steps = tuple(t.strip() for t in tactics)
        return "\n".join("  " + line for step in steps for line in step.splitlines())

    def check_source(self, theorem: Theorem, steps: tuple[str, ...]) -> TheoryText:
        for step in steps:
            if check_step(step)[0] is None:
                raise ValueError(f"step {step[:80]!r} refused: {check_step(step)[1]}")
        self._counter += 1
        name = f"Prover_check_{self.tag[len('prover_'):]}_{self._counter}"
        return build_theory(name, theorem.header, theorem.statement, steps, self.config.bridge_import,
                            f"prover_audit {self.tag} {theorem.name}")

    def check(self, theorem: Theorem, tactics: list[str]) -> CheckResult:
        """Check the whole theory from scratch under a fresh name, then audit the stored theorem."""
        if theorem_name(theorem.statement) != theorem.name:
            return CheckResult(False, "the statement does not declare the theorem's name")
        try:
            split_header(theorem.header)
            steps = self.concrete_steps(tactics)
            theory = self.check_source(theorem, steps)
        except ValueError as e:
            return CheckResult(False, str(e))
        try:
            checked = self._run(theory, self.config.check_timeout)
        except BackendCrash as e:
            return CheckResult(False, str(e), source=theory.text)
        if checked.timed_out:
            return CheckResult(False, f"the full check ran past {self.config.check_timeout:.0f} s",
                               elapsed=checked.elapsed, source=theory.text)
        if checked.errors:
            err = checked.errors[0]
            where = f" (line {err.line})" if err.line else ""
            return CheckResult(False, f"Isabelle error{where}: {clean_message(err.text)[:600]}",
                               elapsed=checked.elapsed, source=theory.text)
        audit = read_audit(list(checked.messages), self.tag)
        if audit is None or audit.name != theorem.name:
            return CheckResult(False, "the theorem was not stored (the proof is not complete)",
                               elapsed=checked.elapsed, source=theory.text)
        if audit.skip_proof or any(o.split(".")[-1] == "skip_proof" for o in audit.oracles):
            return CheckResult(False, "the proof depends on a skipped proof (sorry)", audit.oracles,
                               checked.elapsed, theory.text)
        allowed = set(self.config.allowed_oracles) | set(theorem.allowed_axioms)
        extra = [o for o in audit.oracles if o not in allowed and o.split(".")[-1] not in allowed]
        if extra:
            return CheckResult(False, f"the proof depends on oracles: {', '.join(extra)}", audit.oracles,
                               checked.elapsed, theory.text)
        return CheckResult(True, "", audit.oracles, checked.elapsed, theory.text)

    def info(self) -> BackendInfo:
        hello = self._server.hello if self._server is not None else None
        version = hello.get("isabelle_name", "unknown") if isinstance(hello, dict) else "unknown"
        return BackendInfo("isabelle", version, {"session": self.config.session,
                                                 "transport": "isabelle server (use_theories)"})


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _no_subgoals(goals: str) -> bool:
    return ProofState(True, goals).no_subgoals
