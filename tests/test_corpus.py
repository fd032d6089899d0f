"""The proof corpus: tracing real library files, the held-out split, resumable builds, bad input."""
import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prover.backends.base import Next
from prover.backends.coq.backend import CoqBackend, CoqConfig
from prover.backends.coq.document import CoqDocument
from prover.backends.coq.text import split_sentences
from prover.corpus import build as build_mod
from prover.corpus.records import Step, TheoremRecord, is_held_out, read_file, steps, theorems
from prover.corpus.sources import coq_root, file_source, library_sources
from prover.corpus.trace import hypothesis_names, trace_file

from .conftest import ROOT, cli_env, processes_with_marker, run_cli

COQ = coq_root()
FIX = COQ / "user-contrib/Flocq/Core/FIX.v"  # a Section, Global Instance proofs, -R Flocq needed
NZMUL = COQ / "theories/Numbers/NatInt/NZMul.v"  # a functor (Module Type with parameters), bullets
DATATYPES = COQ / "theories/Init/Datatypes.v"  # -noinit, 'Proof with' and tac... sentences
SMALL = [COQ / "theories/Init/Logic.v", COQ / "theories/Bool/Zerob.v", COQ / "theories/Arith/Factorial.v",
         COQ / "theories/Wellfounded/Inverse_Image.v"]


@functools.lru_cache(maxsize=None)
def traced(path: Path):
    """Each library file is traced once per test session (the traces are only read)."""
    return trace_file(file_source(path))


def proof_sentences(record: TheoremRecord) -> list[str]:
    """The proof as written, one clean sentence each, without Proof... and the final Qed/Defined."""
    sentences = [s.clean for s in split_sentences(record.proof)]
    while sentences and sentences[0].startswith("Proof"):
        sentences.pop(0)
    assert sentences[-1] in ("Qed.", "Defined.")
    return sentences[:-1]


def by_theorem(records):
    out = {}
    for r in records:
        if isinstance(r, TheoremRecord):
            out[r.theorem] = (r, [])
        else:
            out[r.theorem][1].append(r)
    return out


@pytest.mark.parametrize("path", [FIX, NZMUL, DATATYPES], ids=lambda p: p.stem)
def test_traced_tactics_spell_the_original_proofs(path):
    source = file_source(path)
    trace = traced(path)
    assert trace.error is None
    found = by_theorem(trace.records)
    qed_count = sum(s.clean in ("Qed.", "Defined.") for s in split_sentences(path.read_text()))
    assert len(found) + len(trace.skipped) == qed_count  # every finished proof traced or skipped with a reason
    assert len(found) >= 5
    for name, (record, record_steps) in found.items():
        assert name.startswith(source.logical_path + ".") and name.endswith("." + record.name)
        assert [s.tactic for s in record_steps] == proof_sentences(record)
        assert [s.index for s in record_steps] == list(range(record.steps))
        assert all(s.goals.strip() for s in record_steps)
        assert record_steps[-1].goals_after == 0
        assert record.statement.split()[0] in ("Theorem", "Lemma", "Global", "Instance", "Definition", "Fact",
                                                "Remark", "Corollary", "Proposition", "Let", "Fixpoint", "Example")


def test_qualified_names_follow_modules_not_sections():
    fix = by_theorem(traced(FIX).records)
    assert "Flocq.Core.FIX.generic_format_FIX" in fix  # inside Section RND_FIX: not part of the name
    nzmul = by_theorem(traced(NZMUL).records)
    assert "Coq.Numbers.NatInt.NZMul.NZMulProp.mul_comm" in nzmul  # inside Module Type NZMulProp
    record, record_steps = nzmul["Coq.Numbers.NatInt.NZMul.NZMulProp.mul_comm"]
    assert [s.tactic for s in record_steps][:2] == ["intros n m; nzinduct n.", "-"]


def test_goals_are_those_the_backend_shows():
    """The first two states of a traced proof equal what CoqBackend gives a model on the theorem opened in
    its file context (the benchmark's way)."""
    source = file_source(FIX)
    record, record_steps = by_theorem(traced(FIX).records)["Flocq.Core.FIX.generic_format_FIX"]
    theorem = CoqDocument.read(FIX, flags=source.flags).theorem("generic_format_FIX")  # the file context
    backend = CoqBackend(CoqConfig(prelude=""))
    try:
        root = backend.open(theorem)
        assert root.goals == record_steps[0].goals
        outcome = backend.apply(root, record_steps[0].tactic, timeout=30)
        assert isinstance(outcome, Next)
        assert outcome.state.goals == record_steps[1].goals
    finally:
        backend.close()
    assert record_steps[1].hypotheses == hypothesis_names(record_steps[1].goals)
    assert {"beta", "emin", "x", "xm", "xe", "Hx1", "Hx2"} <= set(record_steps[1].hypotheses)


