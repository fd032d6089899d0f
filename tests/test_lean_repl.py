"""The Lean REPL backend driven against a stand-in that replays the real REPL's recorded transcripts.

``shared/data/lean_repl_transcripts/X.in`` is what was sent to the real REPL (v4.24.0) and
``X.expected.out`` what it printed; ``stand_ins/lean_repl.py`` answers recorded requests with the
recorded replies and exits loudly (status 3) on anything else.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from prover.backends.base import BackendCrash, Failed, Finished, InitError, Next, State, Theorem, TimedOut
from prover.backends.lean.repl import LeanChecker, LeanReplBackend, LeanReplConfig, outcome_of
from prover.backends.lean.protocol import CommandReply, ReplError, ReplSession, TacticReply, parse_reply
from prover.backends.lean.text import LeanMessage, audit_messages
from prover.backends.process import ProcessLimits
from prover.models.base import Candidate, Generator
from prover.search.best_first import SearchConfig, search
from prover.search.tree import EdgeKind

from .conftest import alive, isolate_lean_dojo_cache, wait_dead

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PROVER_SHARED_DATA", ROOT.parent / "shared" / "data"))
TRANSCRIPTS = SHARED / "lean_repl_transcripts"
STAND_IN = Path(__file__).resolve().parent / "stand_ins" / "lean_repl.py"
LIMITS = ProcessLimits(memory_bytes=2 * 1024**3)
MATHLIB = "Mathlib/test/"


def stand_in_argv(stem: str, *options: str) -> tuple[str, ...]:
    return (sys.executable, str(STAND_IN), str(TRANSCRIPTS / stem), *options)


def make_backend(tmp_path, stem: str, *options: str, **config) -> LeanReplBackend:
    return LeanReplBackend(LeanReplConfig(project=tmp_path, argv=stand_in_argv(stem, *options), limits=LIMITS,
                                          open_timeout=20, check_timeout=20, require_installed=False, **config))


def recorded(stem: str) -> list[tuple[dict, dict]]:
    """(request, reply) pairs of a transcript, decoded."""
    def chunks(path):
        text = path.read_text(encoding="utf-8")
        return [c for c in (c.strip() for c in text.split("\n\n")) if c]
    reqs = [json.loads(c.replace("\n", "")) for c in chunks(TRANSCRIPTS / f"{stem}.in")]
    return list(zip(reqs, [json.loads(c) for c in chunks(TRANSCRIPTS / f"{stem}.expected.out")]))


# -- protocol ---------------------------------------------------------------------------------------
def test_every_recorded_reply_maps_onto_a_protocol_type():
    kinds = {CommandReply: 0, TacticReply: 0, ReplError: 0}
    for path in sorted(TRANSCRIPTS.rglob("*.expected.out")):
        for chunk in path.read_text(encoding="utf-8").split("\n\n"):
            if chunk.strip():
                kinds[type(parse_reply(json.loads(chunk)))] += 1
    assert all(n > 5 for n in kinds.values()), kinds


def test_error_replies_keep_their_text():
    assert parse_reply(recorded("unknown_proof_state")[1][1]) == ReplError("Unknown proof state.")
    assert parse_reply(recorded("unknown_environment")[0][1]) == ReplError("Unknown environment.")
    err = parse_reply(recorded("unknown_tactic")[1][1])
    assert err.lean_error == "<input>:1:1: unknown tactic"
    step = parse_reply(recorded("invalid_tactic")[1][1])
    assert isinstance(step, TacticReply) and step.proof_status == "Incomplete: contains sorry"
    assert [(m.severity, m.data) for m in step.messages] == [("error", "Unknown identifier `my_fake_premise`")]


def test_session_reports_unknown_proof_state(tmp_path):
    session = ReplSession(list(stand_in_argv("unknown_proof_state")), str(tmp_path), LIMITS)
    try:
        first = session.command("def f : Nat := by sorry", None, 10)
        assert isinstance(first, CommandReply) and first.sorries[0].proof_state == 0
        assert first.sorries[0].goal == "⊢ Nat"
        assert session.tactic("exact 42", 1, 10) == ReplError("Unknown proof state.")
    finally:
        session.stop()


# -- tactic replies onto outcomes ------------------------------------------------------------------------
@pytest.mark.parametrize("stem, index, expected", [
    ("invalid_tactic", 1, Failed("Unknown identifier `my_fake_premise`")),
    ("unknown_tactic", 1, Failed("<input>:1:1: unknown tactic")),
    ("tactic_mode_sorry", 1, Failed("the tactic left a sorry")),
    ("sorry_hypotheses", 1, Failed("the tactic left a sorry")),
    ("app_type_mismatch", 4, Failed("Incomplete: contains metavariable(s)")),
    ("self_proof_rw", 2, Failed("Error: kernel type check failed: (kernel) declaration has free variables "
                                "'[anonymous]'")),
    ("assumption_proof", 1, Finished(State(("t",), ""))),
    ("readme", 1, Next(State(("t",), "x : Unit\n⊢ Int"))),
])
def test_recorded_tactic_replies_map_exactly(stem, index, expected):
    assert outcome_of(parse_reply(recorded(stem)[index][1]), ("t",)) == expected


def test_lost_proof_state_is_a_crash_not_a_failed_tactic():
    with pytest.raises(BackendCrash, match="Unknown proof state"):
        outcome_of(ReplError("Unknown proof state."), ())


# -- the backend over the replayed REPL -------------------------------------------------------------------
def test_steps_and_free_backtracking(tmp_path):
    with make_backend(tmp_path, "proof_step") as b:
        root = b.open(Theorem("f", "def f : Nat := by"))
        assert root == State((), "⊢ Nat")
        pid = b.pid
        a = b.apply(root, "apply Int.natAbs", 5)
        assert a == Next(State(("apply Int.natAbs",), "⊢ Int"))
        h = b.apply(root, "have t : Nat := 42", 5)  # back to the root: the REPL keeps every state
        assert h == Next(State(("have t : Nat := 42",), "t : Nat\n⊢ Nat"))
        done = b.apply(h.state, "exact t", 5)
        assert isinstance(done, Finished) and done.state.key == ("have t : Nat := 42", "exact t")
        assert b.pid == pid and b._session.requests == 4 and b.restarts == 0


def test_goals_read_like_leandojo_state_pp(tmp_path):
    with make_backend(tmp_path, "proof_branching") as b:
        root = b.open(Theorem("complex_and", "theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r := by"))
        assert root.goals == "p q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ p ∧ r"
        two = b.apply(root, "apply And.intro", 5)
        assert two.state.goals == ("case left\np q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ p\n\n"
                                   "case right\np q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ r")
        isolate_lean_dojo_cache()
        lean_dojo = pytest.importorskip("lean_dojo", reason="lean-dojo 4.20.0 not installed")
        # LeanDojo's own goal parser reads the text as two goals with their hypotheses.
        parsed = lean_dojo.TacticState(two.state.goals, 1)
        assert parsed.num_goals == 2 and [g.conclusion for g in parsed.goals] == ["p", "r"]
        assert [d.ident for d in parsed.goals[1].assumptions] == ["p", "q", "r", "h1", "h2"]


def test_header_imported_once_and_env_reused_across_theorems(tmp_path):
    with make_backend(tmp_path, MATHLIB + "exact") as b:
        first = b.open(Theorem("test", "theorem test : 0 < 1 := by", "import Mathlib"))
        assert first.goals == "⊢ 0 < 1"
        second = b.open(Theorem("test", "theorem test : 3 = 7 := by", "import Mathlib"))
        assert second.goals == "⊢ 3 = 7"
        assert b._session.requests == 3  # one import, two statements
        # Library search closes goals with whatever it finds, or with sorry: refused before Lean runs it.
        assert b.apply(second, "exact?", 5) == Failed("forbidden word in tactic: exact?", rejected=True)
        assert b._session.requests == 3


def test_case_goals_after_induction(tmp_path):
    with make_backend(tmp_path, MATHLIB + "induction") as b:
        root = b.open(Theorem("foo", "theorem foo (x : Nat) : x = x := by", "import Mathlib"))
        assert root.goals == "x : ℕ\n⊢ x = x"
        split = b.apply(root, "induction x", 5)
        assert split.state.goals.split("\n\n") == ["case zero\n⊢ 0 = 0",
                                                  "case succ\nn✝ : ℕ\na✝ : n✝ = n✝\n⊢ n✝ + 1 = n✝ + 1"]
        one = b.apply(split.state, "next => rfl", 5)
        assert one.state.goals.startswith("case succ\n")
        sneaky = b.apply(root, "induction x with\n| zero => sorry\n| succ x => sorry", 5)
        assert sneaky == Failed("forbidden word in tactic: sorry", rejected=True)


def test_statement_that_does_not_elaborate_is_an_init_error(tmp_path):
    with make_backend(tmp_path, "have_by_sorry") as b:
        # Recorded: this statement plus " sorry" leaves an unsolved goal (an error message).
        with pytest.raises(InitError, match="does not elaborate: unsolved goals"):
            b.open(Theorem("foo", "theorem foo (x : Int) : x = x := by\n  have h : x = 1 := by"))


def test_wrong_name_is_refused_before_starting_lean(tmp_path):
    b = make_backend(tmp_path, "proof_step")
    with pytest.raises(InitError, match="names 'f'"):
        b.open(Theorem("g", "def f : Nat := by"))
    assert b.pid is None


def test_timeout_stops_the_process_group_and_restarts(tmp_path):
    child_file = tmp_path / "child.pid"
    with make_backend(tmp_path, "proof_step", "--hang-on-tactic", "apply Int.natAbs",
                      "--child-pid-file", str(child_file)) as b:
        root = b.open(Theorem("f", "def f : Nat := by"))
        pid, child = b.pid, int(child_file.read_text())
        t0 = time.monotonic()
        out = b.apply(root, "apply Int.natAbs", 0.5)
        # The stand-in never answers: any finite time shows the cut (bounds generous for a loaded machine).
        assert isinstance(out, TimedOut) and 0.5 <= out.seconds < 30 and time.monotonic() - t0 < 60
        assert wait_dead(pid) and wait_dead(child)  # the REPL and its child: the whole group
        h = b.apply(root, "have t : Nat := 42", 5)  # a fresh process: re-import, reopen, go on
        assert h == Next(State(("have t : Nat := 42",), "t : Nat\n⊢ Nat"))
        assert b.pid != pid and b.restarts == 1
        assert isinstance(b.apply(h.state, "exact t", 5), Finished)


def test_stderr_is_drained_apart_and_never_read_as_a_reply(tmp_path):
    """What a tactic prints on stderr (``dbg_trace`` does) never passes for the REPL's reply."""
    with make_backend(tmp_path, "proof_step", "--stderr-on-tactic", "apply Int.natAbs") as b:
        root = b.open(Theorem("f", "def f : Nat := by"))
        assert b.apply(root, "apply Int.natAbs", 5) == Next(State(("apply Int.natAbs",), "⊢ Int"))
        h = b.apply(root, "have t : Nat := 42", 5)  # and the replies that follow are in step
        assert h == Next(State(("have t : Nat := 42",), "t : Nat\n⊢ Nat"))
        assert isinstance(b.apply(h.state, "exact t", 5), Finished) and b.restarts == 0


