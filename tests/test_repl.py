"""`prover repl` as a real subprocess, with real Coq behind it, spoken to in real JSON lines."""
from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from prover.backends.base import Finished, Next, Theorem
from prover.backends.coq.backend import CoqBackend
from prover.backends.process import GUARD_NAME
from prover.components import make_generator
from prover.repl.client import ReplClient

from .conftest import alive, processes_with_marker, wait_for

ROOT = Path(__file__).resolve().parents[1]
REALS = "Require Import Reals.\nOpen Scope R_scope."
# Four expansions with the portfolio (intros; field; lra): progress comes before the result.
FIELD = "Theorem div_self : forall x : R, x <> 0 -> x / x = 1."
# One expansion each.
ADD0 = "Theorem add0 : forall n : nat, n + 0 = n."
SWAP = "Theorem swap : forall P Q : Prop, P /\\ Q -> Q /\\ P."


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (the REPL's provers: coqtop, coqc), zombies included; not the
    guardian of its temp directory, which lives as long as the REPL."""
    found = set()
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return found
    for p in children:
        try:
            if GUARD_NAME in p.cmdline():
                continue
        except psutil.Error:
            pass
        found.add(p.pid)
    return found


class Repl:
    """`python -m prover repl ARGS` with a thread that queues its stdout lines."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "prover", "repl", *args], cwd=ROOT, env=_env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.pending: list[dict] = []

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:  # every stdout line must be JSON: make the test fail on it
                self.lines.put({"id": "?", "type": "not-json", "line": line.decode(errors="replace")})
        self.lines.put(None)

    def send_raw(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, **request) -> None:
        self.send_raw((json.dumps(request) + "\n").encode())

    def next(self, timeout: float = 60) -> dict | None:
        return self.lines.get(timeout=timeout)

    def until(self, id, types=("result", "suggestions", "check", "error", "cancelled", "bye"),
              timeout: float = 90) -> list[dict]:
        """Messages for ``id`` up to its final one (others are kept for later calls)."""
        got, deadline = [], time.monotonic() + timeout
        for m in list(self.pending):
            if m.get("id") == id:
                self.pending.remove(m)
                got.append(m)
                if m["type"] in types:
                    return got
        while True:
            m = self.next(max(0.1, deadline - time.monotonic()))
            assert m is not None, f"REPL ended; stderr: {self.proc.stderr.read().decode()[-2000:]}"
            if m.get("id") != id:
                self.pending.append(m)
                continue
            got.append(m)
            if m["type"] in types:
                return got

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def repl():
    r = Repl("--workers", "4")
    yield r
    r.close()
    assert r.proc.returncode == 0


def test_malformed_lines_get_errors_and_the_repl_keeps_serving(repl: Repl) -> None:
    bad = [
        (b"this is not json\n", None, "parse_error"),
        (b"[1, 2]\n", None, "parse_error"),
        (b'{"cmd": "suggest", "goal": "x"}\n', None, "bad_request"),
        (b'{"id": true, "cmd": "suggest", "goal": "x"}\n', None, "bad_request"),
        (b'{"id": "m1"}\n', "m1", "bad_request"),
        (b'{"id": "m2", "cmd": "prove!"}\n', "m2", "unknown_command"),
        (b'{"id": "m3", "cmd": "prove", "header": "Require Import Arith."}\n', "m3", "bad_request"),
        (b'{"id": "m4", "cmd": "suggest", "goal": "x", "n": "three"}\n', "m4", "bad_request"),
        (b'{"id": "m5", "cmd": "suggest", "goal": "x", "chek": true}\n', "m5", "bad_request"),
        (b'{"id": "m6", "cmd": "cancel", "target": "never-sent"}\n', "m6", "unknown_target"),
        (b'{"id": "m7", "cmd": "check", "statement": "Theorem t : True."}\n', "m7", "bad_request"),
        (b'\xff\xfe\n', None, "parse_error"),
    ]
    for line, id, code in bad:
        repl.send_raw(line)
        m = repl.next(timeout=30)
        assert (m["type"], m["id"], m["code"]) == ("error", id, code), (line, m)
        assert m["message"]
    # A theorem that does not type-check is an error of that request only.
    repl.send(id="m8", cmd="suggest", statement="Theorem bad : forall n : nat, n + true = n.", check=True)
    [m] = repl.until("m8")
    assert (m["type"], m["code"]) == ("error", "init_error") and "statement" in m["message"]
    # Still serving.
    repl.send(id=9, cmd="suggest", goal="n : nat\n============================\nn + 0 = n", n=3)
    [m] = repl.until(9)
    expected = [c.tactic for c in make_generator("portfolio", "coq").generate(
        "n : nat\n============================\nn + 0 = n", 3)]
    assert m["type"] == "suggestions" and [c["tactic"] for c in m["candidates"]] == expected
    assert m["candidates"][0]["score"] > m["candidates"][1]["score"] > m["candidates"][2]["score"]


def _independent_outcomes(theorem: Theorem, before: list[str], tactics: list[str]) -> dict[str, object]:
    with CoqBackend() as coq:
        state = coq.open(theorem)
        for t in before:
            state = coq.apply(state, t, 10).state
        return {t: coq.apply(state, t, 2.0) for t in tactics}, state.goals


def test_suggest_with_check_returns_only_tactics_that_really_succeed(repl: Repl) -> None:
    n = 10
    repl.send(id="s1", cmd="suggest", statement=ADD0, n=n, check=True)
    [m] = repl.until("s1")
    assert m["type"] == "suggestions" and m["checked"]
    assert m["tried"] == len(make_generator("portfolio", "coq").generate(m["goals"], n))
    returned = {c["tactic"]: c for c in m["candidates"]}
    proposed = [c.tactic for c in make_generator("portfolio", "coq").generate(m["goals"], n)]
    outcomes, root_goals = _independent_outcomes(Theorem("add0", ADD0), [], proposed)
    assert m["goals"] == root_goals
    for tactic, outcome in outcomes.items():
        if isinstance(outcome, Finished):
            assert returned[tactic]["complete"] is True and returned[tactic]["goals"] == ""
        elif isinstance(outcome, Next) and outcome.state.goals != root_goals:
            assert returned[tactic] == {**returned[tactic], "complete": False, "goals": outcome.state.goals}
        else:  # failed, timed out, or changed nothing
            assert tactic not in returned, (tactic, outcome)
    assert set(returned) <= set(proposed)
    assert any(c["complete"] for c in m["candidates"]) and any(not c["complete"] for c in m["candidates"])
    assert len(returned) < n  # some portfolio tactics fail here (e.g. field, reflexivity)
    # Complete ones first.
    flags = [c["complete"] for c in m["candidates"]]
    assert flags == sorted(flags, reverse=True)

    # The editor form: the buffer up to the cursor, bullets and all; same theorem, same kept session.
    source = f"(* a file *)\n{ADD0}\nProof.\n  intros.\n  - "
    repl.send(id="s2", cmd="suggest", source=source, n=3, check=True)
    [m2] = repl.until("s2")
    after_intros = returned["intros"]["goals"]
    assert m2["type"] == "suggestions" and m2["goals"] == after_intros
    top3 = [c.tactic for c in make_generator("portfolio", "coq").generate(after_intros, 3)]
    closing, _ = _independent_outcomes(Theorem("add0", ADD0), ["intros"], top3)
    assert [c["tactic"] for c in m2["candidates"]] == [t for t in top3 if isinstance(closing[t], Finished)]
    assert m2["candidates"]

    # A proof so far that does not run is an error naming the tactic.
    repl.send(id="s3", cmd="suggest", statement=ADD0, tactics=["intros", "field"], check=True)
    [m3] = repl.until("s3")
    assert m3["type"] == "error" and "tactic 2" in m3["message"] and "field" in m3["message"]


def test_prove_streams_progress_then_a_verified_result(repl: Repl) -> None:
    repl.send(id="p1", cmd="prove", header=REALS, statement=FIELD, timeout=120, candidates=8)
    messages = repl.until("p1", timeout=120)
    *progress, result = messages
    assert progress and all(m["type"] == "progress" for m in progress)
    assert [m["expansions"] for m in progress] == sorted(m["expansions"] for m in progress)
    assert {"expansions", "nodes", "tactic_calls", "best_depth", "elapsed"} <= set(progress[0])
    assert result["type"] == "result" and result["verified"] and result["proved"]
    assert result["expansions"] > progress[0]["expansions"] or len(progress) > 1
    # The same fields as `prover prove --json`.
    cli = subprocess.run([sys.executable, "-m", "prover", "prove", "--statement", ADD0, "--json",
                          "--max-expansions", "1", "--candidates", "1"], cwd=ROOT,
                         env=_env(), capture_output=True, text=True, timeout=120)
    assert set(json.loads(cli.stdout)) == set(result) - {"id", "type"}
    # Verified independently: the whole file compiled again from scratch.
    check = CoqBackend().check(Theorem("div_self", FIELD, REALS), result["tactics"])
    assert check.ok, check.message


def test_two_concurrent_proves_both_finish(repl: Repl, tmp_path: Path) -> None:
    # Each prove first spends 2 s in a loop cut by its tactic timeout: long enough to see both
    # provers alive at once however loaded the machine (a quick proof could end before the other starts).
    tactics = tmp_path / "slow_first.txt"
    tactics.write_text("let rec loop x := loop x in loop 0\nintros\nlia\ntauto\n")
    before = descendants(repl.proc.pid)
    repl.send(id="x", cmd="prove", statement=ADD0, timeout=120, tactics_file=str(tactics), tactic_timeout=2)
    repl.send(id="y", cmd="prove", statement=SWAP, timeout=120, tactics_file=str(tactics), tactic_timeout=2)
    results, most_provers = {}, 0
    while len(results) < 2:
        try:
            m = repl.next(timeout=0.02)
        except queue.Empty:
            most_provers = max(most_provers, len([p for p in descendants(repl.proc.pid) - before if alive(p)]))
            continue
        if m["type"] == "result":
            results[m["id"]] = m
    assert results["x"]["verified"] and results["y"]["verified"]
    assert results["x"]["theorem"] == "add0" and results["y"]["theorem"] == "swap"
    assert most_provers >= 2  # both had a prover running at the same moment


def test_cancel_stops_a_running_prove_promptly(repl: Repl, tmp_path: Path) -> None:
    spin = tmp_path / "spin.txt"
    spin.write_text("do 1000000000 idtac\n")  # one tactic that runs for minutes inside coqtop
    before = descendants(repl.proc.pid)
    repl.send(id="c1", cmd="prove", statement="Theorem spin : True.", tactics_file=str(spin),
              tactic_timeout=300, timeout=300)
    deadline = time.monotonic() + 30
    while not (descendants(repl.proc.pid) - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    provers = descendants(repl.proc.pid) - before
    assert provers, "no prover process started"
    time.sleep(2.5)  # coqtop has opened the theorem and is inside the tactic
    assert all(alive(p) for p in provers)
    sent = time.monotonic()
    repl.send(id="c2", cmd="cancel", target="c1")
    [m] = repl.until("c1", timeout=10)
    took = time.monotonic() - sent
    # The tactic would run for minutes (its limit is 300 s): only the cancel ends it this soon. The
    # bound is generous for a loaded machine; `benchmarks/repl_suggest_latency.py` measures latency.
    assert m["type"] == "cancelled" and took < 10, (m, took)
    assert not any(alive(p) for p in provers)
    assert not (descendants(repl.proc.pid) - before)
    # A cancel of a request that has ended is an error of the cancel.
    repl.send(id="c3", cmd="cancel", target="c1")
    [m] = repl.until("c3")
    assert m["type"] == "error" and m["code"] == "unknown_target"


def test_end_of_input_shuts_down_with_no_prover_left() -> None:
    r = Repl()
    try:
        r.send(id=1, cmd="suggest", statement=ADD0, check=True, n=2)  # leaves an idle session open
        [m] = r.until(1)
        assert m["type"] == "suggestions"
        provers = descendants(r.proc.pid)
        assert provers and all(alive(p) for p in provers)
        r.send(id=2, cmd="prove", statement=ADD0)
        r.proc.stdin.close()  # EOF while the prove runs: it still answers
        messages = [m for m in iter(lambda: r.next(60), None)]
        assert r.proc.wait(timeout=30) == 0
        assert [m["type"] for m in messages if m["id"] == 2][-1] == "result"
        assert messages[-1] == {"id": None, "type": "bye"}
        assert not any(alive(p) for p in provers)
    finally:
        r.close()


def test_shutdown_finishes_in_flight_requests_then_exits_0() -> None:
    r = Repl()
    try:
        r.send(id="p", cmd="prove", statement=ADD0, progress=False)
        r.send(id="bye", cmd="shutdown")
        messages = [m for m in iter(lambda: r.next(60), None)]
        assert [(m["id"], m["type"]) for m in messages] == [("p", "result"), ("bye", "bye")]
        assert messages[0]["verified"]
        assert r.proc.wait(timeout=30) == 0
        assert not descendants(r.proc.pid)
    finally:
        r.close()


def _non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            addr = s.getsockname()[0]
    except OSError:
        return None
    return None if addr.startswith("127.") else addr


def test_tcp_mode_listens_on_loopback_only_and_serves_several_clients() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "prover", "repl", "--port", "0"], cwd=ROOT, env=_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "listening on 127.0.0.1:" in line, line
        port = int(line.rsplit(":", 1)[1])
        # The kernel's table of listening sockets: this port is bound to 127.0.0.1 and nothing else.
        listening = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for row in Path(table).read_text().splitlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    listening.append(local.rsplit(":", 1)[0])
        assert listening == ["0100007F"]
        other = _non_loopback_address()
        if other is not None:
            with pytest.raises(OSError):
                socket.create_connection((other, port), timeout=2).close()
        goal = "x : nat\n============================\nx = x"
        with ReplClient.connect(port) as a, ReplClient.connect(port) as b:
            ra = a.send({"cmd": "suggest", "goal": goal, "n": 2})
            rb = b.send({"cmd": "suggest", "goal": goal, "n": 1})
            [ma], [mb] = list(a.responses(ra, timeout=30)), list(b.responses(rb, timeout=30))
            assert len(ma["candidates"]) == 2 and len(mb["candidates"]) == 1
            # A third client: the `prover client` command.
            cli = subprocess.run([sys.executable, "-m", "prover", "client", "--port", str(port),
                                  json.dumps({"id": 7, "cmd": "suggest", "goal": goal, "n": 3})],
                                 cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
            assert cli.returncode == 0, cli.stderr
            expected = [c.tactic for c in make_generator("portfolio", "coq").generate(goal, 3)]
            assert [c["tactic"] for c in json.loads(cli.stdout)["candidates"]] == expected
            assert a.shutdown(timeout=30) == {"id": "c2", "type": "bye"}
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_client_command_prints_the_responses() -> None:
    goal = "n : nat\n============================\nn + 0 = n"
    run = subprocess.run([sys.executable, "-m", "prover", "client",
                          json.dumps({"id": "a", "cmd": "suggest", "goal": goal, "n": 2}), '{"cmd": "suggest"}'],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr  # one response is an error
    replies = {m["id"]: m for m in map(json.loads, run.stdout.splitlines())}
    assert [c["tactic"] for c in replies["a"]["candidates"]] == \
        [c.tactic for c in make_generator("portfolio", "coq").generate(goal, 2)]
    assert replies["c1"]["type"] == "error" and "goal" in replies["c1"]["message"]
    usage = subprocess.run([sys.executable, "-m", "prover", "client", "{not json"],
                           cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr and "not JSON" in usage.stderr


def test_a_spawned_repl_keeps_its_temporary_files_out_of_the_directory_it_runs_in(tmp_path: Path,
                                                                                    marker: str) -> None:
    """The REPL a client starts runs in the user's directory (its relative paths), but its TMPDIR is the
    client's: the provers' working directories never appear among the user's files."""
    project = tmp_path / "project"
    project.mkdir()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**_env(), "TMPDIR": str(tmp), "PROVER_TEST_MARK": marker}
    with ReplClient.spawn(cwd=str(project), env=env) as client:
        reply = client.request("suggest", statement=ADD0, check=True, n=2, timeout=120)
        assert reply["type"] == "suggestions", reply
        [repl] = [p for p in map(psutil.Process, processes_with_marker(marker)) if "repl" in p.cmdline()]
        assert repl.cwd() == str(project) and repl.environ()["TMPDIR"] == str(tmp)
        # A kept session: its coqtop's working directory is in the REPL's temp root, under tmp.
        coqtops = [p for p in map(psutil.Process, processes_with_marker(marker)) if p.name() == "coqtop"]
        assert coqtops and all(p.cwd().startswith(str(tmp) + os.sep) for p in coqtops)
        assert os.listdir(project) == []
        client.shutdown(timeout=60)
    assert wait_for(lambda: os.listdir(tmp) == [])


# -- paths a client rarely takes: cancels at every stage, refusals, disconnects, evictions ----------------
SPIN = "do 1000000000 idtac"  # one tactic that runs for minutes inside coqtop


def _spin_file(tmp_path: Path) -> str:
    path = tmp_path / "spin.txt"
    path.write_text(SPIN + "\n")
    return str(path)


def _live_provers(pid: int, before: set[int] = frozenset()) -> set[int]:
    return {p for p in descendants(pid) - set(before) if alive(p)}


def test_check_request_runs_the_full_check_on_the_prover(repl: Repl) -> None:
    repl.send(id="k1", cmd="check", header=REALS, statement=FIELD, tactics=["intros", "field", "assumption"])
    [ok] = repl.until("k1", timeout=120)
    assert ok["type"] == "check" and ok["ok"] and ok["errors"] == []
    assert "ClassicalDedekindReals.sig_forall_dec" in ok["axioms"]  # from coqc's Print Assumptions
    assert ok["proof"].startswith("Proof.") and "field." in ok["proof"] and ok["elapsed"] > 0
    # A proof coqtop would accept step by step but the kernel refuses at Qed: the full check says no.
    repl.send(id="k2", cmd="check", statement="Theorem g : forall n : nat, n = S n.", tactics=["fix IH 1", "exact IH"])
    [bad] = repl.until("k2", timeout=120)
    assert bad["type"] == "check" and not bad["ok"] and "coqc failed" in bad["errors"][0]
    repl.send(id="k3", cmd="check", statement=ADD0, tactics=["intros", "admit"])
    [refused] = repl.until("k3", timeout=120)
    assert not refused["ok"] and "refused" in refused["errors"][0]


def test_cancel_of_a_checked_suggest_stops_its_session(repl: Repl, tmp_path: Path) -> None:
    before = descendants(repl.proc.pid)
    theorem = "Theorem spin_s : True."
    repl.send(id="cs", cmd="suggest", statement=theorem, tactics_file=_spin_file(tmp_path), check=True,
              tactic_timeout=300, n=1)
    assert wait_for(lambda: _live_provers(repl.proc.pid, before)), "no prover process started"
    provers = _live_provers(repl.proc.pid, before)
    time.sleep(1.5)  # the session opens the theorem and runs the candidate
    repl.send(id="cs-cancel", cmd="cancel", target="cs")
    [m] = repl.until("cs", timeout=30)
    assert m["type"] == "cancelled"
    assert wait_for(lambda: not any(alive(p) for p in provers), 10)  # a cancelled session is not kept
    # The next suggest on the same theorem opens a fresh session, on a new prover.
    repl.send(id="cs2", cmd="suggest", statement=theorem, n=2, check=True)
    [again] = repl.until("cs2", timeout=60)
    assert again["type"] == "suggestions" and again["candidates"]


def test_cancel_during_coqtop_start_leaves_no_prover(repl: Repl) -> None:
    """The cancel arrives while coqtop is still loading the header (a proof that runs for minutes)."""
    slow_header = "Lemma slow_header : True.\nProof.\ndo 1000000000 idtac; exact I.\nQed."
    before = descendants(repl.proc.pid)
    repl.send(id="st", cmd="prove", header=slow_header, statement=ADD0, timeout=300)
    assert wait_for(lambda: _live_provers(repl.proc.pid, before)), "no prover process started"
    provers = _live_provers(repl.proc.pid, before)
    time.sleep(0.5)
    repl.send(id="st-cancel", cmd="cancel", target="st")
    [m] = repl.until("st", timeout=30)
    assert m["type"] == "cancelled"
    assert wait_for(lambda: not any(alive(p) for p in provers), 10)
    assert wait_for(lambda: not _live_provers(repl.proc.pid, before), 10)


def test_duplicate_id_is_refused_while_the_first_runs(repl: Repl, tmp_path: Path) -> None:
    spin = _spin_file(tmp_path)
    repl.send(id="dup", cmd="prove", statement="Theorem d1 : True.", tactics_file=spin, tactic_timeout=300,
              timeout=300, progress=False)
    repl.send(id="dup", cmd="suggest", goal="x : nat\n============================\nx = x", n=1)
    [m] = repl.until("dup", timeout=30)
    assert (m["type"], m["code"]) == ("error", "duplicate_id") and "still running" in m["message"]
    repl.send(id="dup-cancel", cmd="cancel", target="dup")
    [end] = repl.until("dup", timeout=30)
    assert end["type"] == "cancelled"
    # Once it has ended, the id is free again.
    repl.send(id="dup", cmd="suggest", goal="x : nat\n============================\nx = x", n=1)
    [m] = repl.until("dup", timeout=30)
    assert m["type"] == "suggestions"


def test_cancel_of_a_queued_request_answers_at_once(tmp_path: Path) -> None:
    r = Repl("--workers", "1")
    try:
        # Answered once the server reads requests: the processes of its start (coqc -where) are gone.
        r.send(id="ready", cmd="cancel", target="nothing")
        r.until("ready", timeout=60)
        spin = _spin_file(tmp_path)
        r.send(id="busy", cmd="prove", statement="Theorem q1 : True.", tactics_file=spin, tactic_timeout=300,
               timeout=300, progress=False)
        assert wait_for(lambda: _live_provers(r.proc.pid)), "no prover process started"
        busy = _live_provers(r.proc.pid)
        r.send(id="queued", cmd="prove", statement=ADD0, progress=False)  # waits: one worker, busy
        r.send(id="q-cancel", cmd="cancel", target="queued")
        [m] = r.until("queued", timeout=30)
        # Answered while the only worker is still busy: it never started a prover.
        assert m["type"] == "cancelled" and _live_provers(r.proc.pid) == busy
        r.send(id="b-cancel", cmd="cancel", target="busy")
        [m] = r.until("busy", timeout=30)
        assert m["type"] == "cancelled"
        # The worker is free again: a new request runs and is answered.
        r.send(id="after", cmd="prove", statement=ADD0, progress=False)
        [m] = r.until("after", timeout=120)
        assert m["type"] == "result" and m["verified"]
    finally:
        r.close()
    assert r.proc.returncode == 0


def test_kept_sessions_beyond_the_limit_are_evicted(tmp_path: Path) -> None:
    r = Repl("--keep-sessions", "1")
    try:
        def suggest(id, statement):
            r.send(id=id, cmd="suggest", statement=statement, n=2, check=True)
            [m] = r.until(id, timeout=60)
            assert m["type"] == "suggestions", m
            return _live_provers(r.proc.pid)

        first = suggest("e1", ADD0)
        assert len(first) == 1  # one idle session, holding one coqtop
        second = suggest("e2", SWAP)  # a second theorem: the least recently used session goes
        assert wait_for(lambda: not any(alive(p) for p in first), 10)
        assert len(second - first) == 1
        again = suggest("e3", SWAP)  # warm: the kept session, same coqtop
        assert again == second - first
    finally:
        r.close()
    assert r.proc.returncode == 0


def _tcp_repl(*args: str):
    proc = subprocess.Popen([sys.executable, "-m", "prover", "repl", "--port", "0", *args], cwd=ROOT, env=_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    assert "listening on 127.0.0.1:" in line, line
    return proc, int(line.rsplit(":", 1)[1])


def test_tcp_client_that_disconnects_mid_request_leaves_no_prover(tmp_path: Path) -> None:
    proc, port = _tcp_repl()
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        # Inside a tactic that runs for minutes, with no progress to send: only the disconnect can end it.
        sock.sendall((json.dumps({"id": "gone", "cmd": "prove", "statement": "Theorem gone : True.",
                                  "tactics_file": _spin_file(tmp_path), "tactic_timeout": 300, "timeout": 300,
                                  "progress": False}) + "\n").encode())
        assert wait_for(lambda: _live_provers(proc.pid)), "no prover process started"
        time.sleep(1.0)
        sock.close()  # gone without a word, mid-request
        # Nobody is left to read the answer: the request is stopped with its prover, well before its
        # 300 s budget, and the server goes on serving others.
        assert wait_for(lambda: not _live_provers(proc.pid), 30), "the prover outlived its client"
        with ReplClient.connect(port) as other:
            reply = other.request("suggest", goal="x : nat\n============================\nx = x", n=1, timeout=30)
            assert reply["type"] == "suggestions"
            assert other.shutdown(timeout=30)["type"] == "bye"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_requests_after_a_shutdown_from_another_client_are_refused(tmp_path: Path) -> None:
    proc, port = _tcp_repl()
    try:
        slow = tmp_path / "slow.txt"
        slow.write_text("let rec loop x := loop x in loop 0\nintros\nlia\n")
        with ReplClient.connect(port) as a, ReplClient.connect(port) as b:
            rid = b.send({"cmd": "prove", "statement": ADD0, "tactics_file": str(slow), "tactic_timeout": 8,
                          "progress": False})
            time.sleep(1.0)  # b's prove is in flight (8 s in the loop)
            bye_id = a.send({"cmd": "shutdown"})
            # The server takes the shutdown in a moment: until then b's requests are served, after
            # it they are refused.
            deadline, late = time.monotonic() + 30, None
            while time.monotonic() < deadline:
                late = b.request("suggest", goal="x : nat\n============================\nx = x", n=1, timeout=30)
                if late["type"] != "suggestions":
                    break
                time.sleep(0.05)
            assert (late["type"], late["code"]) == ("error", "shutting_down"), late
            [result] = list(b.responses(rid, timeout=120))  # what was in flight still answers
            assert result["type"] == "result" and result["verified"]
            assert [m["type"] for m in a.responses(bye_id, timeout=60)] == ["bye"]
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
