"""The Isabelle server protocol (Isabelle System Manual, chapter "The Isabelle server").

A TCP byte channel carrying *messages*. A short message is one line (no CR/LF inside) ended by LF
or CR-LF; a long message is a line of decimal digits giving a byte length, then that many bytes
(the server counts the final LF in the length). The server writes a length line before any message
longer than 100 bytes. A message is ``NAME ARGUMENT``: commands from the client (``help``,
``session_start {...}``, ``use_theories {...}``, ``cancel {...}``, ``purge_theories {...}``,
``shutdown``); replies from the server: ``OK``/``ERROR`` (synchronous, strictly alternating with
commands), ``FINISHED``/``FAILED`` (the end of an asynchronous task, carrying its task id) and
``NOTE`` (progress of a task, at any time). The first client message is the server's password.

This module is transport only: frames, replies and a blocking client with deadlines. What the
prover makes of the replies lives in ``text.py`` and ``backend.py``.
"""
from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any

REPLY_KINDS = ("OK", "ERROR", "NOTE", "FINISHED", "FAILED")
LONG_MESSAGE_BYTES = 100  # the server frames messages longer than this with a length line
_NAME = re.compile(rb"[A-Za-z0-9_.]*")
# `isabelle server` prints this as its first output line.
_BANNER = re.compile(r'server "(?P<name>[^"]*)" = (?P<host>[^:\s]+):(?P<port>\d+) '
                     r'\(password "(?P<password>[^"]*)"\)')


class ProtocolError(Exception):
    """The server sent something that is not a protocol message."""


class ServerGone(Exception):
    """The connection closed (the server process died or shut down)."""


class ServerTimeout(Exception):
    """No complete message arrived before the deadline."""


class ServerError(Exception):
    """The server answered a command with ERROR."""

    def __init__(self, command: str, payload: Any) -> None:
        self.command = command
        self.payload = payload
        text = payload.get("message", payload) if isinstance(payload, dict) else payload
        super().__init__(f"{command}: {text}")


# -- framing -------------------------------------------------------------------------------------
def encode_message(text: str) -> bytes:
    """Frame one message the way the server does: a length line before long ones."""
    body = text.encode("utf-8")
    if b"\r" in body or (body.isdigit() and body):
        raise ValueError("a message may not contain CR nor consist of digits only")
    if len(body) > LONG_MESSAGE_BYTES or b"\n" in body:
        return str(len(body) + 1).encode() + b"\n" + body + b"\n"
    return body + b"\n"