def test_a_reply_out_of_step_is_a_crash_never_a_proof(tmp_path):
    """A finished-proof reply for an old proof state on stdout: refused, not read as Finished."""
    with make_backend(tmp_path, "proof_step", "--stdout-on-tactic", "apply Int.natAbs") as b:
        root = b.open(Theorem("f", "def f : Nat := by"))
        first = b.pid
        with pytest.raises(BackendCrash, match="proof state 0 after 0: the reply is out of step"):
            b.apply(root, "apply Int.natAbs", 5)
        assert b.pid is None and wait_dead(first)
        h = b.apply(root, "have t : Nat := 42", 5)  # a fresh process: reopened, in step again
        assert h == Next(State(("have t : Nat := 42",), "t : Nat\n⊢ Nat")) and b.pid != first


def test_restart_after_a_timeout_gets_only_what_is_left_of_the_budget(tmp_path):
    """Re-importing the header after a timeout may take minutes (Mathlib): it must not run past
    the search's deadline with a fresh open_timeout."""
    pids = tmp_path / "pids"
    with make_backend(tmp_path, "proof_step", "--hang-on-tactic", "apply Int.natAbs", "--pid-file", str(pids),
                      "--slow-restart", "60") as b:
        root = b.open(Theorem("f", "def f : Nat := by"))
        b.set_deadline(time.monotonic() + 2.0)
        assert isinstance(b.apply(root, "apply Int.natAbs", 0.5), TimedOut)
        t0 = time.monotonic()
        out = b.apply(root, "have t : Nat := 42", 5)  # restart: the slow re-import meets the deadline
        took = time.monotonic() - t0
        assert isinstance(out, TimedOut) and took < 10, (out, took)  # open_timeout is 20 s
        assert len(pids.read_text().split()) == 2


