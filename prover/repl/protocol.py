"""The REPL's messages: one JSON object a line, requests in, responses out (docs/repl.md).

Requests are validated here into frozen dataclasses, so the server never sees a half-formed one: a
line that is not JSON, an unknown command, a missing or mistyped field, or an unknown field (most
often a typo) becomes a ``RequestError`` carrying the request's id when it could be read.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Union

from ..components import BackendOptions
from ..search.best_first import SearchConfig, SearchResult

RequestId = Union[str, int, float]
COMMANDS = ("prove", "suggest", "check", "cancel", "shutdown")
# Response types that end a request; `progress` is the only one that does not.
FINAL_TYPES = ("result", "suggestions", "check", "error", "cancelled", "bye")

SUGGEST_N = 8
SUGGEST_TACTIC_TIMEOUT = 2.0


class RequestError(ValueError):
    """A request the server refuses; answered by an `error` response."""

    def __init__(self, message: str, id: RequestId | None = None, code: str = "bad_request") -> None:
        super().__init__(message)
        self.message, self.id, self.code = message, id, code


# -- requests --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TheoremSpec:
    """Where the theorem comes from: a file and a name, the text itself, or an editor's buffer
    up to the cursor (``source``: the last theorem in it, its proof so far as the tactics)."""

    header: str = ""
    statement: str | None = None
    file: str | None = None
    name: str | None = None
    source: str | None = None
    allow_axioms: tuple[str, ...] = ()
    project: str | None = None  # Coq: a path in the project; the nearest _CoqProject at or above it is read
    coq_flags: tuple[str, ...] = ()  # Coq: more flags for coqtop and coqc (-R DIR LIB, ...)
    add_imports: bool = False  # Coq file: the prelude's tactics even where the file does not load them


@dataclass(frozen=True)
class ProveRequest:
    id: RequestId
    backend: str
    theorem: TheoremSpec
    search: SearchConfig
    options: BackendOptions
    generator: str
    tactics_file: str | None = None
    progress: bool = True


@dataclass(frozen=True)
class SuggestRequest:
    id: RequestId
    backend: str
    theorem: TheoremSpec | None  # None: a raw goal text
    goal: str | None
    tactics: tuple[str, ...]
    n: int
    check: bool
    tactic_timeout: float
    options: BackendOptions
    generator: str
    tactics_file: str | None = None


@dataclass(frozen=True)
class CheckRequest:
    id: RequestId
    backend: str
    theorem: TheoremSpec
    tactics: tuple[str, ...]
    options: BackendOptions


@dataclass(frozen=True)
class CancelRequest:
    id: RequestId
    target: RequestId


@dataclass(frozen=True)
class ShutdownRequest:
    id: RequestId


Request = Union[ProveRequest, SuggestRequest, CheckRequest, CancelRequest, ShutdownRequest]


@dataclass(frozen=True)
class Defaults:
    """What a request gets for the fields it leaves out: the `prover repl` command line's options."""

    search: SearchConfig = field(default_factory=SearchConfig)
    options: BackendOptions = field(default_factory=BackendOptions)
    backend: str = "coq"
    generator: str = "portfolio"
    tactics_file: str | None = None

    def generator_for(self, backend: str) -> str:
        """The default generator of a request: the command line's for its backend; for another backend
        the model-free portfolio (the learned default is a Coq model)."""
        return self.generator if backend == self.backend else "portfolio"


def id_key(id: RequestId) -> str:
    """A dictionary key for an id: 1 and "1" are different ids."""
    return json.dumps(id)


def _valid_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int))


class _Fields:
    """Typed reads of a request's fields; ``done`` refuses the ones nobody read."""

    def __init__(self, obj: dict, id: RequestId) -> None:
        self.obj, self.id = obj, id
        self.seen = {"id", "cmd"}

    def _get(self, name: str, default: Any, required: bool) -> Any:
        self.seen.add(name)
        if name not in self.obj or self.obj[name] is None:
            if required:
                raise RequestError(f"missing field {name!r}", self.id)
            return default
        return self.obj[name]

    def _fail(self, name: str, what: str) -> None:
        raise RequestError(f"field {name!r} must be {what}", self.id)

    def str(self, name: str, default: str | None = None, required: bool = False) -> str | None:
        value = self._get(name, default, required)
        if value is not default and not isinstance(value, str):
            self._fail(name, "a string")
        return value

    def bool(self, name: str, default: bool) -> bool:
        value = self._get(name, default, False)
        if not isinstance(value, bool):
            self._fail(name, "true or false")
        return value

    def int(self, name: str, default: int) -> int:
        value = self._get(name, default, False)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self._fail(name, "a positive integer")
        return value

    def number(self, name: str, default: float) -> float:
        value = self._get(name, default, False)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
                or not math.isfinite(value):
            self._fail(name, "a positive number")
        return float(value)

    def strings(self, name: str) -> tuple[str, ...]:
        value = self._get(name, [], False)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._fail(name, "a list of strings")
        return tuple(value)

    def done(self) -> None:
        extra = sorted(set(self.obj) - self.seen)
        if extra:
            raise RequestError(f"unknown field {extra[0]!r}", self.id)


