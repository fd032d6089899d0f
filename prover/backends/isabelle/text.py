"""Isabelle source text: the step pre-filter, the theories the bridge writes, reading the results.

Model output is untrusted. The real guard runs inside Isabelle (``isabelle/Prover_Bridge.thy``
vets every step with Isabelle's own outer syntax and name spaces before anything of it runs). This
module is the fast first pass, with the same allow-lists: a step is made of Isar *proof* commands,
its proof methods and attributes are on the allow-lists below (qualified or not, quoted or not), no
theory command, no comment, no declaration attribute (``[[...]]``), strings, cartouches and brackets
balanced, ASCII only (the common Unicode symbols are rewritten to Isabelle's ASCII form first).
The full check re-checks the whole theory anyway.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from . import bridge

# Isar proof commands a step may use. The same list is in Prover_Bridge.thy (a test compares them).
PROOF_COMMANDS = frozenset({
    "apply", "apply_end", "by", "done", "using", "unfolding", "with", "from", "then", "hence",
    "thus", "have", "show", "obtain", "consider", "fix", "assume", "presume", "let", "note",
    "moreover", "ultimately", "also", "finally", "proof", "qed", "next", "case", "subgoal",
    "defer", "prefer", "define", "supply", "including", "{", "}", ".", "..",
})
# Proof methods a step may name (base names; `Pure.simp` counts as `simp`). Methods that run ML
# (tactic, raw_tactic), skip proofs (sorry), or take other methods as arguments (use, match) are
# not here. Same list in Prover_Bridge.thy.
PROOF_METHODS = frozenset({
    "-", "auto", "simp", "simp_all", "force", "fastforce", "fast", "blast", "best", "bestsimp",
    "slow", "slowsimp", "clarify", "clarsimp", "safe", "iprover", "metis", "meson", "smt", "argo",
    "linarith", "arith", "presburger", "algebra", "sos", "approximation", "eval", "code_simp",
    "order", "rule", "erule", "drule", "frule", "intro", "elim", "rule_tac", "erule_tac",
    "drule_tac", "frule_tac", "cut_tac", "subgoal_tac", "thin_tac", "rename_tac", "rotate_tac",
    "case_tac", "induct_tac", "ind_cases", "subst", "hypsubst", "hypsubst_thin", "induct",
    "induction", "coinduction", "cases", "goal_cases", "insert", "unfold", "fold", "unfold_locales",
    "intro_locales", "intro_classes", "standard", "this", "fact", "assumption", "contradiction",
    "split", "atomize", "transfer", "succeed", "fail",
})
# Attributes a step may name, in `fact[...]` or on a local fact `have h[simp]: ...`. Configuration
# options are attributes too (quick_and_dirty, simp_trace, ...): none is on the list. Same list in
# Prover_Bridge.thy.
ATTRIBUTES = frozenset({
    "of", "OF", "THEN", "where", "symmetric", "simplified", "unfolded", "folded", "rule_format",
    "elim_format", "rotated", "consumes", "case_names", "case_conclusion", "params", "simp",
    "intro", "elim", "dest", "iff", "rule", "split", "cong", "trans", "sym", "arith",
    "field_simps", "algebra_simps", "divide_simps", "ac_simps", "abs_def", "standard", "no_vars",
    "transferred", "untransferred", "induct", "cases", "atomize", "rulify",
})
METHOD_COMMANDS = frozenset({"apply", "apply_end", "by", "proof", "qed"})
SLEDGEHAMMER = "sledgehammer"
# Outer-syntax commands of Pure, HOL and the libraries miniF2F imports that are not proof commands.
# Keywords cannot be identifiers, so outside strings such a word is always the command itself.
OTHER_COMMANDS = frozenset({
    "theory", "begin", "end", "imports", "chapter", "section", "subsection", "subsubsection",
    "paragraph", "subparagraph", "text", "txt", "text_raw", "ML", "ML_file", "ML_file_debug",
    "ML_file_no_debug", "ML_val", "ML_command", "ML_prf", "ML_export", "SML_file", "SML_file_debug",
    "SML_file_no_debug", "SML_import", "SML_export", "setup", "local_setup", "attribute_setup",
    "method_setup", "declaration", "syntax_declaration", "simproc_setup", "parse_ast_translation",
    "parse_translation", "print_translation", "typed_print_translation", "print_ast_translation",
    "oracle", "default_sort", "typedecl", "type_synonym", "nonterminal", "judgment", "consts",
    "syntax", "no_syntax", "translations", "no_translations", "axiomatization", "axioms",
    "definition", "abbreviation", "type_notation", "no_type_notation", "notation", "no_notation",
    "write", "alias", "type_alias", "lemmas", "theorems", "declare", "hide_class", "hide_type",
    "hide_const", "hide_fact", "bundle", "unbundle", "include", "context", "locale", "experiment",
    "interpretation", "global_interpretation", "sublocale", "interpret", "class", "subclass",
    "instantiation", "instance", "overloading", "arities", "classes", "classrel", "code_datatype",
    "theorem", "lemma", "corollary", "proposition", "schematic_goal", "notepad", "sorry", "oops",
    "back", "guess", "realizers", "realizability", "extract_type", "extract", "named_theorems",
    "generate_file", "export_generated_files", "compile_generated_files", "external_file",
    "scala_build_generated_files", "document_files", "thy_deps", "locale_deps", "class_deps",
    "thm_deps", "thm_oracles", "unused_thms", "find_theorems", "find_consts", "welcome",
    "display_drafts", "term", "typ", "prop", "value", "values", "thm", "prf", "full_prf", "help",
    "export_code", "code_printing", "code_reserved", "code_identifier", "code_monad",
    "code_reflect", "code_pred", "code_thms", "code_deps", "datatype", "codatatype", "primrec",
    "primcorec", "primcorecursive", "corec", "corecursive", "friend_of_corec", "fun", "function",
    "termination", "fun_cases", "partial_function", "inductive", "inductive_set", "coinductive",
    "coinductive_set", "inductive_cases", "inductive_simps", "record", "typedef", "quotient_type",
    "quotient_definition", "lift_definition", "setup_lifting", "lifting_forget", "lifting_update",
    "free_constructors", "bnf", "bnf_axiomatization", "copy_bnf", "lift_bnf", "old_rep_datatype",
    "specification", "ax_specification", "nitpick", "nitpick_params", "refute", "refute_params",
    "quickcheck", "quickcheck_params", "quickcheck_generator", "try", "try0", "try1",
    "sledgehammer_params", "nunchaku", "nunchaku_params", "solve_direct", "smt_status", "method",
    "adhoc_overloading", "no_adhoc_overloading", "functor", "find_unused_assms", "approximate",
})
# Names that end or skip a proof, run ML or weaken checking: refused as a word, as the last part
# of a qualified name (`Pure.tactic`), and as the whole content of a string or cartouche
# (`("tactic" ...)`), whatever the position.
FORBIDDEN_NAMES = frozenset({
    "sorry", "oops", "\\<proof>", "tactic", "raw_tactic", "skip_proof", "skip_proofs",
    "quick_and_dirty", "cheat_tac", "ML", *bridge.COMMANDS, "prover_goals",
})
MAX_STEP_CHARS = 4000
_CLOSE = {"(": ")", "[": "]", "{": "}"}
# The common Unicode renderings of Isabelle symbols, as Isabelle/jEdit shows them; steps are kept in
# the ASCII form, which is what Isabelle/ML and the theory files read.
UNICODE_SYMBOLS = {
    "‹": "\\<open>", "›": "\\<close>", "∀": "\\<forall>", "∃": "\\<exists>", "¬": "\\<not>",
    "∧": "\\<and>", "∨": "\\<or>", "⟶": "\\<longrightarrow>", "⟹": "\\<Longrightarrow>",
    "⇒": "\\<Rightarrow>", "→": "\\<rightarrow>", "≤": "\\<le>", "≥": "\\<ge>", "≠": "\\<noteq>",
    "∈": "\\<in>", "∉": "\\<notin>", "⊆": "\\<subseteq>", "⊂": "\\<subset>", "∪": "\\<union>",
    "∩": "\\<inter>", "λ": "\\<lambda>", "⋀": "\\<And>", "≡": "\\<equiv>",
    "⟷": "\\<longleftrightarrow>", "×": "\\<times>", "∑": "\\<Sum>", "∏": "\\<Prod>",
    "⌊": "\\<lfloor>", "⌋": "\\<rfloor>", "⌈": "\\<lceil>", "⌉": "\\<rceil>", "√": "\\<sqrt>",
    "π": "\\<pi>", "∘": "\\<circ>", "∞": "\\<infinity>", "¦": "\\<bar>", "α": "\\<alpha>",
    "β": "\\<beta>", "γ": "\\<gamma>", "δ": "\\<delta>", "θ": "\\<theta>",
}
_THEOREM_RE = re.compile(r"^\s*(theorem|lemma|corollary|proposition)\s+([A-Za-z][A-Za-z0-9_'.]*)"
                         r"\s*(?:\[[^\]]*\]\s*)?:", re.S)
_PROOF_START = re.compile(r"^[ \t]*(proof|by|apply|using|unfolding|including|sorry|oops|done)(?![A-Za-z0-9_'])",
                          re.M)
_NEXT_ITEM = re.compile(r"^[ \t]*(theorem|lemma|corollary|proposition|end|definition|fun|text)(?![A-Za-z0-9_'])",
                        re.M)
_HERE = re.compile(r"\\<\^here>")
_AT_COMMAND = re.compile(r"\n?At command \S+(?: \(line \d+[^)]*\))?\s*$")
_TRY_THIS = re.compile(r"Try this:\s*(?P<method>.+?)\s*(?:\((?:[^()]*\d[^()]*(?:ms|s)\b[^()]*)\))?\s*$",
                       re.S)
_WORD = re.compile(r"(?:[A-Za-z_]|\\<[A-Za-z]+>)(?:[A-Za-z0-9_'.]|\\<[A-Za-z]+>|\\<\^sub>)*")
_NAME = re.compile(r"[A-Za-z_\\][\w'.<>\\]*")


class IsarSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    kind: str  # word | string | cartouche | symbol | number
    text: str

    @property
    def content(self) -> str:
        """A string's or cartouche's text without its delimiters; a word or symbol itself."""
        if self.kind == "string":
            return self.text[1:-1]
        if self.kind == "cartouche":
            inner = self.text[1:] if self.text.startswith("‹") else self.text[len("\\<open>"):]
            return inner[:-1] if inner.endswith("›") else inner[:-len("\\<close>")]
        return self.text


def ascii_symbols(text: str) -> str:
    """Unicode renderings of Isabelle symbols in their ASCII form (``∀`` -> ``\\<forall>``)."""
    return "".join(UNICODE_SYMBOLS.get(ch, ch) for ch in text)


def tokenize(text: str) -> list[Token]:
    """A light Isar outer-syntax lexer: enough to see commands, names and brackets outside inner syntax."""
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
            m = _WORD.match(text, i)
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


def _last_part(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _forbidden(tok: Token) -> str | None:
    """The forbidden name a token is or holds, if any."""
    if tok.kind == "word":
        if tok.text in OTHER_COMMANDS or tok.text in FORBIDDEN_NAMES or tok.text.startswith("print_"):
            return tok.text
        if _last_part(tok.text) in FORBIDDEN_NAMES:
            return tok.text
    elif tok.kind in ("string", "cartouche"):
        inner = tok.content.strip()
        if _NAME.fullmatch(inner) and (inner in OTHER_COMMANDS or _last_part(inner) in FORBIDDEN_NAMES
                                       or inner.startswith("print_")):
            return inner
    elif tok.kind == "symbol" and tok.text == "\\<proof>":
        return tok.text
    return None


def _is_command_word(tok: Token) -> bool:
    return tok.kind in ("word", "symbol") and tok.text in PROOF_COMMANDS


def method_names(tokens: list[Token]) -> list[str]:
    """Names of the proof methods in a step: after apply/by/proof/qed, a word at the top level, or
    the first word of a parenthesized group and after each combinator (`,` `;` `|`) in it; a
    parenthesis after a method's name opens its arguments."""
    names: list[str] = []
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        i += 1
        if not (tok.kind == "word" and tok.text in METHOD_COMMANDS):
            continue
        stack: list[str] = []  # "group" (method expression) or "args" (a method's own arguments)
        expect = True
        while i < n:
            tok = tokens[i]
            if not stack and _is_command_word(tok):
                break  # the next command
            i += 1
            in_args = "args" in stack
            if tok.kind == "symbol" and tok.text == "(":
                stack.append("group" if expect and not in_args else "args")
            elif tok.kind == "symbol" and tok.text == "[":  # attributes, or a goal selection `[2]`
                stack.append("args")
            elif tok.kind == "symbol" and tok.text in ")]":
                if stack:
                    stack.pop()
                expect = not stack
            elif tok.kind == "symbol" and tok.text in ",;|" and not in_args:
                expect = True
            elif expect and not in_args and tok.kind in ("word", "string") or \
                    expect and not in_args and tok.kind == "symbol" and tok.text == "-":
                names.append(tok.content if tok.kind == "string" else tok.text)
                expect = not stack  # at the top level every word is a method (`by m1 m2`)
    return names


