"""The Emacs client (editors/emacs/prover.el) against a real `prover repl` and Coq; runs where emacs is."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("emacs") is None, reason="emacs is not on PATH")

SCRIPT = r'''
(load "%(el)s")
(setq prover-command '("%(python)s" "-m" "prover" "repl"))
(with-temp-buffer
  (insert "Require Import ZArith.\nOpen Scope Z_scope.\n(* cursor after intros *)\n"
          "Theorem lt_succ : forall x y : Z, x < y -> x + 1 <= y.\nProof.\n  intros.\n  ")
  (cl-letf (((symbol-function 'completing-read)
             (lambda (_prompt choices &rest _)
               (dolist (c choices) (princ (format "CHOICE %%s\n" (car c))))
               (car (car (last choices))))))
    (prover-suggest))
  (princ (format "BUFFER-END[%%s]\n" (buffer-substring (- (point-max) 16) (point-max)))))
(let ((pid (process-id prover--process)))
  (prover-stop)
  (princ (format "STOPPED %%s %%s\n" pid (process-live-p prover--process))))
'''


def _closing_tactics(n: int) -> list[str]:
    """Independently: which of the portfolio's first n tactics close the goal after intros."""
    from prover.backends.base import Finished, Theorem
    from prover.backends.coq.backend import CoqBackend
    from prover.components import make_generator

    theorem = Theorem("lt_succ", "Theorem lt_succ : forall x y : Z, x < y -> x + 1 <= y.",
                      "Require Import ZArith.\nOpen Scope Z_scope.")
    with CoqBackend() as coq:
        state = coq.apply(coq.open(theorem), "intros", 10).state
        return [c.tactic for c in make_generator("portfolio", "coq").generate(state.goals, n)
                if isinstance(coq.apply(state, c.tactic, 5), Finished)]


def test_prover_suggest_inserts_a_checked_tactic(tmp_path: Path) -> None:
    script = tmp_path / "try.el"
    script.write_text(SCRIPT % {"el": ROOT / "editors" / "emacs" / "prover.el", "python": shutil.which("python3")})
    run = subprocess.run(["emacs", "--batch", "-Q", "-l", str(script)], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    choices = [line[len("CHOICE "):].split("=>") for line in out.splitlines() if line.startswith("CHOICE")]
    complete = [t.strip() for t, what in choices if what.strip() == "proof complete"]
    assert complete == _closing_tactics(8), out  # the portfolio's top 8 that close this goal, in rank order
    assert out.split("BUFFER-END[", 1)[1].split("]")[0].endswith(f"{choices[-1][0].strip()}."), out
    stopped = [line for line in out.splitlines() if line.startswith("STOPPED")]
    assert stopped and stopped[0].endswith(" nil"), out
    pid = int(stopped[0].split()[1])
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
