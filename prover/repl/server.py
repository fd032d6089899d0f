"""The REPL server: reads request lines, runs requests concurrently, writes response lines.

Each request runs on a worker thread with a backend of its own (a fresh one for `prove` and
`check`, an idle session of the same theorem for `suggest`); the loaded generator is shared.
`cancel` and `shutdown` are answered on the reading thread, never queued behind work.

Prover processes ask the kernel to kill them when the thread that started them ends
(``ProcessLimits.die_with_parent``). Workers are the threads of one pool that lives as long as the
server, so that is what we want: a prover never outlives the server, even when the server is killed.
"""
from __future__ import annotations

import socketserver
import sys
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..backends.base import Backend, BackendError
from ..backends.process import stop_group
from ..components import ConfigError, make_backend
from ..models.base import Candidate, Generator, GeneratorUnavailable
from ..search.best_first import Progress
from . import commands
from .protocol import (ByeReply, CancelledReply, CancelRequest, CheckRequest, Defaults, ErrorReply, ProgressEvent,
                       ProveRequest, Request, RequestError, Response, ShutdownRequest, SuggestRequest, encode, id_key,
                       parse_request)
from .sessions import SessionKey, SessionPool

GeneratorFactory = Callable[[str, str, Optional[str]], Generator]  # (name, backend, tactics file)


@dataclass(frozen=True)
class ServerConfig:
    defaults: Defaults = field(default_factory=Defaults)
    workers: int = 4  # requests running at once; more wait in line
    keep_sessions: int = 2  # idle suggest sessions kept open (each holds a prover process)
    progress_interval: float = 0.25  # seconds between progress events of one request
    online: bool = False  # proofs found by prove requests join the generator (online learning)


class SharedGenerator(Generator):
    """One loaded generator for every request. Calls take turns: a model on one device gains
    nothing from overlapping calls, and Hugging Face models are not thread-safe."""

    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self.name, self.model_id = inner.name, inner.model_id
        self._lock = threading.Lock()

    def generate(self, goals: str, n: int) -> list[Candidate]:
        with self._lock:
            return self.inner.generate(goals, n)

    def generate_batch(self, goals: list[str], n: int) -> list[list[Candidate]]:
        with self._lock:
            return self.inner.generate_batch(goals, n)

    def learn(self, steps: list[tuple[str, str]]) -> int:
        with self._lock:
            return self.inner.learn(steps)

    def learn_lemmas(self, lemmas: list[tuple[str, str]]) -> int:
        with self._lock:
            return self.inner.learn_lemmas(lemmas)

    def checkpoint(self) -> object:
        with self._lock:
            return self.inner.checkpoint()

    def rollback(self, mark: object) -> None:
        with self._lock:
            self.inner.rollback(mark)

    def close(self) -> None:
        self.inner.close()


class Generators:
    """Generators by (name, backend, tactics file), each loaded once, on first use. A served model
    takes concurrent calls (its service batches them); any other generator takes turns."""

    def __init__(self, factory: GeneratorFactory) -> None:
        self._factory = factory
        self._loaded: dict[tuple, Generator] = {}
        self._lock = threading.Lock()

    def get(self, name: str, backend: str, tactics_file: str | None) -> Generator:
        key = (name, backend, tactics_file)
        with self._lock:
            if key not in self._loaded:
                generator = self._factory(name, backend, tactics_file)
                self._loaded[key] = generator if generator.concurrent else SharedGenerator(generator)
            return self._loaded[key]

    def close(self) -> None:
        """Stop what the generators hold (generator service processes)."""
        with self._lock:
            loaded = list(self._loaded.values())
            self._loaded.clear()
        for generator in loaded:
            generator.close()


class Job:
    """One running request: its cancel flag, and the backend whose process a cancel stops."""

    def __init__(self, request: Request, connection: "Connection") -> None:
        self.request, self.connection = request, connection
        self.cancel = threading.Event()
        self.finished = threading.Event()
        self.started = time.monotonic()
        self.future: Future | None = None
        self._backend: Backend | None = None
        self._lock = threading.Lock()
        self._last_progress = 0.0

    def attach(self, backend: Backend) -> None:
        with self._lock:
            self._backend = backend
        if self.cancel.is_set():
            raise commands.Cancelled()

    def stop(self) -> None:
        """Flag the cancel and stop the prover process now (from the cancelling thread: only by
        its process group, never through the backend object, which is the worker's)."""
        self.cancel.set()
        threading.Thread(target=self._stop_provers, name="prover-repl-stop", daemon=True).start()

    def _stop_provers(self) -> None:
        # Until the worker is done: the backend may be starting its process right now, or restart it.
        stopped: set[int] = set()
        while not self.finished.is_set():
            with self._lock:
                pid = getattr(self._backend, "pid", None)
            if pid and pid not in stopped:
                stopped.add(pid)
                stop_group(pid, grace=0.2)
            self.finished.wait(0.02)

    def progress_due(self, interval: float) -> bool:
        now = time.monotonic()
        if self._last_progress and now - self._last_progress < interval:
            return False
        self._last_progress = now
        return True


