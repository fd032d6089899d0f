"""Coq project flags: a ``_CoqProject`` file, the command line's ``-R``/``-Q``/``--coq-flag``, and the
load-path mapping of an installed library.

Every Coq tool (coq_makefile, coq-lsp, VsCoq) reads the ``_CoqProject`` of the file's directory or of
its nearest ancestor; its ``-R``, ``-Q``, ``-I`` and ``-arg`` lines become flags of ``coqtop`` and
``coqc``. Relative directories there are relative to the ``_CoqProject``'s own directory, so flags are
stored with absolute paths: the prover runs coqtop and coqc in private working directories.
"""
from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROJECT_FILE = "_CoqProject"
# Options of a _CoqProject line that take two arguments, one, or none; everything else on a line that
# does not start with '-' is a file name (coq_makefile's list of sources), which the prover ignores.
_TWO_ARGS = ("-R", "-Q")
_ONE_ARG = ("-I", "-arg")
_IGNORED_ONE_ARG = ("-docroot", "-install", "-generate-meta-for-package", "-extra-phony", "-custom",
                    "-extra", "-bypass-API")
_IGNORED_FLAGS = ("-no-install", "-no-opt", "-byte", "-opt", "-native-compiler", "-f")


class ProjectError(ValueError):
    """A _CoqProject or a flag the prover cannot use; the message is one line."""


@dataclass(frozen=True)
class CoqProject:
    """The flags of ``coqtop``/``coqc`` for one file: its ``_CoqProject`` (if any) plus the caller's own.

    ``flags`` hold absolute directories, e.g. ``("-R", "/home/me/proj/theories", "MyLib",
    "-w", "-notation-overridden")``.
    """

    flags: tuple[str, ...] = ()
    project_file: str | None = None  # the _CoqProject that was read, if any

    @classmethod
    def for_file(cls, path: str | os.PathLike, extra_flags: tuple[str, ...] = (),
                 root: str | os.PathLike | None = None) -> "CoqProject":
        """The project of ``path`` (a .v file or a directory): the nearest ``_CoqProject`` at or above
        it (or at or above ``root`` when given: a project directory, a file in it, or a _CoqProject),
        then ``extra_flags`` (the command line's), which come last so that they win."""
        found = _project_file_at(Path(root)) if root is not None else find_project_file(Path(path))
        flags: tuple[str, ...] = ()
        if found is not None:
            try:
                text = found.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise ProjectError(f"cannot read {found}: {e}") from None
            flags = parse_project(text, found.parent, str(found))
        return cls(flags + check_flags(extra_flags), str(found) if found else None)


def _project_file_at(root: Path) -> Path | None:
    """``root`` itself when it is a _CoqProject file, else the nearest _CoqProject at or above it."""
    if not root.exists():
        raise ProjectError(f"no such project directory or file: {root}")
    if root.is_file() and root.name == PROJECT_FILE:
        return root
    return find_project_file(root)


def find_project_file(start: Path) -> Path | None:
    """The ``_CoqProject`` in ``start``'s directory or the nearest ancestor, as coq-lsp looks for it."""
    here = start.resolve()
    if not here.is_dir():
        here = here.parent
    for d in (here, *here.parents):
        candidate = d / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def parse_project(text: str, base: Path, where: str = PROJECT_FILE) -> tuple[str, ...]:
    """The coqtop/coqc flags of a ``_CoqProject`` text; relative directories resolved against ``base``.

    ``-arg`` takes one shell word that may hold several options (``-arg "-w -notation-overridden"``),
    as coq_makefile reads it. Comments start with ``#``.
    """
    words: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            words.extend((w, n) for w in shlex.split(line, comments=True))
        except ValueError as e:
            raise ProjectError(f"{where}:{n}: cannot read the line: {e}") from None
    flags: list[str] = []
    i = 0
    while i < len(words):
        word, n = words[i]
        if word in _TWO_ARGS:
            if i + 2 >= len(words):
                raise ProjectError(f"{where}:{n}: {word} needs a directory and a logical name")
            directory, logical = words[i + 1][0], words[i + 2][0]
            flags += [word, str((base / directory).resolve()), logical]
            i += 3
        elif word == "-I":
            if i + 1 >= len(words):
                raise ProjectError(f"{where}:{n}: -I needs a directory")
            flags += ["-I", str((base / words[i + 1][0]).resolve())]
            i += 2
        elif word == "-arg":
            if i + 1 >= len(words):
                raise ProjectError(f"{where}:{n}: -arg needs an argument")
            flags += shlex.split(words[i + 1][0])
            i += 2
        elif word in _IGNORED_ONE_ARG:
            i += 2
        elif "=" in word and not word.startswith("-"):
            i += 1  # a coq_makefile variable (COQMF_...=...)
        else:
            i += 1  # a source file name, or an option that does not concern coqtop/coqc
    return tuple(flags)


