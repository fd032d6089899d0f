"""The Isabelle bridge against a stand-in server (tests/isabelle_standin.py) that answers with the real
recorded replies of `isabelle server`: protocol client, bridge bookkeeping, timeouts, crashes, the
sledgehammer step, the full check, the search end to end and the CLI. Real processes and sockets
throughout; only Isabelle's proof checking is scripted (see the stand-in's docstring)."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prover.backends.base import BackendCrash, Failed, Finished, InitError, Next, State, Theorem, TimedOut
from prover.backends.isabelle.backend import IsabelleBackend, IsabelleConfig, IsabelleServer
from prover.backends.isabelle.protocol import ServerConnection, ServerError, ServerGone, parse_banner
from prover.backends.isabelle.text import node_messages, parse_sledgehammer, result_errors
from prover.backends.process import InteractiveProcess, ProcessLimits, WorkDir
from prover.models.portfolio import PortfolioGenerator
from prover.models.isabelle_prompts import DSP_EXAMPLES, dsp_prompt
from prover.runs.minif2f import load
from prover.search.best_first import SearchConfig, search
from prover.search.dsp import prove_sketch, sketch_steps

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

SCRIPT = {
    "replay": {"Example": "use_theories", "Example_Fail": "use_theories.Fail",
               "Problem": "use_theories.Sledgehammer"},
    "theorems": {
        "demo_add": {"statement": STATEMENT, "root": ROOT_GOALS, "steps": {
            "apply (subst h0)": AFTER_SUBST,
            "apply (subst h0)\napply simp": NO_SUBGOALS,
            "apply (subst h0)\napply simp\ndone": {"finished": True},
            "apply (subst h0)\nby auto": {"finished": True},
            "using h0 by simp": {"finished": True},
            "by eval": {"finished": True, "oracles": ["Code_Generator.holds_by_evaluation"]},
            "using h0 by (simp add: shady)": {"finished": True, "oracles": ["Pure.skip_proof"]},
            "using h0 by (simp add: odd)": {"finished": True, "oracles": ["Foo.unsound"]},
            "apply auto": {"error": FAIL_AUTO},
            "apply (induct x)": {"hang": "cancel"},
            "apply (simp add: loop)": {"hang": "deaf"},
            "apply (rule crash)": {"crash": True},
            "apply (rule wobbly)": {"crash_once": True, "then": AFTER_SUBST},
            # a draft-sketch-prove sketch (tests at the end)
            'proof -\nhave "x = 2" using h0': "proof (prove)\nusing this:\n  x = 2\ngoal (1 subgoal):\n 1. x = 2",
            'proof -\nhave "x = 2" using h0\nby auto': "proof (state)\nthis:\n  x = 2\ngoal (1 subgoal):\n 1. x + x = 4",
            'proof -\nhave "x = 2" using h0\nby auto\nthen show ?thesis':
                "proof (prove)\nusing this:\n  x = 2\ngoal (1 subgoal):\n 1. x + x = 4",
            'proof -\nhave "x = 2" using h0\nby auto\nthen show ?thesis\nby simp':
                "proof (state)\nthis:\n  x + x = 4\ngoal:\nNo subgoals!",
            'proof -\nhave "x = 2" using h0\nby auto\nthen show ?thesis\nby simp\nqed': {"finished": True},
            'proof -\nhave "x = 5"': "proof (prove)\ngoal (1 subgoal):\n 1. x = 5",
        }},
        "demo_sh": {"statement": SH_STATEMENT, "root": "proof (prove)\ngoal (1 subgoal):\n 1. n mod 2 = 0 \\<or> n mod 2 = 1",
                    "steps": {"sledgehammer [timeout = 3]": {"sledgehammer": "use_theories.Sledgehammer",
                                                             "goals": "proof (prove)\ngoal (1 subgoal):\n 1. n mod 2 = 0"},
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
        def commands() -> list[str]:
            return log.read_text().split() if log.exists() else []

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
    pids = list(b.server_pids)
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
def test_open_apply_backtrack_and_finish(backend, standin):
    root = backend.open(THEOREM)
    assert root == State((), ROOT_GOALS)
    nxt = backend.apply(root, "apply (subst h0)", 5)
    assert nxt == Next(State(("apply (subst h0)",), AFTER_SUBST))
    # a step that solves every goal: the bridge adds `done` and reports the proof finished
    fin = backend.apply(nxt.state, "apply simp", 5)
    assert fin == Finished(State(("apply (subst h0)", "apply simp", "done"), ""))
    # back to the root (any earlier state): a failing step, then a finishing one
    failed = backend.apply(root, "apply auto", 5)
    assert isinstance(failed, Failed) and not failed.rejected
    assert failed.message == "Failed to apply proof method:\ngoal (1 subgoal):\n 1. x + x = 4"
    assert backend.apply(root, "using h0 by simp", 5) == Finished(State(("using h0 by simp",), ""))
    assert backend.proof_text(["apply (subst h0)", "apply simp"]) == "  apply (subst h0)\n  apply simp\n  done"
    # every check was one use_theories followed by one purge of its theory
    cmds = standin.commands()
    assert cmds[0] == "session_start"
    assert cmds.count("use_theories") == 6 == cmds.count("purge_theories")


def test_filtered_steps_never_reach_isabelle(backend, standin):
    root = backend.open(THEOREM)
    before = standin.commands().count("use_theories")
    for step in ("sorry", "apply auto\noops", "by simp\nend", "apply (tactic \\<open>all_tac\\<close>)", "auto"):
        out = backend.apply(root, step, 5)
        assert isinstance(out, Failed) and out.rejected
    assert standin.commands().count("use_theories") == before


def test_statement_errors_and_name_mismatch_are_init_errors(backend):
    with pytest.raises(InitError, match="statement does not check: Inner syntax error"):
        backend.open(Theorem("bad_stmt", 'theorem bad_stmt:\n  shows "x +"', HEADER))
    # an error located in an imported theory (line 3 of another file) is not blamed on our line 3
    with pytest.raises(InitError, match="header does not check: Bad theory import"):
        backend.open(Theorem("bad_import", 'theorem bad_import:\n  shows "True"', HEADER))
    with pytest.raises(InitError, match="expected 'other'"):
        backend.open(Theorem("other", STATEMENT, HEADER))
    with pytest.raises(InitError, match="imports"):
        backend.open(Theorem("demo_add", STATEMENT, "Require Import Arith."))


def test_timeout_cancels_the_task_and_keeps_the_server(backend, standin):
    root = backend.open(THEOREM)
    pid = backend.pid
    start = time.monotonic()
    out = backend.apply(root, "apply (induct x)", 0.5)
    assert isinstance(out, TimedOut) and time.monotonic() - start < 30  # generous: a loaded machine is slow
    assert "cancel" in standin.commands() and backend.pid == pid and backend.restarts == 0
    assert backend.apply(root, "apply (subst h0)", 5) == Next(State(("apply (subst h0)",), AFTER_SUBST))


def test_timeout_on_a_server_that_ignores_cancel_restarts_it(backend, standin):
    root = backend.open(THEOREM)
    old = backend.pid
    start = time.monotonic()
    out = backend.apply(root, "apply (simp add: loop)", 0.5)
    assert isinstance(out, TimedOut) and time.monotonic() - start < 60  # generous: a loaded machine is slow
    assert backend.restarts == 1 and not alive(old)
    # the next step starts a fresh server; states are proof texts, so they survive the restart
    assert backend.apply(root, "apply (subst h0)", 5) == Next(State(("apply (subst h0)",), AFTER_SUBST))
    assert backend.pid != old and alive(backend.pid)
    assert standin.commands().count("session_start") == 2


def test_crash_restarts_and_retries_once_then_raises(backend, standin):
    root = backend.open(THEOREM)
    first = backend.pid
    assert backend.apply(root, "apply (rule wobbly)", 5) == Next(State(("apply (rule wobbly)",), AFTER_SUBST))
    assert backend.restarts == 1 and not alive(first)
    second = backend.pid
    with pytest.raises(BackendCrash, match="failed twice"):
        backend.apply(root, "apply (rule crash)", 5)
    assert not alive(second)
    # still usable afterwards
    assert isinstance(backend.apply(root, "apply (subst h0)", 5), Next)


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


def test_restart_every_n_checks(standin):
    b = IsabelleBackend(config(standin, restart_every=2))
    try:
        root = b.open(THEOREM)
        for _ in range(2):
            b.apply(root, "apply (subst h0)", 5)
        assert len(b.server_pids) == 2 and not alive(b.server_pids[0]) and alive(b.server_pids[1])
    finally:
        b.close()


def test_sledgehammer_step_tries_heuristics_first(backend, standin):
    root = backend.open(THEOREM)
    nxt = backend.apply(root, "apply (subst h0)", 5)
    before = standin.commands().count("use_theories")
    out = backend.apply(nxt.state, "sledgehammer", 5)
    assert out == Finished(State(("apply (subst h0)", "by auto"), ""))  # the first DSP heuristic
    assert standin.commands().count("use_theories") == before + 1
    assert backend.proof_text(["apply (subst h0)", "sledgehammer"]) == "  apply (subst h0)\n  by auto"


def test_sledgehammer_step_uses_the_recorded_suggestions(backend, standin):
    root = backend.open(SH_THEOREM)
    out = backend.apply(root, "sledgehammer", 5)
    # all 11 heuristics fail; Sledgehammer (recorded) suggests presburger, simp, auto, blast (tried
    # already as heuristics), then fast, which checks
    assert out == Finished(State(("by fast",), ""))
    assert standin.commands().count("use_theories") == 1 + 11 + 1 + 1
    check = backend.check(SH_THEOREM, ["sledgehammer"])
    assert check.ok, check.message
    assert "\nby fast\nprover_audit " in check.source


def test_full_check_verdicts(backend):
    backend.open(THEOREM)
    good = backend.check(THEOREM, ["using h0 by simp"])
    assert good.ok and good.axioms == ()
    assert STATEMENT in good.source and "sorry" not in good.source
    evaluated = backend.check(THEOREM, ["by eval"])
    assert evaluated.ok and evaluated.axioms == ("Code_Generator.holds_by_evaluation",)
    shady = backend.check(THEOREM, ["using h0 by (simp add: shady)"])
    assert not shady.ok and "skipped proof" in shady.message
    odd = backend.check(THEOREM, ["using h0 by (simp add: odd)"])
    assert not odd.ok and "Foo.unsound" in odd.message
    allowed = backend.check(Theorem("demo_add", STATEMENT, HEADER, ("Foo.unsound",)), ["using h0 by (simp add: odd)"])
    assert allowed.ok
    unfinished = backend.check(THEOREM, ["apply (subst h0)"])
    assert not unfinished.ok and "Undefined fact" in unfinished.message
    refused = backend.check(THEOREM, ["sorry"])
    assert not refused.ok and "refused" in refused.message and refused.source == ""
    unresolved = backend.check(THEOREM, ["sledgehammer"])
    assert not unresolved.ok and "never resolved" in unresolved.message
    renamed = backend.check(Theorem("demo_other", STATEMENT, HEADER), ["using h0 by simp"])
    assert not renamed.ok and "name" in renamed.message


@pytest.mark.parametrize("recording,why", [("use_theories.Fail", "Isabelle error: Failed to finish proof:"),
                                           ("use_theories", "the theorem was not stored")])
def test_full_check_on_recorded_replies(standin, recording, why, tmp_path):
    # The real server's replies, verbatim, to the check theory: a recorded failure is an error; a
    # recorded success that lacks the bridge's audit of *this* theorem is no proof either.
    script = dict(SCRIPT, replay_prefix={"Prover_check_": recording})
    Path(os.environ["PROVER_STANDIN_SCRIPT"]).write_text(json.dumps(script))
    b = IsabelleBackend(config(standin))
    try:
        b.open(THEOREM)
        result = b.check(THEOREM, ["using h0 by simp"])
    finally:
        b.close()
    assert not result.ok and result.message.startswith(why)


def test_search_end_to_end(backend, standin):
    generator = PortfolioGenerator(["apply auto", "apply (subst h0)", "apply simp"])
    result = search(THEOREM, backend, generator, SearchConfig(max_expansions=10, timeout=60, tactic_timeout=5))
    assert result.proved, result.failure_message
    assert result.tactics == ["apply (subst h0)", "apply simp"]
    assert result.proof == "  apply (subst h0)\n  apply simp\n  done"
    assert result.expansions == 2


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
SKETCH = 'proof -\n  have "x = 2" using h0 sledgehammer\n  then show ?thesis sledgehammer\nqed'


def test_sketch_steps_cut_at_placeholders():
    assert sketch_steps(SKETCH) == ['proof -\n  have "x = 2" using h0', "sledgehammer", "then show ?thesis",
                                    "sledgehammer", "qed"]
    repeated = f"```isabelle\n{STATEMENT}\n{SKETCH}\n```\n\nInformal:\n(*### Problem ..."
    assert sketch_steps(repeated) == sketch_steps(SKETCH)
    assert sketch_steps('have "sledgehammer = x" sledgehammer') == ['have "sledgehammer = x"', "sledgehammer"]


def test_dsp_prompt_from_a_minif2f_record_and_examples_that_pass_the_filter():
    (problem,) = load("isabelle", names=["mathd_algebra_10"])
    prompt = dsp_prompt(problem.record)
    assert prompt.count("Formal:\n") == len(DSP_EXAMPLES) + 1
    assert problem.record["informal_statement"].strip() in prompt
    assert prompt.endswith(f"Formal:\n{problem.record['formal_statement'].strip()}\n")
    tricky = dict(problem.record, informal_proof="so (a *) b) holds")
    assert "*) b)" not in dsp_prompt(tricky)
    from prover.backends.isabelle.text import check_step
    for ex in DSP_EXAMPLES:
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