def test_search_ends_on_its_clock_when_a_restart_meets_the_deadline(tmp_path):
    pids = tmp_path / "pids"
    gen = RecordedTactics({"⊢ Nat": ["apply Int.natAbs", "have t : Nat := 42"]})
    with make_backend(tmp_path, "proof_step", "--hang-on-tactic", "apply Int.natAbs", "--pid-file", str(pids),
                      "--slow-restart", "60") as b:
        t0 = time.monotonic()
        result = search(Theorem("f", "def f : Nat := by"), b, gen,
                        SearchConfig(timeout=3, tactic_timeout=1, max_expansions=5))
    assert result.failure_reason == "timeout" and time.monotonic() - t0 < 12, result


def test_the_repl_gets_a_private_tmpdir_removed_with_it(tmp_path):
    with make_backend(tmp_path, "proof_step") as b:
        b.open(Theorem("f", "def f : Nat := by"))
        proc = psutil.Process(b.pid)
        tmp = proc.environ()["TMPDIR"]
        assert proc.cwd() == str(tmp_path) and os.path.isdir(tmp) and tmp != str(tmp_path)
    assert not os.path.exists(tmp)


def test_restart_after_max_commands_replays_the_path(tmp_path):
    pids = tmp_path / "pids"
    with make_backend(tmp_path, "proof_step", "--pid-file", str(pids), max_commands=3) as b:
        root = b.open(Theorem("f", "def f : Nat := by"))
        b.apply(root, "apply Int.natAbs", 5)
        h = b.apply(root, "have t : Nat := 42", 5)
        first = b.pid
        assert b.restarts == 0
        done = b.apply(h.state, "exact t", 5)  # 3 requests answered: restart, replay `have`, then `exact`
        assert isinstance(done, Finished)
        assert b.restarts == 1 and b.pid != first and not alive(first)
        assert len(pids.read_text().split()) == 2 and b._session.requests == 3


