"""The bridge protocol: the commands the client writes into theories, and the reports that
``isabelle/Prover_Bridge.thy`` prints back. Defined here, once: the backend writes and reads with it,
the test stand-in answers with it, and a test checks that the ML side uses the same command names,
field names and status words.

Commands (one theory-level command per theory, on a line of its own; texts travel hex-encoded so
that nothing in a model's step can end the argument early or reach the theory's own syntax)::

    prover_open NONCE ID TIMEOUT_MS "HEX(statement)"   forget all states; the statement's proof
                                                      state becomes state ID
    prover_steps NONCE PARENT TIMEOUT_MS ID "HEX(step)" ...
                                                      vet each step inside Isabelle, apply it to
                                                      state PARENT (in parallel, each under its own
                                                      timeout), close finished blocks (done/qed),
                                                      store the result as state ID
    prover_sledgehammer NONCE PARENT TIMEOUT_S        run Sledgehammer on state PARENT; its own
                                                      "Try this:" messages come on the same line
    prover_vet NONCE "HEX(proof text)"                vet a whole proof in the current theory
    prover_audit NONCE "NAME"                         oracles of the stored theorem NAME

Report: exactly one ``writeln`` message, a JSON object on one line, carrying ``"bridge": NONCE``.
NONCE is fresh for every command and appears nowhere but in that command, so a proof step cannot
know it; the client reads only messages at the bridge command's own line (the server reports every
message at the line of the command that printed it) and refuses two reports for one command.
"""
from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Iterable

OPEN, STEPS, SLEDGEHAMMER, VET, AUDIT = "prover_open", "prover_steps", "prover_sledgehammer", "prover_vet", "prover_audit"
COMMANDS = (OPEN, STEPS, SLEDGEHAMMER, VET, AUDIT)
# The report's "op" for each command.
OPS = {OPEN: "open", STEPS: "steps", SLEDGEHAMMER: "sledgehammer", VET: "vet", AUDIT: "audit"}

# Fields of a report and of one step result.
FIELDS = ("bridge", "op", "results", "id", "status", "goals", "closers", "message", "seconds", "name", "stored",
          "skip_proof", "oracles")
# Status words: of a step, of a Sledgehammer run, of a vetting.
NEXT, FINISHED, FAILED, TIMEOUT, REFUSED = "next", "finished", "failed", "timeout", "refused"
STEP_STATUSES = (NEXT, FINISHED, FAILED, TIMEOUT, REFUSED)
DONE, ACCEPTED = "done", "accepted"
SLEDGEHAMMER_STATUSES = (DONE, FAILED, TIMEOUT)
VET_STATUSES = (ACCEPTED, REFUSED)

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_']*(?:\.[A-Za-z][A-Za-z0-9_']*)*")
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


class BridgeOutputError(Exception):
    """The bridge's report is missing, doubled or malformed."""


def new_nonce() -> str:
    """A fresh nonce (an Isabelle identifier) for one command."""
    return "n" + secrets.token_hex(12)


def encode_text(text: str) -> str:
    return text.encode("utf-8").hex()


def decode_text(hex_text: str) -> str:
    if not _HEX.fullmatch(hex_text):
        raise ValueError("not a hex-encoded text")
    return bytes.fromhex(hex_text).decode("utf-8")


# -- commands ------------------------------------------------------------------------------------
def open_command(nonce: str, sid: int, timeout_ms: int, statement: str) -> str:
    return f'{OPEN} {nonce} {sid} {timeout_ms} "{encode_text(statement)}"'


def steps_command(nonce: str, parent: int, timeout_ms: int, steps: Iterable[tuple[int, str]]) -> str:
    parts = [f'{sid} "{encode_text(text)}"' for sid, text in steps]
    if not parts:
        raise ValueError("no steps")
    return f"{STEPS} {nonce} {parent} {timeout_ms} " + " ".join(parts)


def sledgehammer_command(nonce: str, parent: int, timeout_s: int) -> str:
    return f"{SLEDGEHAMMER} {nonce} {parent} {timeout_s}"


def vet_command(nonce: str, text: str) -> str:
    return f'{VET} {nonce} "{encode_text(text)}"'


