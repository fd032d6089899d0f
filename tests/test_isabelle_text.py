"""The Isabelle bridge's text layer and framing, on the real recorded server replies."""
import json
import os
import re
from pathlib import Path

import pytest

from prover.backends.isabelle.protocol import (MessageReader, ProtocolError, encode_message, parse_banner,
                                               parse_reply)
from prover.backends.isabelle import bridge
from prover.backends.isabelle.text import (ATTRIBUTES, METHOD_COMMANDS, PROOF_COMMANDS, PROOF_METHODS, Message,
                                           attribute_names, bridge_theory, check_step, check_theory, clean_message,
                                           filter_step, find_theorem, imports_sum_of_squares, load_theorem,
                                           method_names, node_messages, parse_sledgehammer, result_errors,
                                           split_header, strip_comments, theorem_name, tokenize)

ROOT = Path(__file__).resolve().parents[1]
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
ORDINARY = [
    "by simp", "apply (induct n)", "by (smt (verit) h0)", "using assms by (auto simp: field_simps)",
    "apply auto", "apply (simp add: h0 field_simps)", "by (metis assms(1) mult_2)", 'have h1: "x = 3" using h0 by simp',
    "done", "qed", "proof -", "then show ?thesis by auto", "show ?thesis ..", "{ fix y", "}",
    "using h0 h1\nby (smt (verit) h0)", 'obtain k where "n = 2 * k" using h0 by auto', "apply (induct n arbitrary: m)",
    "by eval", "unfolding power2_eq_square by simp", 'have "\\<forall>x. f x = x" by simp',
    'using h0[rule_format, of "Suc (2 * m)"] by simp', "from arg_cong[OF this, of sqrt] show ?thesis by simp",
    'have h[simp]: "x = 1" by simp', 'by (rule_tac x="1" in exI)', "by (metis (full_types, lifting) foo)",
    "apply (simp)[1]", 'proof (cases "x > 0")', "by (smt (verit, ccfv_threshold) h0)", "by (rule foo) simp",
    "using h0 by (simp add: foo[symmetric])", 'by (Pure.simp add: h0)',
]


@pytest.mark.parametrize("step", ORDINARY)
def test_ordinary_steps_pass_the_filter(step):
    assert check_step(step) == (step, "")