def check_flags(flags: tuple[str, ...]) -> tuple[str, ...]:
    """The caller's flags with ``-R``/``-Q``/``-I`` directories made absolute; a missing one is an error."""
    out: list[str] = []
    i = 0
    while i < len(flags):
        flag = flags[i]
        if flag in _TWO_ARGS:
            if i + 2 >= len(flags):
                raise ProjectError(f"{flag} needs a directory and a logical name")
            directory = Path(flags[i + 1])
            if not directory.is_dir():
                raise ProjectError(f"{flag} {flags[i + 1]} {flags[i + 2]}: no such directory")
            out += [flag, str(directory.resolve()), flags[i + 2]]
            i += 3
        elif flag == "-I":
            if i + 1 >= len(flags):
                raise ProjectError("-I needs a directory")
            out += ["-I", str(Path(flags[i + 1]).resolve())]
            i += 2
        else:
            out.append(flag)
            i += 1
    return tuple(out)


def coq_root(coqc: str = "coqc") -> Path:
    """``coqc -where``: the directory holding ``theories/`` and ``user-contrib/``."""
    try:
        out = subprocess.run([coqc, "-where"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ProjectError(f"cannot run {coqc} -where: {e}") from None
    return Path(out.stdout.strip())


def installed_library_flags(path: str | os.PathLike, coqc: str = "coqc") -> tuple[str, ...]:
    """The mapping under which an installed library file compiles: none for the standard library
    (``theories/``, mapped by Coq itself; ``-noinit`` for ``theories/Init``), ``-R <root>/user-contrib/<Lib> <Lib>`` for a user-contrib
    library, so that its files' short ``Require``s (Coquelicot's ``Require Import Rcomplements``) resolve.
    A file elsewhere gets no flags."""
    root = coq_root(coqc).resolve()
    p = Path(path).resolve()
    if p.parent == root / "theories" / "Init":
        return ("-noinit",)  # the prelude's own files are compiled without the prelude
    contrib = root / "user-contrib"
    try:
        lib = p.relative_to(contrib).parts[0]
    except (ValueError, IndexError):
        return ()
    return ("-R", str(contrib / lib), lib)


def logical_path_hint(logical: str, coqc: str = "coqc") -> str:
    """How to map a library that a ``Require`` could not find: the flag for an installed user-contrib
    library holding it, else the general form."""
    parts = logical.split(".")
    try:
        contrib = coq_root(coqc) / "user-contrib"
        libraries = sorted(d for d in contrib.iterdir() if d.is_dir()) if contrib.is_dir() else []
    except (ProjectError, OSError):
        libraries = []
    for lib in libraries:
        for found in lib.rglob(f"{parts[-1]}.vo"):
            full = (lib.name, *found.relative_to(lib).with_suffix("").parts)
            if full[-len(parts):] == tuple(parts):  # Coq resolves a name as a suffix of the full path
                return (f"it is in the installed library {lib.name}: add `-R {lib} {lib.name}` to the "
                        f"project's {PROJECT_FILE} or to the command line")
    return (f"map the directory holding it with `-R DIR LIB` (or `-Q DIR LIB`) in a {PROJECT_FILE} next to "
            "the file or on the command line")
