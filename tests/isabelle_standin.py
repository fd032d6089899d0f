#!/usr/bin/env python3
"""A stand-in for `isabelle server`, for tests on machines without Isabelle.

Run as ``isabelle_standin.py server -n NAME [-L LOG]`` (the tests wrap it in an executable named
like the real tool). Like the real server it prints ``server "NAME" = 127.0.0.1:PORT (password
"...")``, listens on 127.0.0.1, drops a connection whose first line is not the password, and speaks
the byte-message protocol.

What is recorded. Its answers are the REAL replies recorded from Isabelle by the isabelle-client
project (``shared/data/isabelle_server_transcripts``), sent byte for byte with their recorded
framing: ``help``, ``session_start``, ``session_stop``, ``purge_theories``, ``cancel``,
``shutdown``, the unknown-command ``ERROR``, and ``use_theories`` (success, "Failed to finish
proof", Sledgehammer). ``use_theories`` of a theory named in the script's "replay" table (or with a
prefix in its "replay_prefix" table) answers with that recording verbatim.

What is invented, and said so. Two protocol replies were not recorded and are made in the recorded
shapes: the answer to the password (``OK {"isabelle_id":...,"isabelle_name":...}``, as the server
source writes it) and the ``FAILED`` of a cancelled task (``{"task":...,"message":"Interrupt"}``,
as the System Manual documents it). Everything the bridge theory (isabelle/Prover_Bridge.thy)
would compute is invented here from a per-test script, never decided by the stand-in: the goal
texts, the errors, whether a step is refused by the vetting, the closers it adds, the audit. The
stand-in keeps its own table of state ids (like the ML side: a new server process has an empty
one), reads the bridge command the client wrote, and answers with the report format of
``prover/backends/isabelle/bridge.py`` (the same module the client reads with), inside the
recorded ``use_theories`` envelope (task id line, progress NOTEs, the FINISHED record and its node
status) with the messages replaced.

Script (JSON, in $PROVER_STANDIN_SCRIPT): "theorems": NAME -> {"statement", "root", "steps": PATH ->
outcome} where PATH is the proof text from the statement, one step per line (leading blanks
dropped); an outcome is a goal text, or {"finished": true, "oracles": [...]}, {"error": msg},
{"refused": msg}, {"timeout": true}, {"hang": "cancel"|"deaf"}, {"crash": true},
{"crash_once": true, "then": outcome}, {"sledgehammer": RECORDING}, {"prints": [text, ...], ...};
"vet_refused": PROOF -> reason; "delay": seconds before answering.

Every command received is appended to the file in $PROVER_STANDIN_LOG, if set: ``PID COMMAND`` for a
protocol command, ``PID BRIDGE_COMMAND<TAB>{"texts": ..., "ints": ..., "size": theory length}`` for
the bridge command in a checked theory.
"""
from __future__ import annotations

import copy
import json
import os
import re
import socket
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
from prover.backends.isabelle import bridge  # noqa: E402  (the report format, shared with the client)

TRANSCRIPTS = Path(os.environ.get(
    "PROVER_STANDIN_TRANSCRIPTS",
    Path(os.environ.get("PROVER_SHARED_DATA", HERE.parents[1].parent / "shared" / "data"))
    / "isabelle_server_transcripts"))


# -- framing, written independently of the client under test ---------------------------------------
def frame(text: str) -> bytes:
    body = text.encode("utf-8")
    if len(body) > 100 or b"\n" in body:
        return str(len(body) + 1).encode() + b"\n" + body + b"\n"
    return body + b"\n"


def recorded_bytes(name: str) -> bytes:
    """The recording as sent: its bytes, with a last long message's final newline restored if the
    file was stored without it (use_theories.Sledgehammer was)."""
    data = (TRANSCRIPTS / name).read_bytes()
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        line = data[pos:nl if nl >= 0 else len(data)]
        if line.isdigit() and nl >= 0:
            end = nl + 1 + int(line)
            if end == len(data) + 1:
                return data + b"\n"
            pos = end
        else:
            pos = (nl if nl >= 0 else len(data)) + 1
    return data


def recorded_messages(name: str) -> list[str]:
    data = recorded_bytes(name)
    out, pos = [], 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        line = data[pos:nl]
        if line.isdigit():
            n = int(line)
            out.append(data[nl + 1:nl + 1 + n].decode().rstrip("\n"))
            pos = nl + 1 + n
        else:
            if line:
                out.append(line.decode())
            pos = nl + 1
    return out


