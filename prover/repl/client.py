"""A client of `prover repl` for scripts: start one (or connect to `prover repl --port N`), send
requests, read each request's responses.

    with ReplClient.spawn() as repl:
        reply = repl.request("suggest", statement="Theorem t : 1 + 1 = 2.", check=True)
        for c in reply["candidates"]: print(c["tactic"], c["goals"])
"""
from __future__ import annotations

import itertools
import json
import os
import queue
import socket
import sys
import threading
from typing import Any, Callable, Iterator

import pexpect

from ..backends.process import InteractiveProcess, ProcessLimits, stop_group
from .protocol import FINAL_TYPES, RequestId, id_key

_EOF = object()


class ReplClosed(ConnectionError):
    """The REPL ended (or the connection closed) before answering."""


class ReplClient:
    """Sends request lines and routes response lines to the request they answer, by id."""

    def __init__(self, write: Callable[[bytes], None], readline: Callable[[], bytes],
                 close: Callable[[], None]) -> None:
        self._write, self._readline, self._close = write, readline, close
        self.tap: Callable[[str, dict], None] | None = None  # sees ("sent" | "received", message), in order
        self._write_lock = threading.Lock()
        self._queues: dict[str, queue.Queue] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.unrouted: queue.Queue = queue.Queue()  # responses without a known id (`error` with id null)
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="prover-client-read", daemon=True)
        self._reader.start()

    # -- transports -----------------------------------------------------------------------------
    @classmethod
    def spawn(cls, repl_args: list[str] | tuple[str, ...] = (), cwd: str | None = None,
              env: dict[str, str] | None = None) -> "ReplClient":
        """Start `python -m prover repl` as a child (in its own process group, like every child).

        The REPL is killed if the thread that called this ends (``ProcessLimits.die_with_parent``):
        spawn from a thread that outlives the client.
        """
        argv = [sys.executable, "-m", "prover", "repl", *repl_args]
        # No memory cap on the REPL itself: its provers get their own caps, which they could not
        # raise above an inherited one. Its TMPDIR stays ours (not the user's directory it runs in):
        # it makes its own temp root there.
        proc = InteractiveProcess(argv, cwd or os.getcwd(), ProcessLimits(memory_bytes=None), env=env,
                                  tmpdir=None)
        spawn = proc.spawn  # its stdout carries the REPL's stderr too: lines that are not JSON

        def readline() -> bytes:
            try:
                spawn.expect("\n", timeout=None)
            except pexpect.EOF:
                return spawn.before.encode("utf-8")
            return (spawn.before + "\n").encode("utf-8")

        def close() -> None:
            try:
                spawn.proc.stdin.close()  # end of input: the REPL finishes and exits
                spawn.proc.wait(timeout=30)
            except Exception:
                pass
            stop_group(proc.pid, grace=1.0)

        def write(data: bytes) -> None:
            spawn.send(data.decode("ascii"))

        return cls(write, readline, close)

    @classmethod
    def connect(cls, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> "ReplClient":
        """Connect to `prover repl --port N`."""
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.settimeout(None)
        rfile = sock.makefile("rb")

        def close() -> None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

        return cls(sock.sendall, rfile.readline, close)

    # -- requests ---------------------------------------------------------------------------------
    def send(self, request: dict) -> RequestId:
        """Send one request (an id is chosen when it has none); returns its id."""
        request = dict(request)
        if "id" not in request:
            request["id"] = f"c{next(self._ids)}"
        with self._lock:
            if self._closed:
                raise ReplClosed("the REPL has ended")
            self._queues.setdefault(id_key(request["id"]), queue.Queue())
        line = json.dumps(request) + "\n"
        with self._write_lock:
            if self.tap:
                self.tap("sent", request)
            try:
                self._write(line.encode("ascii"))
            except (OSError, ValueError) as e:
                raise ReplClosed(f"cannot write to the REPL: {e}") from e
        return request["id"]

    def responses(self, id: RequestId, timeout: float | None = None) -> Iterator[dict]:
        """The responses to request ``id``, in order, up to and including its final one."""
        with self._lock:
            q = self._queues.setdefault(id_key(id), queue.Queue())
        while True:
            try:
                message = q.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no response to {id!r} within {timeout} s") from None
            if message is _EOF:
                raise ReplClosed(f"the REPL ended before answering {id!r}")
            yield message
            if message.get("type") in FINAL_TYPES:
                with self._lock:
                    self._queues.pop(id_key(id), None)
                return

    def request(self, cmd: str, on_progress: Callable[[dict], None] | None = None,
                timeout: float | None = None, **fields: Any) -> dict:
        """Send a request and wait for its final response (progress goes to ``on_progress``)."""
        rid = self.send({"cmd": cmd, **fields})
        for message in self.responses(rid, timeout):
            if message.get("type") == "progress":
                if on_progress:
                    on_progress(message)
            else:
                return message
        raise ReplClosed("no final response")  # unreachable: responses() ends on a final one

    def cancel(self, target: RequestId) -> None:
        """Ask to stop request ``target``; it then ends with a `cancelled` response."""
        self.send({"cmd": "cancel", "target": target})

    def shutdown(self, timeout: float | None = None) -> dict:
        return self.request("shutdown", timeout=timeout)

    def close(self) -> None:
        self._close()
        self._reader.join(timeout=5)

    def __enter__(self) -> "ReplClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------------
    def _read(self) -> None:
        try:
            while True:
                line = self._readline()
                if not line:
                    break
                self._route(line)
        except (OSError, ValueError):
            pass
        with self._lock:
            self._closed = True
            queues = list(self._queues.values())
        for q in queues + [self.unrouted]:
            q.put(_EOF)

    def _route(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict) or "type" not in message:
            sys.stderr.write(line.decode("utf-8", "replace"))  # the REPL's own diagnostics
            return
        if self.tap:
            self.tap("received", message)
        with self._lock:
            q = self._queues.get(id_key(message.get("id"))) if message.get("id") is not None else None
        (q or self.unrouted).put(message)


def run_requests(client: ReplClient, requests: list[dict], out: Callable[[dict], None],
                 progress: bool = True) -> int:
    """Send every request, print every response as it comes; 1 when any was an error, else 0.

    A `cancel` has no response of its own when it works, so it is not waited for.
    """
    ids, threads, errors = [], [], []

    def follow(rid: RequestId) -> None:
        try:
            for message in client.responses(rid):
                if message.get("type") == "error":
                    errors.append(message)
                if progress or message.get("type") != "progress":
                    out(message)
        except ReplClosed as e:
            errors.append({"id": rid, "type": "error", "code": "closed", "message": str(e)})
            out(errors[-1])

    for request in requests:
        rid = client.send(request)
        if request.get("cmd") != "cancel":
            t = threading.Thread(target=follow, args=(rid,), daemon=True)
            t.start()
            threads.append(t)
            ids.append(rid)
    for t in threads:
        t.join()
    while not client.unrouted.empty():
        message = client.unrouted.get()
        if isinstance(message, dict):
            errors.append(message)
            out(message)
    return 1 if errors else 0
