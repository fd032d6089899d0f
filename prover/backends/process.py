"""The one place that starts and stops child processes.

Every prover process runs in its own session (so its process group is its pid), under resource
limits, in a working directory of its own that is also its TMPDIR (lia, nia and csdp write cache
and parameter files there, and they go when the directory goes). It is stopped by its process
group, never by name. Process trees and memory are read with psutil.
"""
from __future__ import annotations

import collections
import ctypes
import os
import resource
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass

import pexpect.fdpexpect
import psutil

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
        # coqtop is interrupted with SIGINT; a prover started in the background (nohup, `cmd &`) would
        # otherwise inherit SIGINT ignored, and an interrupt would become a restart.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
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


GUARD_NAME = "prover-tmp-guard"  # the guardian's $0: how it shows in a process list


class TempRoot:
    """A private temporary directory for everything one prover command creates (its provers' working
    directories included), made the process's TMPDIR, and removed when the command ends however it
    ends: by the command itself, or, when the command is killed (SIGKILL included), by a guardian
    process that waits for the end of a pipe only the command holds open.
    """

    def __init__(self, prefix: str = "prover-run-") -> None:
        self.path = tempfile.mkdtemp(prefix=prefix)
        read_end, self._write_end = os.pipe()  # not inherited by other children (close_fds)
        try:
            self._guard = subprocess.Popen(["/bin/sh", "-c", 'read _; rm -rf -- "$1"', GUARD_NAME, self.path],
                                           stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           start_new_session=True)  # a Ctrl-C is not for it
        except OSError:
            os.close(self._write_end)
            shutil.rmtree(self.path, ignore_errors=True)
            raise
        finally:
            os.close(read_end)
        self._previous = (tempfile.tempdir, os.environ.get("TMPDIR"))
        tempfile.tempdir = self.path
        os.environ["TMPDIR"] = self.path

    def close(self) -> None:
        tempdir, env = self._previous
        tempfile.tempdir = tempdir
        if env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = env
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._write_end)  # the guardian reads the end and exits
        try:
            self._guard.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._guard.kill()

    def __enter__(self) -> "TempRoot":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
    """Live descendants of ``pid``, so that groups they made can be stopped too."""
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


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


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (0 where unreadable)."""
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in family:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


def exit_description(returncode: int | None) -> str:
    """How a child ended, in words: 'status 1', 'signal SIGABRT', or 'still running'."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"status {returncode}"


def child_env(env: dict[str, str] | None, tmpdir: str | None) -> dict[str, str] | None:
    """The environment a child starts with: ``env`` (default: ours), TMPDIR set to ``tmpdir``."""
    if tmpdir is None:
        return env
    out = dict(os.environ if env is None else env)
    out["TMPDIR"] = tmpdir
    return out


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


class StderrTail:
    """Drains a child's stderr on a thread of its own, keeping the last lines for error reports.

    A pipe nobody reads fills up and blocks the child; a stderr merged into stdout lets whatever the
    child prints there pass for a reply (Lean's ``dbg_trace`` does)."""

    def __init__(self, stream, keep: int = 200) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=keep)
        self._thread = threading.Thread(target=self._drain, args=(stream,), name="stderr-drain", daemon=True)
        self._thread.start()

    def _drain(self, stream) -> None:
        try:
            for raw in iter(stream.readline, b""):
                self._lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
        except (OSError, ValueError):
            pass
        finally:
            try:
                stream.close()
            except OSError:
                pass

    def text(self, wait: float = 0.0) -> str:
        if wait:
            self._thread.join(wait)
        return "\n".join(self._lines)


