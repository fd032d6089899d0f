"""The one place that starts and stops child processes.

Every prover process runs in its own session (so its process group is its pid), under resource
limits, in a working directory of its own (lia, nia and csdp write cache files there). It is
stopped by its process group, never by name.
"""
from __future__ import annotations

import ctypes
import os
import resource
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass

import pexpect.fdpexpect

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessLimits:
    """Resource limits applied to a child before it runs its program."""

    memory_bytes: int | None = 6 * 1024**3  # RLIMIT_AS
    cpu_seconds: int | None = None  # RLIMIT_CPU
    die_with_parent: bool = True  # SIGKILL the child if the thread that started it dies


def _prepare_child(limits: ProcessLimits):
    """Build the preexec hook: new session, rlimits, parent-death signal."""

    def hook() -> None:
        os.setsid()
        if limits.memory_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        if limits.cpu_seconds:
            resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        if limits.die_with_parent:
            try:
                ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            except OSError:  # not Linux: rely on the closed pipe instead
                pass

    return hook


class WorkDir:
    """A private temporary working directory, removed on cleanup."""

    def __init__(self, prefix: str = "prover-") -> None:
        self.path = tempfile.mkdtemp(prefix=prefix)

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def stop_group(pid: int, grace: float = 1.0) -> None:
    """Stop the process group led by ``pid``: SIGTERM, then SIGKILL after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _group_alive(pid):
                return
            time.sleep(0.01)


def descendants(pid: int) -> list[int]:
    """Live descendants of ``pid`` (read from /proc), so that groups they made can be stopped too."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_tree(pid: int, grace: float = 1.0) -> None:
    """Stop the group led by ``pid`` and every group led by one of its descendants.

    Some provers start helpers in process groups of their own (Isabelle's bash_process does), which
    stopping the leader's group alone would leave running.
    """
    family = [pid, *descendants(pid)]
    own = os.getpgrp()
    groups = []
    for p in family:
        try:
            g = os.getpgid(p)
        except (ProcessLookupError, PermissionError):
            continue
        if g != own and g in family and g not in groups:
            groups.append(g)
    if pid not in groups:
        groups.insert(0, pid)
    for g in groups:
        stop_group(g, grace)


# Every process an InteractiveProcess starts inherits this variable with a value of its own, so the
# processes it leaves behind are found even after they left its process group and were orphaned
# (CoqHammer's ATP runner calls setsid, and the process that waited for it may be gone).
TOKEN_VAR = "PROVER_PROCESS_TOKEN"