def test_training_build_never_reads_a_held_out_file(monkeypatch, tmp_path):
    every = library_sources(None, split=None)
    held_out = {s.logical_path for s in every if is_held_out(s.logical_path)}
    assert held_out and len(held_out) < len(every)
    given: list = []
    monkeypatch.setattr(build_mod, "_run_pool", lambda todo, *a, **k: given.extend(todo))
    from prover.cli import main
    assert main(["corpus", "build", "--out", str(tmp_path / "c"), "--quiet"]) == 0
    assert given and not {s.logical_path for s in given} & held_out
    assert len(given) + len(held_out) == len(every)
    assert {s.logical_path for s in library_sources(None, split="test")} == held_out


def test_a_killed_build_resumes_and_ends_with_each_file_once(tmp_path, marker):
    out = tmp_path / "corpus"
    args = [sys.executable, "-m", "prover", "corpus", "build", "--files", *map(str, SMALL), "--out", str(out),
            "--workers", "1", "--quiet"]
    proc = subprocess.Popen(args, cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    manifest = out / "manifest.ndjson"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (manifest.is_file() and manifest.read_bytes().count(b"\n") >= 1):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # no clean-up in the driver: the worker and coqtop die with it
    proc.wait()
    first = manifest.read_text().count("\n")
    assert 1 <= first < len(SMALL)  # Logic.v (largest, traced first) is done, the small ones are not
    time.sleep(0.5)
    assert processes_with_marker(marker) == []
    done = run_cli(*args[3:], timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"resuming {out}: {first} of {len(SMALL)}" in done.stderr.replace("\n", " ")
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert sorted(r["file"] for r in lines) == sorted(file_source(p).logical_path for p in SMALL)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["files"] == {"selected": 4, "ok": 4, "failed": 0, "pending": 0, "held_out": 0}
    assert stats["runs"] == 1  # the killed run never wrote its stats; the resumed one did
    assert stats["theorems"] == sum(1 for _ in theorems(out)) and stats["steps"] == sum(1 for _ in steps(out))
    zerob = by_theorem(read_file(out / "Coq/Bool/Zerob.jsonl.gz"))
    direct = by_theorem(trace_file(file_source(SMALL[1])).records)
    assert zerob == direct
    again = run_cli(*args[3:], timeout=60)  # nothing left: the same corpus, untouched
    assert again.returncode == 0 and json.loads((out / "stats.json").read_text())["theorems"] == stats["theorems"]


PROJECT_A = "Definition double (n : nat) := n + n.\n"
PROJECT_B = """Require Import Proj.A.
Lemma double_0 : double 0 = 0.
Proof. reflexivity. Qed.
Lemma with_command : True /\\ True.
Proof.
  split.
  Show.
  - exact I.
  - exact I.
Qed.
Lemma given_up : True.
Proof. Admitted.
Lemma double_1 : double 1 = 2.
Proof.
  unfold double. (* a comment *) simpl.
  reflexivity.
Qed.
Lemma broken : double 1 = 3.
Proof. reflexivity. Qed.
Lemma never_reached : True. Proof. exact I. Qed.
"""


def test_a_user_project_with_skipped_proofs_and_a_failing_file(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "_CoqProject").write_text("-R . Proj\nA.v\nB.v\n")
    (proj / "A.v").write_text(PROJECT_A)
    (proj / "B.v").write_text(PROJECT_B)
    subprocess.run(["coqc", "-q", "-R", ".", "Proj", "A.v"], cwd=proj, check=True, capture_output=True)
    out = tmp_path / "c"
    r = run_cli("corpus", "build", "--files", str(proj / "B.v"), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    (line,) = [json.loads(x) for x in (out / "manifest.ndjson").read_text().splitlines()]
    assert line["file"] == "Proj.B" and line["status"] == "failed"
    assert "line 19" in line["reason"] and "reflexivity" in line["reason"]
    assert {(s["theorem"], s["reason"]) for s in line["skipped"]} == {
        ("Proj.B.with_command", "command inside the proof: Show"), ("Proj.B.given_up", "admitted")}
    found = by_theorem(read_file(out / "Proj/B.jsonl.gz"))
    assert sorted(found) == ["Proj.B.double_0", "Proj.B.double_1"]
    assert [s.tactic for s in found["Proj.B.double_1"][1]] == ["unfold double.", "simpl.", "reflexivity."]
    assert found["Proj.B.double_1"][1][1].goals == "1 goal\n============================\n1 + 1 = 2"
    stats = json.loads((out / "stats.json").read_text())
    assert stats["failed"][0]["file"] == "Proj.B" and stats["skipped_by_reason"] == {
        "command inside the proof: Show": 1, "admitted": 1}


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    not_v = tmp_path / "notes.txt"
    not_v.write_text("hello")
    r = run_cli("corpus", "build", "--files", str(not_v), "--out", str(tmp_path / "c"))
    assert r.returncode == 2 and "not a .v file" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("corpus", "build", "--library", "NoSuchLib", "--out", str(tmp_path / "c"))
    assert r.returncode == 2 and "library not installed: NoSuchLib" in r.stderr
    assert "installed: Coq" in r.stderr and "Flocq" in r.stderr
    other = tmp_path / "other"
    assert run_cli("corpus", "build", "--files", str(SMALL[1]), "--out", str(other), "--quiet").returncode == 0
    r = run_cli("corpus", "build", "--files", str(SMALL[2]), "--out", str(other))
    assert r.returncode == 2 and "holds a corpus of another selection" in r.stderr
    assert [json.loads(x)["file"] for x in (other / "manifest.ndjson").read_text().splitlines()] == \
        ["Coq.Bool.Zerob"]  # nothing mixed in
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "mine.txt").write_text("x")
    r = run_cli("corpus", "build", "--files", str(SMALL[1]), "--out", str(junk))
    assert r.returncode == 2 and "holds no corpus" in r.stderr and sorted(os.listdir(junk)) == ["mine.txt"]


def test_a_sentence_coq_reads_as_two_stops_the_file_instead_of_shifting_every_answer(monkeypatch, tmp_path):
    """If the splitter ever disagrees with Coq, the tracer must notice, not record shifted goals."""
    from prover.backends.coq import text as coq_text
    from prover.corpus import trace as trace_mod

    def merged(source):  # joins the first proof's two tactics into one line, as a wrong splitter would
        out = coq_text.split_sentences(source)
        i = next(k for k, s in enumerate(out) if s.clean == "split.")
        both = coq_text.Sentence(source[out[i].start:out[i + 1].end], out[i].start, out[i + 1].end)
        return out[:i] + [both] + out[i + 2:]
    monkeypatch.setattr(trace_mod, "split_sentences", merged)
    f = tmp_path / "two.v"
    f.write_text("Lemma a : True /\\ True.\nProof.\nsplit.\nexact I.\nexact I.\nQed.\n"
                 "Lemma b : True.\nProof. exact I. Qed.\n")
    trace = trace_file(file_source(f))
    assert trace.error is not None and "lost step with coqtop" in trace.error
    assert trace.records == []


def test_redo_traces_named_files_again_and_keeps_the_rest(tmp_path):
    out = tmp_path / "c"
    files = [str(SMALL[1]), str(SMALL[2])]
    assert run_cli("corpus", "build", "--files", *files, "--out", str(out), "--quiet").returncode == 0
    before = json.loads((out / "stats.json").read_text())
    r = run_cli("corpus", "build", "--files", *files, "--out", str(out), "--quiet", "--redo", "Coq.Bool.Zerob")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x)["file"] for x in (out / "manifest.ndjson").read_text().splitlines()]
    assert sorted(lines) == ["Coq.Arith.Factorial", "Coq.Bool.Zerob", "Coq.Bool.Zerob"]
    after = json.loads((out / "stats.json").read_text())
    assert after["files"] == before["files"] and after["theorems"] == before["theorems"] and after["runs"] == 2
    r = run_cli("corpus", "build", "--files", *files, "--out", str(out), "--redo", "Coq.Lists.List")
    assert r.returncode == 2 and "not a file of this corpus" in r.stderr