# Steps that would run ML, skip the proof, set configuration, or change the theory: the cases of the
# review (qualified and quoted method names, quoted configuration attributes, theory commands after
# a proof), and more.
NASTY = [
    ("apply (Pure.tactic \\<open>all_tac\\<close>)", "forbidden word in step: Pure.tactic"),
    ("apply (Pure.raw_tactic \\<open>all_tac\\<close>)", "forbidden word in step: Pure.raw_tactic"),
    ('apply ("tactic" \\<open>all_tac\\<close>)', "forbidden word in step: tactic"),
    ("by (tactic ‹all_tac›)", "forbidden word in step: tactic"),
    ('using [["quick_and_dirty"]] by simp', "forbidden word in step: quick_and_dirty"),
    ("using [[quick_and_dirty]] by simp", "forbidden word in step: quick_and_dirty"),
    ("using foo[quick_and_dirty] by simp", "forbidden word in step: quick_and_dirty"),
    ("by (simp add: foo[[simp_trace]])", "declaration attributes ([[...]]) are not allowed in a step"),
    ("using h0[smt_oracle] by simp", "attribute not allowed in a step: smt_oracle"),
    ("by simp\nSML_import \\<open>val x = 1\\<close>", "forbidden word in step: SML_import"),
    ("by simp\nML_val \\<open>1\\<close>", "forbidden word in step: ML_val"),
    ("apply simp ML_prf \\<open>1\\<close>", "forbidden word in step: ML_prf"),
    ("by simp method m = simp", "forbidden word in step: method"),
    ('by simp inductive p where "p 0"', "forbidden word in step: inductive"),
    ("by simp typedecl t", "forbidden word in step: typedecl"),
    ('by simp generate_file "a.ML" = \\<open>x\\<close>', "forbidden word in step: generate_file"),
    ("by simp\nlemma foo: True", "forbidden word in step: lemma"),
    ("apply simp axiomatization where x: False", "forbidden word in step: axiomatization"),
    ("apply simp\ndeclare [[simp_trace]]", "forbidden word in step: declare"),
    ("by simp method_setup m = \\<open>x\\<close>", "forbidden word in step: method_setup"),
    ("apply (use h0 in \\<open>simp\\<close>)", "proof method not allowed in a step: use"),
    ('by (match conclusion in "_" \\<Rightarrow> \\<open>simp\\<close>)', "proof method not allowed in a step: match"),
    ("by (ML_tactic x)", "proof method not allowed in a step: ML_tactic"),
    ("apply (Pure.sorry)", "forbidden word in step: Pure.sorry"),
    ('by ("sorry")', "forbidden word in step: sorry"), ("sorry", "forbidden word in step: sorry"),
    ("apply auto sorry", "forbidden word in step: sorry"), ("\\<proof>", "forbidden word in step: \\<proof>"),
    ("oops", "forbidden word in step: oops"), ("done end", "forbidden word in step: end"),
    ("by (cheat_tac)", "forbidden word in step: cheat_tac"), ("by skip_proof", "forbidden word in step: skip_proof"),
    ("by simp\nterm \"prover_x theory\"", "forbidden word in step: term"),
    ("apply simp print_state", "forbidden word in step: print_state"),
    ("apply simp prover_audit n1 x", "forbidden word in step: prover_audit"),
    ("by simp prover_steps n1 1 1 2 \"00\"", "forbidden word in step: prover_steps"),
    ("by simp interpretation foo: bar .", "forbidden word in step: interpretation"),
    ("by simp\nend\ntheory X imports Main begin", "forbidden word in step: end"),
]


@pytest.mark.parametrize("step,why", NASTY)
def test_nasty_steps_are_refused(step, why):
    text, reason = check_step(step)
    assert text is None and reason == why
    assert filter_step(step) == (False, why)


@pytest.mark.parametrize("step,reason", [
    ("", "empty step"), ("auto", "a step starts with a proof command"), ("apply (simp add: h0", "unbalanced"),
    ('have "x = 1', "unterminated string"), ("apply simp (* hide *)", "comments"), ("apply simp\x00", "control"),
    ("sledgehammer [timeout = 5]", "sledgehammer is a step of its own"), ("apply (simp]", "unbalanced"),
    ("by \\<open>x", "unterminated cartouche"), ("x" * 5000, "too long"), ("by simp \\<comment> \\<open>x\\<close>", "comments"),
    ("by (simp add: \\<^bold>x)", "control symbols"), ("by (simp add: h₀)", "non-ASCII"),
])
def test_steps_refused_for_their_shape(step, reason):
    text, why = check_step(step)
    assert text is None and reason in why


def test_unicode_symbols_become_isabelle_ascii():
    assert check_step('have "∀x. x ≤ x" by simp') == ('have "\\<forall>x. x \\<le> x" by simp', "")
    assert check_step("by (rule ‹x = 1›)")[0] == "by (rule \\<open>x = 1\\<close>)"
    assert filter_step("sledgehammer") == (True, "")


def test_method_and_attribute_names_are_read_where_isabelle_reads_them():
    toks = tokenize('by (rule foo[OF bar[symmetric], simplified]) (smt (verit, best) h[of "x, y"])')
    assert method_names(toks) == ["rule", "smt"]
    assert attribute_names(toks) == ["OF", "symmetric", "simplified", "of"]
    assert method_names(tokenize("by (simp, (auto intro: x); blast | force)+ simp")) == \
        ["simp", "auto", "blast", "force", "simp"]
    assert method_names(tokenize("proof - have x by simp qed")) == ["-", "simp"]
    assert attribute_names(tokenize("apply (auto)[2]")) == []


