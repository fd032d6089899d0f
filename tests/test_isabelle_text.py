"""The Isabelle bridge's text layer and framing, on the real recorded server replies."""
import json
import os
from pathlib import Path

import pytest

from prover.backends.isabelle.protocol import (MessageReader, ProtocolError, encode_message, parse_banner,
                                               parse_reply)
from prover.backends.isabelle.text import (build_theory, check_step, clean_message, find_theorem, load_theorem,
                                           node_messages, parse_sledgehammer, read_audit, read_proof_state,
                                           result_errors, split_header, theorem_name, Message)

SHARED = Path(os.environ.get("PROVER_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
TRANSCRIPTS = SHARED / "isabelle_server_transcripts"
MINIF2F = SHARED / "minif2f" / "isabelle.jsonl"


def messages_of(name: str) -> list[bytes]:
    reader = MessageReader()
    reader.feed((TRANSCRIPTS / name).read_bytes() + b"\n")  # one recording was stored without its last LF
    out = []
    while (m := reader.next_message()) is not None:
        out.append(m)
    return out


# -- framing -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,count", [("help", 1), ("session_build", 19), ("session_start", 17),
                                        ("session_stop", 2), ("use_theories", 5), ("use_theories.Fail", 4),
                                        ("use_theories.Sledgehammer", 4), ("purge_theories", 1),
                                        ("cancel", 1), ("shutdown", 1), ("unknown", 1)])
def test_reader_splits_recordings_and_encoder_reproduces_their_bytes(name, count):
    data = (TRANSCRIPTS / name).read_bytes()
    msgs = messages_of(name)
    assert len(msgs) == count
    rebuilt = b"".join(encode_message(m.decode()) for m in msgs)
    if name == "purge_theories":
        # Recorded with a length line on an 86-byte message, where the server writes one only above
        # 100 bytes (its path /tmp/Mock.thy was edited in): the reader takes both forms.
        assert data.startswith(b"87\n") and rebuilt == data[3:]
        return
    # The recordings differ from the wire only by a trailing blank line or a missing last LF.
    assert rebuilt.rstrip(b"\n") == data.rstrip(b"\n")


def test_reader_handles_a_stream_cut_anywhere():
    data = (TRANSCRIPTS / "session_start").read_bytes()
    reader, got = MessageReader(), []
    for i in range(len(data)):
        reader.feed(data[i:i + 1])
        while (m := reader.next_message()) is not None:
            got.append(m)
    assert got == messages_of("session_start")


def test_encoder_frames_long_and_multiline_messages_and_refuses_digits():
    assert encode_message("OK") == b"OK\n"
    long = "NOTE " + "x" * 200
    assert encode_message(long) == f"{len(long) + 1}\n{long}\n".encode()
    assert encode_message("a\nb") == b"4\na\nb\n"
    with pytest.raises(ValueError):
        encode_message("123")


def test_replies_parse_to_kinds_and_json():
    help_reply = parse_reply(messages_of("help")[0])
    assert help_reply.kind == "OK" and "use_theories" in help_reply.payload
    unknown = parse_reply(messages_of("unknown")[0])
    assert unknown.kind == "ERROR" and unknown.payload == "Bad command 'unknown'"
    assert parse_reply(messages_of("cancel")[0]) .payload is None
    start = [parse_reply(m) for m in messages_of("session_start")]
    assert [r.kind for r in start[:2]] == ["OK", "NOTE"] and start[-1].kind == "FINISHED"
    assert start[-1].payload["session_id"] == "167dd6d8-1eeb-4315-8022-c8c527d9bd87"
    assert all(r.task == "f7c584bf-8f8c-43cc-b4c1-b26789d68719" for r in start if r.kind != "NOTE" or r.task)
    with pytest.raises(ProtocolError):
        parse_reply(b"HELLO there")


def test_banner_of_isabelle_server():
    b = parse_banner('server "test" = 127.0.0.1:4711 (password "XYZ")')
    assert (b.name, b.host, b.port, b.password) == ("test", "127.0.0.1", 4711, "XYZ")
    assert parse_banner("Usage: isabelle server") is None


# -- reading use_theories results -------------------------------------------------------------------
def finished_payload(name: str) -> dict:
    reply = parse_reply(messages_of(name)[-1])
    assert reply.kind == "FINISHED"
    return reply.payload


