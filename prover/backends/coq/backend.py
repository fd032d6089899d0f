"""Rocq/Coq backend: coqtop driven through pexpect, coqc for the full check.

coqtop holds one linear branch of states, and ``BackTo`` drops every state after its target. A
State's key is therefore the tactic path from the root: to apply a tactic to any state reached so
far, the backend goes back to the longest prefix it shares with the live branch and replays the rest.
Best-first search mostly expands siblings, so the replay is short; measured at ~2 ms a tactic it
costs less than keeping a second coqtop per branch (~350 MB each with Reals loaded).
"""
from __future__ import annotations

import math
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable

import pexpect

from ...learning.goals import GOALS_HEAD, goal_count
from ..base import (Closing, BackendCrash, BackendInfo, CheckResult, Failed, Finished, InitError, Next,
                   Outcome, State, Theorem, TimedOut)
from .document import CoqFileTheorem, sendable
from .filecheck import check_in_file
from .project import logical_path_hint
from .hammer import HammerConfig, HammerStep, Probe, uses_hammer_plugin
from .lemma_search import LemmaSearchStep, is_lemma_search
from .text import CoqSyntaxError, check_tactic, split_sentences, theorem_name
from ..process import InteractiveProcess, ProcessLimits, WorkDir, exit_description, run_once

# Loaded before the trusted header, so it cannot override the header's imports or notations.
DEFAULT_PRELUDE = "Require Import Lia Lra Psatz Ring Field.\nFrom Hammer Require Import Tactics."
# A statement (no file of its own) also gets ZArith and ZifyNat: ZifyNat's zify instances make lia and
# nia reason about nat mod, div and pow (and Z mod/div by constants), the arithmetic of competition
# number theory: `intros; lia` closes 12 of miniF2F-rocq valid's failures with them, none without.
# A file theorem keeps the file's own imports (filecheck adds only what its tactics need).
STATEMENT_LIBRARIES = "Require Import ZArith ZifyNat."
STANDARD_AXIOMS = (
    "ClassicalDedekindReals.sig_forall_dec",
    "ClassicalDedekindReals.sig_not_dec",
    "FunctionalExtensionality.functional_extensionality_dep",
    "Classical_Prop.classic",
)
_PROMPT = re.compile(r"<prompt>(\S*) < (\d+) \|([^|]*)\| (\d+) < </prompt>")
_TAG = re.compile(r"<(infomsg|warning)>.*?</\1>", re.S)
_ID = re.compile(r" \(ID \d+\)")
_SHELVED_HEAD = re.compile(r"^(\d+) focused (goals?)(?: \(shelved: \d+\))?")
_MISSING_LIBRARY = re.compile(r"Cannot find (?:a physical path bound to logical path|library)\s+(\S+?)\.?"
                              r"(?:\s|$)")
_CHUNK_BYTES = 16384  # sentences written at once while loading a file: far below a pipe's buffer


@dataclass(frozen=True)
class CoqConfig:
    coqtop: str = "coqtop"
    coqc: str = "coqc"
    flags: tuple[str, ...] = ()  # extra load-path flags (-R/-Q) for both coqtop and coqc
    prelude: str = DEFAULT_PRELUDE
    statement_libraries: str = STATEMENT_LIBRARIES  # after the prelude, for statements only
    limits: ProcessLimits = field(default_factory=ProcessLimits)
    open_timeout: float = 120.0  # header + statement
    grace: float = 3.0  # beyond a tactic's Timeout before SIGINT, then again before restart
    check_timeout: float = 600.0  # Qed can take far longer than the tactics
    standard_axioms: tuple[str, ...] = STANDARD_AXIOMS
    hammer: HammerConfig = field(default_factory=HammerConfig)  # the hammer step (hammer.py)
    max_restarts: int = 3  # a dead coqtop is restarted; this many failed restarts in a row end it

    @property
    def statement_prelude(self) -> str:
        """What runs before a statement's header, in the search and in the full check."""
        return "\n".join(p for p in (self.prelude, self.statement_libraries) if p)


class _NoAnswer(BackendCrash):
    """No prompt in time. apply() recovers from it; anywhere else it is a crash."""


class _Died(BackendCrash):
    """coqtop ended (a signal, an out-of-memory abort, a segfault). apply() restarts it."""

    during_tactic = False  # set when it died running the tactic itself, not on the way to its state