def _theorem(f: _Fields, allow_source: bool) -> TheoremSpec | None:
    """The theorem fields; None when none is given (a suggest on a raw goal)."""
    statement, file, source = f.str("statement"), f.str("file"), f.str("source")
    name, header = f.str("theorem"), f.str("header", "")
    axioms = f.strings("allow_axioms")
    project, coq_flags, add_imports = f.str("project"), f.strings("coq_flags"), f.bool("add_imports", False)
    given = [k for k, v in (("statement", statement), ("file", file), ("source", source)) if v is not None]
    if len(given) > 1:
        raise RequestError(f"give one of 'statement', 'file' or 'source', not {' and '.join(given)}", f.id)
    if source is not None and not allow_source:
        raise RequestError("'source' is for suggest only", f.id)
    if file is not None and not name:
        raise RequestError("'file' needs 'theorem' (the theorem's name)", f.id)
    if name is not None and file is None:
        raise RequestError("'theorem' names a theorem in 'file'; give 'file' too", f.id)
    if header and statement is None:
        raise RequestError("'header' goes with 'statement'", f.id)
    if add_imports and file is None:
        raise RequestError("'add_imports' goes with 'file'", f.id)
    if not given:
        if project is not None or coq_flags:
            raise RequestError("'project' and 'coq_flags' go with a theorem ('file', 'statement' or 'source')", f.id)
        return None
    return TheoremSpec(header, statement, file, name, source, axioms, project, coq_flags, add_imports)


def _options(f: _Fields, d: Defaults, check_timeout: bool) -> BackendOptions:
    # No memory_mb in the request and none in the defaults: the backend's own default (None) stands.
    memory = f.int("memory_mb", d.options.memory_mb) if d.options.memory_mb or f.obj.get("memory_mb") is not None \
        else None
    options = replace(d.options, memory_mb=memory)
    if check_timeout:
        options = replace(options, check_timeout=f.number("check_timeout", options.check_timeout))
    return options


def _prove(f: _Fields, d: Defaults) -> ProveRequest:
    backend = f.str("backend", d.backend)
    theorem = _theorem(f, allow_source=False)
    if theorem is None:
        raise RequestError("missing field 'statement' (or 'file' and 'theorem')", f.id)
    s = d.search
    try:
        search = SearchConfig(
            max_expansions=f.int("max_expansions", s.max_expansions), candidates=f.int("candidates", s.candidates),
            timeout=f.number("timeout", s.timeout), tactic_timeout=f.number("tactic_timeout", s.tactic_timeout),
            priority=f.str("priority", s.priority), expand_batch=f.int("expand_batch", s.expand_batch),
            value_model=f.str("value_model", s.value_model))
    except ValueError as e:
        raise RequestError(str(e), f.id) from None
    return ProveRequest(f.id, backend, theorem, search, _options(f, d, True), f.str("generator", d.generator_for(backend)),
                        f.str("tactics_file", d.tactics_file), f.bool("progress", True))


def _suggest(f: _Fields, d: Defaults) -> SuggestRequest:
    backend = f.str("backend", d.backend)
    theorem = _theorem(f, allow_source=True)
    goal, tactics = f.str("goal"), f.strings("tactics")
    check = f.bool("check", False)
    if theorem is None and goal is None:
        raise RequestError("missing field 'goal' (or 'statement', 'file' and 'theorem', or 'source')", f.id)
    if theorem is not None and goal is not None:
        raise RequestError("give either 'goal' or a theorem, not both", f.id)
    if goal is not None and (tactics or check):
        raise RequestError("a raw 'goal' cannot be run on the prover: 'tactics' and 'check' need a theorem",
                           f.id)
    if theorem is not None and theorem.source is not None and tactics:
        raise RequestError("with 'source' the tactics so far are read from it; drop 'tactics'", f.id)
    return SuggestRequest(f.id, backend, theorem, goal, tactics, f.int("n", SUGGEST_N), check,
                          f.number("tactic_timeout", SUGGEST_TACTIC_TIMEOUT), _options(f, d, False),
                          f.str("generator", d.generator_for(backend)), f.str("tactics_file", d.tactics_file))


