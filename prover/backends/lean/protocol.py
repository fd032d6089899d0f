"""The Lean REPL's JSON protocol (leanprover-community/repl, v4.24.0) and one REPL process.

Requests are one JSON object each, followed by a blank line: ``{"cmd": ..., "env": N}`` runs
commands (no ``env``: a fresh environment, where ``import`` is allowed), ``{"tactic": ...,
"proofState": N}`` runs a tactic on a saved proof state. Each reply is a pretty-printed JSON object
followed by a blank line: a command reply (``env``, ``messages``, ``sorries``), a tactic reply
(``proofState``, ``goals``, ``proofStatus``, ``messages``, ``sorries``, ``traces``), or an error
``{"message": ...}`` ("Unknown environment.", "Unknown proof state.", "Lean error:\\n...").
Every environment and proof state the REPL numbered stays valid for the life of the process, and
the numbers only grow: a reply whose number does not is not the answer to the request just sent.
"""
from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from typing import Union

import pexpect

from .text import LeanMessage
from ..process import InteractiveProcess, ProcessLimits, WorkDir, tree_rss_bytes


@dataclass(frozen=True)
class Sorry:
    goal: str
    proof_state: int | None


@dataclass(frozen=True)
class CommandReply:
    env: int
    messages: tuple[LeanMessage, ...] = ()
    sorries: tuple[Sorry, ...] = ()

    @property
    def errors(self) -> list[LeanMessage]:
        return [m for m in self.messages if m.severity == "error"]


@dataclass(frozen=True)
class TacticReply:
    proof_state: int
    goals: tuple[str, ...]
    proof_status: str  # "Completed", "Incomplete: open goals remain", "Incomplete: contains sorry",
    #                    "Incomplete: contains metavariable(s)", "Error: ...", "Not verified: ..."
    messages: tuple[LeanMessage, ...] = ()
    sorries: tuple[Sorry, ...] = ()
    traces: tuple[str, ...] = ()

    @property
    def errors(self) -> list[LeanMessage]:
        return [m for m in self.messages if m.severity == "error"]


@dataclass(frozen=True)
class ReplError:
    message: str

    @property
    def lean_error(self) -> str | None:
        """The text of a ``Lean error:`` reply (a tactic that threw), else None."""
        prefix = "Lean error:"
        return self.message[len(prefix):].strip() if self.message.startswith(prefix) else None


Reply = Union[CommandReply, TacticReply, ReplError]


class ProtocolError(ValueError):
    """A reply that is not one of the REPL's shapes."""


def _message(obj: dict) -> LeanMessage:
    pos = obj.get("pos") or {}
    return LeanMessage(str(obj.get("severity", "")), str(obj.get("data", "")),
                       int(pos.get("line", 0)), int(pos.get("column", 0)))


def _sorry(obj: dict) -> Sorry:
    ps = obj.get("proofState")
    return Sorry(str(obj.get("goal", "")), int(ps) if ps is not None else None)


def parse_reply(obj: object) -> Reply:
    """Map one decoded reply onto its dataclass."""
    if not isinstance(obj, dict):
        raise ProtocolError(f"reply is not an object: {obj!r:.200}")
    messages = tuple(_message(m) for m in obj.get("messages", []))
    sorries = tuple(_sorry(s) for s in obj.get("sorries", []))
    if "proofStatus" in obj or ("proofState" in obj and "goals" in obj):
        return TacticReply(int(obj["proofState"]), tuple(obj.get("goals", [])),
                           str(obj.get("proofStatus", "")), messages, sorries,
                           tuple(obj.get("traces", [])))
    if "env" in obj:
        return CommandReply(int(obj["env"]), messages, sorries)
    if "message" in obj:
        return ReplError(str(obj["message"]))
    raise ProtocolError(f"unknown reply shape: {json.dumps(obj)[:200]}")


def command_request(cmd: str, env: int | None = None) -> dict:
    return {"cmd": cmd} if env is None else {"cmd": cmd, "env": env}


def tactic_request(tactic: str, proof_state: int) -> dict:
    return {"tactic": tactic, "proofState": proof_state}


def encode(request: dict) -> str:
    # One line (newlines in strings are escaped), then the blank line that ends a request.
    return json.dumps(request, ensure_ascii=False) + "\n\n"


