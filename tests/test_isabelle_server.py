"""The Isabelle bridge against a stand-in server (tests/isabelle_standin.py) that answers with the real
recorded replies of `isabelle server`: protocol client, bridge bookkeeping, timeouts, crashes, the
sledgehammer step, batching, the full check in a fresh server, the search end to end, the CLI and
draft-sketch-prove. Real processes and sockets throughout. What the bridge theory computes inside
Isabelle (goal texts, errors, vetting verdicts, closers, audits) is invented by the stand-in from the
per-test SCRIPT below, in the report format of prover/backends/isabelle/bridge.py; the tests say where
a verdict is scripted. The ML itself runs only in tests/test_isabelle_live.py."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prover.backends.base import BackendCrash, Failed, Finished, InitError, Next, State, Theorem, TimedOut
from prover.backends.isabelle.backend import IsabelleBackend, IsabelleConfig, IsabelleServer, StateKey
from prover.backends.isabelle.protocol import ServerConnection, ServerError, ServerGone, parse_banner
from prover.backends.isabelle.text import node_messages, parse_sledgehammer, result_errors
from prover.backends.process import InteractiveProcess, ProcessLimits, WorkDir
from prover.models.portfolio import PortfolioGenerator
from prover.models.isabelle_prompts import DSP_EXAMPLES, DSP_FORMAT, dsp_prompt, dsp_state, sample_drafts
from prover.runs.minif2f import load
from prover.search.best_first import SearchConfig, search
from prover.search.dsp import prove_drafts, prove_sketch, sketch_steps

ROOT_DIR = Path(__file__).resolve().parents[1]
STANDIN = Path(__file__).with_name("isabelle_standin.py")

STATEMENT = 'theorem demo_add:\n  fixes x :: nat\n  assumes h0: "x = 2"\n  shows "x + x = 4"'
HEADER = "imports Complex_Main\n"
THEOREM = Theorem("demo_add", STATEMENT, HEADER)
SH_STATEMENT = 'theorem demo_sh:\n  fixes n :: nat\n  shows "n mod 2 = 0 \\<or> n mod 2 = 1"'
SH_THEOREM = Theorem("demo_sh", SH_STATEMENT, HEADER)
ROOT_GOALS = "proof (prove)\ngoal (1 subgoal):\n 1. x + x = 4"
AFTER_SUBST = "proof (prove)\ngoal (1 subgoal):\n 1. 2 + 2 = 4"
NO_SUBGOALS = "proof (prove)\ngoal:\nNo subgoals!"
FAIL_AUTO = "Failed to apply proof method\\<^here>:\ngoal (1 subgoal):\n 1. x + x = 4"
GUESSED = '{"bridge":"nGUESSED","op":"steps","results":[{"id":%d,"status":"finished"}]}'
CHAIN = [f"apply (rule r{i})" for i in range(1, 21)]  # a proof 20 steps deep

SCRIPT = {
    "replay": {"Example": "use_theories", "Example_Fail": "use_theories.Fail",
               "Problem": "use_theories.Sledgehammer"},
    "vet_refused": {"using h0 by (simp add: vetoed)": "proof method not allowed in a step: vetoed"},
    "theorems": {
        "demo_add": {"statement": STATEMENT, "root": ROOT_GOALS, "steps": {
            "apply (subst h0)": AFTER_SUBST,
            "apply (subst h0)\napply simp": NO_SUBGOALS,
            "apply (subst h0)\napply simp\ndone": {"finished": True},
            "apply (subst h0)\nby auto": {"finished": True},
            "apply (subst h0)\napply (simp add: slow)": {"timeout": True, "seconds": 0.5},
            "using h0 by simp": {"finished": True},
            "by eval": {"finished": True, "oracles": ["Code_Generator.holds_by_evaluation"]},
            "using h0 by (simp add: shady)": {"finished": True, "oracles": ["Pure.skip_proof"]},
            "using h0 by (simp add: odd)": {"finished": True, "oracles": ["Foo.unsound"]},
            "using h0 by (simp add: vetoed)": {"finished": True},
            # the step prints an audit of its own, even with the audit's nonce, at its own line
            "using h0 by (simp add: noisy)": {"finished": True, "oracles": ["Foo.unsound"], "prints": [
                '{"bridge":"NONCE","op":"audit","name":"demo_add","stored":true,"skip_proof":false,"oracles":[]}']},
            "apply auto": {"error": FAIL_AUTO},
            # scripted vetting verdict: the name resolves to a method that is not on the allow-list
            "apply (simp add: via_alias)": {"refused": "proof method not allowed in a step: simp"},
            # a failing step that prints a success report under a nonce it guessed
            "apply (simp add: liar)": {"error": "Failed to apply proof method", "prints": [GUESSED % 99]},
            # a step that somehow prints under the request's own nonce: two reports for one command
            "apply (simp add: forger)": {"error": "Failed to apply proof method", "prints": [
                '{"bridge":"NONCE","op":"steps","results":[]}']},
            "apply (induct x)": {"hang": "cancel"},
            "apply (simp add: loop)": {"hang": "deaf"},
            "apply (rule crash)": {"crash": True},
            "apply (rule wobbly)": {"crash_once": True, "then": AFTER_SUBST},
            "apply (rule wobbly)\napply simp": NO_SUBGOALS,
            "apply (rule wobbly)\napply simp\ndone": {"finished": True},
            # a draft-sketch-prove sketch (tests at the end)
            'proof -\nhave "x = 2" using h0': "proof (prove)\nusing this:\n  x = 2\ngoal (1 subgoal):\n 1. x = 2",
            'proof -\nhave "x = 2" using h0\nby auto': "proof (state)\nthis:\n  x = 2\ngoal (1 subgoal):\n 1. x + x = 4",
            'proof -\nhave "x = 2" using h0\nby auto\nthen show ?thesis':
                "proof (prove)\nusing this:\n  x = 2\ngoal (1 subgoal):\n 1. x + x = 4",
            'proof -\nhave "x = 2" using h0\nby auto\nthen show ?thesis\nby simp':
                "proof (state)\nthis:\n  x + x = 4\ngoal:\nNo subgoals!",
            'proof -\nhave "x = 2" using h0\nby auto\nthen show ?thesis\nby simp\nqed': {"finished": True},
            'proof -\nhave "x = 5"': "proof (prove)\ngoal (1 subgoal):\n 1. x = 5",
            **{"\n".join(CHAIN[:i]): f"proof (prove)\ngoal (1 subgoal):\n 1. P {i}" for i in range(1, 21)},
        }},
        "demo_sh": {"statement": SH_STATEMENT, "root": "proof (prove)\ngoal (1 subgoal):\n 1. n mod 2 = 0 \\<or> n mod 2 = 1",
                    "steps": {"sledgehammer": {"sledgehammer": "use_theories.Sledgehammer"},
                              "by fast": {"finished": True}}},
        "bad_import": {"statement": 'theorem bad_import:\n  shows "True"',
                       "root": {"import_error": "Bad theory import \"Missing.Theory\"", "goals": "proof (prove)"}},
        "bad_stmt": {"statement": 'theorem bad_stmt:\n  shows "x +"',
                     "root": {"statement_error": "Inner syntax error\\<^here>\nFailed to parse prop"}},
    },
}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


@pytest.fixture
def standin(tmp_path, monkeypatch):
    """An `isabelle` executable that runs the stand-in; its script and command log."""
    exe = tmp_path / "bin" / "isabelle"
    exe.parent.mkdir()
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" "$@"\n')
    exe.chmod(0o755)
    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT))
    log = tmp_path / "standin.log"
    monkeypatch.setenv("PROVER_STANDIN_SCRIPT", str(script))
    monkeypatch.setenv("PROVER_STANDIN_LOG", str(log))

    class S:
        path = exe
        env = {"PROVER_ISABELLE": str(exe), "PROVER_STANDIN_SCRIPT": str(script), "PROVER_STANDIN_LOG": str(log)}

        @staticmethod
        def entries() -> list[tuple[int, str, dict]]:
            out = []
            for line in (log.read_text().splitlines() if log.exists() else []):
                head, _, extra = line.partition("\t")
                pid, name = head.split()
                out.append((int(pid), name, json.loads(extra) if extra else {}))
            return out

        @classmethod
        def commands(cls, pid: int | None = None) -> list[str]:
            """Protocol commands, in order."""
            return [n for p, n, _ in cls.entries() if not n.startswith("prover_") and pid in (None, p)]

        @classmethod
        def bridge(cls, pid: int | None = None) -> list[tuple[str, dict]]:
            """Bridge commands of the checked theories, with their decoded texts and numbers."""
            return [(n, x) for p, n, x in cls.entries() if n.startswith("prover_") and pid in (None, p)]

        @staticmethod
        def set_script(script: dict) -> None:
            Path(os.environ["PROVER_STANDIN_SCRIPT"]).write_text(json.dumps(script))

    return S


def config(standin, **kw) -> IsabelleConfig:
    base = dict(isabelle=str(standin.path), project_dir=str(ROOT_DIR / "isabelle"), grace=1.0,
                start_timeout=20.0, heuristic_timeout=2.0, sledgehammer_timeout=3.0,
                limits=ProcessLimits(memory_bytes=2 * 1024**3))
    base.update(kw)
    return IsabelleConfig(**base)


@pytest.fixture
def backend(standin):
    b = IsabelleBackend(config(standin))
    yield b
    pids = list(b.server_pids) + list(b.check_server_pids)
    b.close()
    assert not any(alive(p) for p in pids), "a server process outlived close()"


# -- the protocol client on recorded replies ----------------------------------------------------
@pytest.fixture
def raw_server(standin, tmp_path):
    work = WorkDir()
    proc = InteractiveProcess([str(standin.path), "server", "-n", "t"], work.path, ProcessLimits(2 * 1024**3), 20)
    proc.spawn.expect(r'server "t" = \S+ \(password "[^"]+"\)')
    yield parse_banner(proc.spawn.after), proc
    proc.stop(tree=True)
    work.cleanup()


def test_client_on_recorded_sync_replies(raw_server, standin):
    banner, proc = raw_server
    with pytest.raises(ServerGone):
        ServerConnection(banner.host, banner.port, "not-the-password", 5)
    conn = ServerConnection(banner.host, banner.port, banner.password, 5)
    assert conn.hello["isabelle_name"] == "Isabelle2025"
    assert conn.command("help") == ["cancel", "echo", "help", "purge_theories", "session_build",
                                   "session_start", "session_stop", "shutdown", "use_theories"]
    with pytest.raises(ServerError, match="Bad command 'unknown'"):
        conn.command("unknown")
    assert conn.command("echo", {"a": [1, 2]}) == {"a": [1, 2]}
    purged = conn.command("purge_theories", {"session_id": "x", "theories": ["Mock"]})
    assert purged["purged"][0]["theory_name"] == "Draft.Mock"
    assert conn.command("cancel", {"task": "no-such-task"}) is None  # recorded "OK" + blank line
    assert conn.command("help")[0] == "cancel"  # the blank line did not desynchronise the stream
    assert conn.command("shutdown") is None
    proc.spawn.proc.wait(timeout=5)
    assert not alive(proc.pid)
    assert standin.commands() == ["help", "unknown", "echo", "purge_theories", "cancel", "help", "shutdown"]


def test_client_on_recorded_use_theories_replies(raw_server):
    banner, _ = raw_server
    conn = ServerConnection(banner.host, banner.port, banner.password, 5)
    ok = conn.run_task("use_theories", {"session_id": "s", "theories": ["Example"]}, 10)
    assert ok.finished and ok.task == "18c8e507-96c8-4bc8-9cb0-db4558bda07f"
    assert [n["percentage"] for n in ok.notes] == [42, 99, 100]
    assert node_messages(ok.payload, "Example")[0].text == "theorem \\<forall>x. \\<exists>y. x = y"
    fail = conn.run_task("use_theories", {"session_id": "s", "theories": ["Example_Fail"]}, 10)
    assert fail.finished and fail.payload["ok"] is False
    assert result_errors(fail.payload)[0].text.startswith("Failed to finish proof")
    sh = conn.run_task("use_theories", {"session_id": "s", "theories": ["Problem"]}, 10)
    assert parse_sledgehammer(node_messages(sh.payload)) == ["by presburger", "by simp", "by auto", "by blast",
                                                            "by fast", "by metis"]


def test_server_start_reads_the_recorded_session_start_and_stops(standin):
    work = WorkDir()
    server = IsabelleServer(config(standin), work.path)
    try:
        server.start()
        assert server.session_id == "167dd6d8-1eeb-4315-8022-c8c527d9bd87"
        pid = server.pid
        assert alive(pid)
    finally:
        server.stop()
        work.cleanup()
    assert not alive(pid)
    assert standin.commands() == ["session_start", "shutdown"]


def test_stop_tree_reaches_helpers_in_groups_of_their_own(tmp_path):
    # Isabelle's bash_process starts the ML process in a group of its own; stopping the server's
    # group alone would leave it running.
    work = WorkDir()
    proc = InteractiveProcess(["bash", "-c", "setsid sleep 120 & echo child=$!; wait"], work.path, ProcessLimits(), 10)
    proc.spawn.expect(r"child=(\d+)")
    child = int(proc.spawn.match.group(1))
    deadline = time.monotonic() + 5
    while os.getpgid(child) == proc.pid and time.monotonic() < deadline:
        time.sleep(0.01)  # setsid(1) runs after bash printed the pid
    assert alive(child) and os.getpgid(child) != proc.pid
    proc.stop(tree=True)
    work.cleanup()
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child) and not alive(proc.pid)


# -- the bridge ---------------------------------------------------------------------------------
def steps_sent(standin) -> list[list[str]]:
    return [x["texts"] for n, x in standin.bridge() if n == "prover_steps"]


def test_open_apply_backtrack_and_finish(backend, standin):
    root = backend.open(THEOREM)
    assert root.goals == ROOT_GOALS and root.key.steps == ()
    nxt = backend.apply(root, "apply (subst h0)", 5)
    assert isinstance(nxt, Next) and nxt.state.goals == AFTER_SUBST and nxt.state.key.steps == ("apply (subst h0)",)
    # a step that solves every goal: the bridge adds `done` and reports the proof finished
    fin = backend.apply(nxt.state, "apply simp", 5)
    assert isinstance(fin, Finished) and fin.state.key.steps == ("apply (subst h0)", "apply simp", "done")
    # back to the root (any earlier state): a failing step, then a finishing one
    failed = backend.apply(root, "apply auto", 5)
    assert isinstance(failed, Failed) and not failed.rejected
    assert failed.message == "Failed to apply proof method:\ngoal (1 subgoal):\n 1. x + x = 4"
    done = backend.apply(root, "using h0 by simp", 5)
    assert isinstance(done, Finished) and done.state.key.steps == ("using h0 by simp",)
    assert backend.proof_text(["apply (subst h0)", "apply simp"]) == "  apply (subst h0)\n  apply simp\n  done"
    # the theorem is opened once; every step is one request naming its parent state by id
    ops = standin.bridge()
    assert [n for n, _ in ops] == ["prover_open"] + ["prover_steps"] * 4
    assert [x["ints"][0] for _, x in ops[1:]] == [root.key.sid, nxt.state.key.sid, root.key.sid, root.key.sid]
    assert [x["texts"] for _, x in ops[1:]] == [["apply (subst h0)"], ["apply simp"], ["apply auto"],
                                                ["using h0 by simp"]]
    cmds = standin.commands()
    assert cmds.count("use_theories") == 5 and cmds.count("purge_theories") == 4  # the opening theory stays


def test_a_step_costs_one_request_of_the_same_size_at_any_depth(backend, standin):
    state = backend.open(THEOREM)
    for i, step in enumerate(CHAIN, 1):
        out = backend.apply(state, step, 5)
        assert isinstance(out, Next) and out.state.goals.endswith(f"1. P {i}")
        state = out.state
    steps = [x for n, x in standin.bridge() if n == "prover_steps"]
    assert len(steps) == 20 and [x["texts"] for x in steps] == [[s] for s in CHAIN]
    # the theory checked for step 20 is the one for step 1 but for the step itself (hex-encoded) and
    # the numbers in it (parent id, new id, theory name) growing a digit each
    overhead = [x["size"] - 2 * len(x["texts"][0]) for x in steps]
    assert 0 <= overhead[-1] - overhead[0] <= 3
    assert [n for n, _ in standin.bridge()].count("prover_open") == 1
    assert state.key.steps == tuple(CHAIN)


def test_filtered_steps_never_reach_isabelle(backend, standin):
    root = backend.open(THEOREM)
    for step in ("sorry", "apply auto\noops", "by simp\nend", "apply (Pure.tactic \\<open>all_tac\\<close>)", "auto",
                 'using [["quick_and_dirty"]] by simp', "by simp\nSML_import \\<open>x\\<close>"):
        out = backend.apply(root, step, 5)
        assert isinstance(out, Failed) and out.rejected
    assert steps_sent(standin) == []


def test_a_step_the_vetting_refuses_is_rejected(backend, standin):
    # Scripted verdict (the stand-in's invention): Isabelle's vetting resolves the method and refuses.
    root = backend.open(THEOREM)
    out = backend.apply(root, "apply (simp add: via_alias)", 5)
    assert out == Failed("refused by Isabelle's step vetting: proof method not allowed in a step: simp", rejected=True)


def test_the_report_is_read_only_under_its_own_nonce_and_only_once(backend, standin):
    root = backend.open(THEOREM)
    # the step fails; what it printed (a success report under a guessed nonce) is ignored
    liar = backend.apply(root, "apply (simp add: liar)", 5)
    assert isinstance(liar, Failed) and liar.message == "Failed to apply proof method"
    # two reports under the request's nonce: no result is believed
    forger = backend.apply(root, "apply (simp add: forger)", 5)
    assert isinstance(forger, Failed) and "more than one bridge report" in forger.message


def test_statement_errors_and_name_mismatch_are_init_errors(backend):
    with pytest.raises(InitError, match="statement does not check: Inner syntax error"):
        backend.open(Theorem("bad_stmt", 'theorem bad_stmt:\n  shows "x +"', HEADER))
    # an error located in an imported theory is blamed on the header
    with pytest.raises(InitError, match="header does not check: Bad theory import"):
        backend.open(Theorem("bad_import", 'theorem bad_import:\n  shows "True"', HEADER))
    with pytest.raises(InitError, match="expected 'other'"):
        backend.open(Theorem("other", STATEMENT, HEADER))
    with pytest.raises(InitError, match="imports"):
        backend.open(Theorem("demo_add", STATEMENT, "Require Import Arith."))


def test_timeouts_inside_isabelle_and_at_the_server(backend, standin):
    root = backend.open(THEOREM)
    nxt = backend.apply(root, "apply (subst h0)", 5)
    # the bridge's own Timeout.apply stopped the step (scripted): one request, server kept
    assert backend.apply(nxt.state, "apply (simp add: slow)", 0.5) == TimedOut(0.5)
    pid = backend.pid
    start = time.monotonic()
    out = backend.apply(root, "apply (induct x)", 0.5)  # the server does not answer: cancelled
    assert isinstance(out, TimedOut) and time.monotonic() - start < 30  # generous: a loaded machine is slow
    assert "cancel" in standin.commands() and backend.pid == pid and backend.restarts == 0
    assert backend.apply(root, "apply (subst h0)", 5).state.goals == AFTER_SUBST


def test_a_server_deaf_to_cancel_is_replaced_and_states_are_rebuilt(backend, standin):
    root = backend.open(THEOREM)
    nxt = backend.apply(root, "apply (subst h0)", 5)
    old = backend.pid
    start = time.monotonic()
    out = backend.apply(root, "apply (simp add: loop)", 0.5)
    assert isinstance(out, TimedOut) and time.monotonic() - start < 60  # generous: a loaded machine is slow
    assert backend.restarts == 1 and not alive(old)
    # the next step on a deep state goes to a fresh server: reopen, rebuild the state from its
    # proof text (one request), then the step
    fin = backend.apply(nxt.state, "apply simp", 5)
    assert isinstance(fin, Finished) and fin.state.key.steps == ("apply (subst h0)", "apply simp", "done")
    new = backend.pid
    assert new != old and alive(new)
    ops = standin.bridge(new)
    assert [n for n, _ in ops] == ["prover_open", "prover_steps", "prover_steps"]
    assert ops[1][1]["texts"] == ["apply (subst h0)"] and ops[2][1]["texts"] == ["apply simp"]
    assert standin.commands().count("session_start") == 2


def test_crash_restarts_and_retries_once_then_raises(backend, standin):
    root = backend.open(THEOREM)
    first = backend.pid
    out = backend.apply(root, "apply (rule wobbly)", 5)
    assert isinstance(out, Next) and out.state.goals == AFTER_SUBST
    assert backend.restarts == 1 and not alive(first)
    second = backend.pid
    with pytest.raises(BackendCrash, match="failed twice"):
        backend.apply(root, "apply (rule crash)", 5)
    assert not alive(second)
    # still usable afterwards, and the state made before the crash is rebuilt
    assert isinstance(backend.apply(out.state, "apply simp", 5), Finished)


def test_an_isabelle_that_does_not_start(tmp_path, standin):
    exe = tmp_path / "broken-isabelle"
    exe.write_text("#!/bin/sh\necho 'Bad Isabelle settings'\nexit 1\n")
    exe.chmod(0o755)
    b = IsabelleBackend(config(standin, isabelle=str(exe)))
    with pytest.raises(InitError, match="did not start: Bad Isabelle settings"):
        b.open(THEOREM)
    b.close()
    # one that starts once and then no more: a crash mid-search becomes BackendCrash, not InitError
    once = tmp_path / "once-isabelle"
    flag = tmp_path / "started"
    once.write_text(f'#!/bin/sh\nif [ -e "{flag}" ]; then echo gone; exit 1; fi\ntouch "{flag}"\n'
                    f'exec "{sys.executable}" "{STANDIN}" "$@"\n')
    once.chmod(0o755)
    b = IsabelleBackend(config(standin, isabelle=str(once)))
    try:
        root = b.open(THEOREM)
        with pytest.raises(BackendCrash, match="cannot start the Isabelle server"):
            b.apply(root, "apply (rule crash)", 5)
    finally:
        b.close()


def test_restart_every_n_requests(standin):
    b = IsabelleBackend(config(standin, restart_every=2))
    try:
        root = b.open(THEOREM)
        for _ in range(2):
            assert b.apply(root, "apply (subst h0)", 5).state.goals == AFTER_SUBST
        assert len(b.server_pids) == 2 and not alive(b.server_pids[0]) and alive(b.server_pids[1])
    finally:
        b.close()


def test_sledgehammer_step_tries_all_heuristics_in_one_request(backend, standin):
    root = backend.open(THEOREM)
    nxt = backend.apply(root, "apply (subst h0)", 5)
    out = backend.apply(nxt.state, "sledgehammer", 5)
    assert isinstance(out, Finished) and out.state.key.steps == ("apply (subst h0)", "by auto")  # the first heuristic
    sent = steps_sent(standin)
    assert len(sent) == 2 and sent[1][0] == "by auto"
    # `by sos` only where the theory imports Sum_of_Squares
    assert "by sos" not in sent[1] and len(sent[1]) == len(backend.config.heuristics) - 1
    assert backend.proof_text(["apply (subst h0)", "sledgehammer"]) == "  apply (subst h0)\n  by auto"
    sos = Theorem("demo_add", STATEMENT, 'imports Complex_Main "HOL-Library.Sum_of_Squares"\n')
    root = backend.open(sos)
    backend.apply(root, "sledgehammer", 5)
    assert "by sos" in steps_sent(standin)[-1]


def test_sledgehammer_step_uses_the_recorded_suggestions(backend, standin):
    root = backend.open(SH_THEOREM)
    out = backend.apply(root, "sledgehammer", 5)
    # every heuristic fails (one request); Sledgehammer (recorded) suggests presburger, simp, auto,
    # blast (tried already as heuristics), fast and metis: one request, and fast checks
    assert isinstance(out, Finished) and out.state.key.steps == ("by fast",)
    assert [n for n, _ in standin.bridge()] == ["prover_open", "prover_steps", "prover_sledgehammer", "prover_steps"]
    assert steps_sent(standin)[-1] == ["by fast", "by metis"]
    check = backend.check(SH_THEOREM, ["sledgehammer"])
    assert check.ok, check.message
    assert "\nby fast\n\nprover_audit " in check.source


def test_prefetch_sends_a_states_candidates_in_one_request(backend, standin):
    root = backend.open(THEOREM)
    candidates = ["apply auto", "apply (subst h0)", "sorry", "sledgehammer", "using h0 by simp", "apply (subst h0)"]
    backend.prefetch(root, candidates, 5)
    assert steps_sent(standin) == [["apply auto", "apply (subst h0)", "using h0 by simp"]]
    outcomes = [backend.apply(root, c, 5) for c in candidates[:3] + candidates[4:]]
    assert len(steps_sent(standin)) == 1  # answered from the batch
    assert isinstance(outcomes[0], Failed) and not outcomes[0].rejected
    assert outcomes[1].state.goals == AFTER_SUBST and isinstance(outcomes[3], Finished)
    assert outcomes[2].rejected  # refused by the filter, never sent
    assert outcomes[4] == outcomes[1]


def test_full_check_runs_in_a_fresh_server_and_reads_the_audit(backend, standin):
    backend.open(THEOREM)
    good = backend.check(THEOREM, ["using h0 by simp"])
    assert good.ok and good.axioms == ()
    assert STATEMENT in good.source and "sorry" not in good.source
    # the check ran in a server of its own that saw no model step: vetting, then the theory
    (checker,) = backend.check_server_pids
    assert checker not in backend.server_pids and not alive(checker)
    assert [n for n, _ in standin.bridge(checker)] == ["prover_vet", "prover_audit"]
    assert standin.bridge(checker)[0][1]["texts"] == ["using h0 by simp"]
    evaluated = backend.check(THEOREM, ["by eval"])
    assert evaluated.ok and evaluated.axioms == ("Code_Generator.holds_by_evaluation",)
    shady = backend.check(THEOREM, ["using h0 by (simp add: shady)"])
    assert not shady.ok and "skipped proof" in shady.message
    odd = backend.check(THEOREM, ["using h0 by (simp add: odd)"])
    assert not odd.ok and "Foo.unsound" in odd.message
    allowed = backend.check(Theorem("demo_add", STATEMENT, HEADER, ("Foo.unsound",)), ["using h0 by (simp add: odd)"])
    assert allowed.ok
    # an audit printed by a proof step, even under the audit's nonce, is not read: its line is the step's
    noisy = backend.check(THEOREM, ["using h0 by (simp add: noisy)"])
    assert not noisy.ok and "Foo.unsound" in noisy.message
    vetoed = backend.check(THEOREM, ["using h0 by (simp add: vetoed)"])  # scripted vetting verdict
    assert not vetoed.ok and vetoed.message == "refused by Isabelle's step vetting: proof method not allowed in a step: vetoed"
    unfinished = backend.check(THEOREM, ["apply (subst h0)"])
    assert not unfinished.ok and "Illegal application" in unfinished.message
    refused = backend.check(THEOREM, ["sorry"])
    assert not refused.ok and "refused" in refused.message and refused.source == ""
    unresolved = backend.check(THEOREM, ["sledgehammer"])
    assert not unresolved.ok and "never resolved" in unresolved.message
    renamed = backend.check(Theorem("demo_other", STATEMENT, HEADER), ["using h0 by simp"])
    assert not renamed.ok and "name" in renamed.message
    assert len(backend.check_server_pids) == 8 and not set(backend.check_server_pids) & set(backend.server_pids)
    assert not any(n in ("prover_open", "prover_steps") for p in backend.check_server_pids for n, _ in standin.bridge(p))


@pytest.mark.parametrize("prefix,recording,why", [
    ("Check_", "use_theories.Fail", "Isabelle error: Failed to finish proof:"),
    ("Check_", "use_theories", "the theorem was not audited: the bridge printed no report"),
    ("Vet_", "use_theories", "the proof was not vetted: the bridge printed no report")])
def test_full_check_on_recorded_replies(standin, prefix, recording, why):
    # The real server's replies, verbatim: a recorded failure is an error; a recorded success that
    # lacks the bridge's report is no proof either.
    standin.set_script(dict(SCRIPT, replay_prefix={prefix: recording}))
    b = IsabelleBackend(config(standin))
    try:
        b.open(THEOREM)
        result = b.check(THEOREM, ["using h0 by simp"])
    finally:
        b.close()
    assert not result.ok and result.message.startswith(why)


def test_search_end_to_end_batches_each_expansion(backend, standin):
    generator = PortfolioGenerator(["apply auto", "apply (subst h0)", "apply simp"])
    result = search(THEOREM, backend, generator, SearchConfig(max_expansions=10, timeout=60, tactic_timeout=5))
    assert result.proved, result.failure_message
    assert result.tactics == ["apply (subst h0)", "apply simp"]
    assert result.proof == "  apply (subst h0)\n  apply simp\n  done"
    assert result.expansions == 2
    assert backend.tactic_calls == 2  # one request per expanded state


# -- the CLI ------------------------------------------------------------------------------------
def run_cli(*args, env=None, timeout=120):
    full = dict(os.environ)
    full["PYTHONPATH"] = str(ROOT_DIR) + os.pathsep + full.get("PYTHONPATH", "")
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "prover", *args], cwd=ROOT_DIR, env=full,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_proves_with_the_stand_in_and_writes_the_proof(standin, tmp_path):
    tactics = tmp_path / "tactics.txt"
    tactics.write_text("apply auto\napply (subst h0)\napply simp\n")
    r = run_cli("prove", "--backend", "isabelle", "--statement", STATEMENT, "--tactics", str(tactics),
                "--json", "--timeout", "60", env=standin.env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["verified"] and out["backend"] == "isabelle" and out["proof"].endswith("  done")
    thy = tmp_path / "Demo.thy"
    thy.write_text(f"theory Demo\n  imports Complex_Main\nbegin\n\n{STATEMENT}\n  sorry\n\nend\n")
    r = run_cli("prove", str(thy), "--backend", "isabelle", "--theorem", "demo_add", "--tactics", str(tactics),
                "--write", "--quiet", "--timeout", "60", env=standin.env)
    assert r.returncode == 0, r.stderr
    assert thy.read_text() == (f"theory Demo\n  imports Complex_Main\nbegin\n\n{STATEMENT}\n"
                               "  apply (subst h0)\n  apply simp\n  done\n\nend\n")
    assert (tmp_path / "Demo.thy.bak").read_text().count("sorry") == 1


def test_cli_without_isabelle_fails_at_once_with_the_install_hint(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PROVER_ISABELLE": ""}
    r = run_cli("prove", "--backend", "isabelle", "--statement", STATEMENT, env=env, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "make isabelle" in lines[0] and "Traceback" not in r.stderr


def test_cli_isabelle_setup_writes_theories_and_root(tmp_path):
    r = run_cli("isabelle", "setup", "--out", str(tmp_path / "m"), "--split", "valid", timeout=60)
    assert r.returncode == 0, r.stderr
    theories = sorted((tmp_path / "m" / "valid").glob("*.thy"))
    assert len(theories) == 244
    text = (tmp_path / "m" / "valid" / "mathd_algebra_10.thy").read_text()
    assert text.startswith("theory mathd_algebra_10\n  imports Complex_Main\nbegin\n")
    assert "theorem mathd_algebra_10:" in text and text.rstrip().endswith("sorry\n\nend")
    root = (tmp_path / "m" / "ROOT").read_text()
    assert "session MiniF2F_Valid in valid = Prover_Base +" in root and "    mathd_algebra_10" in root
    r = run_cli("isabelle", "setup", "--data", str(tmp_path / "nowhere"), timeout=60)
    assert r.returncode == 2 and "not found" in r.stderr


# -- draft, sketch, prove -----------------------------------------------------------------------
SKETCH = ('proof -\n  (* the hypothesis, restated *)\n  have "x = 2" using h0 sledgehammer\n'
          '  (* then substitute (* twice *) *)\n  then show ?thesis sledgehammer\nqed')


def test_sketch_steps_drop_informal_comments_and_cut_at_placeholders():
    steps = ['proof -\n  have "x = 2" using h0', "sledgehammer", "then show ?thesis", "sledgehammer", "qed"]
    assert sketch_steps(SKETCH) == steps
    # the papers' output: the statement repeated, the proof, then the model going on
    repeated = f"```isabelle\n{STATEMENT}\n{SKETCH}\n```\n\nInformal:\n(*### Problem ..."
    assert sketch_steps(repeated) == steps == sketch_steps(repeated, STATEMENT)
    # a repeated statement followed by sledgehammer is a sketch with one gap
    assert sketch_steps(f"{STATEMENT}\n  sledgehammer", STATEMENT) == ["sledgehammer"]
    assert sketch_steps(f"{STATEMENT} sledgehammer") == ["sledgehammer"]
    assert sketch_steps('have "sledgehammer = x" sledgehammer') == ['have "sledgehammer = x"', "sledgehammer"]


def test_dsp_prompt_from_a_minif2f_record_and_examples_that_pass_the_filter():
    (problem,) = load("isabelle", names=["mathd_algebra_10"])
    prompt = dsp_prompt(problem.record)
    assert prompt.count("Formal:\n") == len(DSP_EXAMPLES) + 1
    assert problem.record["informal_statement"].strip() in prompt
    assert prompt.endswith(f"Formal:\n{problem.record['formal_statement'].strip()}\n")
    assert DSP_FORMAT.prompt(dsp_state(problem.record)) == prompt  # what a prompt-format generator samples from
    tricky = dict(problem.record, informal_proof="so (a *) b) holds")
    assert "*) b)" not in dsp_prompt(tricky)
    from prover.backends.isabelle.text import check_step
    for ex in DSP_EXAMPLES:
        assert "(* " in ex.sketch  # informal steps between the formal lines, as in the papers
        steps = sketch_steps(ex.sketch)
        assert steps.count("sledgehammer") == ex.sketch.count("sledgehammer") >= 2
        assert all(check_step(s)[0] is not None for s in steps if s != "sledgehammer")


def test_prove_sketch_fills_every_gap_and_checks(backend, standin):
    result = prove_sketch(backend, THEOREM, SKETCH, step_timeout=5)
    assert result.proved, result.message
    assert result.filled == ("by auto", "by simp")  # the first DSP heuristic that closes each gap
    # the sketch's own `qed` is the one the bridge added after `show ?thesis by simp`: not doubled
    assert result.proof == ('  proof -\n    have "x = 2" using h0\n  by auto\n  then show ?thesis\n  by simp\n  qed')


def test_prove_sketch_refuses_unfilled_gaps_and_steps_after_the_end(backend):
    bad = prove_sketch(backend, THEOREM, 'proof -\n  have "x = 5" sledgehammer\n  then show ?thesis sledgehammer\nqed', 5)
    assert not bad.proved and bad.message.startswith("gap 2") and bad.filled == ()
    extra = prove_sketch(backend, THEOREM, "using h0 by simp sledgehammer", 5)
    assert not extra.proved and "after the proof is finished" in extra.message


def test_sampled_drafts_are_tried_until_one_is_proved(backend, standin):
    # A generator that "samples" fixed drafts (the portfolio ignores its prompt): a wrong sketch, the
    # same one again, then the good one in the papers' format, statement repeated.
    drafts = ['proof -\n  have "x = 5" sledgehammer\n  then show ?thesis sledgehammer\nqed',
              'proof -\n  have "x = 5"   sledgehammer\n  then show ?thesis sledgehammer\nqed',
              f"{STATEMENT}\n{SKETCH}"]
    (problem,) = load("isabelle", names=["mathd_algebra_10"])
    sampled = sample_drafts(PortfolioGenerator(drafts), problem.record, 3)
    assert sampled == drafts
    result = prove_drafts(backend, THEOREM, sampled, step_timeout=5)
    assert result.proved and result.tried == 2 and result.best.filled == ("by auto", "by simp")
    assert not result.results[0].proved