class Client:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buf = b""

    def read_message(self) -> str | None:
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line = self.buf[:nl].rstrip(b"\r")
                if line.isdigit():
                    n = int(line)
                    if len(self.buf) >= nl + 1 + n:
                        body = self.buf[nl + 1:nl + 1 + n]
                        self.buf = self.buf[nl + 1 + n:]
                        return body.decode().rstrip("\r\n")
                else:
                    self.buf = self.buf[nl + 1:]
                    return line.decode()
            data = self.conn.recv(65536)
            if not data:
                return None
            self.buf += data

    def send(self, data: bytes) -> None:
        self.conn.sendall(data)


# -- the scripted bridge -----------------------------------------------------------------------------
def load_script() -> dict:
    path = os.environ.get("PROVER_STANDIN_SCRIPT")
    if not path:
        return {}
    return json.loads(Path(path).read_text(encoding="utf-8"))


def log(line: str) -> None:
    path = os.environ.get("PROVER_STANDIN_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {line}\n")


def _pos(line: int, file: str) -> dict:
    return {"line": line, "offset": 1, "end_offset": 2, "file": file}


def path_key(text: str) -> str:
    """A proof text as the script names it: one step per line, leading blanks dropped."""
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def join_key(parent: str, step: str) -> str:
    step = path_key(step)
    return f"{parent}\n{step}" if parent else step


