"""CoqHammer's ``hammer`` as one step of the search: the Coq counterpart of Isabelle's sledgehammer step.

``hammer`` picks premises with a learned predictor (CoqHammer's ``predict``), hands the goal and those
lemmas to external ATPs (E and CVC4 here; Vampire and Z3's TPTP front end when installed), then
replays what they found with a reconstruction tactic from ``Hammer.Tactics`` and prints it:
``Replace the hammer tactic with: srun eauto use: app_length.`` The step runs ``hammer`` on a state
under its own budget, reads that tactic and applies it as an ordinary tactic, so the proof that is
recorded, checked and written holds only the reconstruction tactic and its check needs no ATP.

Facts of the Debian package (libcoq-hammer 1.3.2) that shape this module:
- ``predict`` and ``htimeout`` live in a libexec directory, not on PATH. hammer runs them and the ATPs
  through the shell, so coqtop's PATH gets that directory (the user's PATH is left alone).
- Problem and prediction files go to ``$TMPDIR``, and hammer cleans up with ``rm -f $TMPDIR/coqhammer*``:
  coqtop's TMPDIR is its own working directory, removed with it, never shared with another search.
- ``htimeout`` gives each ATP a session of its own, so ATPs outlive an interrupted hammer: the backend
  stops whatever its coqtop left running after every step.
- Options (``Set Hammer ...``) are restored with the state when Coq backtracks, while CoqHammer detects
  the ATPs once per process: the missing ATPs are switched off explicitly, or hammer would try them
  again after every ``BackTo``.
- The first hammer call in a coqtop reads every accessible library proof to learn premise selection
  (about 11 s with Reals loaded, 20 s with Coquelicot, on this machine); later calls take seconds.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from ..base import Failed, Finished, Next, Outcome, State, TimedOut

HAMMER = "hammer"
# CoqHammer's name of each ATP, and the command it runs.
ATP_COMMANDS = (("Eprover", "eprover"), ("Vampire", "vampire"), ("Z3", "z3_tptp"), ("CVC4", "cvc4"))
HELPERS = ("predict", "htimeout")
LIBEXEC_DIRS = ("/usr/libexec/coq-hammer", "/usr/lib/coq-hammer", "/usr/local/libexec/coq-hammer")
# Tactics of the Hammer plugin other than the step itself: they call the predictor or the ATPs, or write
# files, and a checked proof cannot contain them.
_PLUGIN_TACTIC = re.compile(r"(?<![\w'.])(hammer|hammer_hook|hammer_features|hammer_transl|predict)(?![\w'])")
_REPLACE = re.compile(r"Replace the hammer tactic with:\s*(.*?)\s*(?:</infomsg>|<prompt>|\Z)", re.S)
_ERROR = re.compile(r"(?m)^Error:\s*(.*?)\s*(?:\n\n|</|\Z)", re.S)


@dataclass(frozen=True)
class HammerConfig:
    """The hammer step's own budget. ``threads`` (CoqHammer's GSMode: ATP runs at once) should be the
    number of cores the run gives each worker."""

    enabled: bool = True
    timeout: float = 30.0  # the whole step: hammer's sauto pass, premise selection, ATPs, reconstruction
    atp_limit: int = 10  # seconds per ATP run (Set Hammer ATPLimit; hammer waits 1.5x for all of them)
    reconstr_limit: int = 5  # seconds per batch of reconstruction tactics (Set Hammer ReconstrLimit)
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    libexec: str | None = None  # where predict and htimeout are; None: PATH, then the usual libexec dirs

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.atp_limit < 1 or self.reconstr_limit < 1 or self.threads < 1:
            raise ValueError("hammer limits must be positive (ATP and reconstruction limits whole seconds)")


@dataclass(frozen=True)
class HammerTools:
    """What the step needs outside Coq, as found on this machine."""

    reason: str  # why the step cannot run; "" when it can
    path_prefix: str | None = None  # directory to put before PATH for predict/htimeout
    atps: tuple[str, ...] = ()  # CoqHammer's names of the ATPs found

    @property
    def ok(self) -> bool:
        return not self.reason


def find_tools(config: HammerConfig, path: str | None = None) -> HammerTools:
    """Find predict, htimeout and the ATPs: on PATH, else in the libexec directory of the package."""
    path = os.environ.get("PATH", "") if path is None else path
    dirs = (config.libexec,) if config.libexec else LIBEXEC_DIRS
    prefix = None
    if not all(shutil.which(h, path=path) for h in HELPERS):
        prefix = next((d for d in dirs if all(os.access(os.path.join(d, h), os.X_OK) for h in HELPERS)), None)
        if prefix is None:
            where = config.libexec or "PATH or " + ", ".join(LIBEXEC_DIRS)
            return HammerTools(f"CoqHammer's predict and htimeout are not in {where} (install libcoq-hammer)")
    full = os.pathsep.join(p for p in (prefix, path) if p)
    atps = tuple(name for name, cmd in ATP_COMMANDS if shutil.which(cmd, path=full))
    if not atps:
        return HammerTools("no ATP found (install eprover, cvc4)", prefix)
    return HammerTools("", prefix, atps)


def plugin_installed(coqc: str = "coqc") -> bool:
    """Whether Coq's user-contrib holds the Hammer plugin."""
    try:
        out = subprocess.run([coqc, "-where"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return (Path(out.stdout.strip()) / "user-contrib" / "Hammer" / "Plugin" / "Hammer.vo").is_file()


def hammer_status(config: HammerConfig | None = None, coqc: str = "coqc") -> HammerTools:
    """Whether the hammer step can run here, and why not (for one warning before a run)."""
    config = config or HammerConfig()
    if not config.enabled:
        return HammerTools("the hammer step is switched off")
    if not plugin_installed(coqc):
        return HammerTools("CoqHammer is not installed (libcoq-hammer)")
    return find_tools(config)


def is_hammer(tactic: str) -> bool:
    """The step itself: ``hammer`` alone (a final period allowed)."""
    return " ".join(tactic.split()).rstrip(".").rstrip() == HAMMER


def uses_hammer_plugin(tactic: str) -> bool:
    """Whether a tactic calls the Hammer plugin (hammer, predict, hammer_hook, ...): never in a proof."""
    return _PLUGIN_TACTIC.search(tactic) is not None


def reconstruction(output: str) -> str | None:
    """The tactic hammer says to use instead of itself, from coqtop's raw output (tags included)."""
    found = _REPLACE.findall(output)
    if not found:
        return None
    tactic = " ".join(found[-1].split())
    return tactic or None


def tactic_variants(tactic: str) -> list[str]:
    """The printed tactic, then a form Coq 8.16 parses: hammer prints ``srun eauto use: l``, where the
    parser reads ``use`` as eauto's depth argument; ``srun (eauto) use: l`` is the same tactic."""
    out = [tactic]
    m = re.match(r"srun\s+(?!\()(.+?)\s+((?:use|unfold|inv):.*)$", tactic)
    if m:
        out.append(f"srun ({m.group(1)}) {m.group(2)}")
    return out


def failure_message(output: str) -> str:
    m = _ERROR.search(output)
    text = " ".join(m.group(1).split()) if m else "hammer printed no reconstruction tactic"
    return text[:500]


@dataclass(frozen=True)
class Probe:
    """A sentence run for its messages only, then undone."""

    output: str  # raw, with coqtop's <infomsg> blocks
    timed_out: bool
    elapsed: float


class HammerHost(Protocol):
    """What the step needs from the Coq backend."""

    def probe(self, state: State, sentence: str, timeout: float) -> Probe: ...

    def apply(self, state: State, tactic: str, timeout: float) -> Outcome: ...


@dataclass(frozen=True)
class _Result:
    tactic: str | None  # the reconstruction tactic, None when hammer found none
    message: str
    budget: float  # the time hammer had
    timed_out: bool = False


class HammerStep:
    """The hammer step of one backend: its tools, the sentences that load it, its cache by goal."""

    def __init__(self, config: HammerConfig | None = None) -> None:
        self.config = config or HammerConfig()
        self._tools: HammerTools | None = None
        self._cache: dict[tuple[str, ...], _Result] = {}
        self.calls = 0  # hammer runs (cache hits excluded)

    @property
    def tools(self) -> HammerTools:
        if self._tools is None:
            self._tools = find_tools(self.config) if self.config.enabled else \
                HammerTools("the hammer step is switched off")
        return self._tools

    def env(self) -> dict[str, str]:
        """coqtop's environment: predict/htimeout reachable when the step is on (its TMPDIR, its own
        working directory, is set where every prover process starts: process.InteractiveProcess)."""
        env = dict(os.environ)
        if self.tools.ok and self.tools.path_prefix:
            env["PATH"] = os.pathsep.join(p for p in (self.tools.path_prefix, env.get("PATH")) if p)
        return env

    def load_sentences(self) -> list[str]:
        """Sent before the trusted header in the search's coqtop only (the check never loads hammer)."""
        if not self.tools.ok:
            return []
        c = self.config
        out = ["From Hammer Require Import Hammer.", f"Set Hammer ATPLimit {c.atp_limit}.",
               f"Set Hammer ReconstrLimit {c.reconstr_limit}.", f"Set Hammer GSMode {c.threads}."]
        out += [f"Unset Hammer {name}." for name, _ in ATP_COMMANDS if name not in self.tools.atps]
        return out

    def load_failed(self, sentence: str, error: str) -> None:
        self._tools = HammerTools(f"{sentence} fails: {error}")
        warnings.warn(f"the hammer step is skipped: {self._tools.reason}", RuntimeWarning, stacklevel=2)

    def run(self, host: HammerHost, state: State, tactic: str, timeout: float, context: tuple[str, ...]) -> Outcome:
        """hammer on ``state``, then its reconstruction tactic as an ordinary tactic.

        ``context`` names what the goal lives in (prelude, header): the cache key with the goals."""
        if not is_hammer(tactic):
            return Failed("hammer is a step of its own: its tactics are not used inside other tactics",
                          rejected=True)
        if not self.tools.ok:
            return Failed(f"the hammer step is skipped: {self.tools.reason}", rejected=True)
        budget = min(self.config.timeout, timeout)
        key = (*context, state.goals)
        result = self._cache.get(key)
        if result is None or (result.tactic is None and result.budget < budget):
            result = self._hammer(host, state, budget)
            self._cache[key] = result
        if result.tactic is None:
            if result.timed_out:
                return TimedOut(result.budget)
            return Failed(f"hammer: {result.message}")
        why = ""
        for tactic in tactic_variants(result.tactic):
            outcome = host.apply(state, tactic, 2.0 * self.config.reconstr_limit)
            if isinstance(outcome, (Next, Finished)):
                return replace(outcome, tactic=tactic)
            why = why or (outcome.message if isinstance(outcome, Failed) else "it timed out")
        return Failed(f"hammer's reconstruction {result.tactic!r} does not run: {why}")

    def _hammer(self, host: HammerHost, state: State, budget: float) -> _Result:
        self.calls += 1
        probe = host.probe(state, HAMMER, budget)
        tactic = reconstruction(probe.output)
        if tactic is not None and not uses_hammer_plugin(tactic):
            return _Result(tactic, "", budget)
        if probe.timed_out:
            return _Result(None, f"no proof within {budget:.0f} s", budget, timed_out=True)
        if tactic is not None:
            return _Result(None, f"the reconstruction {tactic!r} calls the hammer plugin itself", budget)
        return _Result(None, failure_message(probe.output), budget)
