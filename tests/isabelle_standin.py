#!/usr/bin/env python3
"""A stand-in for `isabelle server`, for tests on machines without Isabelle.

Run as ``isabelle_standin.py server -n NAME [-L LOG]`` (the tests wrap it in an executable named
like the real tool). Like the real server it prints ``server "NAME" = 127.0.0.1:PORT (password
"...")``, listens on 127.0.0.1, drops a connection whose first line is not the password, and speaks
the byte-message protocol.

Its answers are the REAL replies recorded from Isabelle by the isabelle-client project
(``shared/data/isabelle_server_transcripts``), sent byte for byte with their recorded framing:
``help``, ``session_start``, ``session_stop``, ``purge_theories``, ``cancel``, ``shutdown``, the
unknown-command ``ERROR``, and ``use_theories`` (success, "Failed to finish proof", Sledgehammer).
Two things were not recorded and are made here, in the recorded shapes: the answer to the password
(``OK {"isabelle_id":...,"isabelle_name":...}``, as the server source writes it) and the ``FAILED``
of a cancelled task (``{"task":...,"message":"Interrupt"}``, as the System Manual documents it).

Replay. ``use_theories`` of a theory named in the script's "replay" table (or starting with a
prefix in its "replay_prefix" table) answers with that recording verbatim.

Script. Otherwise the stand-in reads the theory the client wrote, finds the statement the script
names, takes the proof text between it and the bridge command (``prover_goals`` / ``prover_audit``),
and answers from the script: a proof state, an error on the last step, the theorem proved (with the
oracles to report), the recorded Sledgehammer messages, no answer at all (cancellable or not), or
a crash. The envelope of such an answer (task id line, progress NOTEs, the FINISHED record and its
node status) is the recorded ``use_theories`` reply with the messages replaced. The goal texts and
error texts in a script are the test author's, written the way Isabelle prints them.

Every command received is appended to the file in $PROVER_STANDIN_LOG (one line each), if set.
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


# -- the scripted checker ------------------------------------------------------------------------
def load_script() -> dict:
    path = os.environ.get("PROVER_STANDIN_SCRIPT")
    if not path:
        return {}
    return json.loads(Path(path).read_text(encoding="utf-8"))


def log(line: str) -> None:
    path = os.environ.get("PROVER_STANDIN_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def _pos(line: int, file: str) -> dict:
    return {"line": line, "offset": 1, "end_offset": 2, "file": file}


class Checked:
    """What the stand-in decided a theory prints."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.imported_errors: list[dict] = []  # errors located in another theory (an import)
        self.action: str | None = None  # hang-cancel | hang-deaf | crash

    def add(self, kind: str, text: str, line: int, file: str) -> None:
        self.messages.append({"kind": kind, "message": text, "pos": _pos(line, file)})


def check_theory(script: dict, path: Path, name: str) -> Checked:
    out = Checked()
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    file = path.name
    marker_idx = next(i for i, l in enumerate(lines) if l.startswith(("prover_goals ", "prover_audit ")))
    marker = lines[marker_idx].split()
    command, tag = marker[0], marker[1]
    m = re.search(r"^theorem\s+([A-Za-z][\w']*)", text, re.M)
    spec = script.get("theorems", {}).get(m.group(1) if m else "", {})
    statement = spec.get("statement", "")
    start = text.find(statement) if statement else -1
    if start < 0:
        out.add("error", "Outer syntax error\\<^here>: stand-in script has no such statement", 1, file)
        return out
    stmt_first = text[:start].count("\n") + 1
    stmt_last = stmt_first + statement.count("\n")
    body_lines = [l.strip() for l in lines[stmt_last:marker_idx]]
    body = "\n".join(l for l in body_lines if l)
    last_line = max((stmt_last + 1 + i for i, l in enumerate(body_lines) if l), default=stmt_last)
    outcome = spec.get("root") if not body else spec.get("steps", {}).get(body)
    if outcome is None:
        outcome = {"error": script.get("default_error", "Failed to apply proof method\\<^here>")}
    if isinstance(outcome, str):
        outcome = {"goals": outcome}
    if outcome.get("crash_once"):
        flag = Path(os.environ["PROVER_STANDIN_SCRIPT"] + ".crashed")
        if not flag.exists():
            flag.write_text("1")
            out.action = "crash"
            return out
        outcome = outcome["then"]
        if isinstance(outcome, str):
            outcome = {"goals": outcome}
    if outcome.get("crash"):
        out.action = "crash"
        return out
    if outcome.get("hang"):
        out.action = "hang-" + outcome["hang"]
        return out
    if "import_error" in outcome:
        out.imported_errors.append({"kind": "error", "message": outcome["import_error"],
                                    "pos": _pos(3, "Imported.thy")})
        out.add("writeln", f"{tag} proof\n{outcome.get('goals', '')}", marker_idx + 1, file)
        return out
    if "statement_error" in outcome:
        out.add("error", outcome["statement_error"], stmt_first, file)
        return out
    if "error" in outcome:
        out.add("error", outcome["error"], last_line, file)
        return out
    if "sledgehammer" in outcome:
        finished = json.loads(recorded_messages(outcome["sledgehammer"])[-1].split(" ", 1)[1])
        for msg in finished["nodes"][0]["messages"]:
            out.add(msg["kind"], msg["message"], last_line, file)
    finished = bool(outcome.get("finished"))
    if command == "prover_goals":
        if finished:
            out.add("writeln", f"{tag} theory", marker_idx + 1, file)
            out.add("error", 'Illegal application of command "oops" in theory mode', marker_idx + 2, file)
        else:
            out.add("writeln", f"{tag} proof\n{outcome['goals']}", marker_idx + 1, file)
    else:
        thm = marker[2]
        if finished:
            oracles = outcome.get("oracles", [])
            skip = "true" if any(o.endswith("skip_proof") for o in oracles) else "false"
            listing = "oracles:" + "".join(f"\n  \\<bullet> {o}" for o in oracles)
            out.add("writeln", f"{tag} audit {thm} skip_proof={skip} oracles={len(oracles)}\n{listing}",
                    marker_idx + 1, file)
        else:
            out.add("error", f'Undefined fact: "{thm}"\\<^here>', marker_idx + 1, file)
    return out


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
def serve(client: Client, script: dict) -> None:
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
            checks = [check_theory(script, Path(master) / f"{n}.thy", n) for n in names]
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
            serve(client, script)
        except (ConnectionError, OSError):
            pass
        conn.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