class Checked:
    """What the stand-in answers for one theory."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.messages: list[dict] = []
        self.imported_errors: list[dict] = []  # errors located in another theory (an import)
        self.action: str | None = None  # hang-cancel | hang-deaf | crash

    def add(self, kind: str, text: str, line: int) -> None:
        self.messages.append({"kind": kind, "message": text, "pos": _pos(line, self.file)})


class Bridge:
    """The stand-in's state table: id -> (theorem name, proof text key)."""

    def __init__(self, script: dict) -> None:
        self.script = script
        self.table: dict[int, tuple[str, str]] = {}

    def spec(self, theorem: str) -> dict:
        return self.script.get("theorems", {}).get(theorem, {})

    def outcome(self, theorem: str, key: str):
        found = self.spec(theorem).get("steps", {}).get(key)
        if found is None:
            return {"error": self.script.get("default_error", "Failed to apply proof method\\<^here>")}
        return found if isinstance(found, dict) else {"goals": found}

    def check(self, path: Path) -> Checked:
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        out = Checked(path.name)
        idx = next(i for i, line in enumerate(lines) if bridge.parse_command(line) is not None)
        cmd = bridge.parse_command(lines[idx])
        line = idx + 1
        log(f"{cmd.name}\t" + json.dumps({"texts": list(cmd.texts), "ints": list(cmd.ints), "size": len(text)}))
        if cmd.name == bridge.OPEN:
            self.open(cmd, line, out)
        elif cmd.name == bridge.STEPS:
            self.steps(cmd, line, out)
        elif cmd.name == bridge.SLEDGEHAMMER:
            self.sledgehammer(cmd, line, out)
        elif cmd.name == bridge.VET:
            reason = self.script.get("vet_refused", {}).get(path_key(cmd.texts[0]))
            status = bridge.REFUSED if reason else bridge.ACCEPTED
            out.add("writeln", bridge.vet_report(cmd.nonce, status, reason or ""), line)
        else:
            self.audit(cmd, text, lines, line, out)
        return out

    def open(self, cmd: bridge.Command, line: int, out: Checked) -> None:
        self.table.clear()
        (sid,) = cmd.ints[:1]
        statement = cmd.texts[0].strip()
        name = next((n for n, s in self.script.get("theorems", {}).items() if s.get("statement") == statement), None)
        if name is None:
            result = bridge.StepResult(sid, bridge.FAILED, message="Outer syntax error: stand-in script has no such "
                                                                   "statement")
        else:
            root = self.spec(name).get("root")
            root = root if isinstance(root, dict) else {"goals": root}
            if "import_error" in root:
                out.imported_errors.append({"kind": "error", "message": root["import_error"],
                                            "pos": _pos(3, "Imported.thy")})
            if "statement_error" in root:
                result = bridge.StepResult(sid, bridge.FAILED, message=root["statement_error"])
            else:
                self.table[sid] = (name, "")
                result = bridge.StepResult(sid, bridge.NEXT, root.get("goals", ""))
        out.add("writeln", bridge.steps_report(cmd.nonce, "open", [result]), line)

    def steps(self, cmd: bridge.Command, line: int, out: Checked) -> None:
        parent = cmd.ints[0]
        results = []
        for sid, text in zip(cmd.step_ids, cmd.texts):
            if parent not in self.table:
                results.append(bridge.StepResult(sid, bridge.FAILED, message=f"unknown state {parent}"))
                continue
            theorem, key = self.table[parent]
            key = join_key(key, text)
            outcome = self.outcome(theorem, key)
            if outcome.get("crash_once"):
                flag = Path(os.environ["PROVER_STANDIN_SCRIPT"] + ".crashed")
                if not flag.exists():
                    flag.write_text("1")
                    out.action = "crash"
                    return
                outcome = outcome["then"] if isinstance(outcome["then"], dict) else {"goals": outcome["then"]}
            if outcome.get("crash"):
                out.action = "crash"
                return
            if outcome.get("hang"):
                out.action = "hang-" + outcome["hang"]
                return
            for printed in outcome.get("prints", []):  # the step's own output, on the bridge's line
                out.add("writeln", printed.replace("NONCE", cmd.nonce), line)
            results.append(self.result(theorem, key, sid, outcome))
        out.add("writeln", bridge.steps_report(cmd.nonce, "steps", results), line)

    def result(self, theorem: str, key: str, sid: int, outcome: dict) -> bridge.StepResult:
        if "refused" in outcome:
            return bridge.StepResult(sid, bridge.REFUSED, message=outcome["refused"])
        if outcome.get("timeout"):
            return bridge.StepResult(sid, bridge.TIMEOUT, seconds=float(outcome.get("seconds", 1.0)))
        if "error" in outcome:
            return bridge.StepResult(sid, bridge.FAILED, message=outcome["error"])
        closers: list[str] = []
        while not outcome.get("finished") and "No subgoals!" in outcome.get("goals", "") and len(closers) < 4:
            closer = "done" if outcome["goals"].startswith("proof (prove)") else "qed"
            after = self.spec(theorem).get("steps", {}).get(join_key(key, closer))
            if after is None:
                break
            after = after if isinstance(after, dict) else {"goals": after}
            if "error" in after:
                break
            key, outcome = join_key(key, closer), after
            closers.append(closer)
        self.table[sid] = (theorem, key)
        if outcome.get("finished"):
            return bridge.StepResult(sid, bridge.FINISHED, closers=tuple(closers))
        return bridge.StepResult(sid, bridge.NEXT, outcome.get("goals", ""), tuple(closers))

    def sledgehammer(self, cmd: bridge.Command, line: int, out: Checked) -> None:
        parent = cmd.ints[0]
        if parent not in self.table:
            out.add("writeln", bridge.sledgehammer_report(cmd.nonce, bridge.FAILED, f"unknown state {parent}"), line)
            return
        theorem, key = self.table[parent]
        outcome = self.spec(theorem).get("steps", {}).get(join_key(key, "sledgehammer"), {})
        if isinstance(outcome, dict) and "sledgehammer" in outcome:
            finished = json.loads(recorded_messages(outcome["sledgehammer"])[-1].split(" ", 1)[1])
            for msg in finished["nodes"][0]["messages"]:
                out.add(msg["kind"], msg["message"], line)
        out.add("writeln", bridge.sledgehammer_report(cmd.nonce, bridge.DONE), line)

    def audit(self, cmd: bridge.Command, text: str, lines: list[str], line: int, out: Checked) -> None:
        m = re.search(r"^theorem\s+([A-Za-z][\w']*)", text, re.M)
        name = m.group(1) if m else ""
        statement = self.spec(name).get("statement", "")
        start = text.find(statement) if statement else -1
        if start < 0:
            out.add("error", "Outer syntax error\\<^here>: stand-in script has no such statement", 5)
            return
        stmt_last = text[:start].count("\n") + 1 + statement.count("\n")
        key = path_key("\n".join(lines[stmt_last:line - 1]))
        outcome = self.outcome(name, key)
        for printed in outcome.get("prints", []):  # a step's own output, at the step's line
            out.add("writeln", printed.replace("NONCE", cmd.nonce), line - 2)
        if "error" in outcome:
            out.add("error", outcome["error"], line - 2)
        if not outcome.get("finished"):
            out.add("error", 'Illegal application of command "prover_audit" in proof mode', line)
            return
        oracles = outcome.get("oracles", [])
        skip = any(o.endswith("skip_proof") for o in oracles)
        out.add("writeln", bridge.audit_report(cmd.nonce, cmd.texts[0], True, skip, oracles), line)


