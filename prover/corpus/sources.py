"""Where the Coq sources are: the installed libraries, their logical paths and load-path flags.

``coqc -where`` is the Coq root. The standard library's sources are ``theories/**.v`` (logical prefix
``Coq.``); every directory of ``user-contrib/`` is a library of its own (``Flocq``, ``mathcomp``, ...)
whose files ``Require`` their siblings by short name, so they are stepped with the library's directory
mapped (``-R <root>/user-contrib/Flocq Flocq``), which is what the library's own build does.
``-topfile`` makes coqtop name the module as coqc would (``Coq.Lists.List``), so a file that refers to
its own definitions by qualified name steps as it compiles.
"""
from __future__ import annotations

import functools
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .records import is_held_out

STDLIB = "Coq"


class SourceError(ValueError):
    """A bad source selection: reported as one line, exit code 2."""


@dataclass(frozen=True)
class Source:
    """One .v file to trace, with the flags coqtop needs to step it as its library compiles it."""

    path: str  # absolute path of the .v file
    logical_path: str  # e.g. "Coq.Lists.List"
    library: str  # "Coq", "Flocq", ... or "" for a file outside the installed libraries
    flags: tuple[str, ...] = ()  # load-path flags (-R/-Q/-I, -noinit), without -topfile

    @property
    def held_out(self) -> bool:
        return is_held_out(self.logical_path)

    def coqtop_flags(self) -> tuple[str, ...]:
        return (*self.flags, "-topfile", self.path)


@functools.lru_cache(maxsize=4)
def coq_root(coqc: str = "coqc") -> Path:
    try:
        out = subprocess.run([coqc, "-where"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SourceError(f"cannot run {coqc} -where: {e}") from None
    if out.returncode != 0 or not out.stdout.strip():
        raise SourceError(f"{coqc} -where failed: {out.stderr.strip()[:200]}")
    return Path(out.stdout.strip())


def library_dirs(root: Path) -> dict[str, Path]:
    """Installed libraries that ship sources: name (= logical prefix) -> directory."""
    libs: dict[str, Path] = {}
    if (root / "theories").is_dir():
        libs[STDLIB] = root / "theories"
    contrib = root / "user-contrib"
    if contrib.is_dir():
        for d in sorted(contrib.iterdir()):
            if d.is_dir() and next(d.rglob("*.v"), None) is not None:
                libs[d.name] = d
    return libs


def _logical(prefix: str, base: Path, path: Path) -> str:
    rel = path.relative_to(base).with_suffix("")
    return ".".join([prefix, *rel.parts])


def _library_source(name: str, base: Path, path: Path) -> Source:
    logical = _logical(name, base, path)
    if name == STDLIB:
        # The prelude is made of Coq.Init itself: its files compile without it.
        flags = ("-noinit",) if logical.startswith("Coq.Init.") else ()
    else:
        flags = ("-R", str(base), name)
    return Source(str(path), logical, name, flags)


def library_sources(libraries: list[str] | None = None, split: str | None = "train",
                    root: Path | None = None) -> list[Source]:
    """The .v files of installed libraries (all when ``libraries`` is None), in a stable order.

    ``split="train"`` leaves out the held-out files before anything reads them; ``"test"`` keeps only
    those; None keeps all.
    """
    root = root or coq_root()
    installed = library_dirs(root)
    wanted = list(installed) if not libraries else libraries
    unknown = [w for w in wanted if w not in installed]
    if unknown:
        raise SourceError(f"library not installed: {', '.join(unknown)} (installed: {', '.join(installed)})")
    out = []
    for name in dict.fromkeys(wanted):
        base = installed[name]
        for path in sorted(base.rglob("*.v")):
            source = _library_source(name, base, path)
            if split is None or (split == "test") == source.held_out:
                out.append(source)
    return out


def file_source(path: str | Path, root: Path | None = None) -> Source:
    """A .v file given by path: a file of an installed library gets that library's flags, any other
    file the flags of the nearest ``_CoqProject`` (its -R/-Q/-I lines), or none."""
    p = Path(path)
    if p.suffix != ".v":
        raise SourceError(f"not a .v file: {path}")
    if not p.is_file():
        raise SourceError(f"no such file: {path}")
    p = p.resolve()
    root = root or coq_root()
    for name, base in library_dirs(root).items():
        if p.is_relative_to(base.resolve()):
            return _library_source(name, base.resolve(), p)
    flags, logical = project_flags(p)
    return Source(str(p), logical, "", flags)


def project_flags(path: Path) -> tuple[tuple[str, ...], str]:
    """Load-path flags of the nearest ``_CoqProject`` above ``path`` and the file's logical path.

    Without a project (or outside its mapped directories) the logical path is the file's name, as
    ``coqc FILE`` would name the module.
    """
    for d in path.parents:
        project = d / "_CoqProject"
        if project.is_file():
            break
    else:
        return (), path.stem
    try:
        words = shlex.split(project.read_text(encoding="utf-8"), comments=True)
    except (OSError, ValueError) as e:
        raise SourceError(f"cannot read {project}: {e}") from None
    flags: list[str] = []
    logical = path.stem
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("-R", "-Q") and i + 2 < len(words):
            phys = (d / words[i + 1]).resolve()
            flags += [w, str(phys), words[i + 2]]
            if path.is_relative_to(phys):
                logical = _logical(words[i + 2], phys, path) if words[i + 2] else \
                    ".".join(path.relative_to(phys).with_suffix("").parts)
            i += 3
        elif w == "-I" and i + 1 < len(words):
            flags += ["-I", str((d / words[i + 1]).resolve())]
            i += 2
        elif w == "-arg" and i + 1 < len(words):
            flags += shlex.split(words[i + 1])
            i += 2
        else:
            i += 1
    return tuple(flags), logical