def test_success_result_messages_with_lines():
    payload = finished_payload("use_theories")
    assert payload["ok"] is True and result_errors(payload) == []
    msgs = node_messages(payload, "Example")
    assert msgs == [Message("writeln", "theorem \\<forall>x. \\<exists>y. x = y", 5, "Example.thy")]
    assert msgs[0].in_file("Example") and not msgs[0].in_file("Other")
    assert not Message("error", "x", None).in_file("Example")
    assert node_messages(payload, "Other") == []


def test_failure_result_gives_error_line_and_goal():
    payload = finished_payload("use_theories.Fail")
    assert payload["ok"] is False
    (err,) = result_errors(payload)
    assert err.line == 5 and err.kind == "error"
    assert clean_message(err.text) == "Failed to finish proof:\ngoal (1 subgoal):\n 1. \\<And>x y. x = y"
    assert [m.kind for m in node_messages(payload, "Example")] == ["writeln", "error"]


def test_sledgehammer_suggestions_from_recorded_output():
    msgs = node_messages(finished_payload("use_theories.Sledgehammer"), "Problem")
    assert parse_sledgehammer(msgs) == ["by presburger", "by simp", "by auto", "by blast", "by fast", "by metis"]
    extra = [Message("writeln", "vampire: Try this: by (metis assms(1) mult_2) (12 ms)", 3),
             Message("writeln", "e: Try this: using h0 by (smt (verit) power2_eq_square) (1.2 s)", 3),
             Message("writeln", "cvc5 found no proof", 3)]
    assert parse_sledgehammer(extra) == ["by (metis assms(1) mult_2)",
                                         "using h0 by (smt (verit) power2_eq_square)"]


# -- the step filter ---------------------------------------------------------------------------------
@pytest.mark.parametrize("step", [
    "apply auto", "apply (simp add: h0 field_simps)", "using assms by (auto simp: field_simps)",
    "by (metis assms(1) mult_2)", 'have h1: "x = 3" using h0 by simp', "done", "qed", "proof -",
    "then show ?thesis by auto", "show ?thesis ..", "{ fix y", "}", "using h0 h1\nby (smt (verit) h0)",
    'obtain k where "n = 2 * k" using h0 by auto', "apply (induct n arbitrary: m)", "by eval",
    "unfolding power2_eq_square by simp", 'have "\\<forall>x. f x = x" by simp',
])
def test_steps_that_pass_the_filter(step):
    assert check_step(step) == (step, "")


@pytest.mark.parametrize("step,why", [
    ("sorry", "sorry"), ("oops", "oops"), ("apply auto sorry", "sorry"), ("\\<proof>", "\\<proof>"),
    ("done end", "end"), ("by simp\nlemma foo: True", "lemma"), ("apply simp axiomatization where x: False", "axiomatization"),
    ("by (tactic \\<open>all_tac\\<close>)", "tactic"), ("using [[quick_and_dirty]] by simp", "quick_and_dirty"),
    ("apply simp ML \\<open>1\\<close>", "ML"), ("apply simp\ndeclare [[simp_trace]]", "declare"),
    ("by simp\nterm \"prover_x theory\"", "term"), ("apply simp print_state", "print_state"),
    ("apply simp prover_goals prover_x", "prover_goals"), ("by simp method_setup m = \\<open>x\\<close>", "method_setup"),
])
def test_steps_refused_for_a_forbidden_word(step, why):
    text, reason = check_step(step)
    assert text is None and reason == f"forbidden word in step: {why}"


@pytest.mark.parametrize("step,reason", [
    ("", "empty step"), ("auto", "a step starts with a proof command"), ("apply (simp add: h0", "unbalanced"),
    ('have "x = 1', "unterminated string"), ("apply simp (* hide *)", "comments"), ("apply simp\x00", "control"),
    ("sledgehammer [timeout = 5]", "sledgehammer is a step of its own"), ("apply (simp]", "unbalanced"),
    ("by \\<open>x", "unterminated cartouche"), ("x" * 5000, "too long"),
])
def test_steps_refused_for_their_shape(step, reason):
    text, why = check_step(step)
    assert text is None and reason in why


# -- theorems, theories, bridge output ---------------------------------------------------------------
def test_every_minif2f_statement_names_its_theorem_and_every_header_splits():
    records = [json.loads(line) for line in MINIF2F.read_text().splitlines() if line.strip()]
    assert len(records) == 488
    for rec in records:
        assert theorem_name(rec["formal_statement"]) == rec["name"]
    # Upstream's human proofs are Isar proofs: as one step each they pass the filter, except the
    # two that extend the statement with a pattern `(is "?L = ?R")`, which is no proof command.
    proofs = [r["reference_proof"] for r in records if r["reference_proof"]]
    refused = [p for p in proofs if check_step(p)[0] is None]
    assert len(proofs) == 147 and len(refused) == 2
    assert all(p.startswith("(is ") for p in refused)


