"""A worked `prover repl` session with Coq: prints every line sent (>) and received (<), in order.

docs/repl.md shows its output.  Run from the repository root:  python3 examples/repl_session.py
"""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prover.repl.client import ReplClient  # noqa: E402

Z = "Require Import ZArith.\nOpen Scope Z_scope."
R = "Require Import Reals.\nOpen Scope R_scope."


def main() -> None:
    lock = threading.Lock()

    def show(direction: str, message: dict) -> None:
        with lock:
            print(("> " if direction == "sent" else "< ") + json.dumps(message), flush=True)

    with ReplClient.spawn(cwd=str(ROOT)) as repl:
        repl.tap = show
        # Checked suggestions at the root of a theorem, then after the user's first tactic.
        repl.request("suggest", id=1, header=Z, statement="Theorem lt_succ : forall x y : Z, x < y -> x + 1 <= y.",
                     n=4, check=True)
        repl.request("suggest", id=2, header=Z, statement="Theorem lt_succ : forall x y : Z, x < y -> x + 1 <= y.",
                     tactics=["intros"], n=4, check=True)
        # Unchecked suggestions for a goal pasted as text.
        repl.request("suggest", id=3, goal="n : nat\n============================\nn + 0 = n", n=3)
        # A whole proof: progress, then the verified result.
        repl.request("prove", id=4, header=R, statement="Theorem div_self : forall x : R, x <> 0 -> x / x = 1.")
        # A full check of a proof the user wrote.
        repl.request("check", id=5, header=R, statement="Theorem div_self : forall x : R, x <> 0 -> x / x = 1.",
                     tactics=["intros", "field", "lra"])
        # A search that cannot succeed, cancelled after its first progress event.
        first = threading.Event()
        rid = repl.send({"id": 6, "cmd": "prove", "header": R, "statement":
                         "Theorem no : forall x : R, x * x * x * x + 1 = 0.", "timeout": 120})
        stream = repl.responses(rid, timeout=120)
        for message in stream:
            if message["type"] == "progress" and not first.is_set():
                first.set()
                repl.send({"id": 7, "cmd": "cancel", "target": 6})
            if message["type"] != "progress":
                break
        # A typo in a field name.
        repl.request("suggest", id=8, goal="x = x", chek=True)
        repl.shutdown()


if __name__ == "__main__":
    main()