def use_theories_reply(task: str, names: list[str], checks: list[Checked], master_dir: str) -> list[str]:
    """The recorded use_theories reply, with this task, these theories and these messages."""
    recorded = recorded_messages("use_theories")
    old_task = json.loads(recorded[0].split(" ", 1)[1])["task"]
    messages = [recorded[0].replace(old_task, task)]
    for note in recorded[1:-1]:
        for name in names:
            messages.append(note.replace(old_task, task).replace("Draft.Example", f"Draft.{name}"))
    template = json.loads(recorded[-1].split(" ", 1)[1])
    nodes, errors = [], []
    for name, checked in zip(names, checks):
        node = copy.deepcopy(template["nodes"][0])
        node["messages"] = checked.messages
        node["theory_name"] = f"Draft.{name}"
        node["node_name"] = str(Path(master_dir) / f"{name}.thy")
        failed = [m for m in checked.messages if m["kind"] == "error"]
        node["status"]["failed"] = len(failed)
        node["status"]["ok"] = not failed
        nodes.append(node)
        errors += failed + checked.imported_errors
    result = {"ok": not errors, "errors": errors, "nodes": nodes, "task": task}
    messages.append("FINISHED " + json.dumps(result, separators=(",", ":"), ensure_ascii=False))
    return messages


# -- the server --------------------------------------------------------------------------------
def serve(client: Client, script: dict, state: Bridge) -> None:
    hung: str | None = None
    while True:
        message = client.read_message()
        if message is None:
            return
        name, _, arg = message.partition(" ")
        log(name)
        if name == "help":
            client.send(recorded_bytes("help"))
        elif name == "echo":
            client.send(frame(f"OK {arg}"))
        elif name == "session_start":
            client.send(recorded_bytes("session_start"))
        elif name == "session_stop":
            client.send(recorded_bytes("session_stop"))
        elif name == "purge_theories":
            client.send(recorded_bytes("purge_theories"))
        elif name == "shutdown":
            client.send(recorded_bytes("shutdown"))
            client.conn.close()
            sys.exit(0)
        elif name == "cancel":
            client.send(recorded_bytes("cancel"))
            task = json.loads(arg)["task"]
            if task == hung:
                client.send(frame("FAILED " + json.dumps({"task": task, "message": "Interrupt"},
                                                         separators=(",", ":"))))
                hung = None
        elif name == "use_theories":
            args = json.loads(arg)
            names = args["theories"]
            replay = dict(script.get("replay", {}))
            for prefix, recording in script.get("replay_prefix", {}).items():
                if names[0].startswith(prefix):
                    replay[names[0]] = recording
            if len(names) == 1 and names[0] in replay:
                client.send(recorded_bytes(replay[names[0]]))
                continue
            master = args.get("master_dir", ".")
            checks = [state.check(Path(master) / f"{n}.thy") for n in names]
            task = str(uuid.uuid4())
            reply = use_theories_reply(task, names, checks, master)
            client.send(frame(reply[0]))  # OK {"task": ...}
            actions = {c.action for c in checks}
            if "crash" in actions:
                os._exit(3)
            if "hang-deaf" in actions:
                while client.read_message() is not None:
                    pass  # hears, never answers
                return
            if "hang-cancel" in actions:
                hung = task
                continue
            delay = float(script.get("delay", 0))
            if delay:
                time.sleep(delay)
            for text in reply[1:]:
                client.send(frame(text))
        elif name == "unknown":
            client.send(recorded_bytes("unknown"))
        else:
            client.send(frame("ERROR " + json.dumps(f"Bad command '{name}'")))


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "server":
        print(f"isabelle stand-in: only `server` is available, not {argv[:1]}", file=sys.stderr)
        return 2
    name = argv[argv.index("-n") + 1] if "-n" in argv else "isabelle"
    script = load_script()
    state = Bridge(script)
    password = str(uuid.uuid4())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    print(f'server "{name}" = 127.0.0.1:{sock.getsockname()[1]} (password "{password}")', flush=True)
    while True:
        conn, _ = sock.accept()
        client = Client(conn)
        if client.read_message() != password:
            conn.close()  # like the real server: silent disconnection
            continue
        hello = {"isabelle_id": "stand-in", "isabelle_name": "Isabelle2025"}
        client.send(frame("OK " + json.dumps(hello, separators=(",", ":"))))
        try:
            serve(client, script, state)
        except (ConnectionError, OSError):
            pass
        conn.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
