"""`prover corpus build`: trace many files in parallel into a corpus directory, resumably.

A corpus directory holds ``corpus.json`` (what it is a corpus of: the Coq version and the list of
source files; another selection is refused, never mixed in), one ``<logical/path>.jsonl.gz`` per
traced file (written atomically), ``manifest.ndjson`` (one line per finished file: ok or failed with
the reason, counts, skipped proofs; appended and fsynced as each file finishes, so a killed build
continues where it stopped) and ``stats.json`` (the totals, rewritten at the end of every run).
Only the driver writes the manifest; each worker process writes the files it traces.
"""
from __future__ import annotations

import collections
import json
import multiprocessing.connection
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..backends.process import WorkerProcess, stop_workers
from .records import write_file
from .sources import Source
from .trace import TraceOptions, trace_file

FORMAT = 1
IDENTITY_FILE = "corpus.json"
MANIFEST_FILE = "manifest.ndjson"
STATS_FILE = "stats.json"


class CorpusError(ValueError):
    """A corpus directory that cannot be used: reported as one line, exit code 2."""


def output_name(source: Source) -> str:
    return "/".join(source.logical_path.split(".")) + ".jsonl.gz"


@dataclass(frozen=True)
class FileResult:
    """One manifest line: how tracing one file went."""

    file: str  # logical path
    path: str
    library: str
    held_out: bool
    status: str  # ok | failed
    reason: str | None
    theorems: int
    steps: int
    sentences: int
    skipped: list
    seconds: float
    output: str | None  # relative path of the records file, None when nothing was traced

    @classmethod
    def from_json(cls, d: dict) -> "FileResult":
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})


