"""The held-out Coq library benchmark: theorems of the held-out library files, each in its file context.

Candidates are the theorems (Theorem, Lemma, ...) of the held-out files (``prover.corpus.records.
is_held_out``) whose proof ends with ``Qed``, that are not Program theorems and whose name is declared
once in their file. The reported test set is a fixed sample of them, drawn with a seed and committed
(``data/coqlib-test.jsonl``; ``make_sample`` wrote it), in file order. Each theorem is opened in its
installed file with everything before it (sections, modules, earlier lemmas) and nothing after it, and
a proof is checked by compiling that file, with the proof in place, from the installed source.

The prover's own tactic libraries (the Coq prelude: Lia, Lra, Psatz, Ring, Field, Hammer's tactics)
are loaded before the theorem's outermost section or module (``add_imports``), as CoqHammer and
Tactician load theirs; the full check keeps only the imports the written proof needs. Not for a file
that those libraries themselves load (``Coq.micromega.Env``, ``Coq.ZArith.Zorder``, ...): there the
installed, proved theorem would be in scope under its own name, so such files are opened as they are.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

from ..backends.coq.document import CoqDocument, CoqFileTheorem, FileContextError
from ..corpus.sources import Source, coq_root, library_sources

SPLITS = ("test",)
SAMPLE_FILE = Path(__file__).resolve().parent / "data" / "coqlib-test.jsonl"
SAMPLE_SEED = 0
SAMPLE_SIZE = 300
# Published numbers on the Coq standard library (each theorem with only the earlier ones), and the
# CPU-only learned prover of another system, for comparison (../shared/notes/coq-learning.md).
ANCHORS = (
    ("CoqHammer (Czajka & Kaliszyk 2018), stdlib", "40.8%"),
    ("Tactician k-NN (Blaauwbroek et al. 2020), stdlib", "39.3%"),
    ("Tactician + CoqHammer, stdlib", "56.7%"),
    ("TacticToe (HOL4 library, 60 s, 1 CPU)", "66.4%"),
)


@dataclass(frozen=True)
class CoqlibEntry:
    """One benchmark theorem: where it is and what it is called."""

    name: str  # file logical path + theorem name in the file, e.g. "Coq.Sorting.Sorting.M.foo"
    file: str  # logical path of the file, e.g. "Coq.Sorting.Sorting"
    path: str  # the file, relative to `coqc -where`, e.g. "theories/Sorting/Sorting.v"
    theorem: str  # name within the file, qualified by its modules: "foo", "M.foo"
    line: int
    library: str
    sha1: str  # of the source file when the sample was drawn
    add_imports: bool = True  # False where loading the prover's tactic libraries breaks the file

    @classmethod
    def from_json(cls, d: dict) -> "CoqlibEntry":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class CoqlibError(ValueError):
    pass


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def read_document(source: Source) -> CoqDocument:
    return CoqDocument.read(source.path, flags=source.flags)


def candidates(root: Path | None = None) -> list[CoqlibEntry]:
    """Every eligible theorem of the held-out files, in file order."""
    root = root or coq_root()
    out = []
    for source in library_sources(None, split="test", root=root):
        doc = read_document(source)
        counts: dict[str, int] = {}
        for t in doc.theorems:
            counts[t.name] = counts.get(t.name, 0) + 1
        rel = str(Path(source.path).relative_to(root))
        for t in doc.theorems:
            if t.ending != "Qed" or t.program or counts[t.name] > 1:
                continue
            out.append(CoqlibEntry(f"{source.logical_path}.{t.name}", source.logical_path, rel, t.name,
                                   doc.line_of(t.index), source.library, _sha1(doc.source)))
    return out


def usable(entries: list[CoqlibEntry], on_entry: Callable[[CoqlibEntry, str | None], None] | None = None,
           root: Path | None = None) -> tuple[list[CoqlibEntry], dict[str, str]]:
    """The candidates that can be benchmark theorems, and why the others cannot.

    A theorem is usable when its file compiles as the private copy the full check compiles, and it opens
    in its file context: with the prover's tactic libraries loaded before its outermost section or
    module, or, where loading them breaks the file (a name they bring shadows one of the file's), without
    them. One coqtop, file order, so that each file prefix runs once.
    """
    from ..backends.base import BackendError
    from ..backends.coq.backend import CoqBackend

    root = root or coq_root()
    sources = {s.logical_path: s for s in library_sources(None, split="test", root=root)}
    backend = CoqBackend()
    preloaded = prelude_libraries(backend.config)
    ok: list[CoqlibEntry] = []
    why: dict[str, str] = {}
    compiles: dict[str, str | None] = {}
    docs: dict[str, CoqDocument] = {}
    try:
        for e in entries:
            if e.file not in docs:
                docs[e.file] = read_document(sources[e.file])
                compiles[e.file] = _compiles_as_copy(docs[e.file], backend.config)
            reason = compiles[e.file]
            chosen = None
            if reason is None:
                # A file the tactic libraries load would be in scope, proved, under its own name.
                for add_imports in ((False,) if e.file in preloaded else (True, False)):
                    try:
                        backend.open(docs[e.file].theorem(e.theorem, add_imports=add_imports))
                        chosen = replace(e, add_imports=add_imports)
                        break
                    except BackendError as err:
                        reason = reason or f"does not open: {str(err)[:200]}"
            if chosen is not None:
                ok.append(chosen)
                reason = None
            else:
                why[e.name] = reason
            if on_entry:
                on_entry(e, reason if chosen is None else None if chosen.add_imports else "opens without imports")
    finally:
        backend.close()
    return ok, why


def prelude_libraries(config) -> set[str]:
    """Every library the prover's tactic prelude loads (``Print Libraries`` after it)."""
    from ..backends.process import WorkDir, run_once

    work = WorkDir("prover-coqlib-")
    try:
        Path(work.path, "Prelude.v").write_text(f"{config.prelude}\nPrint Libraries.\n", encoding="utf-8")
        run = run_once([config.coqc, "-q", "Prelude.v"], work.path, config.limits, 300)
    finally:
        work.cleanup()
    if run.returncode != 0:
        raise CoqlibError(f"the prelude does not compile: {' '.join(run.stderr.split())[-200:]}")
    return {w for w in run.stdout.split() if "." in w and w[0].isupper()}


def _compiles_as_copy(doc: CoqDocument, config) -> str | None:
    """The file as installed, compiled the way the full check compiles it (a copy named after its
    module, in a private directory, with the document's flags); None when it compiles."""
    from ..backends.process import WorkDir, run_once

    work = WorkDir("prover-coqlib-")
    try:
        Path(work.path, f"{doc.module}.v").write_text(doc.source, encoding="utf-8")
        run = run_once([config.coqc, "-q", *doc.flags, f"{doc.module}.v"], work.path, config.limits,
                       config.check_timeout)
    finally:
        work.cleanup()
    if run.timed_out:
        return f"the file does not compile as a copy within {config.check_timeout:.0f} s"
    if run.returncode != 0:
        return f"the file does not compile as a copy: {' '.join((run.stderr + run.stdout).split())[-200:]}"
    return None


def make_sample(pool: list[CoqlibEntry], size: int = SAMPLE_SIZE, seed: int = SAMPLE_SEED) -> list[CoqlibEntry]:
    """``size`` theorems of ``pool`` drawn with ``seed`` (from the pool sorted by name), in file order."""
    if len(pool) < size:
        raise CoqlibError(f"only {len(pool)} eligible theorems (wanted {size})")
    by_name = sorted(pool, key=lambda e: e.name)
    chosen = {e.name for e in random.Random(seed).sample(by_name, size)}
    return [e for e in pool if e.name in chosen]


def write_sample(entries: list[CoqlibEntry], path: Path = SAMPLE_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(asdict(e)) + "\n" for e in entries), encoding="utf-8")


