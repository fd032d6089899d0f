import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PROVER_SHARED_DATA", ROOT.parent / "shared" / "data"))


def processes_with_marker(marker: str) -> list[int]:
    """Pids of live processes whose environment carries ``marker`` (how tests find leaked children)."""
    found = []
    needle = f"PROVER_TEST_MARK={marker}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in env.split(b"\0") and state != b"Z":
            found.append(int(entry))
    return found


@pytest.fixture
def marker(monkeypatch):
    """A unique environment marker inherited by every process the test starts."""
    mark = uuid.uuid4().hex
    monkeypatch.setenv("PROVER_TEST_MARK", mark)
    return mark


def cli_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def run_cli(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "prover", *args], cwd=kw.pop("cwd", ROOT),
                          env=cli_env(kw.pop("env", None)), capture_output=True, text=True,
                          timeout=timeout, **kw)


# A tiny tactic model trained here in seconds (no downloads): the served-model and training tests share it.
TINY_STATES = [
    "1 goal\n============================\nforall a b : nat, a + b = b + a",
    "1 goal\na, b : nat\n============================\na + b = b + a",
    "1 goal\nx : R\nH : 0 < x\n============================\nx * 1 = x",
    "1 goal\n============================\nforall P Q : Prop, P /\\ Q -> Q /\\ P",
]
TINY_TACTICS = ["intros", "lia", "ring", "tauto"]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A 60-step model: it has learned the frame (tactic, then the stop line) but is far from certain."""
    pytest.importorskip("torch")
    from prover.models.prompts import COQ
    from prover.models.traces import TraceStep
    from prover.models.train import TrainConfig, train

    out = tmp_path_factory.mktemp("tiny-model")
    train([TraceStep(g, t) for g, t in zip(TINY_STATES, TINY_TACTICS)], out, COQ,
          TrainConfig(steps=60, batch_size=4, hidden=32, intermediate=64, vocab_size=400, lr=1e-2, warmup=5))
    return out
