"""The bridge's ML (isabelle/Prover_Bridge.thy) on a machine without Isabelle: Poly/ML compiles it against
a transcription of the Isabelle interfaces it uses (tests/isabelle_ml_signatures.ML), and runs its
pure parts, whose output the Python side must read: the JSON reports (read back with bridge.py), hex
decoding, command spans, attribute scanning. Poly/ML comes with `make install` (apt: polyml)."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from prover.backends.isabelle import bridge
from prover.backends.isabelle.text import PROOF_COMMANDS, attribute_names, tokenize

ROOT = Path(__file__).resolve().parents[1]
POLY = shutil.which("poly")


def bridge_ml() -> str:
    thy = (ROOT / "isabelle" / "Prover_Bridge.thy").read_text()
    ml = thy[thy.index("ML \\<open>") + len("ML \\<open>"):thy.rindex("\\<close>")]
    # the one antiquotation the bridge uses: a command keyword with its position
    ml = re.sub(r"\\<\^command_keyword>\\<open>(\w+)\\<close>", r'("\1", Position.none)', ml)
    assert "\\<" not in ml
    return ml


def run_ml(tmp_path, extra: str = "") -> str:
    assert POLY, "Poly/ML is missing: `make install-apt` installs it (apt package polyml)"
    source = tmp_path / "bridge.ML"
    source.write_text((ROOT / "tests" / "isabelle_ml_signatures.ML").read_text() + "\n" + bridge_ml() + "\n"
                      + "open Prover_Bridge;\n" + extra + "\n")
    r = subprocess.run([POLY, "--script", str(source)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def ml_string(text: str) -> str:
    return f'(decode_hex "{bridge.encode_text(text)}")'


def test_the_bridge_ml_compiles_against_the_isabelle_interfaces(tmp_path):
    assert run_ml(tmp_path) == ""


def test_json_strings_from_the_ml_read_back_exactly(tmp_path):
    texts = ['plain', 'a "quoted" \\ backslash', "lines\nand\ttabs\r", "\x01\x05\x7f", "\\<forall>x. x \\<le> x",
             "UTF-8: ∀ ‹›", ""]
    out = run_ml(tmp_path, "".join(f"val _ = print (json_string {ml_string(t)} ^ \"\\n\");\n" for t in texts))
    assert [json.loads(line) for line in out.splitlines()] == texts


def test_the_ml_reports_are_what_the_client_reads(tmp_path):
    # With the transcribed interfaces the logic is absent: no state is stored, no statement parses,
    # every theorem is "stored" with no oracle. What is tested is the report each command prints.
    out = run_ml(tmp_path, f"""
val _ = open_statement "nOpen" 1 5000 "{bridge.encode_text('theorem t: "True"')}" ();
val _ = run_steps "nSteps" 7 5000 [(8, "{bridge.encode_text('by simp')}"), (9, "{bridge.encode_text('by auto')}")];
val _ = run_sledgehammer "nHammer" 7 30;
val _ = vet_text "nVet" "{bridge.encode_text('  ')}" ();
val _ = audit "nAudit" "demo_add" ();
""")
    lines = out.splitlines()
    assert len(lines) == 5
    opened = bridge.read_report(lines, "nOpen", "open")
    assert opened.results == (bridge.StepResult(1, "failed", message="exactly one theorem statement expected",
                                                seconds=opened.results[0].seconds),)
    steps = bridge.read_report(lines, "nSteps", "steps")
    assert [(r.sid, r.status, r.message) for r in steps.results] == [(8, "failed", "unknown state 7"),
                                                                     (9, "failed", "unknown state 7")]
    assert bridge.read_report(lines, "nHammer", "sledgehammer") == bridge.Report(
        "sledgehammer", status="failed", message="unknown state 7")
    assert bridge.read_report(lines, "nVet", "vet") == bridge.Report("vet", status="refused", message="empty step")
    assert bridge.read_report(lines, "nAudit", "audit") == bridge.Report("audit", name="demo_add", stored=True)


def ml_tokens(text: str) -> str:
    """Python's tokens of ``text`` as the transcribed Token.T list (kind, content)."""
    out = []
    for tok in tokenize(text):
        if tok.kind == "symbol" and tok.text in PROOF_COMMANDS or tok.kind == "word" and tok.text in PROOF_COMMANDS:
            kind = "Token.Command"
        elif tok.kind == "symbol":
            kind = "Token.Keyword"
        elif tok.kind == "word":
            kind = "Token.Long_Ident" if "." in tok.text else "Token.Ident"
        elif tok.kind == "number":
            kind = "Token.Nat"
        else:
            kind = "Token.String" if tok.kind == "string" else "Token.Cartouche"
        out.append(f"({kind}, {ml_string(tok.content)})")
    return "[" + ", ".join(out) + "]"


STEPS = [
    'using h0[rule_format, of "Suc (2 * m)"] by simp', "from arg_cong[OF this, of sqrt] show ?thesis by simp",
    'by (rule foo[OF bar[symmetric], simplified]) (smt (verit, best) h[of "x, y"])', "apply (auto)[2]",
    "using [[quick_and_dirty]] by simp", 'have h[simp]: "x = 1" by simp', 'using foo["quick_and_dirty"] by simp',
    "proof - have x by simp next show ?thesis .. qed",
]


@pytest.mark.parametrize("step", STEPS)
def test_the_ml_reads_commands_and_attributes_where_the_python_filter_does(tmp_path, step):
    out = run_ml(tmp_path, f"""
val toks = {ml_tokens(step)};
val _ = print (json_list (map (json_string o Token.content_of o hd) (spans toks)) ^ "\\n");
val _ = print (json_list (map (json_string o Token.content_of) (attribute_tokens toks)) ^ "\\n");
""")
    spans, attributes = (json.loads(line) for line in out.splitlines())
    tokens = tokenize(step)
    assert spans == [t.text for t in tokens if t.text in PROOF_COMMANDS]
    assert attributes == attribute_names(tokens)
