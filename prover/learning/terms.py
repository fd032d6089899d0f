"""Printed Coq terms read back into trees: a tolerant Pratt parser over Coq's notations.

The features of a proof state are symbols and head-argument pairs, so the parser only needs the shape
of a term: which symbol heads an application or a notation and what its arguments are. It knows the
binders (forall, exists, fun, let, match, if) and the standard infix notations with their Coq levels;
an unknown operator is read as a left-associative infix at level 55. It never fails: a token it cannot
place becomes a leaf, so any goal text gives a tree.

A tree is ``(label, children)``; a leaf has no children. Bound variables are the leaf ``BOUND``;
``%Z``-style scope keys are dropped from the tree and reported with the symbols.
"""
from __future__ import annotations

import re

Tree = tuple  # (label: str, children: tuple[Tree, ...])

BOUND = "$b"  # a variable bound inside the term (forall, fun, exists, match patterns, let)
APP = "$app"  # application whose head is not a symbol, e.g. (f x) y

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<scope>%[A-Za-z_]\w*)
  | (?P<id>@?[A-Za-z_\u00C0-\uFFFF][\w'\u00C0-\uFFFF]*(?:\.[A-Za-z_\u00C0-\uFFFF][\w'\u00C0-\uFFFF]*)*)
  | (?P<num>\d+(?:\.\d+)?)
  | (?P<open>[(\[{])
  | (?P<close>[)\]}])
  | (?P<comma>,)
  | (?P<bs>\\[A-Za-z_]+)
  | (?P<op>[-!#$&*+/:;<=>?@\\^|~.'`%]+)
""", re.X)

KEYWORDS = frozenset({"forall", "exists", "exists2", "fun", "let", "in", "match", "with", "end", "if", "then",
                      "else", "as", "return", "fix", "cofix", "struct"})
BINDERS = frozenset({"forall", "exists", "exists2", "fun"})

# Coq levels of the standard notations (lower level binds tighter) and associativity.
_LEVELS: dict[str, tuple[int, str]] = {
    ",": (150, "r"), "->": (99, "r"), "<->": (95, "n"), "\\/": (85, "r"), "/\\": (80, "r"),
    "&": (80, "r"), "||": (50, "l"), "&&": (40, "l"),
    "=": (70, "n"), "<>": (70, "n"), "<": (70, "n"), "<=": (70, "n"), ">": (70, "n"), ">=": (70, "n"),
    "==": (70, "n"), "!=": (70, "n"), "=?": (70, "n"), "<=?": (70, "n"), "<?": (70, "n"),
    "==>": (90, "r"), "<=>": (95, "n"), "|": (150, "r"), ";": (150, "r"), ":": (100, "r"), ":=": (150, "r"),
    "::": (60, "r"), "++": (60, "r"), "+": (50, "l"), "-": (50, "l"), "*": (40, "l"), "/": (40, "l"),
    "^": (30, "r"), "÷": (40, "l"), "o": (40, "l"), "mod": (40, "l"), "=>": (150, "r"), "<-": (150, "r"),
    "%|": (70, "n"), "%/": (40, "l"), "%%": (40, "l"), "\\in": (70, "n"), "\\notin": (70, "n"),
    "\\subset": (70, "n"), "\\o": (50, "l"), "\\/=": (70, "n"),
}
_DEFAULT_LEVEL = (55, "l")
_PREFIX_LEVEL = {"~": 75, "-": 35, "'": 0, "#": 0, "!": 0, "~~": 35, "`": 0}


def _binding(op: str) -> tuple[int, int]:
    """Left and right binding powers of an infix operator (higher binds tighter)."""
    level, assoc = _LEVELS.get(op, _DEFAULT_LEVEL)
    bp = 200 - level
    if assoc == "r":
        return bp, bp
    return bp, bp + 1


def tokenize(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Tokens ``(kind, text)`` and the scope keys met (``%Z`` -> ``Z``)."""
    tokens: list[tuple[str, str]] = []
    scopes: list[str] = []
    pos, n = 0, len(text)
    match = _TOKEN.match
    while pos < n:
        m = match(text, pos)
        if m is None:  # a character no rule covers: a symbol of its own
            tokens.append(("op", text[pos]))
            pos += 1
            continue
        kind = m.lastgroup
        value = m.group(kind)
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "scope":
            scopes.append(value[1:])
            continue
        if kind == "id":
            if value[0] == "@":
                value = value[1:]
            if value in KEYWORDS:
                kind = "kw"
            elif value == "mod":
                kind = "op"
        elif kind == "bs":
            kind = "op"
        tokens.append((kind, value))
    return tokens, scopes


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], bound: frozenset[str] = frozenset()) -> None:
        self.toks = tokens
        self.i = 0
        self.bound = [set(bound)]

    # -- helpers ---------------------------------------------------------------------------
    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        t = self.toks[self.i]
        self.i += 1
        return t

    def is_bound(self, name: str) -> bool:
        return any(name in s for s in self.bound)

    def leaf(self, name: str) -> Tree:
        return (BOUND if self.is_bound(name) else name, ())

    # -- grammar -----------------------------------------------------------------------------
    def parse_all(self) -> list[Tree]:
        out = []
        while self.i < len(self.toks):
            start = self.i
            out.append(self.expr(0, frozenset()))
            if self.i == start:  # a token nothing accepts: keep it as a leaf
                out.append((self.take()[1], ()))
        return out

    def expr(self, min_bp: int, stops: frozenset[str]) -> Tree:
        left = self.prefix(stops)
        while True:
            t = self.peek()
            if t is None or t[1] in stops:
                break
            kind, value = t
            if kind in ("op", "comma"):
                lbp, rbp = _binding(value)
                if lbp < min_bp:
                    break
                self.take()
                if self.starts_term(stops):
                    right = self.expr(rbp, stops)
                    left = (value, (left, right))
                else:  # a postfix use, e.g. "x ^-1" cut short
                    left = (value, (left,))
            else:
                break
        return left

    def starts_term(self, stops: frozenset[str]) -> bool:
        t = self.peek()
        if t is None or t[1] in stops:
            return False
        kind, value = t
        if kind in ("id", "num", "open"):
            return True
        if kind == "kw":
            return value in BINDERS or value in ("let", "match", "if", "fix", "cofix")
        return kind == "op" and value in _PREFIX_LEVEL

    def prefix(self, stops: frozenset[str]) -> Tree:
        t = self.peek()
        if t is None or t[1] in stops:
            return ("$empty", ())
        kind, value = t
        if kind == "kw":
            if value in BINDERS:
                return self.binder(stops)
            if value == "let":
                return self.let(stops)
            if value == "match":
                return self.match(stops)
            if value == "if":
                return self.if_(stops)
            if value in ("fix", "cofix"):
                self.take()
                return (value, ())
            return ("$empty", ())  # a keyword that ends the term (in, with, then, else, end)
        if kind == "op" and value in _PREFIX_LEVEL:
            self.take()
            if not self.starts_term(stops):
                return (value, ())
            arg = self.expr(200 - _PREFIX_LEVEL[value] if _PREFIX_LEVEL[value] else 200, stops)
            return (value, (arg,))
        if kind in ("op", "comma"):  # an operator with no left side: a leaf
            self.take()
            return (value, ())
        return self.application(stops)

    def application(self, stops: frozenset[str]) -> Tree:
        head = self.atom(stops)
        args = []
        while True:
            t = self.peek()
            if t is None or t[1] in stops or t[0] not in ("id", "num", "open"):
                break
            args.append(self.atom(stops))
        if not args:
            return head
        if not head[1] and head[0] != BOUND:
            return (head[0], tuple(args))
        return (APP, (head, *args))

    def atom(self, stops: frozenset[str]) -> Tree:
        kind, value = self.take()
        if kind == "id":
            return self.leaf(value)
        if kind == "num":
            return (value, ())
        if kind == "open":
            close = {"(": ")", "[": "]", "{": "}"}[value]
            inner_stops = frozenset({close})
            if self.peek() is not None and self.peek()[1] == close:
                self.take()
                return ("[]" if value == "[" else "()" if value == "(" else "{}", ())
            items = []
            while self.peek() is not None and self.peek()[1] != close:
                start = self.i
                items.append(self.expr(0, inner_stops))
                if self.i == start:
                    items.append((self.take()[1], ()))
            if self.peek() is not None:
                self.take()
            if value == "(":
                return items[0] if len(items) == 1 else (APP, tuple(items))
            return (value + close, tuple(items))
        return (value, ())

    def names_until(self, ends: set[str]) -> tuple[list[str], list[Tree]]:
        """Binder names and the types written with them, up to a top-level token in ``ends``."""
        names: list[str] = []
        types: list[Tree] = []
        while True:
            t = self.peek()
            if t is None or (t[1] in ends and t[0] in ("comma", "op")):
                break
            kind, value = t
            if kind == "open" and value in "({":
                self.take()
                close = ")" if value == "(" else "}"
                group: list[str] = []
                while self.peek() is not None and self.peek()[1] not in (":", ":=", close):
                    k, v = self.take()
                    if k == "id":
                        group.append(v)
                if self.peek() is not None and self.peek()[1] in (":", ":="):
                    self.take()
                    types.append(self.expr(0, frozenset({close})))
                if self.peek() is not None:
                    self.take()
                names += group
            elif kind == "op" and value == ":":
                self.take()
                types.append(self.expr(0, frozenset(ends)))
            elif kind == "id":
                self.take()
                names.append(value)
            else:  # ' patterns and the like
                self.take()
        if self.peek() is not None:
            self.take()
        return names, types

    def binder(self, stops: frozenset[str]) -> Tree:
        _, word = self.take()
        names, types = self.names_until({"=>"} if word == "fun" else {","})
        self.bound.append(set(names))
        body = self.expr(0, stops)
        self.bound.pop()
        return (word, (*types, body))

    def let(self, stops: frozenset[str]) -> Tree:
        self.take()
        names, _ = self.names_until({":="})
        value = self.expr(0, stops | {"in"})
        if self.peek() is not None and self.peek()[1] == "in":
            self.take()
        self.bound.append(set(names))
        body = self.expr(0, stops)
        self.bound.pop()
        return ("let", (value, body))

    def match(self, stops: frozenset[str]) -> Tree:
        self.take()
        inner = stops | {"with", "end", "|", "return", "as", "in"}
        scrutinee = self.expr(0, inner)
        while self.peek() is not None and self.peek()[1] not in ("with", "end"):
            self.take()  # "as x", "return T": skipped
        if self.peek() is not None and self.peek()[1] == "with":
            self.take()
        branches: list[Tree] = []
        while self.peek() is not None and self.peek()[1] != "end":
            if self.peek()[1] == "|":
                self.take()
                continue
            pattern: list[tuple[str, str]] = []
            while self.peek() is not None and self.peek()[1] not in ("=>", "end"):
                pattern.append(self.take())
            if self.peek() is None or self.peek()[1] == "end":
                break
            self.take()
            ids = [v for k, v in pattern if k == "id"]
            self.bound.append(set(ids[1:]))  # the first name is the constructor
            body = self.expr(0, frozenset({"|", "end"}))
            self.bound.pop()
            branches.append((ids[0] if ids else "_", (body,)))
        if self.peek() is not None:
            self.take()
        return ("match", (scrutinee, *branches))

    def if_(self, stops: frozenset[str]) -> Tree:
        self.take()
        cond = self.expr(0, stops | {"then"})
        parts = [cond]
        for word in ("then", "else"):
            if self.peek() is not None and self.peek()[1] == word:
                self.take()
                parts.append(self.expr(0, stops | {"else"}))
        return ("if", tuple(parts))


def parse(text: str) -> tuple[list[Tree], list[str]]:
    """Trees of a printed term (usually one) and its scope keys."""
    tokens, scopes = tokenize(text)
    return _Parser(tokens).parse_all(), scopes