def coq_version(coqtop: str = "coqtop") -> str:
    try:
        out = subprocess.run([coqtop, "-v"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    words = out.split()
    return words[words.index("version") + 1] if "version" in words else "unknown"


def trace_to(source: Source, out_dir: Path, options: TraceOptions) -> FileResult:
    """Trace one file and write its records; the result is what the manifest records."""
    trace = trace_file(source, options)
    output = None
    if trace.records:
        output = output_name(source)
        write_file(out_dir / output, trace.records)
    return FileResult(source.logical_path, source.path, source.library, source.held_out,
                      "failed" if trace.error else "ok", trace.error, trace.theorems, trace.steps,
                      trace.sentences, trace.skipped, round(trace.seconds, 3), output)


def _worker(conn, out_dir: str, options: TraceOptions) -> None:
    while True:
        try:
            source = conn.recv()
        except EOFError:
            return
        if source is None:
            return
        try:
            result = trace_to(source, Path(out_dir), options)
        except Exception as e:  # a tracer bug must cost one file, not the build
            result = FileResult(source.logical_path, source.path, source.library, source.held_out, "failed",
                                f"{type(e).__name__}: {e}", 0, 0, 0, [], 0.0, None)
        conn.send(result)


@dataclass
class CorpusDir:
    """A corpus directory: its identity, the files finished so far, and the stats."""

    path: Path
    done: dict[str, FileResult] = field(default_factory=dict)

    def open(self, identity: dict) -> None:
        """Create the directory for ``identity`` or resume it; refuse a directory holding anything else."""
        p = self.path
        if p.exists() and not p.is_dir():
            raise CorpusError(f"{p} is not a directory")
        ident_path = p / IDENTITY_FILE
        if ident_path.is_file():
            try:
                old = json.loads(ident_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise CorpusError(f"{ident_path} is unreadable: {e}") from None
            for key in ("format", "coq", "sources"):
                if old.get(key) != identity.get(key):
                    what = {"sources": "another selection of source files", "coq": "another Coq version",
                            "format": "another corpus format"}[key]
                    raise CorpusError(f"{p} holds a corpus of {what} ({_describe(old)}); choose another --out, "
                                      "or give the same selection to resume it")
            self._read_manifest()
            return
        if p.is_dir() and any(p.iterdir()):
            raise CorpusError(f"{p} is not empty and holds no corpus ({IDENTITY_FILE} missing); "
                              "choose another --out")
        p.mkdir(parents=True, exist_ok=True)
        _write_json(ident_path, identity)

    def _read_manifest(self) -> None:
        path = self.path / MANIFEST_FILE
        if not path.is_file():
            return
        data = path.read_bytes()
        good = data[:data.rfind(b"\n") + 1]  # a killed writer leaves at most a partial last line
        if len(good) != len(data):
            with open(path, "r+b") as f:
                f.truncate(len(good))
        for line in good.decode("utf-8").splitlines():
            if line.strip():
                r = FileResult.from_json(json.loads(line))
                self.done[r.file] = r

    def record(self, result: FileResult) -> None:
        with open(self.path / MANIFEST_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(result), ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done[result.file] = result

    def write_stats(self, identity: dict, run: dict) -> dict:
        ident_path = self.path / IDENTITY_FILE
        ident = json.loads(ident_path.read_text(encoding="utf-8"))
        ident.setdefault("runs", []).append(run)
        _write_json(ident_path, ident)
        stats = corpus_stats(self.path, identity["sources"], list(self.done.values()), ident["runs"],
                             identity.get("coq", "unknown"))
        _write_json(self.path / STATS_FILE, stats)
        return stats


def _describe(identity: dict) -> str:
    libs = identity.get("libraries") or []
    n = len(identity.get("sources") or [])
    return f"{n} files" + (f" of {', '.join(libs)}" if libs else "") + f", Coq {identity.get('coq')}"


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def corpus_stats(path: Path, sources: list[str], results: list[FileResult], runs: list[dict], coq: str) -> dict:
    ok = [r for r in results if r.status == "ok"]
    failed = [r for r in results if r.status != "ok"]
    reasons: collections.Counter = collections.Counter()
    for r in results:
        for s in r.skipped:
            reasons[s["reason"]] += 1
    by_library: dict[str, dict] = {}
    for r in results:
        lib = by_library.setdefault(r.library or "(other)", {"files": 0, "ok": 0, "theorems": 0, "steps": 0})
        lib["files"] += 1
        lib["ok"] += r.status == "ok"
        lib["theorems"] += r.theorems
        lib["steps"] += r.steps
    size = sum((path / r.output).stat().st_size for r in results if r.output and (path / r.output).is_file())
    return {
        "format": FORMAT, "coq": coq,
        "files": {"selected": len(sources), "ok": len(ok), "failed": len(failed),
                  "pending": len(set(sources) - {r.file for r in results}),
                  "held_out": sum(bool(r.held_out) for r in results)},
        "failed": [{"file": r.file, "reason": r.reason, "theorems_kept": r.theorems} for r in failed],
        "theorems": sum(r.theorems for r in results),
        "steps": sum(r.steps for r in results),
        "sentences": sum(r.sentences for r in results),
        "skipped_theorems": sum(reasons.values()),
        "skipped_by_reason": dict(reasons.most_common()),
        "by_library": by_library,
        "seconds_tracing": round(sum(r.seconds for r in results), 1),  # summed over files (CPU-bound work)
        "seconds_wall": round(sum(run.get("wall_seconds", 0.0) for run in runs), 1),  # summed over runs
        "runs": len(runs),
        "size_bytes": size,
    }


class CorpusBuild:
    """One run of a build: the selection is checked and the directory opened (or resumed) at once, so a
    bad selection or a directory holding another corpus is refused before any work starts."""

    def __init__(self, sources: list[Source], out: str | Path, options: TraceOptions | None = None,
                 libraries: list[str] | None = None, redo: list[str] | None = None) -> None:
        self.options = options or TraceOptions()
        seen: dict[str, str] = {}
        for s in sources:
            if s.logical_path in seen and seen[s.logical_path] != s.path:
                raise CorpusError(f"two files have the logical path {s.logical_path}: {seen[s.logical_path]} "
                                  f"and {s.path}")
            seen[s.logical_path] = s.path
        self.sources = list({s.logical_path: s for s in sources}.values())
        self.identity = {"format": FORMAT, "kind": "prover Coq proof corpus",
                         "coq": coq_version(self.options.coqtop), "libraries": libraries or [],
                         "sources": sorted(seen)}
        self.out = Path(out)
        self.corpus = CorpusDir(self.out)
        self.corpus.open(self.identity)
        for name in self._redo(redo or []):
            self.corpus.done.pop(name, None)  # traced again; its new manifest line supersedes the old one
        # Largest files first, so that the last file to finish is a short one.
        self.todo = sorted((s for s in self.sources if s.logical_path not in self.corpus.done),
                           key=lambda s: -_size(s.path))

    def _redo(self, names: list[str]) -> list[str]:
        """Logical paths to trace again: ``failed`` (every failed file), logical paths or source paths."""
        by_path = {str(Path(s.path).resolve()): s.logical_path for s in self.sources}
        out = []
        for name in names:
            if name == "failed":
                out += [f for f, r in self.corpus.done.items() if r.status != "ok"]
            elif name in self.identity["sources"]:
                out.append(name)
            elif str(Path(name).resolve()) in by_path:
                out.append(by_path[str(Path(name).resolve())])
            else:
                raise CorpusError(f"--redo {name}: not a file of this corpus (give its logical path, e.g. "
                                  f"{self.identity['sources'][0]}, its .v path, or 'failed')")
        return out

    @property
    def done(self) -> list[FileResult]:
        return list(self.corpus.done.values())

    def run(self, workers: int, on_file: Callable[[FileResult], None] | None = None) -> dict:
        """Trace what is left; returns the stats (also written to stats.json, even when interrupted)."""
        started, wall0 = time.time(), time.monotonic()

        def record(result: FileResult) -> None:
            self.corpus.record(result)
            if on_file:
                on_file(result)
        try:
            _run_pool(self.todo, self.out, self.options, workers, record)
        finally:
            run = {"started_at": started, "wall_seconds": round(time.monotonic() - wall0, 1),
                   "workers": workers, "files": len(self.todo), "host": platform.node()}
            stats = self.corpus.write_stats(self.identity, run)
        return stats


def build(sources: list[Source], out: str | Path, workers: int, options: TraceOptions | None = None,
          libraries: list[str] | None = None) -> dict:
    """Trace ``sources`` into ``out`` (resuming what it holds); returns the stats."""
    return CorpusBuild(sources, out, options, libraries).run(workers)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _run_pool(todo: list[Source], out: Path, options: TraceOptions, workers: int,
              on_result: Callable[[FileResult], None]) -> None:
    """Worker processes, one file at a time each; the driver alone records results."""
    pending = collections.deque(todo)
    idle: list[WorkerProcess] = []
    busy: dict[WorkerProcess, Source] = {}
    try:
        for _ in range(min(max(1, workers), len(todo))):
            idle.append(WorkerProcess(_worker, str(out), options))
        while pending or busy:
            while idle and pending:
                worker, source = idle.pop(), pending.popleft()
                worker.conn.send(source)
                busy[worker] = source
            by_conn = {w.conn: w for w in busy}
            for conn in multiprocessing.connection.wait(list(by_conn)):
                worker = by_conn[conn]
                source = busy.pop(worker)
                try:
                    result = conn.recv()
                    idle.append(worker)
                except (EOFError, OSError):
                    worker.stop()
                    result = FileResult(source.logical_path, source.path, source.library, source.held_out,
                                        "failed", "the worker process died", 0, 0, 0, [], 0.0, None)
                    if pending:
                        idle.append(WorkerProcess(_worker, str(out), options))
                on_result(result)
    finally:  # every worker leaves through its own cleanup (its coqtop stops, its files go)
        stop_workers(idle, list(busy))