def _check(f: _Fields, d: Defaults) -> CheckRequest:
    backend = f.str("backend", d.backend)
    theorem = _theorem(f, allow_source=False)
    if theorem is None:
        raise RequestError("missing field 'statement' (or 'file' and 'theorem')", f.id)
    f.seen.add("tactics")
    if "tactics" not in f.obj:
        raise RequestError("missing field 'tactics'", f.id)
    return CheckRequest(f.id, backend, theorem, f.strings("tactics"), _options(f, d, True))


def _cancel(f: _Fields, d: Defaults) -> CancelRequest:
    f.seen.add("target")
    if "target" not in f.obj:
        raise RequestError("missing field 'target' (the id of the request to cancel)", f.id)
    target = f.obj["target"]
    if not _valid_id(target):
        raise RequestError("field 'target' must be a string or a number", f.id)
    return CancelRequest(f.id, target)


_PARSERS = {"prove": _prove, "suggest": _suggest, "check": _check, "cancel": _cancel,
            "shutdown": lambda f, d: ShutdownRequest(f.id)}


def parse_request(line: str | bytes, defaults: Defaults | None = None) -> Request:
    """One request line to a typed request; raises RequestError (with the id when readable)."""
    defaults = defaults or Defaults()
    try:
        if isinstance(line, bytes):
            line = line.decode("utf-8")
        obj = json.loads(line)
    except (UnicodeDecodeError, ValueError) as e:
        raise RequestError(f"not a JSON line: {e}", None, "parse_error") from None
    if not isinstance(obj, dict):
        raise RequestError("a request is a JSON object", None, "parse_error")
    if "id" not in obj:
        raise RequestError("missing field 'id'", None)
    id = obj["id"]
    if not _valid_id(id):
        raise RequestError("field 'id' must be a string or a number", None)
    cmd = obj.get("cmd")
    if cmd is None:
        raise RequestError("missing field 'cmd'", id)
    if cmd not in _PARSERS:
        raise RequestError(f"unknown command {cmd!r} (commands: {', '.join(COMMANDS)})", id, "unknown_command")
    f = _Fields(obj, id)
    request = _PARSERS[cmd](f, defaults)
    f.done()
    return request


# -- responses -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProgressEvent:
    id: RequestId
    expansions: int
    nodes: int
    tactic_calls: int
    best_depth: int
    elapsed: float
    type: str = "progress"


@dataclass(frozen=True)
class ResultReply:
    id: RequestId
    fields: dict  # the same fields as `prover prove --json`
    type: str = "result"

    @classmethod
    def of_search(cls, id: RequestId, backend: str, generator: str, result: SearchResult,
                  model: str | None = None) -> "ResultReply":
        return cls(id, {"theorem": result.theorem, "backend": backend, "generator": generator, "model": model,
                        "verified": result.proved, **result.to_dict()})

    def to_dict(self) -> dict:
        return {"id": self.id, "type": self.type, **self.fields}


@dataclass(frozen=True)
class Suggestion:
    tactic: str
    score: float  # the generator's length-normalised log-prob
    goals: str | None = None  # with check: the goals it leaves ("" when it completes the proof)
    complete: bool | None = None  # with check: it closes the proof ("proof complete")


@dataclass(frozen=True)
class SuggestionsReply:
    id: RequestId
    goals: str  # the goals the candidates are for
    candidates: tuple[Suggestion, ...]
    checked: bool
    tried: int  # candidates proposed; with check, more than those returned when some failed
    elapsed: float
    type: str = "suggestions"

    def to_dict(self) -> dict:
        d = _plain(self)
        d["candidates"] = [{k: v for k, v in asdict(c).items() if v is not None} for c in self.candidates]
        return d


@dataclass(frozen=True)
class CheckReply:
    id: RequestId
    ok: bool
    errors: tuple[str, ...]
    axioms: tuple[str, ...]
    proof: str
    elapsed: float
    type: str = "check"


@dataclass(frozen=True)
class ErrorReply:
    id: RequestId | None
    code: str  # parse_error, bad_request, unknown_command, duplicate_id, unknown_target, init_error, prover_error,
    # generator_unavailable, shutting_down, internal_error
    message: str
    type: str = "error"


@dataclass(frozen=True)
class CancelledReply:
    id: RequestId
    elapsed: float
    type: str = "cancelled"


@dataclass(frozen=True)
class ByeReply:
    id: RequestId | None
    type: str = "bye"


Response = Union[ProgressEvent, ResultReply, SuggestionsReply, CheckReply, ErrorReply, CancelledReply, ByeReply]


def _plain(message: Any) -> dict:
    d = {"id": message.id, "type": message.type}
    d.update({f.name: getattr(message, f.name) for f in fields(message) if f.name not in ("id", "type")})
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def encode(message: Response) -> str:
    """A response as one line (ASCII JSON, so any client's decoder reads it)."""
    d = message.to_dict() if hasattr(message, "to_dict") else _plain(message)
    return json.dumps(d)