def test_restart_when_memory_grows(tmp_path):
    with make_backend(tmp_path, "proof_step", max_rss_bytes=1) as b:
        root = b.open(Theorem("f", "def f : Nat := by"))
        first = b.pid
        assert b.apply(root, "apply Int.natAbs", 5) == Next(State(("apply Int.natAbs",), "⊢ Int"))
        assert b.restarts == 1 and b.pid != first


def test_crash_is_reported_and_the_next_open_starts_afresh(tmp_path):
    with make_backend(tmp_path, "proof_step", "--exit-at", "2") as b:
        root = b.open(Theorem("f", "def f : Nat := by"))
        first = b.pid
        with pytest.raises(BackendCrash, match="status 137"):
            b.apply(root, "apply Int.natAbs", 5)
        assert b.pid is None and wait_dead(first)
        again = b.open(Theorem("f", "def f : Nat := by"))
        assert again.goals == "⊢ Nat" and b.pid != first


def test_unrecorded_request_fails_loudly(tmp_path):
    with make_backend(tmp_path, "proof_step") as b:
        root = b.open(Theorem("f", "def f : Nat := by"))
        with pytest.raises(BackendCrash, match="unrecorded input"):
            b.apply(root, "omega", 5)


REFUSED = [
    ("sorry", "forbidden word in tactic: sorry"),
    ("admit", "forbidden word in tactic: admit"),
    ("exact sorryAx _ false", "forbidden word in tactic: sorryAx"),
    ("native_decide", "forbidden word in tactic: native_decide"),
    ("decide +native", "native evaluation (decide +native, decide (native := true)) is not allowed"),
    ("decide (native := true)", "native evaluation (decide +native, decide (native := true)) is not allowed"),
    ("exact (dbg_trace \"{}\" fun _ => rfl)", "forbidden word in tactic: dbg_trace"),
    ("exact dbgTrace \"x\" fun _ => h", "forbidden word in tactic: dbgTrace"),
    ("exact?", "forbidden word in tactic: exact?"),
    ("apply?", "forbidden word in tactic: apply?"),
    ("rw?", "forbidden word in tactic: rw?"),
    ("first | exact? | simp", "forbidden word in tactic: exact?"),
    ("norm_num\nend", "forbidden word in tactic: end"),
    ("rfl\ntheorem cheat : False := by simp", "forbidden word in tactic: theorem"),
    ("exact h\n\naxiom ax : False", "forbidden word in tactic: axiom"),
    ("set_option debug.skipKernelTC true in rfl", "forbidden word in tactic: set_option"),
    ("#eval IO.println 1", "commands (#eval, #exit, ...) are not allowed in a tactic"),
    ("run_tac Lean.Elab.Tactic.evalTactic (← `(tactic| rfl))", "forbidden word in tactic: run_tac"),
    ("exact (h", "unbalanced brackets"),
    ("exact h) (", "unbalanced brackets"),
    ("simp /- the rest of the file", "unterminated comment"),
    ('exact "open', "unterminated string"),
    ("   ", "empty tactic"),
]


