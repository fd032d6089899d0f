"""``lean_project/``: the Lake project (Lean v4.24.0, Mathlib, the REPL) both Lean backends run in.

``prover lean setup`` writes its ``MiniF2F`` library from the miniF2F records: one file per theorem,
the record's header, its statement and ``sorry``, at the upstream path (``MiniF2F/Test/NAME.lean``).
The files are generated, never committed. ``prover lean trace`` commits a snapshot of the project
into a git repository of its own, because LeanDojo traces a git commit, not a working tree.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..base import InitError

LEAN_TOOLCHAIN = "leanprover/lean4:v4.24.0"
INSTALL_HINT = "run `make lean` (installs elan, Lean v4.24.0, Mathlib and the Lean REPL into lean_project/; needs internet)"
LIBRARY = "MiniF2F"
SNAPSHOT_NAME = "prover-minif2f"  # the git repository LeanDojo traces (its cache key uses this name)
# Copied into the snapshot: what Lake needs to rebuild the project, and the generated library.
_PROJECT_FILES = ("lakefile.toml", "lean-toolchain", "lake-manifest.json", f"{LIBRARY}.lean")


class LeanNotInstalled(InitError):
    """Lean, the built project or LeanDojo is missing: a one-line explanation of what to install."""


def default_project_dir() -> Path:
    """``$PROVER_LEAN_PROJECT``, else ``lean_project/`` in the checkout, else in the cwd."""
    env = os.environ.get("PROVER_LEAN_PROJECT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parents[3] / "lean_project"
    if here.is_dir():
        return here
    return (Path.cwd() / "lean_project").resolve()


def require_lean(project: Path) -> None:
    """Fail at once, with what to install, unless ``lake`` runs and the project is built."""
    if shutil.which("lake") is None:
        raise LeanNotInstalled(f"Lean is not installed (no `lake` on PATH): {INSTALL_HINT}")
    if not (project / "lakefile.toml").is_file():
        raise LeanNotInstalled(f"no Lean project at {project} (set PROVER_LEAN_PROJECT): {INSTALL_HINT}")
    packages = project / ".lake" / "packages"
    missing = [p for p in ("mathlib", "REPL") if not (packages / p).is_dir()]
    if missing:
        raise LeanNotInstalled(f"{project} is not built ({', '.join(missing)} missing): {INSTALL_HINT}")


def toolchain_version(project: Path) -> tuple[int, int, int] | None:
    """The Lean version ``lean-toolchain`` pins, e.g. (4, 24, 0)."""
    try:
        text = (project / "lean-toolchain").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    import re

    m = re.search(r"v(\d+)\.(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def theorem_file(problem_name: str, split: str) -> str:
    """Where a theorem lives in the library, as upstream miniF2F-lean4 lays it out."""
    return f"{LIBRARY}/{split.capitalize()}/{problem_name}.lean"


def theorem_source(header: str, statement: str) -> str:
    return f"{header.rstrip()}\n\n{statement.rstrip()}\n  sorry\n"


@dataclass(frozen=True)
class SetupReport:
    project: Path
    written: int
    unchanged: int
    files: tuple[str, ...]


def setup(project: Path, data_dir: str | Path | None = None) -> SetupReport:
    """Generate the MiniF2F library (one file per theorem, and the root module importing them)."""
    from ...runs.minif2f import load

    problems = load("lean4", data_dir=data_dir)
    if not (project / "lakefile.toml").is_file():
        raise FileNotFoundError(f"no lakefile.toml in {project}")
    written = unchanged = 0
    files = []
    for p in problems:
        rel = p.source.get("path") or theorem_file(p.name, p.split)
        path = project / rel
        text = theorem_source(p.theorem.header, p.theorem.statement)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            unchanged += 1
        else:
            path.write_text(text, encoding="utf-8")
            written += 1
        files.append(rel)
    modules = sorted(rel[:-len(".lean")].replace("/", ".") for rel in files)
    root = "".join(f"import {m}\n" for m in modules)
    (project / f"{LIBRARY}.lean").write_text(root, encoding="utf-8")
    return SetupReport(project, written, unchanged, tuple(files))


def find_theorem_file(project: Path, name: str) -> str | None:
    for split in ("Test", "Valid"):
        rel = f"{LIBRARY}/{split}/{name}.lean"
        if (project / rel).is_file():
            return rel
    return None


def snapshot_dir(project: Path) -> Path:
    return project / ".dojo" / SNAPSHOT_NAME


def make_snapshot(project: Path, dest: Path | None = None) -> tuple[Path, str]:
    """Commit the project's sources and generated library into a git repository of its own.

    Returns (its path, the commit). An unchanged project gives the same tree, and no new commit.
    """
    dest = dest or snapshot_dir(project)
    if not (project / f"{LIBRARY}.lean").is_file():
        raise FileNotFoundError(f"{project}/{LIBRARY}.lean is missing: run `prover lean setup` first")
    dest.mkdir(parents=True, exist_ok=True)
    for name in _PROJECT_FILES:
        if (project / name).is_file():
            shutil.copyfile(project / name, dest / name)
    lib = dest / LIBRARY
    if lib.is_dir():
        shutil.rmtree(lib)
    shutil.copytree(project / LIBRARY, lib)
    (dest / ".gitignore").write_text(".lake/\n", encoding="utf-8")

    def git(*args: str) -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": "prover", "GIT_AUTHOR_EMAIL": "prover@localhost",
               "GIT_COMMITTER_NAME": "prover", "GIT_COMMITTER_EMAIL": "prover@localhost"}
        return subprocess.run(["git", *args], cwd=dest, env=env, check=True, capture_output=True,
                              text=True).stdout.strip()

    if not (dest / ".git").exists():
        git("init", "-q")
    git("add", "-A")
    if git("status", "--porcelain"):
        git("commit", "-q", "-m", "miniF2F library generated by `prover lean setup`")
    return dest, git("rev-parse", "HEAD")