def attribute_names(tokens: list[Token]) -> list[str]:
    """Names of the attributes in a step: the first word after `[` and after each `,` directly in
    the brackets (`h[of x, simplified]`, `[[name]]`); `[2]` after a method selects goals."""
    names: list[str] = []
    stack: list[str] = []
    expect = False
    for tok in tokens:
        is_sym = tok.kind == "symbol"
        if is_sym and tok.text == "[":
            stack.append("[")
            expect = True
        elif expect:
            expect = False
            if tok.kind == "number" and stack:
                stack[-1] = "select"
            else:
                names.append(tok.content if tok.kind in ("string", "cartouche") else tok.text)
        elif is_sym and tok.text == "(":
            stack.append("(")
        elif is_sym and tok.text in ")]":
            if stack:
                stack.pop()
        elif is_sym and tok.text == "," and stack and stack[-1] == "[":
            expect = True
    return names


def check_step(step: str) -> tuple[str | None, str]:
    """Return (the step as it will be sent to Isabelle, "") or (None, why it is refused)."""
    text = ascii_symbols(step.strip())
    if not text:
        return None, "empty step"
    if len(text) > MAX_STEP_CHARS:
        return None, "step too long"
    if any((ord(ch) < 32 and ch not in "\n\t") or ch == "\x7f" for ch in text):
        return None, "control characters in step"
    bad = next((ch for ch in text if ord(ch) > 126), None)
    if bad is not None:
        return None, f"non-ASCII character {bad!r} in step (write Isabelle symbols as \\<name>)"
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
        name = _forbidden(tok)
        if name is not None:
            return None, f"forbidden word in step: {name}"
    if stack and stack != ["}"] * len(stack):
        return None, "unbalanced brackets"
    if any(a.kind == b.kind == "symbol" and a.text == b.text == "[" for a, b in zip(tokens, tokens[1:])):
        return None, "declaration attributes ([[...]]) are not allowed in a step"
    first = tokens[0]
    if first.kind == "word" and first.text == SLEDGEHAMMER:
        return None, "sledgehammer is a step of its own"
    if first.text not in PROOF_COMMANDS:
        return None, f"a step starts with a proof command (apply, by, have, ...), not {first.text!r}"
    if any(t.kind == "word" and t.text == SLEDGEHAMMER for t in tokens):
        return None, "sledgehammer is a step of its own"
    for name in method_names(tokens):
        if _last_part(name) not in PROOF_METHODS:
            return None, f"proof method not allowed in a step: {name}"
    for name in attribute_names(tokens):
        if _last_part(name) not in ATTRIBUTES:
            return None, f"attribute not allowed in a step: {name}"
    return "\n".join(line.rstrip() for line in text.splitlines()), ""


