"""One model for many provers: a generator service process and its clients.

The service process loads the model once and answers ``generate_batch`` calls from any number of
prover workers over a Unix socket (``multiprocessing.connection``: pickled messages, authenticated by a
random key, in a private 0700 directory). Concurrent requests are gathered into one model call by a
``Batcher``, up to ``batch_states`` states. The process is started and stopped through
``backends/process.py`` (own process group, parent-death signal), so it never outlives its driver.

Failure: when the service dies, the kernel closes its sockets, so every request in flight or sent
later fails at once with ``GeneratorUnavailable``; a model that raises on a batch answers those
requests with ``GeneratorError`` and keeps serving.

Workers get a ``SocketAddress`` (picklable) and call ``address.connect()``. Ray runs use a model actor
instead (``ray_service.py``) behind the same ``Generator`` interface.
"""
from __future__ import annotations

import os
import platform
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import AuthenticationError, Client, Listener

from ..backends.process import WorkDir, WorkerProcess
from ..components import ConfigError, ModelOptions
from .base import Candidate, Generator, GeneratorError, GeneratorUnavailable
from .batching import Batcher, BatcherStats


@dataclass(frozen=True)
class ServiceConfig:
    """The model a service serves, for which prompt format (the backend), and how it batches."""

    backend: str
    model: ModelOptions

    @property
    def max_states(self) -> int:
        return self.model.batch_states


# -- protocol messages --------------------------------------------------------------------------
@dataclass(frozen=True)
class GenerateRequest:
    client: str  # who asks ("host:pid", plus the thread for threaded clients): batches are counted by it
    goals: tuple[str, ...]
    n: int


@dataclass(frozen=True)
class GenerateReply:
    candidates: tuple[tuple[Candidate, ...], ...]


@dataclass(frozen=True)
class StatsRequest:
    pass


@dataclass(frozen=True)
class FailedReply:
    message: str


@dataclass(frozen=True)
class ServiceStats:
    pid: int
    host: str
    model: str
    load_seconds: float
    rss_bytes: int  # resident memory of the service process now
    batcher: BatcherStats = field(repr=False)


