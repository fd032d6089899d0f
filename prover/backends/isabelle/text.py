"""Isabelle source text: the step filter, the theories the bridge writes, and reading the results.

Model output is untrusted. A step reaches Isabelle only if it is made of Isar *proof* commands
(apply, by, using, have, show, proof, qed, ...), with balanced strings, cartouches and brackets, and
no word that ends, abandons or escapes the proof or changes the theory (sorry, oops, \\<proof>,
end, lemma, axiomatization, ML, declare, method_setup, the ML-running methods tactic/raw_tactic,
quick_and_dirty, ...). Whatever a step does to the proof, the full check re-checks the whole theory.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

# Isar commands a step may use: they act inside a proof and cannot leave the theory changed.
PROOF_COMMANDS = frozenset({
    "apply", "apply_end", "by", "done", "using", "unfolding", "with", "from", "then", "hence",
    "thus", "have", "show", "obtain", "consider", "fix", "assume", "presume", "let", "note",
    "moreover", "ultimately", "also", "finally", "proof", "qed", "next", "case", "subgoal",
    "defer", "prefer", "define", "supply", "including", "interpret", "{", "}", ".", "..",
})
SLEDGEHAMMER = "sledgehammer"
# Words that end, abandon or escape a proof, change the theory, run ML, or talk to the bridge.
FORBIDDEN_WORDS = frozenset({
    "sorry", "oops", "\\<proof>", "end", "theory", "begin", "imports", "lemma", "theorem",
    "corollary", "proposition", "schematic_goal", "lemmas", "axiomatization", "axioms",
    "definition", "abbreviation", "fun", "function", "primrec", "datatype", "codatatype",
    "typedef", "consts", "declare", "notation", "no_notation", "syntax", "translations",
    "ML", "ML_file", "ML_val", "ML_command", "ML_prf", "SML_file", "setup", "local_setup",
    "method_setup", "attribute_setup", "simproc_setup", "declaration", "oracle", "context",
    "locale", "class", "instance", "instantiation", "interpretation", "global_interpretation",
    "sublocale", "bundle", "notepad", "text", "txt", "section", "subsection", "hide_fact",
    "export_code", "code_printing", "termination", "tactic", "raw_tactic", "quick_and_dirty",
    "skip_proofs", "cheat_tac", "prover_goals", "prover_audit", "back",
    # Diagnostic commands: harmless to the proof, but they print text the bridge reads.
    "term", "typ", "prop", "value", "thm", "find_theorems", "find_consts", "nitpick", "quickcheck",
    "try", "try0", "nunchaku", "solve_direct", "thm_deps", "thm_oracles", "unused_thms", "welcome",
    "display_drafts", "sledgehammer_params", "code_thms", "code_deps", "prf", "full_prf", "extract",
})
_FORBIDDEN_PREFIX = re.compile(r"print_\w+")
MAX_STEP_CHARS = 4000
_CLOSE = {"(": ")", "[": "]", "{": "}"}
_THEOREM_RE = re.compile(r"^\s*(theorem|lemma|corollary|proposition)\s+([A-Za-z][A-Za-z0-9_'.]*)"
                         r"\s*(?:\[[^\]]*\]\s*)?:", re.S)
_PROOF_START = re.compile(r"^[ \t]*(proof|by|apply|using|unfolding|including|sorry|oops|done)(?![A-Za-z0-9_'])",
                          re.M)
_NEXT_ITEM = re.compile(r"^[ \t]*(theorem|lemma|corollary|proposition|end|definition|fun|text)(?![A-Za-z0-9_'])",
                        re.M)
_HERE = re.compile(r"\\<\^here>")
_TRY_THIS = re.compile(r"Try this:\s*(?P<method>.+?)\s*(?:\((?:[^()]*\d[^()]*(?:ms|s)\b[^()]*)\))?\s*$",
                       re.S)


class IsarSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    kind: str  # word | string | cartouche | symbol | number
    text: str


def tokenize(text: str) -> list[Token]:
    """A light Isar outer-syntax lexer: enough to see commands and words outside inner syntax."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif text.startswith("(*", i) or text.startswith("{*", i) or text.startswith("\\<comment>", i):
            raise IsarSyntaxError("comments are not allowed in a step")
        elif c in "\"`":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" and j + 1 < n and text[j + 1] in "\"`\\" else 1
            if j >= n:
                raise IsarSyntaxError("unterminated string")
            tokens.append(Token("string", text[i:j + 1]))
            i = j + 1
        elif c == "‹" or text.startswith("\\<open>", i):
            depth, j = 0, i
            while j < n:
                if text[j] == "‹" or text.startswith("\\<open>", j):
                    depth += 1
                    j += 1 if text[j] == "‹" else len("\\<open>")
                elif text[j] == "›" or text.startswith("\\<close>", j):
                    depth -= 1
                    j += 1 if text[j] == "›" else len("\\<close>")
                    if depth == 0:
                        break
                else:
                    j += 1
            if depth:
                raise IsarSyntaxError("unterminated cartouche")
            tokens.append(Token("cartouche", text[i:j]))
            i = j
        elif c == "›" or text.startswith("\\<close>", i):
            raise IsarSyntaxError("unbalanced cartouche")
        elif c.isalpha() or c == "_" or text.startswith("\\<", i) and not text.startswith("\\<^", i):
            m = re.compile(r"(?:[A-Za-z_]|\\<[A-Za-z]+>)(?:[A-Za-z0-9_'.]|\\<[A-Za-z]+>|\\<\^sub>)*").match(text, i)
            if not m:  # a lone symbol such as \<Longrightarrow>
                m = re.compile(r"\\<[^>]*>").match(text, i)
                tokens.append(Token("symbol", m.group(0) if m else c))
                i = m.end() if m else i + 1
                continue
            word = m.group(0).rstrip(".")
            tokens.append(Token("word", word))
            i += len(word)
        elif c.isdigit():
            m = re.compile(r"[0-9]+(?:\.[0-9]+)?").match(text, i)
            tokens.append(Token("number", m.group(0)))
            i = m.end()
        elif text.startswith("\\<^", i):
            raise IsarSyntaxError("control symbols are not allowed in a step")
        elif text.startswith("..", i):
            tokens.append(Token("symbol", ".."))
            i += 2
        else:
            tokens.append(Token("symbol", c))
            i += 1
    return tokens


def check_step(step: str) -> tuple[str | None, str]:
    """Return (the step as it will be written into the theory, "") or (None, why it is refused)."""
    text = step.strip()
    if not text:
        return None, "empty step"
    if len(text) > MAX_STEP_CHARS:
        return None, "step too long"
    if any((ord(ch) < 32 and ch not in "\n\t") or ch == "\x7f" for ch in text):
        return None, "control characters in step"
    try:
        tokens = tokenize(text)
    except IsarSyntaxError as e:
        return None, str(e)
    if not tokens:
        return None, "empty step"
    stack: list[str] = []
    for tok in tokens:
        if tok.kind == "symbol" and tok.text in _CLOSE:
            stack.append(_CLOSE[tok.text])
        elif tok.kind == "symbol" and tok.text in ")]}":
            if tok.text == "}" and not stack:
                continue  # closes an Isar block
            if not stack or stack.pop() != tok.text:
                return None, "unbalanced brackets"
        if tok.kind in ("word", "symbol") and (tok.text in FORBIDDEN_WORDS
                                                or _FORBIDDEN_PREFIX.fullmatch(tok.text)):
            return None, f"forbidden word in step: {tok.text}"
    if stack and stack != ["}"] * len(stack):
        return None, "unbalanced brackets"
    first = tokens[0]
    if first.kind == "word" and first.text == SLEDGEHAMMER:
        return None, "sledgehammer is a step of its own"
    if first.text not in PROOF_COMMANDS:
        return None, f"a step starts with a proof command (apply, by, have, ...), not {first.text!r}"
    if any(t.kind == "word" and t.text == SLEDGEHAMMER for t in tokens):
        return None, "sledgehammer is a step of its own"
    return "\n".join(line.rstrip() for line in text.splitlines()), ""


def is_sledgehammer(step: str) -> bool:
    return step.strip() == SLEDGEHAMMER


# -- theorems and files --------------------------------------------------------------------------
def theorem_name(statement: str) -> str | None:
    m = _THEOREM_RE.match(statement)
    return m.group(2) if m else None


@dataclass(frozen=True)
class TheoryHeader:
    imports: str  # what follows `imports`, e.g. 'Complex_Main "HOL-Library.Sum_of_Squares"'
    preamble: str  # definitions between `begin` and the theorem


def split_header(header: str) -> TheoryHeader:
    """Theorem.header for Isabelle is 'imports X Y\\n<preamble>' (see runs/minif2f.py)."""
    text = header.strip()
    m = re.match(r"imports\s+(.*?)(?:\n|$)", text)
    if not m:
        raise ValueError("the Isabelle header must start with 'imports ...'")
    return TheoryHeader(m.group(1).strip(), text[m.end():].strip())


@dataclass(frozen=True)
class TheoremInFile:
    header: str  # "imports ...\n<preamble>"
    statement: str
    name: str
    statement_end: int
    proof_end: int  # just after a `sorry`/`oops` placeholder, or statement_end


def find_theorem(source: str, name: str) -> TheoremInFile:
    """Locate theorem ``name`` in a .thy file: its imports and what precedes it form the header."""
    m_imp = re.search(r"^\s*theory\s+\S+\s+imports\s+(.*?)\s+begin\b", source, re.S | re.M)
    if not m_imp:
        raise ValueError("no 'theory NAME imports ... begin' header")
    imports = " ".join(m_imp.group(1).split())
    m = re.search(r"^[ \t]*(?:theorem|lemma|corollary|proposition)\s+" + re.escape(name) + r"(?![\w'.])",
                  source[m_imp.end():], re.M)
    if not m:
        raise KeyError(name)
    start = m_imp.end() + m.start()
    colon = source.find(":", m_imp.end() + m.end())
    body = colon + 1 if colon >= 0 else m_imp.end() + m.end()
    ends = [len(source)]
    for pattern in (_PROOF_START, _NEXT_ITEM):
        found = pattern.search(source, body)
        if found:
            ends.append(found.start())
    statement = source[start:min(ends)].rstrip()
    stmt_end = start + len(statement)
    proof_end = stmt_end
    placeholder = re.match(r"\s*(sorry|oops)(?![\w'])", source[stmt_end:])
    if placeholder:
        proof_end = stmt_end + placeholder.end()
    preamble = source[m_imp.end():start].strip()
    header = f"imports {imports}\n{preamble}".rstrip() + "\n"
    return TheoremInFile(header, statement, name, stmt_end, proof_end)


@dataclass(frozen=True)
class TheoryText:
    """A theory the bridge writes, and which lines hold what (1-based, inclusive)."""

    name: str
    text: str
    statement_lines: tuple[int, int]
    step_lines: tuple[tuple[int, int], ...]  # one range per step
    marker_line: int  # the prover_goals / prover_audit line


def build_theory(name: str, header: str, statement: str, steps: list[str] | tuple[str, ...],
                 bridge_import: str, marker: str, tail: str = "") -> TheoryText:
    """header + statement + steps, then one bridge command (``marker``) and ``tail``."""
    parts = split_header(header)
    imports = f"{parts.imports} {bridge_import}".strip() if bridge_import else parts.imports
    lines = [f"theory {name}", f"  imports {imports}", "begin", ""]
    if parts.preamble:
        lines += parts.preamble.splitlines() + [""]
    first = len(lines) + 1
    lines += statement.rstrip().splitlines()
    statement_lines = (first, len(lines))
    ranges = []
    for step in steps:
        start = len(lines) + 1
        lines += step.splitlines() or [""]
        ranges.append((start, len(lines)))
    lines.append(marker)
    marker_line = len(lines)
    if tail:
        lines += tail.splitlines()
    lines.append("end")
    return TheoryText(name, "\n".join(lines) + "\n", statement_lines, tuple(ranges), marker_line)


# -- messages ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    kind: str  # writeln | warning | error | ...
    text: str
    line: int | None
    file: str | None = None  # as the server gives it: a name or a path

    def in_file(self, theory: str) -> bool:
        """Whether the message is located in theory ``theory`` (unlocated messages are not)."""
        return bool(self.file) and os.path.basename(self.file) == f"{theory}.thy"


def clean_message(text: str) -> str:
    """Drop the position markers Isabelle leaves in message text; trim trailing blanks."""
    return "\n".join(line.rstrip() for line in _HERE.sub("", text).strip("\n").splitlines())


def node_messages(payload: dict, theory: str | None = None) -> list[Message]:
    """The messages of a use_theories result (FINISHED payload), for one theory or all."""
    out: list[Message] = []
    for node in payload.get("nodes", []) or []:
        tname = node.get("theory_name", "")
        if theory is not None and tname.split(".")[-1] != theory:
            continue
        for msg in node.get("messages", []) or []:
            pos = msg.get("pos") or {}
            out.append(Message(msg.get("kind", ""), str(msg.get("message", "")), pos.get("line"), pos.get("file")))
    return out


def result_errors(payload: dict) -> list[Message]:
    out = []
    for msg in payload.get("errors", []) or []:
        pos = msg.get("pos") or {}
        out.append(Message(msg.get("kind", "error"), str(msg.get("message", "")), pos.get("line"), pos.get("file")))
    return out


def parse_sledgehammer(messages: list[Message]) -> list[str]:
    """The concrete proofs Sledgehammer suggests ("...: Try this: by simp (0.3 ms)"), in order."""
    found: list[str] = []
    for msg in messages:
        for part in re.split(r"\n(?=\S)", msg.text):
            m = _TRY_THIS.search(part)
            if m:
                method = " ".join(m.group("method").split())
                if method and method not in found:
                    found.append(method)
    return found


# -- proof states --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProofState:
    """What the bridge's `prover_goals` command printed."""

    in_proof: bool  # False: back at theory level, the theorem is proved
    text: str = ""  # the proof state as Isabelle prints it ("proof (prove)\\ngoal (1 subgoal): ...")

    @property
    def mode(self) -> str:
        m = re.match(r"proof \((\w+)\)", self.text)
        return m.group(1) if m else ""

    @property
    def no_subgoals(self) -> bool:
        return "No subgoals!" in self.text and not re.search(r"(?m)^\s*1\. ", self.text)


def normalize_goals(text: str) -> str:
    """The goal text the model reads: as Isabelle prints it, without trailing blanks or blank runs."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").strip("\n").splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")


def read_proof_state(messages: list[Message], tag: str) -> ProofState | None:
    """Find the `prover_goals TAG` output among the messages."""
    for msg in messages:
        if msg.kind != "writeln":
            continue
        head, _, rest = msg.text.partition("\n")
        words = head.split()
        if len(words) == 2 and words[0] == tag:
            if words[1] == "theory":
                return ProofState(False)
            if words[1] == "proof":
                return ProofState(True, normalize_goals(rest))
    return None


@dataclass(frozen=True)
class Audit:
    """What the bridge's `prover_audit` command printed about the proved theorem."""

    name: str
    skip_proof: bool
    oracles: tuple[str, ...]


def read_audit(messages: list[Message], tag: str) -> Audit | None:
    for msg in messages:
        if msg.kind != "writeln":
            continue
        head, _, rest = msg.text.partition("\n")
        m = re.fullmatch(r"(\S+) audit (\S+) skip_proof=(true|false) oracles=(\d+)", head.strip())
        if not m or m.group(1) != tag:
            continue
        names = []
        for line in rest.splitlines():
            line = line.strip()
            if not line or line.startswith("oracles:"):
                continue
            line = re.sub(r"^(?:\\<bullet>|•|-|\*)\s*", "", line)
            names.append(line.split(":")[0].split()[0])
        count = int(m.group(4))
        if count and len(names) < count:
            names += ["<unreadable oracle>"] * (count - len(names))
        return Audit(m.group(2), m.group(3) == "true", tuple(names))
    return None


def load_theorem(file: str | None, name: str | None, statement: str | None, header: str, write: bool,
                 allowed: tuple[str, ...] = ()):
    """The theorem `prover prove --backend isabelle` works on, and for FILE the span of its proof.

    Raises ValueError with a one-line reason for bad input.
    """
    from pathlib import Path

    from ..base import Theorem

    if file and statement:
        raise ValueError("give either FILE --theorem NAME or --statement, not both")
    if statement:
        if write:
            raise ValueError("--write needs FILE")
        found = theorem_name(statement)
        if found is None:
            raise ValueError("--statement must start with theorem/lemma NAME:")
        header = header.strip() or "imports Complex_Main"
        split_header(header)
        return Theorem(found, statement.strip(), header + "\n", allowed), None
    if not file:
        raise ValueError("nothing to prove: give FILE --theorem NAME or --statement")
    if not name:
        raise ValueError("FILE needs --theorem NAME")
    try:
        source = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"no such file: {file}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read {file}: {e}") from None
    try:
        found_thm = find_theorem(source, name)
    except KeyError:
        raise ValueError(f"theorem {name!r} not found in {file}") from None
    except ValueError as e:
        raise ValueError(f"cannot parse {file}: {e}") from None
    theorem = Theorem(found_thm.name, found_thm.statement, found_thm.header, allowed)
    return theorem, (source, found_thm.statement_end, found_thm.proof_end)