class ReplTimeout(Exception):
    """No reply within the time limit (the REPL has no per-command timeout of its own)."""


class ReplExited(Exception):
    """The REPL process ended (crash, out of memory, or it refused its input)."""


_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")


class ReplSession:
    """One REPL process, driven request by reply.

    Only stdout carries replies; stderr (where ``dbg_trace`` and Lean's panics write) is drained
    apart and reported when the process dies. Other stdout text (``lake`` build lines) is kept as
    ``noise``. The process runs in the project (``cwd``) with a private TMPDIR, removed on stop.
    """

    def __init__(self, argv: list[str], cwd: str, limits: ProcessLimits, env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.noise: list[str] = []
        self.requests = 0
        self._last_env = -1  # the highest environment and proof-state numbers seen so far
        self._last_state = -1
        self._tmp = WorkDir("prover-lean-")
        try:
            self._proc = InteractiveProcess(argv, cwd, limits, env=env, tmpdir=self._tmp.path, stderr="drain")
        except (OSError, pexpect.ExceptionPexpect) as e:
            self._tmp.cleanup()
            raise ReplExited(f"cannot start {' '.join(argv)}: {e}") from e

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc.alive()

    def rss_bytes(self) -> int:
        """Resident memory of the REPL and its descendants (``lake exe`` runs it as a child)."""
        return tree_rss_bytes(self._proc.pid)

    def request(self, request: dict, timeout: float) -> Reply:
        if not self._proc.alive():
            raise ReplExited(self._exit_report())
        self.requests += 1
        try:
            self._proc.spawn.send(encode(request))
        except OSError as e:
            raise ReplExited(f"pipe closed: {e}; {self._exit_report()}") from e
        return self._in_step(parse_reply(self._read(timeout)))

    def _in_step(self, reply: Reply) -> Reply:
        """The reply, if its numbers are new: the REPL numbers every environment and proof state
        it makes in increasing order, so an old number means the reply answers another request."""
        states = [reply.proof_state] if isinstance(reply, TacticReply) else []
        if isinstance(reply, (CommandReply, TacticReply)):
            states += [s.proof_state for s in reply.sorries if s.proof_state is not None]
        for number in states:
            if number <= self._last_state:
                raise ProtocolError(f"proof state {number} after {self._last_state}: the reply is out of step")
            self._last_state = number
        if isinstance(reply, CommandReply):
            if reply.env <= self._last_env:
                raise ProtocolError(f"environment {reply.env} after {self._last_env}: the reply is out of step")
            self._last_env = reply.env
        return reply

    def command(self, cmd: str, env: int | None, timeout: float) -> Reply:
        return self.request(command_request(cmd, env), timeout)

    def tactic(self, tactic: str, proof_state: int, timeout: float) -> Reply:
        return self.request(tactic_request(tactic, proof_state), timeout)

    def _read(self, timeout: float) -> object:
        spawn = self._proc.spawn
        while True:
            try:
                spawn.expect(_BLANK_LINE, timeout=timeout)
            except pexpect.TIMEOUT as e:
                raise ReplTimeout(f"no reply within {timeout:g} s") from e
            except pexpect.EOF as e:
                if isinstance(spawn.before, str) and spawn.before.strip():
                    self.noise.append(spawn.before)
                raise ReplExited(self._exit_report()) from e
            chunk = spawn.before
            lines = chunk.splitlines()
            start = next((i for i, line in enumerate(lines) if line.startswith("{")), None)
            if start is None:
                if chunk.strip():
                    self.noise.append(chunk)
                continue
            if start:
                self.noise.append("\n".join(lines[:start]))
            try:
                return json.loads("\n".join(lines[start:]))
            except json.JSONDecodeError as e:
                raise ProtocolError(f"reply is not JSON: {chunk[-300:]!r}") from e

    def _exit_report(self) -> str:
        try:  # its output ended: give it a moment to exit, to report how it ended
            status = self._proc.spawn.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            status = None
        stderr = self._proc.stderr_text(wait=1.0)
        tail = " ".join("\n".join([*self.noise, stderr]).split())[-400:]
        return f"the REPL exited (status {status})" + (f": {tail}" if tail else "")

    def stop(self) -> None:
        self._proc.stop()
        self._tmp.cleanup()