def rss_bytes(pid: int | str = "self") -> int:
    """Resident memory of a process (Linux /proc; 0 where unreadable)."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def client_name() -> str:
    thread = threading.current_thread()
    base = f"{platform.node()}:{os.getpid()}"
    return base if thread is threading.main_thread() else f"{base}/{thread.name}"


# -- client ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SocketAddress:
    """Where a local generator service listens; what a worker needs to reach it (picklable)."""

    path: str
    authkey: bytes = field(repr=False)
    model: str = ""  # the model's id, so records name it as in-process generation does

    def connect(self) -> "ServiceClient":
        return ServiceClient(self)


class ServiceClient(Generator):
    """The model behind a generator service, as a ``Generator``. Thread-safe: one connection per thread."""

    concurrent = True  # callers need no lock: the service gathers concurrent calls into batches

    def __init__(self, address: SocketAddress) -> None:
        self.address = address
        self.name, self.model_id = "hf", address.model
        self._local = threading.local()

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = Client(self.address.path, family="AF_UNIX", authkey=self.address.authkey)
            except (OSError, EOFError, AuthenticationError) as e:
                raise GeneratorUnavailable(f"the generator service is not running ({type(e).__name__}: "
                                           f"{e})") from None
            self._local.conn = conn
        return conn

    def _call(self, message):
        conn = self._connection()
        try:
            conn.send(message)
            reply = conn.recv()
        except (EOFError, OSError) as e:
            self._drop()
            raise GeneratorUnavailable("the generator service stopped while answering "
                                       f"({type(e).__name__}{': ' + str(e) if str(e) else ''})") from None
        if isinstance(reply, FailedReply):
            raise GeneratorError(reply.message)
        return reply

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def generate(self, goals: str, n: int) -> list[Candidate]:
        return self.generate_batch([goals], n)[0]

    def generate_batch(self, goals: list[str], n: int) -> list[list[Candidate]]:
        if not goals:
            return []
        reply = self._call(GenerateRequest(client_name(), tuple(goals), n))
        return [list(c) for c in reply.candidates]

    def stats(self) -> ServiceStats:
        return self._call(StatsRequest())

    def close(self) -> None:
        self._drop()


# -- the service process ----------------------------------------------------------------------------
def _answer(conn, batcher: Batcher, info: dict) -> None:
    """Serve one client connection until it closes."""
    try:
        while True:
            message = conn.recv()
            if isinstance(message, GenerateRequest):
                try:
                    out = batcher.submit(message.client, list(message.goals), message.n)
                    reply = GenerateReply(tuple(tuple(c) for c in out))
                except GeneratorError as e:
                    reply = FailedReply(str(e))
            elif isinstance(message, StatsRequest):
                reply = ServiceStats(info["pid"], info["host"], info["model"], info["load_seconds"],
                                     rss_bytes(), batcher.stats())
            else:
                reply = FailedReply(f"unknown message {type(message).__name__}")
            conn.send(reply)
    except (EOFError, OSError):
        pass
    finally:
        conn.close()


def _serve(control, config: ServiceConfig, address: SocketAddress) -> None:
    """The service process: load the model, say ready (or why not), then answer until stopped."""
    from ..components import make_generator

    start = time.monotonic()
    try:
        generator = make_generator("hf", config.backend, None, config.model)
    except ConfigError as e:
        control.send(("error", str(e)))
        return
    except Exception as e:  # noqa: BLE001 - any load failure is reported to the driver as one line
        control.send(("error", f"cannot load model {config.model.model!r}: {type(e).__name__}: {e}"))
        return
    batcher = Batcher(generator, config.max_states, config.model.gather_seconds)
    listener = Listener(address.path, family="AF_UNIX", authkey=address.authkey)
    info = {"pid": os.getpid(), "host": platform.node(), "model": address.model,
            "load_seconds": time.monotonic() - start}
    control.send(("ready", os.getpid(), info["load_seconds"]))

    def watch_driver() -> None:  # the driver closed its end (it stopped us, or it is gone)
        try:
            control.recv()
        except (EOFError, OSError):
            pass
        os._exit(0)

    threading.Thread(target=watch_driver, name="prover-service-watch", daemon=True).start()
    while True:
        try:
            conn = listener.accept()
        except (AuthenticationError, EOFError, OSError):
            continue  # a caller without the key, or one that hung up during the handshake
        threading.Thread(target=_answer, args=(conn, batcher, info), name="prover-service-conn",
                         daemon=True).start()


class GeneratorService:
    """Starts the service process and waits until its model is loaded; ``ConfigError`` if it cannot be."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self._dir = WorkDir("prover-generator-")
        self.address = SocketAddress(os.path.join(self._dir.path, "generator.sock"), os.urandom(32),
                                     config.model.model or "")
        self._process = WorkerProcess(_serve, config, self.address)
        self.pid = self._process.pid
        try:
            message = self._process.conn.recv()
        except (EOFError, OSError):
            message = ("error", "the generator service died while loading the model")
        if message[0] != "ready":
            self.stop()
            raise ConfigError(message[1])
        self.load_seconds = message[2]

    def alive(self) -> bool:
        return self._process.proc.is_alive()

    def client(self) -> ServiceClient:
        return self.address.connect()

    def stop(self) -> None:
        self._process.stop()
        self._dir.cleanup()

    def __enter__(self) -> "GeneratorService":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class ServedModel(Generator):
    """A generator service owned by this process, started again on the next call after it died.

    The REPL's model: a request in flight when the service dies gets ``GeneratorUnavailable`` (an error
    reply); the next request starts a fresh service and goes on.
    """

    concurrent = True

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.name, self.model_id = "hf", config.model.model
        self._lock = threading.Lock()
        self._service: GeneratorService | None = None
        self._client: ServiceClient | None = None
        self._service = GeneratorService(config)  # load now: a bad model is a ConfigError at once
        self._client = self._service.client()
        self._failed = False  # a request found the service gone (it may not be reaped yet)
        self.starts = 1

    def _current(self) -> ServiceClient:
        with self._lock:
            if self._service is None or self._failed or not self._service.alive():
                self._failed = False
                if self._service is not None:
                    self._service.stop()
                    self._service = None
                try:
                    self._service = GeneratorService(self.config)
                except ConfigError as e:
                    raise GeneratorUnavailable(f"the generator service does not start: {e}") from None
                self._client = self._service.client()
                self.starts += 1
            return self._client

    @property
    def service(self) -> GeneratorService | None:
        return self._service

    def generate(self, goals: str, n: int) -> list[Candidate]:
        return self.generate_batch([goals], n)[0]

    def generate_batch(self, goals: list[str], n: int) -> list[list[Candidate]]:
        client = self._current()
        try:
            return client.generate_batch(goals, n)
        except GeneratorUnavailable:
            with self._lock:
                if client is self._client:
                    self._failed = True  # the next call starts a fresh service
            raise

    def stats(self) -> ServiceStats:
        return self._current().stats()

    def close(self) -> None:
        with self._lock:
            if self._service is not None:
                self._service.stop()
                self._service = None
