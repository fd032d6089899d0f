"""Coq source text: sentences, comments, theorem lookup in a file, and the tactic filter.

Model output is untrusted: a tactic reaches coqtop only as one single-line sentence that cannot end,
abandon or escape the proof, nor change the environment.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

THEOREM_KEYWORDS = ("Theorem", "Lemma", "Fact", "Remark", "Corollary", "Proposition", "Property",
                    "Example")
_THEOREM_RE = re.compile(
    r"^(?:#\[[^\]]*\]\s*)?(?:(?:Local|Global|Polymorphic|Monomorphic)\s+)*"
    r"(" + "|".join(THEOREM_KEYWORDS) + r")\s+([A-Za-z_][A-Za-z0-9_']*)"
)
_PROOF_END_RE = re.compile(r"^(Qed|Defined|Admitted|Abort|Save)\b")

# Words that end, abandon or escape a proof, or change the environment, wherever they appear.
FORBIDDEN_WORDS = frozenset({
    "admit", "give_up", "Admitted", "Qed", "Defined", "Save", "Abort", "Proof", "Axiom", "Axioms",
    "Parameter", "Parameters", "Conjecture", "Hypothesis", "Hypotheses", "Variable", "Variables",
    "Unset", "Require", "Import", "Export", "Drop", "Quit", "Reset", "Restart", "Back", "BackTo",
    "Undo", "Load", "Declare", "Module", "Section", "End", "Ltac", "Redirect", "Timeout",
    "exact_no_check", "vm_cast_no_check", "native_cast_no_check", "change_no_check",
})
MAX_TACTIC_CHARS = 2000


@dataclass(frozen=True)
class Sentence:
    text: str  # the raw source text, comments included
    start: int  # offsets into the source
    end: int

    @property
    def clean(self) -> str:
        """The sentence without comments, on one line (coqtop reads one sentence per line)."""
        return " ".join(strip_comments(self.text).split())


class CoqSyntaxError(ValueError):
    pass


def strip_comments(text: str) -> str:
    out, i, depth, n = [], 0, 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            if depth == 0:
                out.append(c)
            if c == '"':
                in_string = False
            i += 1
        elif text.startswith("(*", i):
            depth += 1
            i += 2
        elif depth and text.startswith("*)", i):
            depth -= 1
            i += 2
            if depth == 0:
                out.append(" ")
        else:
            if c == '"':
                in_string = True
            if depth == 0:
                out.append(c)
            i += 1
    if depth:
        raise CoqSyntaxError("unterminated comment")
    return "".join(out)


_GOAL_SELECTOR = re.compile(r"\s*(?:\d+(?:\s*-\s*\d+)?(?:\s*,\s*\d+(?:\s*-\s*\d+)?)*|all|par|\[[^\]]*\])"
                            r"\s*:\s*")


def _is_ellipsis_pair(text: str, i: int) -> bool:
    """The second dot of ``..`` (recursive notations), which does not end a sentence; the third dot of
    ``tac...`` (the `Proof with` tactic) does."""
    return i >= 1 and text[i - 1] == "." and (i < 2 or text[i - 2] != ".")


def split_sentences(text: str) -> list[Sentence]:
    """Split Coq source into sentences: a '.' followed by white space or the end, or a bullet/brace."""
    sentences: list[Sentence] = []
    i, n, depth, in_string = 0, len(text), 0, False
    start = None
    while i < n:
        c = text[i]
        if in_string:
            if c == '"':
                in_string = False
            i += 1
            continue
        if text.startswith("(*", i):
            depth += 1
            i += 2
            continue
        if depth:
            if text.startswith("*)", i):
                depth -= 1
                i += 2
            else:
                i += 1
            continue
        if start is None:
            if c.isspace():
                i += 1
                continue
            start = i
            # Bullets and braces are sentences of their own.
            if c in "{}":
                sentences.append(Sentence(c, i, i + 1))
                start = None
                i += 1
                continue
            m = re.match(r"-+|\++|\*+", text[i:])  # a bullet may touch its tactic: `++now apply H.`
            if m:
                sentences.append(Sentence(m.group(0), i, i + m.end()))
                start = None
                i += m.end()
                continue
        if c == '"':
            in_string = True
        elif c == "." and (i + 1 == n or text[i + 1].isspace()) and not _is_ellipsis_pair(text, i):
            sentences.append(Sentence(text[start:i + 1], start, i + 1))
            start = None
        elif c == "{" and _GOAL_SELECTOR.fullmatch(text, start, i):
            sentences.append(Sentence(text[start:i + 1], start, i + 1))  # `2: {` focuses a goal
            start = None
        i += 1
    if depth:
        raise CoqSyntaxError("unterminated comment")
    if in_string:
        raise CoqSyntaxError("unterminated string")
    if start is not None and text[start:].strip():
        raise CoqSyntaxError(f"unterminated sentence: {text[start:].strip()[:60]!r}")
    return sentences


def theorem_name(statement: str) -> str | None:
    m = _THEOREM_RE.match(" ".join(strip_comments(statement).split()))
    return m.group(2) if m else None


@dataclass(frozen=True)
class TheoremInFile:
    header: str  # every sentence before the statement, verbatim
    statement: str
    name: str
    statement_end: int  # offset just after the statement
    proof_end: int  # offset just after the proof (its Qed/Admitted/...), or statement_end if none


def find_theorem(source: str, name: str) -> TheoremInFile:
    """Locate theorem ``name`` in a .v file; its header is all that comes before it."""
    sentences = split_sentences(source)
    for idx, s in enumerate(sentences):
        if theorem_name(s.text) == name:
            proof_end = s.end
            rest = sentences[idx + 1:]
            if rest and rest[0].clean.startswith("Proof"):
                for t in rest:
                    if _PROOF_END_RE.match(t.clean):
                        proof_end = t.end
                        break
                else:
                    proof_end = rest[-1].end
            elif rest and _PROOF_END_RE.match(rest[0].clean):
                proof_end = rest[0].end
            return TheoremInFile(source[:s.start], s.text, name, s.end, proof_end)
    raise KeyError(name)


def check_tactic(tactic: str) -> tuple[str | None, str]:
    """Return (the tactic as one single-line sentence, "") or (None, why it is refused)."""
    text = tactic.strip()
    if not text:
        return None, "empty tactic"
    if len(text) > MAX_TACTIC_CHARS:
        return None, "tactic too long"
    if "(*" in text or "*)" in text or '"' in text:
        return None, "comments and strings are not allowed in a tactic"
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in text):
        return None, "control characters in tactic"
    text = " ".join(text.split())
    if not text.endswith("."):
        text += "."
    try:
        sentences = split_sentences(text)
    except CoqSyntaxError as e:
        return None, str(e)
    if len(sentences) != 1 or sentences[0].text != text:
        return None, "a tactic must be exactly one sentence"
    first = text[0]
    if first in "-+*{}":
        return None, "bullets and braces are not used: the search works on the goals in order"
    if first.isupper():
        return None, "a command, not a tactic"
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_']*", text))
    bad = sorted(words & FORBIDDEN_WORDS)
    if bad:
        return None, f"forbidden word in tactic: {bad[0]}"
    return text, ""