def test_build_theory_places_statement_steps_and_marker_by_line():
    t = build_theory("T1", 'imports Complex_Main "HOL-Library.Sum_of_Squares"\ndefinition f :: "nat" where "f = 1"\n',
                     'theorem t:\n  shows "f = 1"', ["apply (simp add: f_def)", "using h\nby simp"],
                     "Prover_Base.Prover_Bridge", "prover_goals TAG", "oops")
    lines = t.text.splitlines()
    assert lines[0] == "theory T1"
    assert lines[1] == '  imports Complex_Main "HOL-Library.Sum_of_Squares" Prover_Base.Prover_Bridge'
    assert lines[t.statement_lines[0] - 1] == "theorem t:"
    assert [lines[a - 1:b] for a, b in t.step_lines] == [["apply (simp add: f_def)"], ["using h", "by simp"]]
    assert lines[t.marker_line - 1] == "prover_goals TAG"
    assert lines[-2:] == ["oops", "end"]
    with pytest.raises(ValueError):
        split_header("theory X")


def test_find_theorem_in_a_thy_file_and_load_theorem(tmp_path):
    src = ('theory Demo\n  imports Complex_Main\nbegin\n\ndefinition g :: "nat \\<Rightarrow> nat" where "g x = x"\n\n'
           'lemma other: "True" by simp\n\ntheorem demo:\n  fixes x :: nat\n  assumes h0: "x = 2"\n'
           '  shows "g x = 2"\n  sorry\n\nend\n')
    found = find_theorem(src, "demo")
    assert found.statement == 'theorem demo:\n  fixes x :: nat\n  assumes h0: "x = 2"\n  shows "g x = 2"'
    assert src[found.statement_end:found.proof_end].strip() == "sorry"
    assert found.header.startswith("imports Complex_Main\ndefinition g")
    assert 'lemma other: "True" by simp' in found.header
    with pytest.raises(KeyError):
        find_theorem(src, "dem")
    path = tmp_path / "Demo.thy"
    path.write_text(src)
    theorem, span = load_theorem(str(path), "demo", None, "", False)
    assert theorem.name == "demo" and span[0] == src
    theorem, span = load_theorem(None, None, 'theorem t: "1 + 1 = (2::nat)"', "", False)
    assert theorem.header == "imports Complex_Main\n" and span is None
    for args, msg in [((None, None, None, "", False), "nothing to prove"),
                      ((str(path), None, None, "", False), "needs --theorem"),
                      ((str(tmp_path / "no.thy"), "demo", None, "", False), "no such file"),
                      ((None, None, "Theorem t : True.", "", False), "must start with theorem"),
                      ((None, None, 'theorem t: "True"', "", True), "--write needs FILE")]:
        with pytest.raises(ValueError, match=msg):
            load_theorem(*args)


def test_reading_the_bridge_commands_output():
    tag = "prover_0123"
    msgs = [Message("writeln", "prover_9999 theory", 9),  # another backend's tag: not ours
            Message("writeln", f"{tag} proof\nproof (prove)\ngoal (1 subgoal):\n 1. x + x = 4   \n\n", 9)]
    state = read_proof_state(msgs, tag)
    assert state.in_proof and state.text == "proof (prove)\ngoal (1 subgoal):\n 1. x + x = 4"
    assert state.mode == "prove" and not state.no_subgoals
    assert read_proof_state([Message("writeln", f"{tag} theory", 3)], tag).in_proof is False
    assert read_proof_state([Message("error", f"{tag} theory", 3)], tag) is None
    audit = read_audit([Message("writeln", f"{tag} audit t skip_proof=false oracles=2\noracles:\n"
                                           "  \\<bullet> Code_Generator.holds_by_evaluation\n  \\<bullet> Foo.bar: x", 7)], tag)
    assert audit.name == "t" and not audit.skip_proof
    assert audit.oracles == ("Code_Generator.holds_by_evaluation", "Foo.bar")
    assert read_audit([Message("writeln", "other audit t skip_proof=false oracles=0\noracles:", 7)], tag) is None


def test_the_isabelle_portfolio_passes_the_filter():
    from prover.models.portfolio import PortfolioGenerator

    tactics = PortfolioGenerator.for_backend("isabelle").tactics
    assert "sledgehammer" in tactics and "using assms by auto" in tactics
    assert all(check_step(t) == (t, "") for t in tactics if t != "sledgehammer")
