"""Lean 4 source text: declaration names, the tactic filter, proof text, goals, and the verdict of the
full check (errors, ``sorry`` warnings, ``#print axioms``).

Model output is untrusted: a tactic reaches Lean only if it cannot end the proof early, declare or
change anything outside it, run arbitrary code, or hide the rest of the file in a comment.
"""
from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

# The axioms Lean's own library and Mathlib rest on; a proof may use them and nothing else.
STANDARD_AXIOMS = ("propext", "Classical.choice", "Quot.sound")
MAX_TACTIC_CHARS = 4000

_DECLARATION_RE = re.compile(
    r"^\s*(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|noncomputable|nonrec)\s+)*"
    r"(theorem|lemma|def)\s+([^\s:({\[⦃]+)")

# Name components that end or abandon the proof, escape the kernel's checking, write outside Lean's
# message log (``dbg_trace`` prints to the REPL's own output), search the library and close the goal
# with what they find or with ``sorry`` (``exact?``, ``apply?``, ``rw?``), or are commands
# (declarations, options, meta-programs) rather than tactics. Checked per dot-separated component.
FORBIDDEN_WORDS = frozenset({
    "sorry", "admit", "stop", "sorryAx", "native_decide", "ofReduceBool", "ofReduceNat",
    "trustCompiler", "implemented_by", "extern", "unsafe", "partial",
    "dbg_trace", "dbgTrace", "dbg_trace_if_shared", "dbgTraceIfShared", "dbgTraceVal", "dbgSleep",
    "dbgStackTrace", "exact?", "apply?", "rw?", "library_search",
    "theorem", "lemma", "def", "abbrev", "axiom", "axioms", "example", "instance", "opaque",
    "structure", "class", "inductive", "coinductive", "mutual", "namespace", "section", "end",
    "variable", "universe", "omit", "include", "private", "protected", "noncomputable",
    "set_option", "import", "attribute", "initialize", "builtin_initialize", "export",
    "run_tac", "run_cmd", "run_elab", "run_meta", "by_elab", "elab", "elab_rules", "macro",
    "macro_rules", "syntax", "notation", "infix", "infixl", "infixr", "prefix", "postfix",
    "declare_syntax_cat", "deriving", "local", "scoped",
})
_OPEN = {"(": ")", "[": "]", "{": "}", "⟨": "⟩", "⦃": "⦄", "⟪": "⟫", "‹": "›"}
_CLOSE = {v: k for k, v in _OPEN.items()}
_NAME_RE = re.compile(r"[^\W\d][\w'!?₀-₉ₐ-ₜ]*")


def declaration_name(statement: str) -> str | None:
    """The name a ``theorem``/``lemma``/``def`` statement declares, or None."""
    m = _DECLARATION_RE.match(statement)
    return m.group(2) if m else None


def _code_only(text: str) -> tuple[str | None, str]:
    """The text with comments and string literals blanked out, or (None, why) if one is unterminated."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("/-", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/-", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("-/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            if depth:
                return None, "unterminated comment"
            out.append(" ")
        elif text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text[i] == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                return None, "unterminated string"
            i += 1
            out.append('""')
        else:
            out.append(text[i])
            i += 1
    return "".join(out), ""


def check_tactic(tactic: str) -> tuple[str | None, str]:
    """Return (the tactic as Lean runs it, "") or (None, why it is refused).

    The accepted text is dedented and right-stripped; lines after the first keep their relative
    indentation, so it reads the same at the top of a tactic block.
    """
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in tactic):
        return None, "control characters in tactic"
    text = textwrap.dedent(tactic.replace("\t", "    ").strip("\n")).rstrip()
    text = "\n".join(line.rstrip() for line in text.splitlines() if line.strip())
    if not text:
        return None, "empty tactic"
    if len(text) > MAX_TACTIC_CHARS:
        return None, "tactic too long"
    code, why = _code_only(text)
    if code is None:
        return None, why
    if "#" in re.sub(r"#\[", "", code):
        return None, "commands (#eval, #exit, ...) are not allowed in a tactic"
    if re.search(r"\+\s*native\b", code) or re.search(r"\bnative\s*:=\s*true\b", code):
        return None, "native evaluation (decide +native, decide (native := true)) is not allowed"
    stack: list[str] = []
    for ch in code:
        if ch in _OPEN:
            stack.append(ch)
        elif ch in _CLOSE:
            if not stack or stack.pop() != _CLOSE[ch]:
                return None, "unbalanced brackets"
    if stack:
        return None, "unbalanced brackets"
    for name in _NAME_RE.findall(code):
        for part in name.split("."):
            if part in FORBIDDEN_WORDS:
                return None, f"forbidden word in tactic: {part}"
    return text, ""


def indent_tactic(tactic: str, by: str = "  ") -> str:
    return "\n".join(by + line for line in tactic.splitlines())


def proof_body(tactics: list[str]) -> str:
    """The tactic block that follows ``:= by``: each tactic on its own lines, indented two spaces."""
    return "\n".join(indent_tactic(t) for t in tactics)


def pp_goals(goals: list[str] | tuple[str, ...]) -> str:
    """Goals as LeanDojo's ``TacticState.pp`` prints them: each goal as ``Meta.ppGoal`` shows it
    (``case`` tag first when it has one), goals separated by a blank line."""
    return "\n\n".join(goals).strip()


@dataclass(frozen=True)
class LeanMessage:
    """A message Lean reported (the REPL's JSON shape: severity ``error|warning|info|trace``)."""

    severity: str
    data: str
    line: int = 0
    column: int = 0


_AXIOMS_RE = re.compile(r"^'(?P<name>.+?)' (?:depends on axioms: \[(?P<axioms>.*)\]|"
                        r"(?P<none>does not depend on any axioms))\s*$", re.S)
SORRY_WARNING = "declaration uses 'sorry'"


def parse_axioms(data: str) -> tuple[str, tuple[str, ...]] | None:
    """Read one ``#print axioms`` message: (declaration, axioms), or None if it is not one."""
    m = _AXIOMS_RE.match(data.strip())
    if not m:
        return None
    if m.group("none"):
        return m.group("name"), ()
    return m.group("name"), tuple(a.strip() for a in m.group("axioms").split(",") if a.strip())


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str
    axioms: tuple[str, ...] = ()


def audit_messages(messages: list[LeanMessage], name: str, allowed: set[str] | frozenset[str]) -> Verdict:
    """The full check's verdict from the messages of compiling the whole theorem then
    ``#print axioms name``: no error, no ``sorry`` warning, and only allowed axioms."""
    errors = [m for m in messages if m.severity == "error"]
    if errors:
        first = errors[0]
        return Verdict(False, f"Lean error at {first.line}:{first.column}: {' '.join(first.data.split())[:500]}")
    if any(m.severity == "warning" and SORRY_WARNING in m.data for m in messages):
        return Verdict(False, "the proof uses sorry")
    found = None
    for m in messages:
        if m.severity != "info":
            continue
        parsed = parse_axioms(m.data)
        if parsed and (parsed[0] == name or parsed[0].endswith("." + name)):
            found = parsed[1]
    if found is None:
        return Verdict(False, f"no '#print axioms {name}' output: the theorem was not declared")
    if "sorryAx" in found:
        return Verdict(False, "the proof uses sorry (sorryAx)", found)
    extra = [a for a in found if a not in allowed]
    if extra:
        why = " (native_decide)" if any(a.startswith("Lean.ofReduce") for a in extra) else ""
        return Verdict(False, f"proof depends on non-standard axioms{why}: {', '.join(extra)}", found)
    return Verdict(True, "", found)
