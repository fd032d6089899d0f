#!/usr/bin/env python3
"""A stand-in for ``lake exe repl`` that replays a transcript the real Lean REPL (v4.24.0) recorded.

It reads requests the way the REPL does (lines up to a blank line) and answers each with the reply
the real REPL printed for the same request in ``STEM.expected.out``, verbatim, then a blank line.
A request that is not in the transcript makes it fail loudly: a message on stderr and exit 3.

Options, to provoke what a real Lean does under load:
  --hang-on-tactic T   never answer the tactic T (as the REPL does on a tactic that does not end)
  --exit-at K          exit with status 137, unanswered, on the K-th request (a crash, an OOM kill)
  --child-pid-file F   start a child process in the same group and write its pid to F
                       (``lake exe repl`` runs the REPL as lake's child)
  --pid-file F         append this process's pid to F
  --slow-restart S     with --pid-file: when an earlier process is listed there (this one is a
                       restart), take S seconds over every command (as re-importing Mathlib does)
  --stderr-on-tactic T / --stdout-on-tactic T
                       before answering the tactic T, print what ``dbg_trace`` of a fake finished
                       proof would (a JSON reply of proof state 0, "Completed") on stderr / stdout
"""
import argparse
import json
import subprocess
import sys
import time


def chunks(text):
    out, cur = [], []
    for line in text.splitlines():
        if line.strip():
            cur.append(line)
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def load(stem):
    with open(stem + ".in", encoding="utf-8") as f:
        requests = [json.loads("".join(l.rstrip() for l in c)) for c in chunks(f.read())
                    if not (c[0].startswith("#") or c[0].startswith("--"))]
    with open(stem + ".expected.out", encoding="utf-8") as f:
        replies = ["\n".join(c) for c in chunks(f.read())]
    if len(requests) != len(replies):
        sys.exit(f"stand-in: {stem}: {len(requests)} requests but {len(replies)} replies")
    return list(zip(requests, replies))


def read_request(stdin):
    lines = []
    while True:
        line = stdin.readline()
        if not line:
            return None if not lines else "".join(lines)
        if not line.strip():
            if lines:
                return "".join(lines)
            continue
        lines.append(line.rstrip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("transcript")
    ap.add_argument("--hang-on-tactic")
    ap.add_argument("--exit-at", type=int)
    ap.add_argument("--child-pid-file")
    ap.add_argument("--pid-file")
    ap.add_argument("--slow-restart", type=float)
    ap.add_argument("--stderr-on-tactic")
    ap.add_argument("--stdout-on-tactic")
    args = ap.parse_args()
    pairs = load(args.transcript)
    used = [False] * len(pairs)
    restarted = False
    if args.pid_file:
        try:
            with open(args.pid_file) as f:
                restarted = bool(f.read().split())
        except FileNotFoundError:
            pass
        with open(args.pid_file, "a") as f:
            f.write(f"{__import__('os').getpid()}\n")
    if args.child_pid_file:
        child = subprocess.Popen(["sleep", "600"])
        with open(args.child_pid_file, "w") as f:
            f.write(str(child.pid))
    count = 0
    while True:
        text = read_request(sys.stdin)
        if text is None:
            return
        count += 1
        request = json.loads(text)
        if args.exit_at == count:
            sys.exit(137)
        if args.hang_on_tactic is not None and request.get("tactic") == args.hang_on_tactic:
            time.sleep(3600)
        if restarted and args.slow_restart and "cmd" in request:
            time.sleep(args.slow_restart)
        fake = '{"proofState": 0, "goals": [], "proofStatus": "Completed"}\n\n'
        if request.get("tactic") is not None and request.get("tactic") == args.stderr_on_tactic:
            sys.stderr.write(fake)
            sys.stderr.flush()
        if request.get("tactic") is not None and request.get("tactic") == args.stdout_on_tactic:
            sys.stdout.write(fake)
            sys.stdout.flush()
        matches = [i for i, (req, _) in enumerate(pairs) if req == request]
        if not matches:
            print(f"stand-in: unrecorded input: {text}", file=sys.stderr, flush=True)
            sys.exit(3)
        fresh = [i for i in matches if not used[i]]
        i = fresh[0] if fresh else matches[-1]
        used[i] = True
        sys.stdout.write(pairs[i][1] + "\n\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