def audit_command(nonce: str, name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a theorem name: {name!r}")
    return f'{AUDIT} {nonce} "{name}"'


@dataclass(frozen=True)
class Command:
    """A bridge command read back from a theory line (the stand-in's side)."""

    name: str
    nonce: str
    ints: tuple[int, ...] = ()  # ids and time limits, in the order written
    texts: tuple[str, ...] = ()  # decoded texts (statement, steps, proof) or the theorem name
    step_ids: tuple[int, ...] = ()  # prover_steps: the new ids, one per text


def parse_command(line: str) -> Command | None:
    """The bridge command on ``line``, or None if the line holds none."""
    words = re.findall(r'"[^"]*"|\S+', line.strip())
    if not words or words[0] not in COMMANDS or len(words) < 2:
        return None
    name, nonce, rest = words[0], words[1], words[2:]

    def unquote(w: str) -> str:
        if not (len(w) >= 2 and w[0] == w[-1] == '"'):
            raise ValueError(f"expected a quoted argument, got {w!r}")
        return w[1:-1]

    if name == OPEN:
        return Command(name, nonce, (int(rest[0]), int(rest[1])), (decode_text(unquote(rest[2])),))
    if name == STEPS:
        pairs = rest[2:]
        ids = tuple(int(w) for w in pairs[0::2])
        texts = tuple(decode_text(unquote(w)) for w in pairs[1::2])
        return Command(name, nonce, (int(rest[0]), int(rest[1])), texts, ids)
    if name == SLEDGEHAMMER:
        return Command(name, nonce, (int(rest[0]), int(rest[1])))
    if name == VET:
        return Command(name, nonce, (), (decode_text(unquote(rest[0])),))
    return Command(name, nonce, (), (unquote(rest[0]),))


# -- reports -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepResult:
    sid: int
    status: str  # one of STEP_STATUSES
    goals: str = ""  # the proof state after the step (and the closers), when status is NEXT
    closers: tuple[str, ...] = ()  # `done`/`qed` the bridge applied after the step
    message: str = ""  # Isabelle's error, or why the step was refused
    seconds: float = 0.0


@dataclass(frozen=True)
class Report:
    op: str
    results: tuple[StepResult, ...] = ()  # open, steps
    status: str = ""  # sledgehammer, vet
    message: str = ""
    name: str = ""  # audit
    stored: bool = False
    skip_proof: bool = False
    oracles: tuple[str, ...] = ()


def _dump(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def steps_report(nonce: str, op: str, results: Iterable[StepResult]) -> str:
    """The report of prover_open (op "open") or prover_steps (op "steps"), as the ML prints it."""
    return _dump({"bridge": nonce, "op": op, "results": [
        {"id": r.sid, "status": r.status, "goals": r.goals, "closers": list(r.closers), "message": r.message,
         "seconds": round(r.seconds, 3)} for r in results]})


def sledgehammer_report(nonce: str, status: str, message: str = "") -> str:
    return _dump({"bridge": nonce, "op": "sledgehammer", "status": status, "message": message})


def vet_report(nonce: str, status: str, message: str = "") -> str:
    return _dump({"bridge": nonce, "op": "vet", "status": status, "message": message})


def audit_report(nonce: str, name: str, stored: bool, skip_proof: bool, oracles: Iterable[str]) -> str:
    return _dump({"bridge": nonce, "op": "audit", "name": name, "stored": stored, "skip_proof": skip_proof,
                  "oracles": list(oracles)})


_BAD_ESCAPE = re.compile(r'\\(?=[^"\\/bfnrtu])')
_YXML = re.compile("\x05[^\x05]*\x05")


def _loads(text: str) -> Any:
    """A JSON object from a message text. The server encodes any non-ASCII symbol in a message as
    Isabelle's ASCII form (``\\<forall>``), which is no JSON escape: such a backslash is taken literally."""
    text = _YXML.sub("", text).strip()
    if not text.startswith("{"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return json.loads(_BAD_ESCAPE.sub(r"\\\\", text))
        except json.JSONDecodeError:
            return None


def find_reports(texts: Iterable[str], nonce: str) -> list[dict]:
    """The objects among ``texts`` that carry this nonce."""
    found = []
    for text in texts:
        obj = _loads(text)
        if isinstance(obj, dict) and obj.get("bridge") == nonce:
            found.append(obj)
    return found


def _typed(obj: dict, key: str, kind: type, default: Any = None) -> Any:
    value = obj.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BridgeOutputError(f"bridge report: field {key!r} is not {kind.__name__}")
    return value


def parse_report(obj: dict, op: str) -> Report:
    """A report object, checked field by field."""
    if obj.get("op") != op:
        raise BridgeOutputError(f"bridge report for {obj.get('op')!r}, expected {op!r}")
    if op in ("open", "steps"):
        results = []
        for r in _typed(obj, "results", list):
            if not isinstance(r, dict):
                raise BridgeOutputError("bridge report: a result is not an object")
            status = _typed(r, "status", str)
            if status not in STEP_STATUSES:
                raise BridgeOutputError(f"bridge report: unknown status {status!r}")
            closers = _typed(r, "closers", list, [])
            if not all(isinstance(c, str) for c in closers):
                raise BridgeOutputError("bridge report: closers are not strings")
            results.append(StepResult(_typed(r, "id", int), status, _typed(r, "goals", str, ""), tuple(closers),
                                      _typed(r, "message", str, ""), _typed(r, "seconds", float, 0.0)))
        return Report(op, tuple(results))
    if op in ("sledgehammer", "vet"):
        status = _typed(obj, "status", str)
        if status not in (SLEDGEHAMMER_STATUSES if op == "sledgehammer" else VET_STATUSES):
            raise BridgeOutputError(f"bridge report: unknown status {status!r}")
        return Report(op, status=status, message=_typed(obj, "message", str, ""))
    if op == "audit":
        oracles = _typed(obj, "oracles", list)
        if not all(isinstance(o, str) for o in oracles):
            raise BridgeOutputError("bridge report: oracle names are not strings")
        return Report(op, name=_typed(obj, "name", str), stored=_typed(obj, "stored", bool),
                      skip_proof=_typed(obj, "skip_proof", bool), oracles=tuple(oracles))
    raise ValueError(f"unknown op {op!r}")


def read_report(texts: Iterable[str], nonce: str, op: str) -> Report:
    """The one report with this nonce among the bridge command's own messages."""
    found = find_reports(texts, nonce)
    if not found:
        raise BridgeOutputError("the bridge printed no report (is the Prover_Base session with Prover_Bridge "
                                "in use?)")
    if len(found) > 1:
        raise BridgeOutputError("more than one bridge report for one command (forged output)")
    return parse_report(found[0], op)
