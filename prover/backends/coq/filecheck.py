"""The full check of a proof found in a file: compile the file as it will be written.

The checked text is the user's file with only the proof span changed (plus added imports, when the
theorem was opened with them), compiled by ``coqc`` from scratch with the document's flags, in a
private directory (the original is never written, so an installed library can be checked too). Right
after the proof, inside its section or module, ``Print Assumptions`` lists what the proof rests on and
``Locate`` resolves each name it could print to its full path; the audit accepts Coq's standard axioms,
the axioms and parameters the file itself declares before the theorem (reported), the parameters of
the functors around it, section variables, Coq's primitive integers/floats/arrays, and the names the
caller allows. Anything else refuses the proof: an admitted lemma of the file, an axiom from another
library, an unguarded fixpoint. A name printed in a form the first compilation did not locate (a field of
a functor parameter bound with Import) is located by a second one.

The extra commands go on the line of ``Qed.``, so coqc's line numbers are those of the written file.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

from ..base import CheckResult
from ..process import WorkDir, run_once
from .document import CoqFileTheorem
from .project import logical_path_hint
from .text import split_sentences

ASSUMPTIONS_FILE = "prover_assumptions"
# Coq's primitive integers, floats and arrays: kernel primitives and the standard library's axioms that
# specify them (Uint63.add_spec, ...). Part of Coq's trusted base, like the standard axioms.
PRIMITIVE_LIBRARIES = ("Coq.Numbers.Cyclic.Int63.", "Coq.Floats.", "Coq.Array.")
_HEADER = re.compile(r"^(\S.*):\s*$")
_LOCATED = re.compile(r"Constant\s+(\S+)(?:\s*\(shorter name to refer to it in current context is\s+(\S+?)\))?")
_COQC_LOCATION = re.compile(r'^File "[^"]*", line (\d+), characters \d+-\d+:\s*$', re.M)

# The tactics of the default prelude, by the library that provides them; a written proof gets only the
# libraries its own tactics need (checked by compiling), else the whole prelude.
TACTIC_LIBRARIES = (
    (("lia", "nia"), "Require Import Lia."),
    (("lra", "nra"), "Require Import Lra."),
    (("psatz",), "Require Import Psatz."),
    (("ring", "ring_simplify"), "Require Import Ring."),
    (("field", "field_simplify"), "Require Import Field."),
    (("sauto", "hauto", "qauto", "lauto", "sfirstorder", "hfirstorder", "strivial", "qsimpl", "ssimpl",
      "scongruence", "srun", "sdone", "sintuition", "scrush", "hcrush", "ecrush", "best", "sblast",
      "hblast", "qblast", "fcrush", "sinit", "ssolve", "qcrush", "sdestruct"),
     "From Hammer Require Import Tactics."),
)


@dataclass(frozen=True)
class FileCheckResult(CheckResult):
    """A file check's verdict, with the imports the written file needs and its exact new text."""

    requires: tuple[str, ...] = ()  # added before the theorem's outermost scope ("Require Import Lia.")
    written: str = ""  # the file's new text (without the check's commands)
    file_axioms: tuple[str, ...] = ()  # axioms and parameters of the file itself that the proof uses
    compiled: bool = False
    timed_out: bool = False


def imports_to_try(tactics: list[str], prelude: str, add_imports: bool) -> list[tuple[str, ...]]:
    """Which added imports to try, smallest first: none; the libraries of the tactics used; the whole
    prelude (its own sentences)."""
    if not add_imports:
        return [()]
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_']*", " ".join(tactics)))
    guess = tuple(req for names, req in TACTIC_LIBRARIES if words & set(names))
    whole = tuple(s.clean for s in split_sentences(prelude))
    out: list[tuple[str, ...]] = []
    for c in ((), guess, whole):
        if c not in out:
            out.append(c)
    return out


def check_in_file(theorem: CoqFileTheorem, tactics: list[str], coqc: str, flags: tuple[str, ...], limits,
                  timeout: float, standard_axioms: tuple[str, ...], prelude: str) -> FileCheckResult:
    """Compile the written file (trying the smallest added imports first) and audit the proof."""
    try:
        candidates = imports_to_try(tactics, prelude, theorem.add_imports)
        theorem.written(tactics)  # refuses tactics that are not one sentence
    except ValueError as e:
        return FileCheckResult(False, str(e))
    result = None
    deadline = time.monotonic() + timeout  # one budget for every compilation of this check
    for requires in candidates:
        result = _compile(theorem, tactics, requires, coqc, flags, limits, deadline, standard_axioms)
        if result.compiled or result.timed_out:
            return result
    return result


