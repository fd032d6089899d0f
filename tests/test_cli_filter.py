"""`prover filter --backend {coq,lean,isabelle}` from the outside: JSON strings in, JSON objects out,
the same verdicts the search applies (each backend's own filter function)."""
import json

from prover.backends.coq.text import check_tactic as coq_check
from prover.backends.isabelle.text import filter_step
from prover.backends.lean.text import check_tactic as lean_check
from tests.conftest import run_cli
from tests.test_isabelle_text import NASTY, ORDINARY


def run_filter(backend: str, steps: list[str], *extra: str):
    text = "".join(json.dumps(s) + "\n" for s in steps)
    return run_cli("filter", "--backend", backend, *extra, input=text, timeout=60)


def verdicts(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_isabelle_filter_refuses_the_nasty_steps_and_accepts_ordinary_ones():
    steps = [s for s, _ in NASTY] + ORDINARY + ["sledgehammer"]
    r = run_filter("isabelle", steps)
    assert r.returncode == 0, r.stderr
    out = verdicts(r.stdout)
    assert len(out) == len(steps)
    assert out[:len(NASTY)] == [{"accepted": False, "reason": why} for _, why in NASTY]
    assert all(v == {"accepted": True, "reason": ""} for v in out[len(NASTY):])
    assert out == [dict(zip(("accepted", "reason"), filter_step(s))) for s in steps]


def test_coq_and_lean_filters_give_their_backends_verdicts():
    coq_steps = ["auto.", "Admitted.", "intros n; lia", "Print Assumptions foo.", "exact (fun x => x)."]
    r = run_filter("coq", coq_steps)
    assert r.returncode == 0, r.stderr
    expected = [{"accepted": coq_check(s)[0] is not None, "reason": "" if coq_check(s)[0] is not None
                 else coq_check(s)[1]} for s in coq_steps]
    assert verdicts(r.stdout) == expected
    assert expected[0]["accepted"] and not expected[1]["accepted"]
    lean_steps = ["simp", "sorry", "norm_num [h0]", "#eval 1", "nlinarith [sq_nonneg (a - b)]"]
    r = run_filter("lean", lean_steps)
    assert r.returncode == 0, r.stderr
    expected = [{"accepted": lean_check(s)[0] is not None, "reason": "" if lean_check(s)[0] is not None
                 else lean_check(s)[1]} for s in lean_steps]
    assert verdicts(r.stdout) == expected
    assert expected[0]["accepted"] and not expected[1]["accepted"]


def test_filter_reads_a_file_and_stops_at_a_line_that_is_not_a_json_string(tmp_path):
    path = tmp_path / "steps.jsonl"
    path.write_text('"by simp"\n\n"sorry"\n{"step": "by auto"}\n"by auto"\n')
    r = run_cli("filter", "--backend", "isabelle", str(path), timeout=60)
    assert r.returncode == 2
    assert verdicts(r.stdout) == [{"accepted": True, "reason": ""},
                                  {"accepted": False, "reason": "forbidden word in step: sorry"}]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "line 4" in lines[0] and "Traceback" not in r.stderr
    r = run_cli("filter", "--backend", "isabelle", str(tmp_path / "missing.jsonl"), timeout=60)
    assert r.returncode == 2 and "cannot read" in r.stderr
    r = run_cli("filter", "--backend", "rocq", timeout=60)
    assert r.returncode == 2 and "invalid choice" in r.stderr