def test_informal_comments_are_stripped_for_sketches():
    text = 'proof -\n  (* a (* nested *) note *)\n  have "x = (* not a comment *) 2" by simp\nqed'
    assert strip_comments(text) == 'proof -\n  have "x = (* not a comment *) 2" by simp\nqed'


def test_sum_of_squares_import():
    assert imports_sum_of_squares('imports Complex_Main "HOL-Library.Sum_of_Squares"\n')
    assert not imports_sum_of_squares("imports Complex_Main\n")


# -- theorems, theories, bridge output ---------------------------------------------------------------
def test_every_minif2f_statement_names_its_theorem_and_every_header_splits():
    records = [json.loads(line) for line in MINIF2F.read_text().splitlines() if line.strip()]
    assert len(records) == 488
    for rec in records:
        assert theorem_name(rec["formal_statement"]) == rec["name"]
    # Upstream's human proofs are Isar proofs: as one step each they pass the filter (their methods
    # and attributes are all on the allow-lists), except the two that extend the statement with a
    # pattern `(is "?L = ?R")`, which is no proof command.
    proofs = [r["reference_proof"] for r in records if r["reference_proof"]]
    refused = [p for p in proofs if check_step(p)[0] is None]
    assert len(proofs) == 147 and len(refused) == 2
    assert all(p.startswith("(is ") for p in refused)


def test_bridge_and_check_theories_place_their_command_by_line():
    t = bridge_theory("T1", 'Complex_Main "HOL-Library.Sum_of_Squares" Prover_Base.Prover_Bridge',
                      'definition f :: "nat" where "f = 1"', 'prover_open n1 1 1000 "00"')
    lines = t.text.splitlines()
    assert lines[:3] == ["theory T1", '  imports Complex_Main "HOL-Library.Sum_of_Squares" Prover_Base.Prover_Bridge',
                         "begin"]
    assert lines[t.marker_line - 1] == 'prover_open n1 1 1000 "00"' and lines[-1] == "end"
    assert 'definition f :: "nat" where "f = 1"' in lines[:t.marker_line]
    step = bridge_theory("T2", "Prover_Base.Prover_Bridge", "", "prover_steps n1 1 1000 2 \"00\"")
    assert step.text.count("\n") == 6 and step.marker_line == 5
    c = check_theory("C1", 'imports Complex_Main\ndefinition f :: "nat" where "f = 1"\n', 'theorem t:\n  shows "f = 1"',
                     ["apply (simp add: f_def)", "using h\nby simp"], "Prover_Base.Prover_Bridge", 'prover_audit n2 "t"')
    lines = c.text.splitlines()
    assert lines[1] == "  imports Complex_Main Prover_Base.Prover_Bridge"
    assert lines[c.statement_lines[0] - 1] == "theorem t:"
    assert [lines[a - 1:b] for a, b in c.step_lines] == [["apply (simp add: f_def)"], ["using h", "by simp"]]
    assert lines[c.marker_line - 1] == 'prover_audit n2 "t"' and lines[-1] == "end"
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


def test_bridge_commands_round_trip_and_carry_texts_hex_encoded():
    step = 'have "x = 1" \\<open>›\nby simp'
    line = bridge.steps_command("n1", 7, 5000, [(8, step), (9, "by auto")])
    assert '"' not in line.replace('"' + bridge.encode_text(step) + '"', "").replace('"' + bridge.encode_text("by auto") + '"', "")
    cmd = bridge.parse_command(line)
    assert (cmd.name, cmd.nonce, cmd.ints, cmd.step_ids, cmd.texts) == ("prover_steps", "n1", (7, 5000), (8, 9),
                                                                          (step, "by auto"))
    cmd = bridge.parse_command(bridge.open_command("n2", 1, 300000, 'theorem t: "True"'))
    assert cmd.ints == (1, 300000) and cmd.texts == ('theorem t: "True"',)
    assert bridge.parse_command(bridge.audit_command("n3", "mathd_algebra_10")).texts == ("mathd_algebra_10",)
    assert bridge.parse_command(bridge.vet_command("n4", "by simp")).texts == ("by simp",)
    assert bridge.parse_command(bridge.sledgehammer_command("n5", 3, 30)).ints == (3, 30)
    assert bridge.parse_command("theorem t: True") is None
    with pytest.raises(ValueError):
        bridge.audit_command("n", 'x" ML')
    assert bridge.new_nonce() != bridge.new_nonce() and bridge.new_nonce().startswith("n")