def processes_with_token(token: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries ``TOKEN_VAR=token``."""
    needle = f"{TOKEN_VAR}={token}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
        except (OSError, IndexError):
            continue
        found.append(int(entry))
    return found


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    # A zombie leader still "exists"; reap it if it is our child.
    try:
        done, _ = os.waitpid(pgid, os.WNOHANG)
        if done == pgid:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return False
    except ChildProcessError:
        pass
    return True


def group_rss_bytes(pgid: int) -> int:
    """Resident memory of every process in group ``pgid`` (Linux /proc; 0 where unreadable)."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
            # Fields after the parenthesised command name: state ppid pgrp ...
            if int(stat[stat.rindex(")") + 2:].split()[2]) != pgid:
                continue
            with open(f"/proc/{entry}/statm", encoding="ascii") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
    return total


class PipeSpawn(pexpect.fdpexpect.fdspawn):
    """pexpect over a child's pipes (no tty: no echo, no line limit, no CR/LF rewriting).

    Reads block in select() until output arrives: no reader thread and no polling loop, which
    matters on a 2-core machine where the prover needs the other core. Writes go to the child's stdin.
    """

    def __init__(self, proc: subprocess.Popen, timeout: float) -> None:
        super().__init__(proc.stdout.fileno(), timeout=timeout, maxread=65536, encoding="utf-8",
                         codec_errors="replace")
        self.proc = proc
        self.pid = proc.pid
        self.delayafterread = None  # reads block, so pexpect's anti-spin sleep is pure latency

    def send(self, s) -> int:
        data = s.encode("utf-8") if isinstance(s, str) else s
        self.proc.stdin.write(data)
        self.proc.stdin.flush()
        return len(data)

    def sendline(self, s="") -> int:
        return self.send(s + "\n")

    def isalive(self) -> bool:
        return self.proc.poll() is None


class InteractiveProcess:
    """A long-lived child driven through pipes with pexpect; stderr is merged into stdout."""

    def __init__(self, argv: list[str], cwd: str, limits: ProcessLimits, timeout: float = 30.0,
                 env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.token = secrets.token_hex(8)
        env = {**(os.environ if env is None else env), TOKEN_VAR: self.token}
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, bufsize=0, preexec_fn=_prepare_child(limits))
        self.spawn = PipeSpawn(proc, timeout)
        self.pid: int = proc.pid

    def alive(self) -> bool:
        return self.spawn.proc.poll() is None

    def interrupt(self, group: bool = True) -> None:
        """SIGINT the whole group, or the process alone (coqtop answers with 'User interrupt' and
        survives)."""
        try:
            if group:
                os.killpg(self.pid, signal.SIGINT)
            else:
                os.kill(self.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def stop_strays(self) -> int:
        """Stop every process this one started that is still running (the process itself lives on):
        each in a group of its own is stopped with its group. Returns how many were found."""
        strays = [p for p in processes_with_token(self.token) if p != self.pid]
        for p in strays:
            try:
                group = os.getpgid(p)
            except ProcessLookupError:
                continue
            try:
                if group not in (self.pid, os.getpgrp()):
                    os.killpg(group, signal.SIGKILL)
                else:
                    os.kill(p, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + 2.0  # SIGKILL is not instant: wait until they are gone
        while strays and time.monotonic() < deadline and any(
                p != self.pid for p in processes_with_token(self.token)):
            time.sleep(0.02)
        return len(strays)

    def stop(self, tree: bool = False) -> None:
        """Close stdin and stop the group (``tree``: also the groups its descendants made), then
        whatever it started that still runs elsewhere."""
        try:
            self.spawn.proc.stdin.close()
        except OSError:
            pass
        if tree:
            stop_tree(self.pid, grace=0.5)
        else:
            stop_group(self.pid, grace=0.5)
        self.stop_strays()
        try:
            self.spawn.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        try:
            self.spawn.proc.stdout.close()
        except OSError:
            pass


@dataclass(frozen=True)
class CompletedRun:
    returncode: int | None  # None when it was stopped at its time limit
    stdout: str
    stderr: str
    elapsed: float
    timed_out: bool


def run_once(argv: list[str], cwd: str, limits: ProcessLimits, timeout: float) -> CompletedRun:
    """Run a program to completion under limits; on timeout stop its whole group."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace",
                            preexec_fn=_prepare_child(limits))
    try:
        out, err = proc.communicate(timeout=timeout)
        return CompletedRun(proc.returncode, out, err, time.monotonic() - start, False)
    except subprocess.TimeoutExpired:
        stop_group(proc.pid, grace=0.5)
        out, err = proc.communicate()
        return CompletedRun(None, out, err, time.monotonic() - start, True)
    except BaseException:
        stop_group(proc.pid, grace=0.5)
        proc.wait()
        raise


class WorkerProcess:
    """A Python worker (multiprocessing, spawn start) in its own process group, talking over a pipe.

    It dies with its parent (parent-death signal), and the prover processes it starts die with it.
    """

    def __init__(self, target, *args) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_entry, args=(target, child, *args), daemon=True)
        self.proc.start()
        child.close()
        self.pid: int = self.proc.pid

    def stop(self) -> None:
        stop_group(self.pid, grace=1.0)
        if self.proc.is_alive():  # caught before it made its own group: stop the process itself
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.join(timeout=5)
        self.conn.close()


def _worker_entry(target, conn, *args) -> None:
    os.setsid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when workers stop
    target(conn, *args)