def _names_to_locate(theorem: CoqFileTheorem, standard_axioms: tuple[str, ...]) -> list[str]:
    """Names Print Assumptions may print, to resolve to full paths: the axioms the audit can accept or
    name, by their last component."""
    names = [*standard_axioms, *theorem.allowed_axioms, *theorem.declared_axioms(), *theorem.admitted_before()]
    out: list[str] = []
    for n in names:
        base = n.split(".")[-1]
        if base and base not in out and re.fullmatch(r"[^\W\d][\w']*", base):
            out.append(base)
    return out


def check_commands(theorem: CoqFileTheorem, names: list[str]) -> str:
    """What the check inserts after `Qed.`, on the same line: Print Assumptions, and Locate of each name."""
    cmds = [f'Redirect "{ASSUMPTIONS_FILE}" Print Assumptions {theorem.short_name}.']
    cmds += [f'Redirect "prover_locate_{i}" Locate {name}.' for i, name in enumerate(names)]
    return " " + " ".join(cmds)


@dataclass(frozen=True)
class _Compiled:
    run: object  # CompletedRun
    source: str
    report: str | None  # Print Assumptions output
    located: dict  # printed name -> full path


def _locate_plans(unresolved: list[str], located: dict[str, str]) -> list[list[str]]:
    """The Locate commands that resolve the names left: the names themselves; or, when one of them is a
    notation's keyword (PrimInt63's ``lor``: `Locate lor` is a syntax error that stops coqc), each bare
    name qualified by the modules the other names come from (`Locate PrimInt63.lor`)."""
    if not unresolved:
        return []
    modules = {full.split(".")[-2] for full in located.values() if full.count(".") >= 1}
    modules |= {name.split(".")[-2] for name in unresolved if "." in name}
    qualified = [n for n in unresolved if "." in n]
    qualified += [f"{m}.{n}" for n in unresolved if "." not in n for m in sorted(modules)]
    return [unresolved, qualified] if qualified != unresolved else [unresolved]


def _run_coqc(theorem: CoqFileTheorem, tactics: list[str], requires: tuple[str, ...], names: list[str],
              coqc: str, flags: tuple[str, ...], limits, deadline: float) -> _Compiled:
    source = theorem.written(tactics, requires, check_commands(theorem, names))
    module = theorem.document.module
    work = WorkDir("prover-check-")
    try:
        with open(os.path.join(work.path, f"{module}.v"), "w", encoding="utf-8") as f:
            f.write(source)
        run = run_once([coqc, "-q", *flags, *theorem.flags, f"{module}.v"], work.path, limits,
                       max(1.0, deadline - time.monotonic()))
        report = _read(work.path, f"{ASSUMPTIONS_FILE}.out")
        located: dict[str, str] = {}
        for i, name in enumerate(names):
            located.update(parse_locate(_read(work.path, f"prover_locate_{i}.out") or "", name))
    finally:
        work.cleanup()
    return _Compiled(run, source, report, located)


def _compile(theorem: CoqFileTheorem, tactics: list[str], requires: tuple[str, ...], coqc: str,
             flags: tuple[str, ...], limits, deadline: float, standard_axioms: tuple[str, ...]) -> FileCheckResult:
    """Compile the written file and audit the proof. Print Assumptions prints each name as it is
    reachable there (``compare_spec`` for a field of a functor parameter bound with Import): a name the
    first compilation could not resolve is located by a second one."""
    written = theorem.written(tactics, requires)
    names = _names_to_locate(theorem, standard_axioms)
    done = _run_coqc(theorem, tactics, requires, names, coqc, flags, limits, deadline)
    run = done.run
    base = dict(elapsed=run.elapsed, source=done.source, requires=requires, written=written)
    if run.timed_out:
        return FileCheckResult(False, f"coqc ran past the check's time limit ({run.elapsed:.0f} s)",
                               timed_out=True, **base)
    if run.returncode != 0:
        return FileCheckResult(False, _coqc_failure(theorem, tactics, requires, run.stderr + run.stdout), **base)
    if done.report is None:
        return FileCheckResult(False, "Print Assumptions gave no output", compiled=True, **base)
    located = dict(done.located)
    try:
        printed = parse_assumptions(done.report).get("Axioms", [])
    except ValueError:
        printed = []
    unresolved = [p for p in printed if p not in located and p.split(".")[0] not in theorem.functor_params()]
    for names in _locate_plans(unresolved, located):
        again = _run_coqc(theorem, tactics, requires, names, coqc, flags, limits, deadline)
        base["elapsed"] += again.run.elapsed
        if again.run.returncode == 0:
            located.update(again.located)
            break
    ok, axioms, file_axioms, message = audit_in_file(done.report, located, theorem, standard_axioms)
    return FileCheckResult(ok, message, axioms, compiled=True, file_axioms=file_axioms, **base)