def test_filter_rejects_escapes_before_lean_sees_them(tmp_path):
    with make_backend(tmp_path, "proof_step") as b:
        root = b.open(Theorem("f", "def f : Nat := by"))
        for tactic, why in REFUSED:
            assert b.apply(root, tactic, 5) == Failed(why, rejected=True), tactic
        assert b._session.requests == 1  # only the statement: nothing reached the (strict) stand-in
        # What the filter lets through keeps its shape (dedented, lines kept) and reaches Lean as such.
        assert b.apply(root, "  apply Int.natAbs  ", 5) == Next(State(("apply Int.natAbs",), "⊢ Int"))


# -- the full check ----------------------------------------------------------------------------------
def msg(severity: str, data: str) -> LeanMessage:
    return LeanMessage(severity, data)


STD = {"propext", "Classical.choice", "Quot.sound"}


def test_full_check_verdicts_from_recorded_messages():
    def messages_of(stem, i):
        return list(parse_reply(recorded(stem)[i][1]).messages)

    # The sorry warning and an error, as the REPL recorded them.
    v = audit_messages(messages_of("term_sorry", 0), "f", STD)
    assert not v.ok and v.message == "the proof uses sorry"
    v = audit_messages(messages_of("incomplete", 0), "f", STD)
    assert not v.ok and v.message.startswith("Lean error at 1:15: unsolved goals")
    # `#print axioms` lines as Lean prints them (tests/lean/run/collectAxioms.lean in Lean's suite).
    v = audit_messages([msg("info", "'one_add_one' depends on axioms: [Lean.ofReduceBool, Lean.trustCompiler]")],
                       "one_add_one", STD)
    assert not v.ok and "native_decide" in v.message and v.axioms == ("Lean.ofReduceBool", "Lean.trustCompiler")
    v = audit_messages([msg("info", "'contra' depends on axioms: [sorryAx]")], "contra", STD)
    assert not v.ok and "sorry" in v.message
    v = audit_messages([msg("info", "'Classical.em' depends on axioms: [propext, Classical.choice, Quot.sound]")],
                       "em", STD)
    assert v.ok and v.axioms == ("propext", "Classical.choice", "Quot.sound")
    v = audit_messages([msg("info", "'t193' does not depend on any axioms")], "t193", STD)
    assert v.ok and v.axioms == ()
    # Another declaration's audit does not vouch for this one; nor does silence.
    v = audit_messages([msg("info", "'other' does not depend on any axioms")], "t193", STD)
    assert not v.ok and "not declared" in v.message
    assert not audit_messages([], "t193", STD).ok
    # Axioms the statement itself brings can be allowed explicitly.
    assert audit_messages([msg("info", "'x' depends on axioms: [propext, my_ax]")], "x", STD | {"my_ax"}).ok


