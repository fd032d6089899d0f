"""The held-out library benchmark: real workers, real Coq, installed library files, real results files."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from prover.backends.base import Failed, Finished
from prover.backends.coq.backend import CoqBackend
from prover.corpus.records import is_held_out
from prover.runs import coqlib
from prover.runs.budgets import COQLIB_MAX_EXPANSIONS

from .conftest import ROOT, cli_env, processes_with_marker, run_cli, wait_for

# One the portfolio proves in seconds (intros; sauto), one in a file the tactic libraries load themselves
# (opened without them), one more of the standard library.
NAMES = ["Coq.Bool.IfProp.Iftrue_inv", "Coq.micromega.Env.nth_spec", "Coq.Arith.Compare_dec.not_ge"]
BUDGET = ["--timeout", "10", "--tactic-timeout", "2", "--check-timeout", "120"]


def lines(path):
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run SIGKILLed after its first result, then resumed."""
    out = tmp_path_factory.mktemp("coqlib") / "results.jsonl"
    mark = f"coqlib-{os.getpid()}-{time.time()}"
    args = [sys.executable, "-m", "prover", "bench", "coqlib", "--names", ",".join(NAMES), "--workers", "1",
            "--out", str(out), "--quiet", *BUDGET]
    driver = subprocess.Popen(args, cwd=ROOT, env=cli_env({"PROVER_TEST_MARK": mark}),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 2, 180)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    gone = wait_for(lambda: processes_with_marker(mark) == [], 10)
    first = len(out.read_text().splitlines()) - 1
    resumed = subprocess.run(args + ["--resume"], cwd=ROOT, env=cli_env({"PROVER_TEST_MARK": mark}),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    return out, gone, first


def test_a_killed_run_resumes_with_one_line_per_theorem(run):
    out, gone, first = run
    assert gone, "a worker or coqtop survived the SIGKILLed driver"
    assert 1 <= first < len(NAMES)
    config, results = lines(out)
    assert config["benchmark"] == "coqlib" and config["split"] == "test" and config["sample"] == "coqlib-test.jsonl"
    # Time is the budget: the state cap is the benchmark's guard, not miniF2F's 100.
    assert config["budgets"]["timeout"] == 10 and config["budgets"]["max_expansions"] == COQLIB_MAX_EXPANSIONS
    assert sorted(r["name"] for r in results) == sorted(NAMES)
    by_name = {r["name"]: r for r in results}
    for r in results:
        assert r["split"] == "test" and r["category"] == "Coq" and r["verified"] == r["proved"]
        assert r["dataset"]["file"] == r["name"].rsplit(".", 1)[0] and is_held_out(r["dataset"]["file"])
        assert r["dataset"]["sha1"] == r["dataset"]["sample_sha1"]  # the installed file is the sampled one
    assert by_name["Coq.micromega.Env.nth_spec"]["dataset"]["add_imports"] is False
    proved = by_name["Coq.Bool.IfProp.Iftrue_inv"]
    assert proved["proved"] and proved["tactics"] and proved["failure_reason"] is None


def test_verify_compiles_the_installed_file_and_catches_a_forged_line(run, tmp_path):
    out = run[0]
    ok = run_cli("verify", str(out), timeout=600)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Coq.Bool.IfProp.Iftrue_inv: ok" in ok.stdout
    config, results = lines(out)
    forged = [dict(r) for r in results if r["proved"]]
    other = dict(forged[0], name="Coq.Bool.IfProp.IfProp_true")  # not in the test set
    wrong = dict(forged[0], name="Coq.Arith.Compare_dec.not_ge")  # in the set, but not what this proof proves
    bad = tmp_path / "forged.jsonl"
    bad.write_text("".join(json.dumps(x) + "\n" for x in [config, other, wrong]))
    r = run_cli("verify", str(bad), timeout=600)
    assert r.returncode == 1
    assert "IfProp_true: MISMATCH not in the benchmark's split" in r.stdout
    assert "Compare_dec.not_ge: MISMATCH" in r.stdout and "0/2 proofs re-checked ok" in r.stdout


def test_report_groups_by_library_and_shows_the_published_anchors(run):
    r = run_cli("report", str(run[0]))
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "split test" in text and "Coq" in text
    assert "CoqHammer" in text and "40.8%" in text and "Tactician" in text and "56.7%" in text


def test_the_benchmark_budget_is_a_minute_of_search_and_minif2f_keeps_its_own():
    from prover.cli import build_parser
    from prover.search.best_first import SearchConfig

    bench = build_parser().parse_args(["bench", "coqlib", "--out", "x.jsonl"])
    assert (bench.timeout, bench.max_expansions) == (60.0, COQLIB_MAX_EXPANSIONS)
    assert COQLIB_MAX_EXPANSIONS > 10 * SearchConfig().max_expansions
    given = build_parser().parse_args(["bench", "coqlib", "--out", "x.jsonl", "--max-expansions", "50"])
    assert given.max_expansions == 50
    minif2f = build_parser().parse_args(["minif2f", "--out", "x.jsonl"])
    assert (minif2f.timeout, minif2f.max_expansions) == (SearchConfig().timeout, SearchConfig().max_expansions)


def test_a_theorem_sees_only_what_comes_before_it():
    """Opened from the benchmark list: a later lemma of the same file is unknown, and in a file the tactic
    libraries load, the installed (proved) theorem is not in scope either; with those libraries it would be."""
    (ifprop,) = coqlib.load("test", ["Coq.Bool.IfProp.Iftrue_inv"])
    (env,) = coqlib.load("test", ["Coq.micromega.Env.nth_spec"])
    backend = CoqBackend()
    try:
        root = backend.open(ifprop.theorem)
        assert isinstance(backend.apply(root, "exact IfProp_true.", 10), Failed)  # declared after it
        assert isinstance(backend.apply(root, "exact Iftrue_inv.", 10), Failed)  # itself
        root = backend.open(env.theorem)
        assert isinstance(backend.apply(root, "apply Coq.micromega.Env.nth_spec.", 10), Failed)
        leaky = env.theorem.document.theorem("nth_spec", add_imports=True)
        root = backend.open(leaky)
        assert isinstance(backend.apply(root, "apply Coq.micromega.Env.nth_spec.", 10), Finished)
    finally:
        backend.close()


def test_the_committed_test_set():
    entries = coqlib.read_sample()
    assert len(entries) >= 300 and len({e.name for e in entries}) == len(entries)
    assert all(is_held_out(e.file) and e.name.startswith(e.file + ".") for e in entries)
    pool = coqlib.candidates()
    index = {e.name: i for i, e in enumerate(pool)}
    current = {e.file: e.sha1 for e in pool}
    assert all(current[e.file] == e.sha1 for e in entries)  # the installed files are those it was drawn from
    assert [index[e.name] for e in entries] == sorted(index[e.name] for e in entries)  # file order
    # Files the prover's tactic libraries load are opened without them (else the theorem is in scope).
    preloaded = coqlib.prelude_libraries(CoqBackend().config)
    assert {e.file for e in entries if e.file in preloaded} and \
        all(not e.add_imports for e in entries if e.file in preloaded)
    # The draw depends on the seed only, not on the order of the pool.
    a = coqlib.make_sample(pool, 300, coqlib.SAMPLE_SEED)
    assert {e.name for e in coqlib.make_sample(pool[::-1], 300, coqlib.SAMPLE_SEED)} == {e.name for e in a}
    assert {e.name for e in coqlib.make_sample(pool, 300, coqlib.SAMPLE_SEED + 1)} != {e.name for e in a}


def test_bad_input(tmp_path):
    r = run_cli("bench", "coqlib", "--names", "Coq.Lists.List.app_nil_r", "--out", str(tmp_path / "r.jsonl"))
    assert r.returncode == 2 and "not in the coqlib test set: Coq.Lists.List.app_nil_r" in r.stderr
    assert "Traceback" not in r.stderr
    minif2f = tmp_path / "m.jsonl"
    minif2f.write_text(json.dumps({"type": "config", "backend": "coq", "split": "test", "generator": "portfolio"})
                       + "\n")
    r = run_cli("bench", "coqlib", "--names", NAMES[0], "--out", str(minif2f), "--resume", *BUDGET)
    assert r.returncode == 2 and "its benchmark is 'minif2f'" in r.stderr