def is_sledgehammer(step: str) -> bool:
    return step.strip() == SLEDGEHAMMER


def filter_step(step: str) -> tuple[bool, str]:
    """What the search does with a candidate before Isabelle sees it: (accepted, reason if refused).
    ``sledgehammer`` alone is the bridge's own step (DSP heuristics, then Sledgehammer)."""
    if is_sledgehammer(step):
        return True, ""
    text, why = check_step(step)
    return text is not None, why


def strip_comments(text: str) -> str:
    """``text`` without its ``(* ... *)`` comments (nested ones too), strings and cartouches kept:
    the informal steps of a draft-sketch-prove sketch."""
    out: list[str] = []
    i, n, depth, start = 0, len(text), 0, 0
    while i < n:
        if depth == 0 and text[i] in "\"`":
            j = i + 1
            while j < n and text[j] != text[i]:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
        elif text.startswith("(*", i):
            if depth == 0:
                out.append(text[start:i])
            depth += 1
            i += 2
        elif depth and text.startswith("*)", i):
            depth -= 1
            i += 2
            start = i
        else:
            i += 1
    if depth == 0:
        out.append(text[start:])
    joined = "".join(out)
    return "\n".join(line.rstrip() for line in joined.splitlines() if line.strip())


def imports_sum_of_squares(header: str) -> bool:
    """Whether the theory imports HOL-Library's Sum_of_Squares (which brings the `sos` method)."""
    try:
        imports = split_header(header).imports
    except ValueError:
        return False
    return re.search(r"(?:^|[\s\"])(?:HOL-Library\.)?Sum_of_Squares(?:[\s\"]|$)", imports) is not None


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