def test_reports_are_read_by_nonce_once_and_field_by_field():
    ok = bridge.steps_report("nA", "steps", [bridge.StepResult(3, "next", "proof (prove)\ngoal (1 subgoal):\n 1. x = 2",
                                                                ("done",), "", 0.25)])
    other = bridge.steps_report("nB", "steps", [bridge.StepResult(3, "finished")])
    report = bridge.read_report(["Sledgehammering...", other, ok], "nA", "steps")
    assert report.results == (bridge.StepResult(3, "next", "proof (prove)\ngoal (1 subgoal):\n 1. x = 2", ("done",),
                                                "", 0.25),)
    with pytest.raises(bridge.BridgeOutputError, match="more than one"):
        bridge.read_report([ok, ok], "nA", "steps")
    with pytest.raises(bridge.BridgeOutputError, match="no report"):
        bridge.read_report([other, "nA steps"], "nA", "steps")
    with pytest.raises(bridge.BridgeOutputError, match="unknown status"):
        bridge.read_report([ok.replace('"next"', '"proved"')], "nA", "steps")
    audit = bridge.audit_report("nC", "t", True, False, ["Code_Generator.holds_by_evaluation"])
    assert bridge.read_report([audit], "nC", "audit").oracles == ("Code_Generator.holds_by_evaluation",)
    with pytest.raises(bridge.BridgeOutputError, match="oracles"):
        bridge.read_report([audit.replace('["Code_Generator.holds_by_evaluation"]', '"x"')], "nC", "audit")
    # The server writes a non-ASCII symbol in a message as Isabelle's ASCII form, which is no JSON
    # escape; markup (YXML) around a text is dropped.
    raw = '{"bridge":"nD","op":"vet","status":"refused","message":"bad \\<forall>"}'
    assert bridge.read_report(["\x05\x06writeln\x05" + raw + "\x05\x06\x05"], "nD", "vet").message == "bad \\<forall>"


def test_the_ml_bridge_uses_the_same_names_lists_and_format():
    # Prover_Bridge.thy cannot be compiled here; at least its vocabulary is the client's.
    thy = (ROOT / "isabelle" / "Prover_Bridge.thy").read_text()
    keywords = re.search(r'keywords (.*?) :: thy_decl', thy).group(1)
    assert re.findall(r'"(\w+)"', keywords) == list(bridge.COMMANDS)
    for command in bridge.COMMANDS:
        assert f"\\<^command_keyword>\\<open>{command}\\<close>" in thy

    def ml_list(name):
        body = re.search(rf"val {name} =\s*\[(.*?)\];", thy, re.S).group(1)
        return set(re.findall(r'"([^"]*)"', body))

    assert ml_list("proof_commands") == PROOF_COMMANDS
    assert ml_list("proof_methods") == PROOF_METHODS
    assert ml_list("attributes") == ATTRIBUTES
    assert ml_list("method_commands") == METHOD_COMMANDS
    assert set(re.findall(r'field "(\w+)"', thy)) == set(bridge.FIELDS)
    for status in (*bridge.STEP_STATUSES, *bridge.SLEDGEHAMMER_STATUSES, *bridge.VET_STATUSES):
        assert f'"{status}"' in thy
    for op in bridge.OPS.values():
        assert f'report nonce "{op}"' in thy


def test_the_isabelle_portfolio_passes_the_filter():
    from prover.models.portfolio import PortfolioGenerator

    tactics = PortfolioGenerator.for_backend("isabelle").tactics
    assert "sledgehammer" in tactics and "using assms by auto" in tactics
    assert all(check_step(t) == (t, "") for t in tactics if t != "sledgehammer")