class InteractiveProcess:
    """A long-lived child driven through pipes with pexpect.

    ``stderr="merge"`` sends its stderr into the stdout pexpect reads (coqtop and Isabelle report
    there); ``"drain"`` keeps it apart, read by a thread (``stderr_text``), for children whose stdout
    carries machine-read replies. ``tmpdir``: the child's TMPDIR; True (default) is its working
    directory, None leaves ours.
    """

    def __init__(self, argv: list[str], cwd: str, limits: ProcessLimits, timeout: float = 30.0,
                 env: dict[str, str] | None = None, tmpdir: str | bool | None = True,
                 stderr: str = "merge") -> None:
        self.argv = argv
        if stderr not in ("merge", "drain"):
            raise ValueError(f"stderr must be 'merge' or 'drain', not {stderr!r}")
        tmp = cwd if tmpdir is True else (tmpdir or None)
        self.token = secrets.token_hex(8)
        env = {**(child_env(env, tmp) or os.environ), TOKEN_VAR: self.token}
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT if stderr == "merge" else subprocess.PIPE,
                                bufsize=0, preexec_fn=_prepare_child(limits))
        self.spawn = PipeSpawn(proc, timeout)
        self.pid: int = proc.pid
        self._stderr = StderrTail(proc.stderr) if stderr == "drain" else None

    def alive(self) -> bool:
        return self.spawn.proc.poll() is None

    def returncode(self, wait: float = 0.0) -> int | None:
        """Its exit status (negative: the signal that ended it), waiting up to ``wait`` s for it."""
        try:
            return self.spawn.proc.wait(timeout=wait) if wait else self.spawn.proc.poll()
        except subprocess.TimeoutExpired:
            return None

    def stderr_text(self, wait: float = 0.0) -> str:
        """The last lines of a drained stderr ("" when stderr is merged)."""
        return self._stderr.text(wait) if self._stderr else ""

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
    """Run a program to completion under limits, with its working directory as TMPDIR; on timeout
    stop its whole group."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, env=child_env(None, cwd), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
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


class WorkerExit(BaseException):
    """Raised inside a worker when it is told to stop: it unwinds through the worker's own cleanup
    (``finally`` blocks close its prover and remove its working directories)."""


class WorkerProcess:
    """A Python worker (multiprocessing, spawn start) in its own process group, talking over a pipe.

    Its temporary files (the provers' working directories included) live under a directory of its
    own (``tmpdir``, its TMPDIR), which the worker removes when it exits and the driver removes
    again after it has gone, however it went. A worker leaves through its own cleanup: an idle one
    reads ``None`` and returns, a busy one gets SIGTERM, which it turns into ``WorkerExit``; so does
    the death of the driver (parent-death signal SIGTERM). Only a worker that does not exit within
    the grace period is killed.
    """

    def __init__(self, target, *args) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.tmpdir = tempfile.mkdtemp(prefix="prover-worker-")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_entry, args=(target, child, self.tmpdir, *args), daemon=True)
        self.proc.start()
        child.close()
        self.pid: int = self.proc.pid

    def ask_to_exit(self, busy: bool) -> None:
        """Ask it to exit through its cleanup: ``None`` on the pipe, read when it is idle; SIGTERM
        as well when it is ``busy`` (not to an idle one: it would cut short the cleanup under way)."""
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        if busy and self.proc.is_alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
                os.kill(self.pid, signal.SIGCONT)  # a stopped worker can clean up too
            except ProcessLookupError:
                pass

    def finish(self, grace: float) -> None:
        """Wait up to ``grace`` s for it to exit, then stop its group; remove its temporary files."""
        self.proc.join(timeout=grace)
        if self.proc.is_alive():
            stop_group(self.pid, grace=0.5)
            try:
                os.kill(self.pid, signal.SIGKILL)  # caught before it made its own group
            except ProcessLookupError:
                pass
            self.proc.join(timeout=5)
        self.conn.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def stop(self, grace: float = 5.0, busy: bool = True) -> None:
        self.ask_to_exit(busy)
        self.finish(grace)


def stop_workers(idle, busy, grace: float = 5.0) -> None:
    """Ask every worker to exit at once, then wait for them together."""
    workers = [(w, False) for w in idle] + [(w, True) for w in busy]
    for w, is_busy in workers:
        w.ask_to_exit(is_busy)
    deadline = time.monotonic() + grace
    for w, _ in workers:
        w.finish(max(0.0, deadline - time.monotonic()))


def _worker_entry(target, conn, tmpdir: str, *args) -> None:
    import multiprocessing as mp

    os.setsid()

    def on_term(*_) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the cleanup must run to its end
        raise WorkerExit()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when workers stop
    os.environ["TMPDIR"] = tmpdir
    tempfile.tempdir = tmpdir
    try:
        try:  # the driver's death asks for a clean exit too
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass
        parent = mp.parent_process()
        if parent is not None and os.getppid() != parent.pid:
            return  # the driver died before the request above took effect
        target(conn, *args)
    except WorkerExit:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        shutil.rmtree(tmpdir, ignore_errors=True)