def read_sample(path: Path = SAMPLE_FILE) -> list[CoqlibEntry]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise CoqlibError(f"cannot read the benchmark list {path}: {e.strerror}") from None
    return [CoqlibEntry.from_json(json.loads(line)) for line in lines if line.strip()]


@dataclass(frozen=True)
class CoqlibProblem:
    entry: CoqlibEntry
    theorem: CoqFileTheorem
    source: dict  # what the results line records about where the theorem came from


def load(split: str = "test", names: list[str] | None = None, limit: int | None = None,
         sample: Path = SAMPLE_FILE, root: Path | None = None) -> list[CoqlibProblem]:
    """The benchmark's theorems opened from the installed sources, in the sample's (file) order."""
    if split not in SPLITS:
        raise CoqlibError(f"unknown split {split!r} (one of {', '.join(SPLITS)})")
    entries = read_sample(sample)
    if names:
        known = {e.name for e in entries}
        missing = [n for n in names if n not in known]
        if missing:
            raise CoqlibError(f"not in the coqlib {split} set: {', '.join(missing[:5])}"
                              + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""))
        wanted = set(names)
        entries = [e for e in entries if e.name in wanted]
    entries = entries[:limit] if limit else entries
    root = root or coq_root()
    sources = {s.logical_path: s for s in library_sources(None, split="test", root=root)}
    docs: dict[str, CoqDocument] = {}
    out = []
    for e in entries:
        source = sources.get(e.file)
        if source is None:
            raise CoqlibError(f"{e.file} is not installed as a held-out file under {root}")
        if e.file not in docs:
            try:
                docs[e.file] = read_document(source)
            except FileContextError as err:
                raise CoqlibError(str(err)) from None
        doc = docs[e.file]
        try:
            theorem = doc.theorem(e.theorem, add_imports=e.add_imports)
        except FileContextError as err:
            raise CoqlibError(str(err)) from None
        info = {"benchmark": "coqlib", "file": e.file, "path": e.path, "line": e.line, "sha1": _sha1(doc.source),
                "sample_sha1": e.sha1, "add_imports": e.add_imports}
        out.append(CoqlibProblem(e, theorem, info))
    return out