class Connection:
    """One client: request lines in, response lines out through ``write``."""

    def __init__(self, server: "Server", write: Callable[[bytes], None]) -> None:
        self.server = server
        self._write = write
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self.jobs: dict[str, Job] = {}
        self.open = True

    def send(self, message: Response) -> None:
        data = (encode(message) + "\n").encode("ascii")
        with self._write_lock:
            if not self.open:
                return
            try:
                self._write(data)
            except (OSError, ValueError):
                self.open = False  # the client is gone: its requests have nobody to answer
                for job in self.running():
                    job.stop()

    def running(self) -> list[Job]:
        with self._lock:
            return list(self.jobs.values())

    def gone(self) -> None:
        """The client went away: nobody can read what its requests would answer, so they are
        cancelled and their provers stopped."""
        with self._write_lock:
            self.open = False
        for job in self.running():
            job.stop()

    def receive(self, line: bytes) -> ShutdownRequest | None:
        """Handle one request line; a shutdown request is returned for the caller to carry out."""
        if not line.strip():
            return None
        try:
            request = parse_request(line, self.server.config.defaults)
        except RequestError as e:
            self.send(ErrorReply(e.id, e.code, e.message))
            return None
        if isinstance(request, ShutdownRequest):
            return request
        if isinstance(request, CancelRequest):
            self._cancel(request)
            return None
        with self._lock:
            key = id_key(request.id)
            if key in self.jobs:
                error = ErrorReply(request.id, "duplicate_id", f"request {request.id!r} is still running")
            elif self.server.stopping.is_set():
                error = ErrorReply(request.id, "shutting_down", "the server is shutting down")
            else:
                error = None
                job = Job(request, self)
                self.jobs[key] = job
        if error is not None:
            self.send(error)
            return None
        try:
            job.future = self.server.submit(job)
        except RuntimeError:  # the pool was shut down by a shutdown from another client
            self.finish(job, ErrorReply(request.id, "shutting_down", "the server is shutting down"))
        return None

    def _cancel(self, request: CancelRequest) -> None:
        with self._lock:
            job = self.jobs.get(id_key(request.target))
            if job is not None:
                job.stop()  # under the lock: finish() now answers `cancelled`, whatever the worker got
        if job is None:
            self.send(ErrorReply(request.id, "unknown_target", f"no running request with id {request.target!r}"))
        elif job.future is not None and job.future.cancel():  # it was still waiting for a worker
            self.finish(job, CancelledReply(job.request.id, 0.0))

    def finish(self, job: Job, reply: Response) -> None:
        """Send a request's final response; after a cancel, that is `cancelled`."""
        with self._lock:
            self.jobs.pop(id_key(job.request.id), None)
            if job.cancel.is_set():
                reply = CancelledReply(job.request.id, time.monotonic() - job.started)
        job.finished.set()
        self.send(reply)

    def wait(self) -> None:
        """Block until every request of this connection has answered."""
        for job in self.running():
            job.finished.wait()


