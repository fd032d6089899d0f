import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PROVER_SHARED_DATA", ROOT.parent / "shared" / "data"))


def isolate_lean_dojo_cache() -> None:
    """Importing lean_dojo creates its cache directory: keep it out of the user's home in tests (a
    temporary one, removed when the test run ends). Its remote cache never holds a local repository
    (and would need the network): users set this too."""
    if "CACHE_DIR" not in os.environ:
        os.environ["CACHE_DIR"] = tempfile.mkdtemp(prefix="prover-tests-lean-dojo-")
        atexit.register(shutil.rmtree, os.environ["CACHE_DIR"], True)
        atexit.register(lambda p=os.environ["CACHE_DIR"] + ".lock": os.path.exists(p) and os.remove(p))
    os.environ.setdefault("DISABLE_REMOTE_CACHE", "1")


def processes_with_marker(marker: str) -> list[int]:
    """Pids of live processes whose environment carries ``marker`` (how tests find leaked children)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("PROVER_TEST_MARK") == marker and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has ended)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_dead(pid: int, seconds: float = 30.0) -> bool:
    """Wait until ``pid`` has ended; False if it still runs after ``seconds`` (generous: a loaded
    machine is slow to schedule the exit, and only a process that never ends fails this)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return not alive(pid)


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


@pytest.fixture(scope="session", autouse=True)
def private_model_cache(tmp_path_factory):
    """No test builds the default learned models (an hour of tracing) or reads the machine's: every test
    sees a private, empty model cache, so the default generator falls back to the portfolio unless a
    test builds models into a cache of its own."""
    saved = {k: os.environ.get(k) for k in ("PROVER_CACHE_DIR", "PROVER_NO_MODEL_BUILD")}
    os.environ["PROVER_CACHE_DIR"] = str(tmp_path_factory.mktemp("model-cache"))
    os.environ["PROVER_NO_MODEL_BUILD"] = "1"
    yield os.environ["PROVER_CACHE_DIR"]
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def coq_slice(tmp_path_factory):
    """A small real corpus, traced once per session: Coq.Lists.List and Coq.Bool.Bool (training split)
    and Coq.ZArith.Zbool (held out)."""
    from prover.corpus.build import build
    from prover.corpus.sources import coq_root, file_source

    root = coq_root()
    out = tmp_path_factory.mktemp("corpus")
    files = ("theories/Lists/List.v", "theories/Bool/Bool.v", "theories/ZArith/Zbool.v")
    build([file_source(root / f) for f in files], out, 2)
    return out


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


def wait_for(predicate, timeout: float = 60.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def default_sigint() -> None:
    """preexec_fn for a child a test interrupts with SIGINT: a test run started in the background (nohup,
    `cmd &` in a script) ignores SIGINT, and children inherit that, so Ctrl-C would never reach them."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
