#!/usr/bin/env python3
"""A stand-in for the Lean process a LeanDojo ``Dojo`` starts (``lake env lean ... FILE``), speaking
LeanDojo's own protocol (``lean_dojo/interaction/Lean4Repl.lean``): requests are JSON lines
``{"sid": N, "cmd": TACTIC}`` on stdin, replies are lines ``REPL> {"error", "sid", "tacticState"}``,
the first one being the initial state (sid 0).

The Lean behind it is the real Lean REPL's recorded transcript ``$PROVER_DOJO_TRANSCRIPT``: the
tactic's recorded reply becomes LeanDojo's reply by Lean4Repl.lean's rules (goals printed with
``Meta.ppGoal`` and joined by blank lines, "no goals" when done, error messages joined, "proof contains
`sorry`" / "proof contains metavariables" when the finished proof has them). A tactic the transcript
never ran makes it fail loudly (stderr, exit 3).

  $PROVER_DOJO_SLOW="TACTIC=SECONDS"  answer TACTIC only after SECONDS (a tactic that overruns)
  $PROVER_DOJO_EXIT_AT=K              exit with status 137, unanswered, on the K-th request
  $PROVER_DOJO_FAIL_INIT=1            exit with status 1 before printing the initial state
  $PROVER_DOJO_HANG_INIT=1            never print the initial state (a Lean stuck importing)
  $PROVER_DOJO_PID_FILE=F             append this process's pid to F
  $PROVER_DOJO_SLOW_RESTART=S         with PROVER_DOJO_PID_FILE: when an earlier process is listed
                                      there, take S seconds to print the initial state
"""
import json
import os
import sys
import time


def chunks(text):
    return [c.strip() for c in text.split("\n\n") if c.strip()]


def main():
    stem = os.environ["PROVER_DOJO_TRANSCRIPT"]
    with open(stem + ".in", encoding="utf-8") as f:
        requests = [json.loads(c.replace("\n", "")) for c in chunks(f.read())]
    with open(stem + ".expected.out", encoding="utf-8") as f:
        replies = [json.loads(c) for c in chunks(f.read())]
    pairs = list(zip(requests, replies))
    restarted = False
    if os.environ.get("PROVER_DOJO_PID_FILE"):
        restarted = os.path.exists(os.environ["PROVER_DOJO_PID_FILE"])
        with open(os.environ["PROVER_DOJO_PID_FILE"], "a") as f:
            f.write(f"{os.getpid()}\n")
    if restarted and os.environ.get("PROVER_DOJO_SLOW_RESTART"):
        time.sleep(float(os.environ["PROVER_DOJO_SLOW_RESTART"]))
    if os.environ.get("PROVER_DOJO_FAIL_INIT"):
        sys.exit(1)
    if os.environ.get("PROVER_DOJO_HANG_INIT"):
        time.sleep(3600)
    slow_tactic, _, slow_seconds = os.environ.get("PROVER_DOJO_SLOW", "").partition("=")
    exit_at = int(os.environ.get("PROVER_DOJO_EXIT_AT", "0"))

    def reply(error=None, sid=None, state=None):
        print("REPL> " + json.dumps({"error": error, "sid": sid, "tacticState": state}, ensure_ascii=False),
              flush=True)

    first = replies[0]["sorries"][0]
    saved = [first["proofState"]]  # LeanDojo sid -> REPL proof state
    reply(sid=0, state=first["goal"])
    count = 0
    for line in sys.stdin:
        line = line.strip()
        if line == "exit":
            return
        if not line:
            continue
        count += 1
        if count == exit_at:
            sys.exit(137)
        req = json.loads(line)
        if req["sid"] >= len(saved):
            sys.exit(f"[fatal] unknown tsid: {req['sid']}")
        if req["cmd"] == slow_tactic:
            time.sleep(float(slow_seconds))
        key = {"tactic": req["cmd"], "proofState": saved[req["sid"]]}
        found = [rep for q, rep in pairs if q == key]
        if not found:
            print(f"stand-in: unrecorded tactic: {line}", file=sys.stderr, flush=True)
            sys.exit(3)
        rep = found[0]
        if "message" in rep:
            text = rep["message"]
            reply(error=text[len("Lean error:"):].strip() if text.startswith("Lean error:") else text)
            continue
        errors = [m["data"] for m in rep.get("messages", []) if m["severity"] == "error"]
        if errors:
            reply(error="\n".join(errors))
            continue
        status = rep["proofStatus"]
        if rep["goals"]:
            state = "\n\n".join(rep["goals"]).strip()
        elif status == "Completed":
            state = "no goals"
        elif "sorry" in status:
            reply(error="proof contains `sorry`")
            continue
        elif "metavariable" in status:
            reply(error="proof contains metavariables")
            continue
        else:
            reply(error=status.removeprefix("Error: "))
            continue
        saved.append(rep["proofState"])
        reply(sid=len(saved) - 1, state=state)


if __name__ == "__main__":
    main()