def test_check_source_is_trusted_text_plus_filtered_tactics():
    from prover.runs.minif2f import load

    problem = load("lean4", names=["mathd_algebra_10"], data_dir=SHARED / "minif2f")[0]
    thm = problem.theorem
    source = LeanChecker.source(thm, ["norm_num", "  nlinarith [sq_nonneg (2 : ℝ)]\n    <;> simp"])
    assert source == (thm.header.rstrip() + "\n\n" + thm.statement + "\n  norm_num\n"
                      "  nlinarith [sq_nonneg (2 : ℝ)]\n    <;> simp\n\n#print axioms mathd_algebra_10\n")
    with pytest.raises(ValueError, match="sorry"):
        LeanChecker.source(thm, ["norm_num", "sorry"])


def test_check_runs_in_a_fresh_process_and_refuses_what_it_cannot_verify(tmp_path):
    pids = tmp_path / "pids"
    with make_backend(tmp_path, "proof_branching", "--pid-file", str(pids)) as b:
        thm = Theorem("complex_and", "theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r := by")
        b.open(thm)
        result = b.check(thm, ["apply And.intro", "exact h1.left", "apply h2", "exact h1.right"])
        # The stand-in has no recording of the whole file: the check reports that, it never passes.
        assert not result.ok and "unrecorded input" in result.message
        assert "#print axioms complex_and" in result.source
        assert len(set(pids.read_text().split())) == 2  # the search's REPL and a fresh one for the check
        assert b.check(thm, ["sorry"]) .message == "tactic 'sorry' refused: forbidden word in tactic: sorry"


# -- search end to end --------------------------------------------------------------------------------
class RecordedTactics(Generator):
    """Proposes, for each goal, the tactics the transcript ran on a state with that goal."""

    name = "recorded"

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    def generate(self, goals: str, n: int) -> list[Candidate]:
        return [Candidate(t, -1.0 - i) for i, t in enumerate(self.table.get(goals, []))][:n]


