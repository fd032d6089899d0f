"""A Coq file as Coq reads it, and its theorems opened in their file context.

Public API (stable; the library benchmark builds on it)::

    from prover.backends.coq.document import CoqDocument, FileContextError

    doc = CoqDocument.read("theories/Lists/List.v")             # flags from the nearest _CoqProject
    doc = CoqDocument.read(path, extra_flags=("-R", "dir", "Lib"))  # ... plus the caller's own
    doc = CoqDocument.read(installed_file, flags=installed_library_flags(installed_file))  # exactly these
    doc.theorem_names()                      # qualified names in file order: "app_nil_r", "M.foo", ...
    theorem = doc.theorem("app_nil_r")       # a CoqFileTheorem (a backends.base.Theorem)
    theorem = doc.theorem("M.foo", allowed_axioms=(...), add_imports=True)

    backend = CoqBackend(CoqConfig(...))     # then as for any theorem:
    root = backend.open(theorem)             # runs the file up to the statement (reused across theorems)
    backend.apply(root, "intros", 5) ...
    backend.check(theorem, tactics)          # compiles the whole written file, in a private directory
    theorem.written(tactics)                 # the file's new text (what --write puts on disk)

Opening theorem NAME of a file means: every sentence of the file before NAME's statement runs in coqtop,
as ``coqc`` would run it (open sections with their variables, modules, module types, functor bodies,
notations, options, earlier proofs), then the statement and the file's own proof opening (``Proof
using ...`` is kept). Nothing after the statement is ever sent. The installed file itself is only read:
every compilation happens on a copy in a private directory, with the document's flags.

Not supported (a clear error): ``Program``/``Obligation`` theorems (their proof obligations are not one
proof), theorems inside a proof, ``Load`` of relative paths (coqtop and coqc run in a private directory).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..base import Theorem
from .project import CoqProject, ProjectError, check_flags
from .text import THEOREM_KEYWORDS, CoqSyntaxError, Sentence, check_tactic, split_sentences, strip_comments

_IDENT = r"[^\W\d][\w']*"
_ATTRIBUTES = re.compile(r"^(?:#\[[^\]]*\]\s*)+")
_LOCALITY = re.compile(r"^(?:(?:Local|Global|Polymorphic|Monomorphic|Cumulative|NonCumulative|Private|"
                       r"Program)\s+)+")
_THEOREM = re.compile(r"^(" + "|".join(THEOREM_KEYWORDS) + r")\s+(" + _IDENT + r")")
_SECTION = re.compile(r"^Section\s+(" + _IDENT + r")\s*\.$")
_END = re.compile(r"^End\s+(" + _IDENT + r")\s*\.$")
_MODULE = re.compile(r"^(Declare\s+)?Module\s+(Type\s+)?(?:(?:Import|Export)\s+)?(" + _IDENT + r")(.*)\.$", re.S)
_AXIOM = re.compile(r"^(Axioms?|Parameters?|Conjectures?)\s+(.*)\.$", re.S)
_SECTION_LOCAL = re.compile(r"^(Variables?|Hypothes[ie]s|Context)\b")
_PROOF_END = re.compile(r"^(Qed|Defined|Admitted|Abort|Save)\b")
_PROOF_OPENING = re.compile(r"^Proof(?:\s+(?:using|with|Mode)\b.*)?\.$", re.S)
# Commands that open a proof when they have no body: their Admitted makes an axiom-like constant.
_DECLARATION = re.compile(r"^(?:" + "|".join(THEOREM_KEYWORDS) + r"|Definition|Instance|Let|Fixpoint|"
                          r"CoFixpoint|Lemma)\s+(" + _IDENT + r")")
_MODULE_NAME = re.compile(r"^[^\W\d][\w']*$")


class FileContextError(ValueError):
    """A file or theorem that cannot be opened in its file context; the message is one line."""


@dataclass(frozen=True)
class Scope:
    """An open section, module, module type or functor body around a theorem."""

    kind: str  # "section", "module" or "module type"
    name: str
    index: int  # the sentence that opens it
    params: tuple[str, ...] = ()  # a functor's parameters: Module F (X : T) (Y : U). -> ("X", "Y")


@dataclass(frozen=True)
class TheoremEntry:
    """Where a theorem sits in its file."""

    name: str  # qualified by the modules around it (not the sections): "M.foo"
    short: str  # "foo"
    index: int  # the statement's sentence
    opening: int | None  # the `Proof.` / `Proof using ...` / `Proof with ...` sentence, if any
    end: int | None  # the Qed/Defined/Admitted/Abort/Save sentence; None: the file has no proof
    ending: str  # that keyword ("" when none)
    scopes: tuple[Scope, ...]  # outermost first
    program: bool = False  # `Program Lemma ...`: not supported


def module_name_for(path: str) -> str:
    """The module name coqc gives a file (its stem) when that is an identifier, else a neutral one."""
    stem = Path(path).stem
    return stem if _MODULE_NAME.match(stem) else "ProverCheck"


def _command(sentence: Sentence) -> str:
    """A sentence without comments, attributes and locality prefixes, on one line."""
    text = sentence.clean
    text = _ATTRIBUTES.sub("", text)
    return _LOCALITY.sub("", text)


def _program(sentence: Sentence) -> bool:
    return bool(re.match(r"^(?:#\[[^\]]*\]\s*)*(?:\w+\s+)*Program\b", sentence.clean))


def _top_level(text: str) -> str:
    """``text`` with parenthesised parts removed (binders), to look at its top-level tokens."""
    out, depth = [], 0
    for c in text:
        if c == "(":
            depth += 1
        elif c == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(c)
    return "".join(out)


def _functor_params(rest: str) -> tuple[str, ...]:
    """Parameter names of `Module F (X : T) (Y Z : U) ...`: the binders before the first ':' or ':='."""
    params: list[str] = []
    for m in re.finditer(r"\(\s*((?:" + _IDENT + r"\s+)*" + _IDENT + r")\s*:", rest):
        if _top_level(rest[:m.start()]).strip():
            break  # binders come first; a '(' after ': T' belongs to a module type expression
        params.extend(w for w in m.group(1).split() if w not in ("Import", "Export"))
    return tuple(params)


def _module_has_body(rest: str) -> bool:
    """`Module M ... .` opens a body unless it is defined with `:=` (`with Definition x := t` clauses
    of its type do not count)."""
    top = _top_level(rest)
    return top.count(":=") <= len(re.findall(r"\bwith\s+(?:Definition|Module)\b", top))


def _axiom_names(rest: str) -> list[str]:
    """Names declared by `Axiom a b : T.` or `Parameter (a : T) (b : U).`"""
    rest = rest.strip()
    if rest.startswith("("):
        names: list[str] = []
        for m in re.finditer(r"\(\s*((?:" + _IDENT + r"\s+)*" + _IDENT + r")\s*:", rest):
            names.extend(m.group(1).split())
        return names
    head = rest.split(":", 1)[0]
    return re.findall(_IDENT, head)


@dataclass(frozen=True)
class CoqDocument:
    """A .v file split into sentences, with the structure Coq gives them.

    Equality is that of (path, source, flags): two reads of an unchanged file are the same document.
    """

    path: str  # absolute
    source: str
    flags: tuple[str, ...] = ()
    module: str = "Top"  # the module name its compiled copy gets
    sentences: tuple[Sentence, ...] = field(default=(), compare=False, repr=False)
    theorems: tuple[TheoremEntry, ...] = field(default=(), compare=False, repr=False)
    axioms: tuple[tuple[int, str], ...] = field(default=(), compare=False, repr=False)  # (index, name)
    admitted: tuple[tuple[int, str], ...] = field(default=(), compare=False, repr=False)
    project_file: str | None = field(default=None, compare=False)

    # -- reading -------------------------------------------------------------------------------
    @classmethod
    def read(cls, path: str | os.PathLike, flags: tuple[str, ...] | None = None,
             extra_flags: tuple[str, ...] = (), project_root: str | os.PathLike | None = None
             ) -> "CoqDocument":
        """Read and parse a .v file. ``flags`` None: those of its nearest ``_CoqProject`` (or of
        ``project_root``: a directory or a _CoqProject), then ``extra_flags``; given: exactly ``flags``
        plus ``extra_flags``. Raises FileContextError with a one-line message."""
        p = Path(path)
        try:
            with open(p, encoding="utf-8", newline="") as f:  # line ends kept: --write is byte-exact
                source = f.read()
        except FileNotFoundError:
            raise FileContextError(f"no such file: {path}") from None
        except IsADirectoryError:
            raise FileContextError(f"{path} is a directory, not a .v file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise FileContextError(f"cannot read {path}: {e}") from None
        try:
            if flags is None:
                project = CoqProject.for_file(p, tuple(extra_flags), project_root)
            else:
                project = CoqProject(tuple(flags) + check_flags(tuple(extra_flags)))
        except ProjectError as e:
            raise FileContextError(str(e)) from None
        return cls.parse(source, str(p.resolve()), project.flags, project.project_file)

    @classmethod
    def parse(cls, source: str, path: str = "Top.v", flags: tuple[str, ...] = (),
              project_file: str | None = None) -> "CoqDocument":
        try:
            sentences = tuple(split_sentences(source))
        except CoqSyntaxError as e:
            raise FileContextError(f"cannot read {path}: {e}") from None
        theorems, axioms, admitted = _structure(sentences)
        return cls(path, source, tuple(flags), module_name_for(path), sentences, theorems, axioms, admitted,
                   project_file)

    # -- looking up theorems ---------------------------------------------------------------------
    def theorem_names(self) -> list[str]:
        """Every theorem (Theorem, Lemma, ...) in file order, by its name qualified with the modules
        around it."""
        return [t.name for t in self.theorems]

    def line_of(self, index: int) -> int:
        return self.source.count("\n", 0, self.sentences[index].start) + 1

    def find(self, name: str) -> TheoremEntry:
        """The theorem called ``name``: its short name, or qualified by modules (``M.foo``, also with the
        file's module: ``List.M.foo``) when the short name is declared more than once."""
        parts = tuple(name.split("."))
        if parts and parts[0] == self.module and len(parts) > 1:
            exact = [t for t in self.theorems if tuple(t.name.split(".")) == parts[1:]]
            if exact:
                parts = parts[1:]
        matches = [t for t in self.theorems if tuple(t.name.split("."))[-len(parts):] == parts]
        if not matches:
            other = next((s for s in self.sentences
                          if (m := _DECLARATION.match(_command(s))) and m.group(1) == parts[-1]), None)
            if other is not None:
                keyword = _command(other).split()[0]
                raise FileContextError(f"{name!r} is a {keyword} in {self.path}, not a theorem: only Theorem, "
                                       "Lemma, Fact, Remark, Corollary, Proposition, Property and Example are "
                                       "proved")
            raise FileContextError(f"theorem {name!r} not found in {self.path}")
        if len(matches) > 1:
            distinct = sorted({t.name for t in matches})
            if len(distinct) > 1:
                raise FileContextError(f"{name!r} is declared {len(matches)} times in {self.path}: give the "
                                       f"qualified name ({', '.join(distinct)})")
            lines = ", ".join(str(self.line_of(t.index)) for t in matches)
            raise FileContextError(f"{name!r} is declared {len(matches)} times at the same place in "
                                   f"{self.path} (lines {lines}); only one can compile")
        entry = matches[0]
        if entry.program:
            raise FileContextError(f"{entry.name} is a Program theorem (line {self.line_of(entry.index)}): "
                                   "Program/Obligation proofs are not supported")
        return entry

    def theorem(self, name: str, allowed_axioms: tuple[str, ...] = (), add_imports: bool = False
                ) -> "CoqFileTheorem":
        """Theorem ``name`` in its file context, ready for CoqBackend.open/check."""
        entry = self.find(name)
        statement = self.sentences[entry.index]
        return CoqFileTheorem(entry.name, statement.text, self.source[:statement.start], tuple(allowed_axioms),
                              document=self, entry=entry, add_imports=add_imports)

    # -- what the theorem sees -------------------------------------------------------------------
    def axioms_before(self, index: int) -> tuple[str, ...]:
        """Names of the axioms and parameters the file declares before sentence ``index``."""
        return tuple(n for i, n in self.axioms if i < index)

    def admitted_before(self, index: int) -> tuple[str, ...]:
        return tuple(n for i, n in self.admitted if i < index)


def _structure(sentences: tuple[Sentence, ...]):
    """Theorems with their scopes and proofs; the axioms and admitted proofs of the file."""
    stack: list[Scope] = []
    theorems: list[TheoremEntry] = []
    axioms: list[tuple[int, str]] = []
    admitted: list[tuple[int, str]] = []
    last_declared: str | None = None
    i = 0
    n = len(sentences)
    while i < n:
        text = _command(sentences[i])
        m = _THEOREM.match(text)
        if m:
            entry, i = _theorem_at(sentences, i, m.group(2), tuple(stack))
            theorems.append(entry)
            if entry.ending == "Admitted":
                admitted.append((entry.end, entry.short))
            continue
        if (m := _SECTION.match(text)):
            stack.append(Scope("section", m.group(1), i))
        elif (m := _END.match(text)):
            if stack and stack[-1].name == m.group(1):
                stack.pop()
        elif (m := _MODULE.match(text)):
            declare, is_type, name, rest = m.groups()
            if not declare and _module_has_body(rest):
                stack.append(Scope("module type" if is_type else "module", name, i, _functor_params(rest)))
        elif (m := _AXIOM.match(text)):
            axioms.extend((i, a) for a in _axiom_names(m.group(2)))
        elif _SECTION_LOCAL.match(text) and not any(s.kind == "section" for s in stack):
            rest = text.split(None, 1)[1] if " " in text else ""
            axioms.extend((i, a) for a in _axiom_names(rest.rstrip(".")))  # Variable outside a section
        elif _PROOF_END.match(text) and text.startswith("Admitted") and last_declared:
            admitted.append((i, last_declared))
        d = _DECLARATION.match(text)
        if d:
            last_declared = d.group(1)
        i += 1
    return tuple(theorems), tuple(axioms), tuple(admitted)


def _theorem_at(sentences, i: int, short: str, scopes: tuple[Scope, ...]) -> tuple[TheoremEntry, int]:
    """The theorem whose statement is sentence ``i``; returns it and the index after its proof."""
    modules = [s.name for s in scopes if s.kind != "section"]
    name = ".".join([*modules, short])
    program = _program(sentences[i])
    j = i + 1
    opening = None
    if j < len(sentences) and _PROOF_OPENING.match(sentences[j].clean):
        opening = j
        j += 1
    elif j < len(sentences) and re.match(r"^Proof\b", sentences[j].clean):
        # `Proof term.`: the whole proof in one sentence.
        return TheoremEntry(name, short, i, None, j, "Proof", scopes, program), j + 1
    for k in range(j, len(sentences)):
        clean = sentences[k].clean
        m = _PROOF_END.match(clean)
        if m:
            return TheoremEntry(name, short, i, opening, k, m.group(1), scopes, program), k + 1
        if k == j and opening is None and _starts_command(clean):
            break  # the statement is followed by another command: the file has no proof for it
        if _THEOREM.match(_command(sentences[k])) or _SECTION.match(clean) or _END.match(clean):
            break
    return TheoremEntry(name, short, i, opening, None, "", scopes, program), (opening + 1 if opening else i + 1)


def _starts_command(clean: str) -> bool:
    return bool(clean) and clean[0].isupper() and not _PROOF_END.match(clean)


@dataclass(frozen=True)
class CoqFileTheorem(Theorem):
    """A theorem of a file, opened in its file context (see the module docstring).

    ``header`` is the file's text before the statement, ``statement`` the statement as written; the
    backend runs ``document``'s sentences, not ``header``'s text.
    """

    document: CoqDocument | None = None
    entry: TheoremEntry | None = None
    add_imports: bool = False  # the prelude's libraries are loaded before the theorem's outermost scope

    @property
    def short_name(self) -> str:
        return self.entry.short

    @property
    def flags(self) -> tuple[str, ...]:
        return self.document.flags

    @property
    def import_index(self) -> int:
        """Where added imports go: before the outermost section/module around the theorem, at top level,
        so that they change nothing before that point and are never inside a section or functor."""
        return self.entry.scopes[0].index if self.entry.scopes else self.entry.index

    def opening_sentence(self) -> str:
        """The sentence that starts the proof in coqtop: the file's own `Proof using ...` if any."""
        if self.entry.opening is not None:
            return self.document.sentences[self.entry.opening].clean
        return "Proof."

    def proof_ending(self) -> str:
        return "Defined." if self.entry.ending == "Defined" else "Qed."

    def proof_span(self) -> tuple[int, int]:
        """The bytes --write replaces: after the statement (or after the file's own `Proof using`
        sentence, which is kept) up to the end of the old proof (nothing when the file has none)."""
        sentences = self.document.sentences
        keep = self.entry.opening if self.entry.opening is not None else self.entry.index
        start = sentences[keep].end
        end = sentences[self.entry.end].end if self.entry.end is not None else start
        return start, end

    def _indent(self) -> str:
        src = self.document.source
        start = self.document.sentences[self.entry.index].start
        line = src[src.rfind("\n", 0, start) + 1:start]
        return line if not line.strip() else re.match(r"\s*", line).group(0)

    def proof_text(self, tactics: list[str]) -> str:
        """The proof after the statement: the opening sentence, the tactics, Qed (Defined when the
        file's proof ended with Defined, so that later computations still unfold it)."""
        body = "".join(f"  {_sentence(t)}\n" for t in tactics)
        return f"{self.opening_sentence()}\n{body}{self.proof_ending()}"

    def _newline(self) -> str:
        return "\r\n" if "\r\n" in self.document.source else "\n"

    def _replacement(self, tactics: list[str]) -> str:
        indent, nl = self._indent(), self._newline()
        body = "".join(f"{indent}  {_sentence(t)}{nl}" for t in tactics)
        if self.entry.opening is not None:
            return f"{nl}{body}{indent}{self.proof_ending()}"
        return f"{nl}{indent}Proof.{nl}{body}{indent}{self.proof_ending()}"

    def written(self, tactics: list[str], requires: tuple[str, ...] = (), after_proof: str = "") -> str:
        """The file's text with this proof in place of the old one: only the proof span changes, plus
        ``requires`` (added imports, one sentence a line) before the theorem's outermost scope, plus
        ``after_proof`` (the check's commands) right after the proof."""
        return self.compose(tactics, requires, after_proof)[0]

    def compose(self, tactics: list[str], requires: tuple[str, ...] = (), after_proof: str = ""
                ) -> tuple[str, int, int]:
        """``written``'s text, and where the statement starts and the new proof ends in it."""
        src = self.document.source
        start, end = self.proof_span()
        proof = self._replacement(tactics)
        statement = self.document.sentences[self.entry.index].start
        if requires:
            at = self.document.sentences[self.import_index].start
            line_start = src.rfind("\n", 0, at) + 1
            if not src[line_start:at].strip():
                at = line_start
            added = "".join(f"{r}{self._newline()}" for r in requires)
        else:
            at, added = start, ""
        head = src[:at] + added + src[at:start]
        shift = len(added)
        return head + proof + after_proof + src[end:], statement + shift, len(head) + len(proof)

    def prefix(self) -> list[Sentence]:
        """The file's sentences before the statement."""
        return list(self.document.sentences[:self.entry.index])

    def declared_axioms(self) -> tuple[str, ...]:
        return self.document.axioms_before(self.entry.index)

    def admitted_before(self) -> tuple[str, ...]:
        return self.document.admitted_before(self.entry.index)

    def functor_params(self) -> tuple[str, ...]:
        return tuple(p for s in self.entry.scopes for p in s.params)

    def location(self, index: int) -> str:
        return f"{self.document.path}:{self.document.line_of(index)}"


def _sentence(tactic: str) -> str:
    sentence, why = check_tactic(tactic)
    if sentence is None:
        raise ValueError(f"tactic {tactic!r} refused: {why}")
    return sentence


def sendable(sentence: Sentence) -> str:
    """A file sentence as coqtop reads it: comments removed, line breaks and strings kept (coqtop
    answers a sentence spread over several lines with one prompt)."""
    return strip_comments(sentence.text).strip()