@dataclass(frozen=True)
class _Reply:
    output: str  # with <infomsg>/<warning> blocks removed
    sid: int
    proof: str  # name of the open proof, "Coq" when none
    raw: str = ""  # everything before the prompt, tags included

    @property
    def error(self) -> str | None:
        m = re.search(r"(?m)^Error:\s*(.*)", self.output, re.S)
        return " ".join(m.group(1).split()) if m else None


def normalize_goals(text: str) -> str:
    """Goals as the model reads them: no volatile '(ID n)', no indentation, no blank padding, and
    "N goals" where Coq says "N focused goals (shelved: k)"."""
    lines = [_ID.sub("", line).rstrip() for line in text.strip("\n").splitlines()]
    if lines:  # one header for every state: the shelved evars show in the goals themselves (?k)
        lines[0] = _SHELVED_HEAD.sub(r"\1 \2", lines[0])
    lines = [line[2:] if line.startswith("  ") else line for line in lines]
    out = [line for i, line in enumerate(lines) if line.strip() or (0 < i < len(lines) - 1 and
                                                                    lines[i + 1].startswith("goal "))]
    return "\n".join(out).strip()


class CoqBackend(Closing):
    name = "coq"

    def __init__(self, config: CoqConfig | None = None) -> None:
        self.config = config or CoqConfig()
        self._proc: InteractiveProcess | None = None
        self._workdir: WorkDir | None = None
        self._theorem: Theorem | None = None
        self._root: State | None = None
        self._root_sid = 0
        self._tip_sid = 0  # coqtop's current state id
        self._branch: list[tuple[str, int]] = []  # (tactic sentence, sid after it) on the live line
        # What runs before a statement (prelude + header, or a file's sentences), as (key, sid after it):
        # opening another theorem goes BackTo the longest shared prefix instead of starting again.
        self._line: list[tuple[object, int]] = []
        self._start_sid = 0
        self._started_with: tuple = ()
        self.tactic_calls = 0  # sentences sent to coqtop, replays included
        self.restarts = 0  # coqtop processes started again after one died or hung
        self.loaded_sentences = 0  # sentences of headers and files sent to coqtop (reuse sends fewer)
        self.on_load: Callable[[int, int], None] | None = None  # (sentences run, of) while opening
        self._unanswered = 0  # sentences sent whose prompt was not read yet (a crash can leave some)
        self.hammer = HammerStep(self.config.hammer)
        self.lemma_search = LemmaSearchStep()

    # -- process ---------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def workdir(self) -> str | None:
        """coqtop's working directory (and TMPDIR), removed when coqtop stops."""
        return self._workdir.path if self._workdir else None

    def _start(self, extra: tuple[str, ...] = ()) -> None:
        """Start coqtop with the config's flags plus ``extra`` (a file's project flags and -topfile)."""
        self._stop()
        self._workdir = WorkDir("prover-coq-")
        argv = [self.config.coqtop, "-q", "-emacs", *self.config.flags, *extra]
        try:
            self._proc = InteractiveProcess(argv, self._workdir.path, self.config.limits,
                                            env=self.hammer.env())
        except (OSError, pexpect.ExceptionPexpect) as e:
            raise InitError(f"cannot start coqtop: {e}") from e
        self._started_with = extra
        self._start_sid = self._read(self.config.open_timeout).sid

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
        self._branch = []
        self._line = []
        self._unanswered = 1  # the banner's prompt

    def close(self) -> None:
        self._stop()
        self._theorem = None
        self._root = None

    def _read(self, timeout: float) -> _Reply:
        assert self._proc is not None
        spawn = self._proc.spawn
        try:
            spawn.expect(_PROMPT, timeout=timeout)
        except pexpect.EOF as e:
            raise _Died(f"coqtop exited ({exit_description(self._proc.returncode(wait=1.0))})") from e
        except pexpect.TIMEOUT as e:
            raise _NoAnswer(f"coqtop did not answer within {timeout:.0f} s") from e
        m = spawn.match
        self._unanswered -= 1
        self._tip_sid = int(m.group(2))
        return _Reply(_TAG.sub("", spawn.before).strip(), self._tip_sid, m.group(1), spawn.before)

    def _write(self, sentences: list[str]) -> None:
        """Send sentences, one a line, without waiting: coqtop answers each with one prompt."""
        assert self._proc is not None
        if not self._proc.alive():
            raise _Died(f"coqtop exited ({exit_description(self._proc.returncode())})")
        self.tactic_calls += len(sentences)
        self._unanswered += len(sentences)
        try:
            self._proc.spawn.send("".join(f"{s}\n" for s in sentences))
        except OSError as e:
            raise _Died(f"coqtop pipe closed ({exit_description(self._proc.returncode(wait=1.0))})") from e

    def _send(self, sentence: str, timeout: float) -> _Reply:
        self._write([sentence])
        return self._read(timeout)

    # -- theorem -----------------------------------------------------------------------------
    def open(self, theorem: Theorem) -> State:
        """Run what comes before the statement (reusing what the live coqtop already ran), then the
        statement and the proof opening. A file theorem runs its file's sentences (see document.py)."""
        if isinstance(theorem, CoqFileTheorem):
            name = theorem.short_name
            line = self._file_line(theorem)
            statement = sendable(theorem.document.sentences[theorem.entry.index])
            opening = theorem.opening_sentence()
            extra = (*theorem.flags, "-topfile", f"{theorem.document.module}.v")
        else:
            name = theorem_name(theorem.statement)
            if name is None:
                raise InitError("the statement does not start with Theorem/Lemma/... NAME")
            if name != theorem.name:
                raise InitError(f"the statement names {name!r}, expected {theorem.name!r}")
            try:
                line = self._hammer_line() + [(("text", s.clean), s.clean, None)
                        for s in split_sentences(self.config.statement_prelude) + split_sentences(theorem.header)]
                sentences = split_sentences(theorem.statement)
            except CoqSyntaxError as e:
                raise InitError(f"cannot read the theorem: {e}") from e
            if len(sentences) != 1:
                raise InitError("the statement must be one sentence ending with '.'")
            statement, opening, extra = sentences[0].clean, "Proof.", ()
        self._theorem = theorem
        self._root = None
        # A live coqtop started with the same flags goes on from what it ran: theorems of one file or
        # benchmark share their header, and hammer's premise-selection data, read from the library at
        # its first call (seconds), stays loaded. One with unanswered sentences is never reused.
        reuse = self._proc is not None and self._proc.alive() and not self._unanswered \
            and self._started_with == extra
        if not reuse:
            self._start(extra)
        try:
            return self._open_on(line, theorem, name, statement, opening)
        except BackendCrash:
            self._stop()  # a coqtop that did not answer may still be busy: never reuse it
            raise

    def _open_on(self, line, theorem: Theorem, name: str, statement: str, opening: str) -> State:
        self._load(line, theorem)
        reply = self._send(statement, self.config.open_timeout)
        if reply.error or reply.proof != name:
            self._stop()
            where = f"{theorem.location(theorem.entry.index)}: " if isinstance(theorem, CoqFileTheorem) else ""
            raise InitError(f"{where}the statement does not type-check: {reply.error or reply.output}")
        goals = normalize_goals(reply.output)
        reply = self._send(opening, self.config.open_timeout)
        if reply.error:
            self._stop()
            raise InitError(f"{opening} fails: {reply.error}")
        self._root_sid = reply.sid
        self._branch = []
        if not GOALS_HEAD.match(goals):
            # Reopened on a live coqtop after BackTo, the statement can get the evar ids of the goals
            # printed last, and coqtop then prints none: ask for them.
            goals = normalize_goals(self._show())
        self._root = State((), goals)
        return self._root

    def _file_line(self, theorem: CoqFileTheorem) -> list[tuple[object, str, int | None]]:
        """The sentences before a file theorem's statement, as (key, text, index in the file); with
        ``add_imports`` the prelude comes before the theorem's outermost section or module."""
        doc = theorem.document
        sentences = doc.sentences
        line = [((doc.path, i, s.text), sendable(s), i) for i, s in enumerate(sentences[:theorem.entry.index])]
        if theorem.add_imports:
            at = theorem.import_index
            prelude = [(("prelude", s.clean), s.clean, None) for s in split_sentences(self.config.prelude)]
            line = line[:at] + prelude + self._hammer_line() + line[at:]
        # Silent: no goals printed after each tactic of the earlier proofs (a fifth of coqtop's time).
        return [(("control", "Set Silent."), "Set Silent.", None), *line,
                (("control", "Unset Silent."), "Unset Silent.", None)]

    def _hammer_line(self) -> list[tuple[object, str, None]]:
        """What loads the hammer step, in the search's coqtop only (the check never loads it): before a
        statement's prelude, or with the prelude a file theorem gets from ``add_imports``. Hammer's
        plugin loads no Coq library beyond the prelude's (measured with Print Libraries), so a file
        opened with the prelude sees nothing more of itself. Without ``add_imports`` the file's own
        imports are left alone and the step is not available."""
        return [(("hammer", s), s, None) for s in self.hammer.load_sentences()]

    def _load(self, line: list[tuple[object, str, int | None]], theorem: Theorem) -> None:
        """Make the live coqtop have run exactly ``line``: BackTo the longest prefix it shares with what
        ran before, then send the rest in chunks (answers read after each chunk)."""
        k = 0
        while k < min(len(self._line), len(line)) and self._line[k][0] == line[k][0]:
            k += 1
        target = self._line[k - 1][1] if k else self._start_sid
        if k < len(self._line) or self._tip_sid != target:
            reply = self._send(f"BackTo {target}.", self.config.open_timeout)
            if reply.error:
                self._stop()
                raise BackendCrash(f"BackTo failed: {reply.error}")
        del self._line[k:]
        i = k
        while i < len(line):
            chunk, size = [], 0
            while i < len(line) and (not chunk or size + len(line[i][1]) < _CHUNK_BYTES):
                chunk.append(line[i])
                size += len(line[i][1]) + 1
                i += 1
            try:
                self._unanswered += len(chunk)
                self._proc.spawn.send("".join(f"{text}\n" for _, text, _ in chunk))
            except OSError as e:
                self._stop()
                raise BackendCrash(f"coqtop pipe closed: {e}") from e
            self.loaded_sentences += len(chunk)
            for key, text, index in chunk:
                reply = self._read(self.config.open_timeout)
                if reply.error and isinstance(key, tuple) and key[0] == "hammer":
                    if self.hammer.tools.ok:  # one warning; the search goes on without the step
                        self.hammer.load_failed(text, reply.error)
                elif reply.error:
                    self._stop()
                    raise InitError(self._load_error(theorem, text, index, reply.error))
                self._line.append((key, reply.sid))
            if self.on_load is not None:
                self.on_load(i, len(line))

    def _load_error(self, theorem: Theorem, text: str, index: int | None, error: str) -> str:
        missing = _MISSING_LIBRARY.search(error)
        if isinstance(theorem, CoqFileTheorem) and index is not None:
            where = theorem.location(index)
            if missing:
                return f"{where}: cannot find library {missing.group(1)}: {logical_path_hint(missing.group(1))}"
            return f"{where}: the file does not compile before {theorem.name}: {error}"
        hint = f" ({logical_path_hint(missing.group(1))})" if missing else ""
        return f"header sentence {' '.join(text.split())[:80]!r} fails: {error}{hint}"

    def _reopen(self) -> None:
        """Restart coqtop on the same theorem (after it hung or died); states stay valid as paths.
        A restart that fails is tried again; ``max_restarts`` failures in a row are a crash."""
        assert self._theorem is not None
        for attempt in range(1, self.config.max_restarts + 1):
            self.restarts += 1
            # Stopped first: a coqtop that hung is alive, and a file theorem would otherwise go on
            # from it; a fresh one runs the file's sentences (or the header) again.
            self._stop()
            try:
                self.open(self._theorem)
                return
            except (InitError, BackendCrash) as e:
                self._stop()
                if attempt == self.config.max_restarts:
                    raise BackendCrash(f"coqtop could not be restarted ({attempt} tries): {e}") from e

    def goals(self, state: State) -> str:
        return state.goals

    def _route(self, path: tuple[str, ...]) -> tuple[int, list[str]]:
        """Sentences that make the live branch end at ``path``: back to the shared prefix, then replay.

        Returns the shared prefix length and the sentences; ``_arrive`` reads their answers.
        """
        live = [t for t, _ in self._branch]
        k = 0
        while k < min(len(live), len(path)) and live[k] == path[k]:
            k += 1
        back = []
        if k < len(live):
            back = [f"BackTo {self._branch[k - 1][1] if k else self._root_sid}."]
        return k, back + list(path[k:])

    def _arrive(self, k: int, path: tuple[str, ...]) -> None:
        if k < len(self._branch):
            reply = self._read(self.config.open_timeout)
            if reply.error:
                raise BackendCrash(f"BackTo failed: {reply.error}")
            del self._branch[k:]
        for tactic in path[k:]:
            reply = self._read(self.config.open_timeout)
            if reply.error:
                raise BackendCrash(f"replaying {tactic!r} failed: {reply.error}")
            self._branch.append((tactic, reply.sid))

    def _goto(self, path: tuple[str, ...]) -> None:
        k, sentences = self._route(path)
        self._write(sentences)
        self._arrive(k, path)

    def _context(self) -> tuple[str, str]:
        """What the open theorem's statement lives in (the prelude, then the header): where a step's
        cached answers (hammer's, Search's) hold."""
        if isinstance(self._theorem, CoqFileTheorem):
            prelude = self.config.prelude if self._theorem.add_imports else ""
        else:
            prelude = self.config.statement_prelude
        return (prelude, self._theorem.header)

    def apply(self, state: State, tactic: str, timeout: float) -> Outcome:
        """Route, tactic and Show go out in one write and are answered in order (no round trip
        between them); Show is there because coqtop prints goals only when their evar ids differ
        from the goals it printed last, and after BackTo a sibling tactic often reuses those ids."""
        if self._theorem is None:
            raise BackendCrash("no theorem is open")
        if uses_hammer_plugin(tactic):  # the hammer step: it runs as the reconstruction tactic it finds
            if isinstance(self._theorem, CoqFileTheorem) and not self._theorem.add_imports:
                return Failed("the hammer step in a file needs the prover's imports (--add-imports): its "
                              "reconstruction tactics come from Hammer.Tactics", rejected=True)
            return self.hammer.run(self, state, tactic, timeout, self._context())
        if is_lemma_search(tactic):  # Search's lemmas tried in turn; it runs as the first that closes the goal
            return self.lemma_search.run(self, state, timeout, self._context())
        sentence, why = check_tactic(tactic)
        if sentence is None:
            return Failed(why, rejected=True)
        path = tuple(state.key)
        # A dead coqtop (killed, an out-of-memory abort, SIGSEGV) is restarted. If it died running
        # the tactic, the tactic failed and the search goes on with the next one; if it died on the
        # way to the state, the tactic is tried again in the new process.
        for _ in range(self.config.max_restarts + 1):
            try:
                return self._apply(path, sentence, timeout)
            except _Died as e:
                died = e
            self._reopen()
            if died.during_tactic:
                return Failed(f"{died} while running this tactic; coqtop was restarted")
        raise BackendCrash(f"coqtop keeps dying on the way to this state: {died}")

    def _apply(self, path: tuple[str, ...], sentence: str, timeout: float) -> Outcome:
        if self._proc is None:
            self._reopen()
        limit = max(1, math.ceil(timeout))
        k, route = self._route(path)
        self._write(route + [f"Timeout {limit} {sentence}", "Show."])
        self._arrive(k, path)
        try:
            return self._run_tactic(path, sentence, limit)
        except _Died as e:
            e.during_tactic = True
            raise

    def _run_tactic(self, path: tuple[str, ...], sentence: str, limit: int) -> Outcome:
        start = time.monotonic()
        sid_before = self._tip_sid
        try:
            reply = self._read(limit + self.config.grace)
        except _NoAnswer:
            reply = self._interrupt()
            if reply is None:  # coqtop was restarted: the queued Show went with it
                return TimedOut(time.monotonic() - start)
        show = self._read(self.config.open_timeout)
        err = reply.error
        if err is not None:
            if err.startswith("Timeout!") or "User interrupt" in err:
                # Coq's clock starts when it reads the pipelined sentence, which can be before ours:
                # its Timeout means the tactic ran the whole limit.
                return TimedOut(max(float(limit), time.monotonic() - start))
            return Failed(err)
        if reply.sid == sid_before:
            return Failed(reply.output or "no change")
        self._branch.append((sentence, reply.sid))
        new_path = path + (sentence,)
        text = reply.output
        if not (text == "No more goals." or GOALS_HEAD.match(text)):
            text = show.output if show.error is None else self._show()
        if text == "No more goals.":
            return Finished(State(new_path, ""))
        if not GOALS_HEAD.match(text):
            return Failed(f"no goals to work on: {text}")
        goals = normalize_goals(text)
        return Next(State(new_path, goals, self._second_goal() if goal_count(goals) > 1 else ""))

    def _second_goal(self) -> str:
        """The second goal in full, hypotheses included (Show prints only its conclusion): what tells
        induction n from destruct n apart. One more sentence, for states with several goals only."""
        reply = self._send("Show 2.", self.config.open_timeout)
        return "" if reply.error else normalize_goals(reply.output)

    def probe(self, state: State, sentence: str, timeout: float) -> Probe:
        """Run ``sentence`` on ``state`` for the messages it prints, then undo it; stop whatever it
        left running (hammer's ATPs). No ``Timeout`` wrapper: hammer forks its ATP runs and fails
        under Coq's Timeout ("CoqHammer bug: Control.Timeout"), so an overrun is cut by SIGINT."""
        start = time.monotonic()
        try:
            return self._probe(state, sentence, timeout)
        except _Died as e:  # as for a tactic: a new coqtop, and this probe found nothing
            self._reopen()
            return Probe(f"Error: {e}\n\n", False, time.monotonic() - start)

    def _probe(self, state: State, sentence: str, timeout: float) -> Probe:
        if self._proc is None:
            self._reopen()
        path = tuple(state.key)
        k, route = self._route(path)
        self._write(route + [sentence if sentence.endswith(".") else sentence + "."])
        self._arrive(k, path)
        start = time.monotonic()
        sid_before = self._tip_sid
        try:
            reply = self._read(max(0.001, timeout))
            cut = False
        except _NoAnswer:
            reply, cut = self._interrupt(group=False), True
        elapsed = time.monotonic() - start
        if self._proc is not None:
            self._proc.stop_strays()
        if reply is None:  # coqtop was restarted
            return Probe("", True, elapsed)
        if cut:
            # hammer answers an interrupt while it waits for its ATPs, then may still print its own
            # failure and prompt once they are stopped: a late answer that a later command would read
            # as its own. A fresh coqtop cannot hold one (the theorem's budget is spent by now anyway).
            self._reopen()
            return Probe(reply.raw, True, elapsed)
        raw = reply.raw + self._resync()
        if self._tip_sid != sid_before:
            back = self._send(f"BackTo {sid_before}.", self.config.open_timeout)
            if back.error:
                raise BackendCrash(f"BackTo failed: {back.error}")
        return Probe(raw, cut, elapsed)

    def _resync(self) -> str:
        """Read up to the answer of a sentence of our own, and return what came before it. hammer's
        copies of coqtop share its output: one that ends can print an answer again (a failure and a
        prompt), which a later command would read as its own; they are all gone by now."""
        marker = f"prover_sync_{os.getpid()}_{self.tactic_calls}"
        self._write([f"Fail Check {marker}."])  # changes nothing; its error names the marker
        stale = []
        while True:
            reply = self._read(self.config.open_timeout)
            if marker in reply.raw:
                return "".join(stale)
            stale.append(reply.raw)
            self._unanswered += 1  # that prompt answered nothing we sent

    def _show(self) -> str:
        """Fetch the goals of the tip again (coqtop printed none, or the pipelined Show was interrupted).
        Show does not change the proof, so its state is left on top of the tactic's."""
        return self._send("Show.", self.config.open_timeout).output

    def _interrupt(self, group: bool = True) -> _Reply | None:
        """A tactic overran its Timeout: SIGINT, then restart coqtop if it still does not answer.
        ``group=False`` spares the processes coqtop forked (hammer's: copies of coqtop that would
        answer the interrupt on coqtop's own output)."""
        assert self._proc is not None
        self._proc.interrupt(group)
        try:
            return self._read(self.config.grace)
        except _NoAnswer:
            self._reopen()
            return None

    # -- proof text and the full check ----------------------------------------------------------
    def proof_text(self, tactics: list[str]) -> str:
        """The proof as it goes after the statement: each tactic as the sentence coqtop ran."""
        if isinstance(self._theorem, CoqFileTheorem):
            return self._theorem.proof_text(tactics)
        body = "".join(f"  {check_tactic(t)[0] or t}\n" for t in tactics)
        return f"Proof.\n{body}Qed."

    def check_source(self, theorem: Theorem, tactics: list[str]) -> str:
        """The file the full check compiles: trusted text only, plus the filtered tactics."""
        for t in tactics:
            sentence, why = check_tactic(t)
            if sentence is None:
                raise ValueError(f"tactic {t!r} refused: {why}")
            if uses_hammer_plugin(t):  # the proof must replay without the ATPs
                raise ValueError(f"tactic {t!r} refused: it calls CoqHammer's ATPs; use the "
                                 "reconstruction tactic hammer prints")
        return (f"{self.config.statement_prelude}\n{theorem.header}\n{theorem.statement}\n"
                f"{self.proof_text(tactics)}\n"
                f"Redirect \"assumptions\" Print Assumptions {theorem.name}.\n")

    def check(self, theorem: Theorem, tactics: list[str]) -> CheckResult:
        """Compile the whole file from scratch with coqc, then audit Print Assumptions."""
        if isinstance(theorem, CoqFileTheorem):
            plugin = next((t for t in tactics if uses_hammer_plugin(t)), None)
            if plugin is not None:  # the proof must replay without the ATPs
                return CheckResult(False, f"tactic {plugin!r} refused: it calls CoqHammer's ATPs")
            c = self.config
            return check_in_file(theorem, tactics, c.coqc, c.flags, c.limits, c.check_timeout,
                                 c.standard_axioms, c.prelude)
        if theorem_name(theorem.statement) != theorem.name:
            return CheckResult(False, "the statement does not declare the theorem's name")
        try:
            source = self.check_source(theorem, tactics)
        except ValueError as e:
            return CheckResult(False, str(e))
        work = WorkDir("prover-check-")
        try:
            path = os.path.join(work.path, "ProverCheck.v")
            with open(path, "w", encoding="utf-8") as f:
                f.write(source)
            run = run_once([self.config.coqc, "-q", *self.config.flags, "ProverCheck.v"], work.path,
                           self.config.limits, self.config.check_timeout)
            if run.timed_out:
                return CheckResult(False, f"coqc ran past {self.config.check_timeout:.0f} s",
                                   elapsed=run.elapsed, source=source)
            if run.returncode != 0:
                msg = " ".join((run.stderr + run.stdout).split())[-600:]
                return CheckResult(False, f"coqc failed: {msg}", elapsed=run.elapsed, source=source)
            try:
                with open(os.path.join(work.path, "assumptions.out"), encoding="utf-8") as f:
                    report = f.read()
            except OSError:
                return CheckResult(False, "Print Assumptions gave no output", elapsed=run.elapsed,
                                   source=source)
        finally:
            work.cleanup()
        ok, axioms, message = audit_assumptions(report, set(self.config.standard_axioms) |
                                                set(theorem.allowed_axioms))
        return CheckResult(ok, message, axioms, run.elapsed, source)

    def info(self) -> BackendInfo:
        try:
            out = subprocess.run([self.config.coqtop, "-v"], capture_output=True, text=True,
                                 timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        m = re.search(r"version (\S+)", out)
        return BackendInfo("coq", m.group(1) if m else "unknown")


def audit_assumptions(report: str, allowed: set[str]) -> tuple[bool, tuple[str, ...], str]:
    """Read Print Assumptions output: every listed assumption must be an allowed axiom."""
    text = report.strip()
    if text == "Closed under the global context":
        return True, (), ""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "Axioms:":
        return False, (), f"unexpected Print Assumptions output: {text[:200]}"
    axioms: list[str] = []
    for line in lines[1:]:
        if not line.strip() or line[0].isspace():
            continue  # the type of the previous entry, on continuation lines
        m = re.match(r"(\S+)(?:\s+:.*)?$", line)
        if not m:
            return False, tuple(axioms), f"unexpected assumption: {line.strip()[:200]}"
        axioms.append(m.group(1))
    extra = [a for a in axioms if a not in allowed]
    if extra:
        return False, tuple(axioms), f"proof depends on non-standard axioms: {', '.join(extra)}"
    return True, tuple(axioms), ""