class Server:
    """Shared by every connection: the worker pool, the generators, the idle sessions."""

    def __init__(self, config: ServerConfig, generator_factory: GeneratorFactory) -> None:
        self.config = config
        self.generators = Generators(generator_factory)
        self.sessions = SessionPool(config.keep_sessions, lambda key: make_backend(key.backend, key.options))
        self.executor = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="prover-repl")
        self.stopping = threading.Event()
        self.connections: set[Connection] = set()
        self._lock = threading.Lock()

    def connect(self, write: Callable[[bytes], None]) -> Connection:
        conn = Connection(self, write)
        with self._lock:
            self.connections.add(conn)
        return conn

    def disconnect(self, conn: Connection) -> None:
        with self._lock:
            self.connections.discard(conn)

    def submit(self, job: Job) -> Future:
        return self.executor.submit(self._run, job)

    # -- stopping ------------------------------------------------------------------------------
    def finish(self) -> None:
        """Let every request in flight answer, then stop every prover."""
        self.stopping.set()
        self.executor.shutdown(wait=True)
        self.sessions.close_all()
        self.generators.close()

    def abort(self) -> None:
        """Cancel everything in flight and stop every prover (on a signal or a crash)."""
        self.stopping.set()
        with self._lock:
            conns = list(self.connections)
        for conn in conns:
            for job in conn.running():
                job.stop()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.sessions.close_all()
        self.generators.close()

    # -- running one request --------------------------------------------------------------------
    def _run(self, job: Job) -> None:
        request = job.request
        try:
            if job.cancel.is_set():
                raise commands.Cancelled()
            if isinstance(request, ProveRequest):
                reply = self._prove(job, request)
            elif isinstance(request, SuggestRequest):
                reply = self._suggest(job, request)
            else:
                reply = self._check(job, request)
        except commands.Cancelled:
            reply = CancelledReply(request.id, time.monotonic() - job.started)
        except RequestError as e:
            reply = ErrorReply(request.id, e.code, e.message)
        except ConfigError as e:
            reply = ErrorReply(request.id, "bad_request", str(e))
        except BackendError as e:
            reply = ErrorReply(request.id, "prover_error", f"{type(e).__name__}: {e}")
        except GeneratorUnavailable as e:  # the model's service died: the next request starts it again
            reply = ErrorReply(request.id, "generator_unavailable", str(e))
        except Exception as e:  # a bug: report it, keep serving
            traceback.print_exc(file=sys.stderr)
            reply = ErrorReply(request.id, "internal_error", f"{type(e).__name__}: {e}")
        job.connection.finish(job, reply)

    def _prove(self, job: Job, request: ProveRequest) -> Response:
        theorem, _ = commands.resolve_theorem(request.theorem, request.backend, request.id)
        options = commands.backend_options(request.theorem, request.options, request.backend, request.id)
        generator = self.generators.get(request.generator, request.backend, request.tactics_file)
        conn, interval = job.connection, self.config.progress_interval

        def on_progress(p: Progress) -> None:
            if request.progress and job.progress_due(interval):
                conn.send(ProgressEvent(request.id, p.expansions, p.nodes, p.tactic_calls, p.best_depth,
                                        round(p.elapsed, 3)))

        backend = make_backend(request.backend, options)
        try:
            job.attach(backend)
            return commands.prove(request, theorem, backend, generator, job.cancel, on_progress,
                                  self.config.online)
        finally:
            backend.close()

    def _suggest(self, job: Job, request: SuggestRequest) -> Response:
        generator = self.generators.get(request.generator, request.backend, request.tactics_file)
        if request.theorem is None:
            return commands.suggest(request, None, (), generator, job.cancel)
        theorem, tactics = commands.resolve_theorem(request.theorem, request.backend, request.id)
        options = commands.backend_options(request.theorem, request.options, request.backend, request.id)
        session = self.sessions.take(SessionKey(request.backend, theorem, options))
        try:
            job.attach(session.backend)
            return commands.suggest(request, session, tactics or request.tactics, generator, job.cancel)
        except RequestError:
            raise  # a wrong proof so far: the session itself is fine
        except BaseException:
            session.healthy = False
            raise
        finally:
            if job.cancel.is_set():
                session.healthy = False  # its process was stopped
            self.sessions.give_back(session)

    def _check(self, job: Job, request: CheckRequest) -> Response:
        theorem, _ = commands.resolve_theorem(request.theorem, request.backend, request.id)
        options = commands.backend_options(request.theorem, request.options, request.backend, request.id)
        backend = make_backend(request.backend, options)
        try:
            job.attach(backend)
            return commands.check(request, theorem, backend)
        finally:
            backend.close()


# -- transports ------------------------------------------------------------------------------------
def serve_stdio(server: Server, stdin=None, stdout=None) -> int:
    """Serve one client on stdin/stdout until `shutdown` or end of input; 0 when it ended cleanly."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer

    def write(data: bytes) -> None:
        stdout.write(data)
        stdout.flush()

    conn = server.connect(write)
    shutdown: ShutdownRequest | None = None
    try:
        for line in iter(stdin.readline, b""):
            shutdown = conn.receive(line)
            if shutdown is not None:
                break
        server.finish()
        conn.send(ByeReply(shutdown.id if shutdown else None))
        return 0
    finally:
        server.abort()  # no-op after finish(); stops everything on a signal


class _LineHandler(socketserver.StreamRequestHandler):
    server: "_TCPServer"

    def handle(self) -> None:
        repl = self.server.repl
        conn = repl.connect(self.request.sendall)
        try:
            for line in iter(self.rfile.readline, b""):
                shutdown = conn.receive(line)
                if shutdown is not None:
                    self.server.request_shutdown(conn, shutdown)
                    self.server.said_bye.wait()  # keep the socket open for the `bye`
                    return
            # The client closed the connection: it is gone (a client keeps the connection open until
            # it has its answers), so what it asked is cancelled rather than left running.
            conn.gone()
            conn.wait()
        finally:
            repl.disconnect(conn)


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, repl: Server) -> None:
        self.repl = repl
        self.shutdown_from: tuple[Connection, ShutdownRequest] | None = None
        self.shutdown_requested = threading.Event()
        self.said_bye = threading.Event()
        self._first = threading.Lock()
        super().__init__(("127.0.0.1", port), _LineHandler)  # loopback only: no one else may drive provers

    def request_shutdown(self, conn: Connection, request: ShutdownRequest) -> None:
        with self._first:
            if self.shutdown_from is None:
                self.shutdown_from = (conn, request)
        self.shutdown_requested.set()


def serve_tcp(server: Server, port: int, on_listening: Callable[[str, int], None] | None = None) -> int:
    """Serve any number of clients on 127.0.0.1:port until one sends `shutdown`."""
    tcp = _TCPServer(port, server)
    try:
        if on_listening:
            on_listening(*tcp.server_address[:2])
        threading.Thread(target=tcp.serve_forever, name="prover-repl-accept", daemon=True).start()
        tcp.shutdown_requested.wait()
        tcp.shutdown()  # accept no more clients
        server.finish()
        conn, request = tcp.shutdown_from
        conn.send(ByeReply(request.id))
        tcp.said_bye.set()
        return 0
    finally:
        tcp.said_bye.set()
        tcp.server_close()
        server.abort()