class MessageReader:
    """Cuts a byte stream into messages. Feed it bytes, take whole messages out."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_message(self) -> bytes | None:
        """The next complete message (without its line terminator), or None if incomplete."""
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                return None
            line = bytes(self._buf[:nl]).rstrip(b"\r")
            if not line:  # blank line between messages: nothing to deliver
                del self._buf[:nl + 1]
                continue
            if line.isdigit():
                size = int(line)
                if len(self._buf) < nl + 1 + size:
                    return None
                body = bytes(self._buf[nl + 1:nl + 1 + size])
                del self._buf[:nl + 1 + size]
                if body.endswith(b"\n"):
                    body = body[:-1]
                return body.rstrip(b"\r")
            del self._buf[:nl + 1]
            return line


# -- messages ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    """One server message: its kind and its argument (JSON decoded when it is JSON)."""

    kind: str  # OK | ERROR | NOTE | FINISHED | FAILED
    payload: Any = None  # decoded JSON, the raw text when it is not JSON, None when empty
    raw: str = ""

    @property
    def task(self) -> str | None:
        return self.payload.get("task") if isinstance(self.payload, dict) else None


def parse_reply(message: bytes) -> Reply:
    """``NAME ARGUMENT`` -> Reply; NAME is the longest prefix of letters, digits, '_' and '.'."""
    text = message.decode("utf-8", errors="replace")
    m = _NAME.match(message)
    name = message[:m.end()].decode("ascii")
    if name not in REPLY_KINDS:
        raise ProtocolError(f"not a server reply: {text[:120]!r}")
    arg = text[len(name):].strip(" ")
    if not arg:
        return Reply(name, None, text)
    try:
        payload = json.loads(arg)
    except json.JSONDecodeError:
        payload = arg  # YXML or plain text: kept as it came
    return Reply(name, payload, text)


def format_command(name: str, argument: Any = None) -> str:
    if argument is None:
        return name
    return f"{name} {json.dumps(argument, ensure_ascii=False, separators=(',', ':'))}"


@dataclass(frozen=True)
class Banner:
    """The first output line of `isabelle server`: where it listens and its password."""

    name: str
    host: str
    port: int
    password: str


def parse_banner(line: str) -> Banner | None:
    m = _BANNER.search(line)
    if not m:
        return None
    return Banner(m["name"], m["host"], int(m["port"]), m["password"])


@dataclass(frozen=True)
class TaskResult:
    """The end of an asynchronous task: FINISHED (ok) or FAILED, and the NOTEs seen before it."""

    task: str
    finished: bool
    payload: Any
    notes: tuple[Any, ...] = field(default_factory=tuple)

    @property
    def message(self) -> str:
        if isinstance(self.payload, dict):
            return str(self.payload.get("message", ""))
        return str(self.payload or "")


# -- the client ----------------------------------------------------------------------------------
class ServerConnection:
    """A blocking client on one TCP connection, every read bounded by a deadline."""

    def __init__(self, host: str, port: int, password: str, timeout: float = 30.0) -> None:
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise ServerGone(f"cannot connect to {host}:{port}: {e}") from e
        self._reader = MessageReader()
        self._pending: list[Reply] = []  # async replies read while waiting for something else
        self.hello = self._handshake(password, timeout)

    def _handshake(self, password: str, timeout: float) -> Any:
        self._send_text(password)
        try:
            reply = self.read(time.monotonic() + timeout)
        except ServerGone as e:
            raise ServerGone("the server closed the connection on the password (wrong password?)") from e
        if reply.kind != "OK":
            raise ProtocolError(f"unexpected answer to the password: {reply.raw[:200]}")
        return reply.payload

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

    # raw I/O
    def _send_text(self, text: str) -> None:
        try:
            self._sock.sendall(encode_message(text))
        except OSError as e:
            raise ServerGone(f"cannot write to the server: {e}") from e

    def read(self, deadline: float) -> Reply:
        """The next message from the server, waiting until ``deadline`` (time.monotonic())."""
        if self._pending:
            return self._pending.pop(0)
        while True:
            message = self._reader.next_message()
            if message is not None:
                return parse_reply(message)
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerTimeout("no reply before the deadline")
            self._sock.settimeout(left)
            try:
                data = self._sock.recv(65536)
            except socket.timeout:
                raise ServerTimeout("no reply before the deadline") from None
            except OSError as e:
                raise ServerGone(f"connection lost: {e}") from e
            if not data:
                raise ServerGone("the server closed the connection")
            self._reader.feed(data)

    # commands
    def send(self, name: str, argument: Any = None) -> None:
        self._send_text(format_command(name, argument))

    def command(self, name: str, argument: Any = None, timeout: float = 30.0) -> Any:
        """A synchronous command: its OK payload, or ServerError on ERROR."""
        self.send(name, argument)
        return self.await_sync(name, time.monotonic() + timeout)

    def await_sync(self, name: str, deadline: float) -> Any:
        """Wait for the OK/ERROR that answers the last command; async replies are kept for later."""
        held: list[Reply] = []
        try:
            while True:
                reply = self.read(deadline)
                if reply.kind == "OK":
                    return reply.payload
                if reply.kind == "ERROR":
                    raise ServerError(name, reply.payload)
                if reply.kind in ("FINISHED", "FAILED"):
                    held.append(reply)
        finally:
            self._pending[:0] = held

    def start_task(self, name: str, argument: Any = None, timeout: float = 30.0) -> str:
        """An asynchronous command: its task id (from ``OK {"task": ...}``)."""
        payload = self.command(name, argument, timeout)
        if not isinstance(payload, dict) or "task" not in payload:
            raise ProtocolError(f"{name} did not start a task: {payload!r}")
        return payload["task"]

    def await_task(self, task: str, deadline: float) -> TaskResult:
        """Read until the task's FINISHED or FAILED; its NOTEs are collected, others' ignored."""
        notes: list[Any] = []
        while True:
            reply = self.read(deadline)
            if reply.task != task:
                continue  # another task's leftovers (e.g. one cancelled earlier)
            if reply.kind == "NOTE":
                notes.append(reply.payload)
            elif reply.kind in ("FINISHED", "FAILED"):
                return TaskResult(task, reply.kind == "FINISHED", reply.payload, tuple(notes))
            elif reply.kind == "ERROR":
                raise ServerError("task", reply.payload)

    def run_task(self, name: str, argument: Any, timeout: float) -> TaskResult:
        deadline = time.monotonic() + timeout
        task = self.start_task(name, argument, timeout)
        return self.await_task(task, deadline)

    def cancel(self, task: str, grace: float) -> TaskResult | None:
        """Ask the server to stop a task; its final reply if it comes within ``grace`` seconds.

        The synchronous OK of ``cancel`` and the task's asynchronous FAILED may come in either order.
        """
        deadline = time.monotonic() + grace
        self.send("cancel", {"task": task})
        acknowledged, result = False, None
        while not (acknowledged and result is not None):
            try:
                reply = self.read(deadline)
            except ServerTimeout:
                return result if acknowledged else None
            if reply.kind == "OK":
                acknowledged = True
            elif reply.kind == "ERROR":
                raise ServerError("cancel", reply.payload)
            elif reply.kind in ("FINISHED", "FAILED") and reply.task == task:
                result = TaskResult(task, reply.kind == "FINISHED", reply.payload)
        return result