def _read(directory: str, name: str) -> str | None:
    try:
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def _coqc_failure(theorem: CoqFileTheorem, tactics: list[str], requires: tuple[str, ...], output: str) -> str:
    """coqc's first error, placed (before the theorem, in its proof, or after it) by its line in the
    written file."""
    located = first_error(output)
    if located is None:
        return "coqc failed: " + " ".join(output.split())[-600:]
    line, error = located
    missing = re.search(r"Cannot find (?:a physical path bound to logical path|library)\s+(\S+?)\.?(?:\s|$)", error)
    if missing:
        error += f" ({logical_path_hint(missing.group(1))})"
    text, statement, proof_end = theorem.compose(tactics, requires)
    where = f"line {line} of the written {os.path.basename(theorem.document.path)}"
    if line < text.count("\n", 0, statement) + 1:
        return f"the file does not compile before the theorem ({where}): {error}"
    if line <= text.count("\n", 0, proof_end) + 1:
        return f"coqc refused the proof ({where}): {error}"
    return f"the file does not compile after the theorem ({where}): {error}"


def first_error(output: str) -> tuple[int, str] | None:
    """The line and message of coqc's first error (warnings come in the same form, before it)."""
    marks = list(_COQC_LOCATION.finditer(output))
    for k, m in enumerate(marks):
        block = output[m.end():marks[k + 1].start() if k + 1 < len(marks) else len(output)]
        found = re.search(r"(?m)^Error:\s*(.*)", block, re.S)
        if found:
            return int(m.group(1)), " ".join(found.group(1).split())[:400]
    return None


def parse_locate(text: str, query: str) -> dict[str, str]:
    """`Locate query` output: the name each listed constant is printed as there -> its full path. The
    one ``query`` itself reaches is listed without a "shorter name" note."""
    out: dict[str, str] = {}
    for m in _LOCATED.finditer(text):
        full, shorter = m.group(1), m.group(2)
        out.setdefault(shorter or query, full)
    return out


def parse_assumptions(report: str) -> dict[str, list[str]]:
    """Print Assumptions output by block ("Axioms", "Section Variables", ...): the names listed.

    "Closed under the global context" gives no block at all."""
    text = report.strip()
    blocks: dict[str, list[str]] = {}
    if text.startswith("Closed under the global context"):
        return blocks
    current = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[0].isspace() or line.startswith(":"):
            continue  # the type of the entry above
        header = _HEADER.match(line)
        if header and (header.group(1).strip() == "Axioms" or len(header.group(1).split()) > 1):
            current = header.group(1).strip()
            blocks.setdefault(current, [])
            continue
        if current is None:
            raise ValueError(f"unexpected Print Assumptions output: {text[:200]}")
        blocks[current].append(line.split()[0].rstrip(":"))
    return blocks


def audit_in_file(report: str, located: dict[str, str], theorem: CoqFileTheorem,
                  standard_axioms: tuple[str, ...]) -> tuple[bool, tuple[str, ...], tuple[str, ...], str]:
    """(ok, axioms used, the file's own axioms among them, why not)."""
    try:
        blocks = parse_assumptions(report)
    except ValueError as e:
        return False, (), (), str(e)
    module = theorem.document.module
    declared = set(n.split(".")[-1] for n in theorem.declared_axioms())
    admitted = set(theorem.admitted_before())
    params = set(theorem.functor_params())
    allowed = set(theorem.allowed_axioms)
    axioms: list[str] = []
    file_axioms: list[str] = []
    refused: list[str] = []
    for block, names in blocks.items():
        if block == "Section Variables":
            continue  # the section's variables and hypotheses: they become the theorem's arguments
        if block != "Axioms":
            return False, tuple(axioms), tuple(file_axioms), f"the proof relies on: {block.lower()} " \
                                                             f"{', '.join(names)}"
        for printed in names:
            full = located.get(printed)
            base = printed.split(".")[-1]
            if (printed.split(".")[0] in params and "." in printed) or \
                    (full and "." in full and full.split(".")[0] in params):
                continue  # a field of a functor parameter: an argument of the functor, not an axiom
            if printed in allowed or (full and any(full == a or full.endswith("." + a) for a in allowed)):
                axioms.append(printed)
            elif full and full.startswith("Coq.") and any(full.endswith("." + s) for s in standard_axioms):
                axioms.append(next(s for s in standard_axioms if full.endswith("." + s)))
            elif full and full.startswith(PRIMITIVE_LIBRARIES):
                axioms.append(printed)
            elif full and full.startswith(module + ".") and base in admitted:
                refused.append(f"{printed} (admitted in this file)")
            elif full and full.startswith(module + ".") and base in declared:
                name = full[len(module) + 1:]
                axioms.append(name)
                file_axioms.append(name)
            else:
                refused.append(printed)
    if refused:
        return False, tuple(axioms), tuple(file_axioms), \
            f"proof depends on non-standard axioms: {', '.join(refused)}"
    return True, tuple(axioms), tuple(file_axioms), ""