# -- the theories the bridge writes ---------------------------------------------------------------
@dataclass(frozen=True)
class TheoryText:
    """A theory the bridge writes, and which lines hold what (1-based, inclusive)."""

    name: str
    text: str
    marker_line: int  # the bridge command's line: its report is read from there only
    statement_lines: tuple[int, int] = (0, 0)
    step_lines: tuple[tuple[int, int], ...] = ()  # one range per step


def theory_imports(header: str, bridge_import: str) -> str:
    """The header's imports with the bridge theory added."""
    imports = split_header(header).imports
    return f"{imports} {bridge_import}".strip() if bridge_import else imports


def bridge_theory(name: str, imports: str, preamble: str, command: str) -> TheoryText:
    """``imports``, the preamble (definitions), then one bridge command on a line of its own."""
    lines = [f"theory {name}", f"  imports {imports}", "begin", ""]
    if preamble.strip():
        lines += preamble.strip("\n").splitlines() + [""]
    lines.append(command)
    marker = len(lines)
    lines.append("end")
    return TheoryText(name, "\n".join(lines) + "\n", marker)


def check_theory(name: str, header: str, statement: str, steps: list[str] | tuple[str, ...],
                 bridge_import: str, command: str) -> TheoryText:
    """The full check: header, statement and the steps as plain theory text, then ``command`` (the
    audit) at theory level, after the proof."""
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
    lines.append("")
    lines.append(command)
    marker = len(lines)
    lines.append("end")
    return TheoryText(name, "\n".join(lines) + "\n", marker, statement_lines, tuple(ranges))


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
    """Drop the position markers Isabelle leaves in message text and the bridge's "At command"
    trailer; trim trailing blanks."""
    text = _AT_COMMAND.sub("", _HERE.sub("", text).strip("\n"))
    return "\n".join(line.rstrip() for line in text.splitlines())


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


def normalize_goals(text: str) -> str:
    """The goal text the model reads: as Isabelle prints it, without trailing blanks or blank runs."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").strip("\n").splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")


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