def test_search_over_the_replayed_repl_finds_the_recorded_proof(tmp_path):
    pairs = recorded("proof_branching")
    states = {0: pairs[0][1]["sorries"][0]["goal"]}
    table: dict[str, list[str]] = {}
    for req, rep in pairs[1:]:
        table.setdefault(states[req["proofState"]], []).append(req["tactic"])
        states[rep["proofState"]] = "\n\n".join(rep["goals"])
    thm = Theorem("complex_and", "theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r := by")
    with make_backend(tmp_path, "proof_branching") as b:
        result = search(thm, b, RecordedTactics(table), SearchConfig(max_expansions=10, timeout=60))
    assert result.tactic_calls == 4 and result.expansions == 4
    found = [e for n in result.tree.nodes for e in n.edges if e.kind == EdgeKind.UNVERIFIED]
    assert len(found) == 1
    path = [e.tactic for e in result.tree.path(result.tree.nodes[found[0].src])] + [found[0].tactic]
    assert path == ["apply And.intro", "exact h1.left", "apply h2", "exact h1.right"]
    # Without a recording of the whole-file check, the proof is not reported: only a full check counts.
    assert not result.proved and result.failure_reason == "rejected"


# -- the command line -------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["lean-repl", "leandojo"])
def test_cli_without_lean_fails_at_once_with_what_to_install(backend):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PATH="/usr/bin:/bin")
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "prover", "prove", "--backend", backend,
                        "--statement", "theorem t : 1 + 1 = 2 := by"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and time.monotonic() - t0 < 30
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "make lean" in lines[0] and "Traceback" not in r.stderr


def test_lean_setup_writes_one_file_per_theorem(tmp_path):
    (tmp_path / "lakefile.toml").write_text((ROOT / "lean_project" / "lakefile.toml").read_text())
    r = subprocess.run([sys.executable, "-m", "prover", "lean", "setup", "--project", str(tmp_path),
                        "--data", str(SHARED / "minif2f")], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    files = sorted(tmp_path.glob("MiniF2F/*/*.lean"))
    assert len(files) == 488
    rec = json.loads((SHARED / "minif2f" / "lean4.jsonl").read_text(encoding="utf-8").splitlines()[0])
    text = (tmp_path / rec["source"]["path"]).read_text(encoding="utf-8")
    assert text == rec["header"].rstrip() + "\n\n" + rec["formal_statement"] + "\n  sorry\n"
    root = (tmp_path / "MiniF2F.lean").read_text().splitlines()
    assert len(root) == 488 and f"import MiniF2F.Test.{rec['name']}" in root
    again = subprocess.run([sys.executable, "-m", "prover", "lean", "setup", "--project", str(tmp_path),
                            "--data", str(SHARED / "minif2f")], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                           capture_output=True, text=True, timeout=60)
    assert "0 written, 488 unchanged" in again.stderr


# -- the Lean project ------------------------------------------------------------------------------
def test_prover_suggest_is_a_library_of_the_project():
    import re

    lakefile = (ROOT / "lean_project" / "lakefile.toml").read_text(encoding="utf-8")
    libs = re.findall(r'(?m)^\[\[lean_lib\]\]\s*\nname = "([^"]+)"', lakefile)
    assert "ProverSuggest" in libs and "MiniF2F" in libs  # `import ProverSuggest` resolves
    assert (ROOT / "lean_project" / "ProverSuggest.lean").is_file()
    assert 'defaultTargets = ["MiniF2F"]' in lakefile  # what `prover lean trace` builds and traces


def test_make_lean_installs_git_and_curl_and_builds_only_what_is_needed():
    plan = subprocess.run(["make", "-n", "lean"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0, plan.stderr
    text = plan.stdout
    assert "apt-get install" in text and "git curl" in text and "command -v git" in text
    assert "lake exe cache get" in text and "lake build ProverSuggest" in text and "lake exe repl" in text
    # Not the default target: the 488 MiniF2F files, which neither backend needs compiled.
    builds = [line for line in text.replace("&&", "\n").splitlines() if "lake build" in line]
    assert builds and all(line.split("lake build", 1)[1].strip() for line in builds), builds
