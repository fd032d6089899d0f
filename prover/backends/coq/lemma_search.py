"""The lemma-search step: Coq's own ``Search`` for lemmas in scope that match the goal, each one applied.

A library proof is very often one lemma of another module applied (``apply Z.add_move_r``,
``now apply Z.pow_gt_lin_r``), a lemma that no earlier proof in reach mentions, so retrieving tactics
cannot propose it; where the hammer cannot run (a file opened without the prover's libraries) nothing
else finds it either. Coq can: the first goal's conclusion, with its hypotheses' names (the variables)
and the names of its leading ``forall`` as holes, is a pattern, and ``SearchPattern`` lists the lemmas
whose conclusion matches it, ``Search`` those that hold it anywhere (an ``iff`` one side of which it
is); then the same with its numerals as holes too (no lemma is about ``3 ^ n``, one is about
``a ^ n``). An implication ``A -> B`` is also searched as the iffs ``A <-> B`` and ``B <-> A``, and a goal
that says ``>`` or ``>=`` also on the state restated with ``<`` and ``<=``, the form lemmas are stated in,
and an existential (``ex_RInt f a b``) also after ``eexists``, with its witness an evar (``is_RInt f a b ?If``)
and the existentials among its hypotheses taken apart (``ex_RInt f a b`` gives ``x`` and ``is_RInt f a b x``).
The step runs these on the state, then tries ``solve [ eapply L; first [ eassumption | easy | eauto ] ]`` for each
lemma found, conclusion matches first (an iff also as ``apply <- L`` and ``apply -> L``, a product also
after ``intros``, and ssreflect's ``apply: L`` where it is loaded), and runs as the first one that
closes the goal: the proof records only that tactic.

The pattern is made from the goal Coq printed, never from proposed text: the step is the bare word
``lemma_search`` (any other sentence that mentions it is an ordinary tactic), and the names it applies
are the ones Coq listed.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Protocol

from ...learning.goals import first_goal
from ..base import Failed, Finished, Next, Outcome, State
from .hammer import Probe

LEMMA_SEARCH = "lemma_search"
MAX_LEMMAS = 24  # lemmas tried per state, conclusion matches first
MAX_WITNESS_LEMMAS = 12  # more, for the goal with its witness an evar (after eexists)
MAX_PATTERN = 300  # characters: a longer conclusion matches too little to be worth a query
QUERY_SECONDS = 3.0  # for each Search command
TRY_SECONDS = 1.0  # for each lemma's try (coqtop's Timeout is in whole seconds)

_SEP = re.compile(r"^=+$", re.M)
_RESULT = re.compile(r"^([A-Za-z_][\w'.]*):(?:\s|$)", re.M)
_IDENT = r"(?<![\w'.]){}(?![\w'])"
# A conclusion the step cannot make a pattern of: local definitions and case analyses (their names and
# branches). Binders are fine (``is_RInt (fun _ : R => _) _ _ _``), and so is an implication: SearchPattern
# matches a lemma's last premises with its conclusion, and ``apply`` takes as many premises as it needs.
_REFUSED = re.compile(r"\b(?:let|match)\b")
_EVAR = re.compile(r"\?[A-Za-z_][\w']*")
_APPLY = re.compile(r"\b(?:eapply |apply <- |apply -> |apply: )")
_PRODUCT = re.compile(r"forall\s+([^,]*?),\s*")  # a goal's leading binders
# ``>`` and ``>=`` (not ``->``, ``<->``, ``=>``, ``>>``): libraries state their lemmas with ``<``/``<=``.
_GREATER = re.compile(r"(?<![-<=>])>(?!>)")
# Tactics that restate ``>``/``>=`` as ``<``/``<=`` (nat's, Z's, R's), tried in turn on the state; the first
# that leaves fewer of them is kept. One naming what is not in scope fails at once.
FLIPS = ("unfold gt, ge in *", "rewrite ?Z.gt_lt_iff, ?Z.ge_le_iff in *", "unfold Rgt, Rge in *")
# Takes apart each hypothesis that is an existential or unfolds to one (``ex_RInt f a b``), so that its
# witness and its proof are hypotheses the lemma's premises can be closed with (``is_RInt f a b x``).
DESTRUCT_EXISTS = ("repeat match goal with H : ?T |- _ => let U := eval hnf in T in "
                   "match U with ex _ => destruct H | ex2 _ _ => destruct H | sig _ => destruct H "
                   "| sigT _ => destruct H end end")


def is_lemma_search(tactic: str) -> bool:
    return tactic.strip().rstrip(".").strip() == LEMMA_SEARCH


def general_pattern(pattern: str) -> str | None:
    """The pattern with its numerals as holes too (``_ < 3 ^ _`` matches no lemma, ``_ < _ ^ _`` does);
    None when it has none."""
    general = re.sub(r"(?<![\w'.])\d+(?![\w'])", "_", pattern)
    return general if general != pattern and _specific(general) else None


def _specific(pattern: str) -> bool:
    """Something to match on: a constant's name, or two operators besides equality and arrows (``_ < _``
    alone would list every lemma about the order, ``_ -> _`` every lemma). A binder's names and types
    (``forall n : nat,``) are not something to match on."""
    bound: set[str] = set()

    def binder(m: re.Match) -> str:
        bound.update(re.findall(r"[A-Za-z_][\w']*", m.group(1)))
        return " "

    rest = re.sub(r"\b(?:forall|exists|fun)\b([^,]*?)(?:,|=>)", binder, pattern)
    rest = re.sub(r"[A-Za-z_][\w'.]*", lambda m: "" if m.group() in bound else m.group(), rest)
    rest = re.sub(r"(?<![\w'])_(?![\w'])|%\w+|<?->|[\s()=]", "", rest)
    return bool(re.search(r"[A-Za-z]", rest)) or len(rest) >= 2


def implication(pattern: str) -> tuple[str, str, str] | None:
    """``P -> A -> B`` split at its top-level arrows (outside parentheses) as (``P -> ``, ``A``, ``B``);
    None without one."""
    depth, arrows = 0, []
    for m in re.finditer(r"[()]|<?->", pattern):
        if m.group() == "(":
            depth += 1
        elif m.group() == ")":
            depth -= 1
        elif depth == 0:
            arrows.append(m)
    if not arrows or any(m.group() != "->" for m in arrows):
        return None
    start = arrows[-2].end() if len(arrows) > 1 else 0
    head = pattern[:start].strip()
    a, b = pattern[start:arrows[-1].start()].strip(), pattern[arrows[-1].end():].strip()
    return (head + " " if head else "", a, b) if a and b else None


def queries(pattern: str) -> list[str]:
    """The Search commands for a pattern, most precise first. An implication ``A -> B`` is also what an
    iff ``A <-> B`` (or ``B <-> A``) gives when applied (``apply Nat.nlt_ge`` proves ``~ n < m -> m <= n``),
    and ``P -> A -> B`` what ``P -> (A <-> B)`` gives (``Z.mul_lt_mono_pos_l``)."""
    out = []
    for p in (pattern, general_pattern(pattern)):
        if not p:
            continue
        out += [f"SearchPattern ({p}).", f"Search ({p})."]
        split = implication(p)
        if split:
            head, a, b = split
            out += [f"SearchPattern ({head}({a} <-> {b})).", f"SearchPattern ({head}({b} <-> {a}))."]
    return out


def greater_count(goals: str) -> int:
    return len(_GREATER.findall(goals))


def _binder_names(header: str) -> list[str]:
    """The names a ``forall`` binds: ``n m : nat`` or ``(n : nat) (l : list nat)``."""
    groups = re.findall(r"\(([^()]*)\)", header) or [header]
    return [n for g in groups for n in re.findall(r"[A-Za-z_][\w']*", g.split(":")[0])]


def search_pattern(goals: str) -> str | None:
    """The first goal's conclusion with each hypothesis name (and each existential) as a hole, and
    without its leading ``forall`` (the names it binds as holes too: ``apply`` instantiates them just
    the same); None when it defines or matches, or nothing specific is left."""
    goal = first_goal(goals) if _SEP.search(goals) else None  # a focused goal only
    if goal is None:
        return None
    names, conclusion = list(goal.names), goal.conclusion
    if not conclusion or len(conclusion) > MAX_PATTERN or _REFUSED.search(conclusion):
        return None
    product = _PRODUCT.match(conclusion)
    if product:
        names += _binder_names(product.group(1))
        conclusion = conclusion[product.end():]
    pattern = re.sub(r"\?[\w']+", "_", conclusion)
    for name in sorted(set(names), key=len, reverse=True):
        pattern = re.sub(_IDENT.format(re.escape(name)), "_", pattern)
    return pattern if _specific(pattern) else None


def introduces(goals: str) -> bool:
    """Whether the first goal is a product (``forall``, or an implication): its lemma may also be
    applied after ``intros``."""
    goal = first_goal(goals)
    return bool(goal and (_PRODUCT.match(goal.conclusion) or implication(goal.conclusion)))


def search_results(output: str) -> list[tuple[str, bool]]:
    """The lemmas a Search command listed (``name: statement``, the statement maybe on more lines), in
    its order, each with whether its statement is an iff; nothing from an error (a pattern Coq cannot
    read)."""
    starts = list(_RESULT.finditer(output))
    out = []
    for k, m in enumerate(starts):
        if m.group(1) in ("Error", "Warning", "Toplevel"):
            continue
        statement = output[m.end():starts[k + 1].start() if k + 1 < len(starts) else len(output)]
        out.append((m.group(1), "<->" in statement))
    return out


@dataclass
class Loaded:
    """What the file has loaded of the tactics a try may use; each is assumed until Coq says otherwise
    (a name it cannot find, a syntax it cannot read), once per step."""

    ssr: bool = True  # ssreflect's apply:
    lia: bool = True
    lra: bool = True

    def missing(self, step: str, message: str) -> bool:
        """Whether the try failed only because it uses something not loaded (then it is marked off)."""
        if "apply:" in step and self.ssr and "Syntax error" in message:
            self.ssr = False
            return True
        for tactic in ("lia", "lra"):
            if getattr(self, tactic) and f"reference {tactic} was not found" in message:
                setattr(self, tactic, False)
                return True
        return False


def tries(name: str, iff: bool, intro: bool, loaded: Loaded) -> list[str]:
    """How a lemma is tried. ``eapply`` of an iff takes the first side that unifies, and a goal
    ``Z.succ n < Z.succ m`` unifies with either side of ``n < m <-> Z.succ n < Z.succ m``: an iff is also
    tried in each direction. On an implication, also after ``intros`` (``n > m -> m > p -> n > p`` is
    ``Z.lt_trans`` with the hypotheses found by ``eauto``). Where ssreflect is loaded, also its ``apply:``,
    whose unification sees through the canonical structures of Coquelicot's and mathcomp's statements
    where ``eapply``'s does not. Side conditions are closed by a hypothesis (``eassumption``: its evars
    instantiated from it, ``?f x = g x`` by ``f x = g x``, where ``easy`` would pick ``?f := g``), then
    ``easy``, then lia and lra where they are loaded, then ``eauto`` (last: it can succeed on ``0 <= c``
    and leave a goal behind)."""
    close = "first [ " + " | ".join(["eassumption", "easy"] + [t for t in ("lia", "lra") if getattr(loaded, t)] + ["eauto"]) + " ]"
    applies = [f"eapply {name}"] + ([f"apply <- {name}", f"apply -> {name}"] if iff else [])
    if loaded.ssr:
        applies.append(f"apply: {name}")
    out = [f"solve [ {a}; {close} ]" for a in applies]
    if intro:
        out += [f"solve [ intros; {a}; {close} ]" for a in applies]
    return out


def _focused(state: State) -> bool:
    """Whether the state has a goal to work on (not only evars on the shelf)."""
    return bool(_SEP.search(state.goals))


def _interleave(a: list, b: list) -> list:
    out = [x for pair in zip(a, b) for x in pair]
    return out + a[len(b):] + b[len(a):]


class LemmaSearchHost(Protocol):
    def probe(self, state: State, sentence: str, timeout: float) -> Probe: ...

    def apply(self, state: State, tactic: str, timeout: float) -> Outcome: ...


@dataclass
class LemmaSearchStep:
    """The step of one backend: its counters, and what each Search command listed in each context.

    A command lists the same lemmas wherever it runs under the same context (what comes before the
    statement): a search asks it again and again, on states whose conclusion is the same (after
    ``intros``, after a rewrite in a hypothesis), and each asking took 0.1-0.2 s of the step's allowance.
    What is kept is the context's lemmas only: the hypotheses Search also lists are the state's, and
    the closers (``eassumption``, ``eauto``) use those anyway."""

    calls: int = 0
    queries: int = 0  # Search commands sent to Coq (the others were answered from the cache)
    _context: tuple = field(default=(), repr=False)
    _listed: dict[str, list[tuple[str, bool]]] = field(default_factory=dict, repr=False)  # in _context

    def run(self, host: LemmaSearchHost, state: State, timeout: float, context: tuple = ()) -> Outcome:
        """``context`` names what the theorem lives in (prelude, header): the answers kept hold there."""
        if context != self._context:  # another theorem: only the last one's answers are kept
            self._context, self._listed = context, {}
        pattern = search_pattern(state.goals)
        if pattern is None:
            return Failed("lemma_search: the goal gives no pattern to search for", rejected=True)
        self.calls += 1
        deadline = time.monotonic() + timeout
        # Where the goal says > or >=, the search runs on the state restated with < and <= too, and a
        # lemma found there is applied after the same restating (one sentence, from this state).
        views = [("", state, pattern)]
        flip = self._flip(host, state, deadline)
        if flip is not None:
            views.insert(0, flip)
        found = self._search(host, views, deadline, MAX_LEMMAS)
        # A goal that is an existential (or a definition that unfolds to one, Coquelicot's ex_RInt) is
        # also searched with its witness an evar; those lemmas are tried in turn with the others.
        intro = introduces(state.goals)
        witness = self._witness(host, state, intro, deadline)
        if witness is not None:
            found = _interleave(found, self._search(host, [witness], deadline, MAX_WITNESS_LEMMAS))
        loaded = Loaded()
        tried = 0
        for prefix, name, iff in found:
            tried += 1
            k = 0
            while k < len(steps := tries(name, iff, intro, loaded)):
                left = deadline - time.monotonic()
                if left < 0.5:
                    break
                sentence = f"{prefix}; {steps[k]}" if prefix else steps[k]
                outcome = host.apply(state, sentence, min(TRY_SECONDS, left))
                if isinstance(outcome, Next) and not _focused(outcome.state):
                    # Closed, but for evars on the shelf (a witness's proof: RiemannInt ?pr): again,
                    # with them as goals for the closers, or the state is one no tactic can work on.
                    sentence = _APPLY.sub(r"unshelve \g<0>", sentence, count=1)
                    outcome = host.apply(state, sentence, min(TRY_SECONDS, max(0.5, deadline - time.monotonic())))
                if isinstance(outcome, Finished) or isinstance(outcome, Next) and _focused(outcome.state):
                    return replace(outcome, tactic=sentence)
                if not loaded.missing(steps[k], getattr(outcome, "message", "")):
                    k += 1  # else the same try again, without what is missing
        return Failed(f"lemma_search: none of the {tried} lemmas Search found for {pattern} closes the goal")

    def _search(self, host: LemmaSearchHost, views: list[tuple[str, State, str]], deadline: float,
                limit: int) -> list[tuple[str, str, bool]]:
        """The context's lemmas Search lists for each view's pattern, as (restating, lemma, iff), at
        most limit."""
        found: list[tuple[str, str, bool]] = []
        for prefix, view, p in views:
            for command in queries(p):
                left = deadline - time.monotonic()
                if left <= 0 or len(found) >= limit:
                    return found[:limit]
                listed = self._listed.get(command)
                if listed is None:
                    self.queries += 1
                    probe = host.probe(view, command, min(QUERY_SECONDS, left))
                    if probe.timed_out:
                        break
                    goal = first_goal(view.goals)
                    local = set(goal.names) if goal else set()
                    listed = [(n, iff) for n, iff in search_results(probe.output) if n not in local]
                    self._listed[command] = listed
                for name, iff in listed:
                    if not any(f[0] == prefix and f[1] == name for f in found):
                        found.append((prefix, name, iff))
        return found[:limit]

    @staticmethod
    def _witness(host: LemmaSearchHost, state: State, intro: bool, deadline: float) -> tuple[str, State, str] | None:
        """The state after ``eexists`` (after ``intros`` on a product, and with the existentials among the
        hypotheses taken apart), when that leaves as many goals, the first holding a new evar, the
        witness: ``ex_RInt f a b`` becomes ``is_RInt f a b ?If``, which lemmas state. eexists on a
        conjunction (two goals) or an equation (no evar) is not kept."""
        left = deadline - time.monotonic()
        if left < 0.5:
            return None
        tactic = f"intros; {DESTRUCT_EXISTS}; eexists" if intro else f"{DESTRUCT_EXISTS}; eexists"
        outcome = host.apply(state, tactic, min(TRY_SECONDS, left))
        if not isinstance(outcome, Next):
            return None
        before, after = first_goal(state.goals), first_goal(outcome.state.goals)
        if before is None or after is None or after.count != before.count or \
                len(_EVAR.findall(after.conclusion)) <= len(_EVAR.findall(before.conclusion)):
            return None
        pattern = search_pattern(outcome.state.goals)
        return (tactic, outcome.state, pattern) if pattern else None

    @staticmethod
    def _flip(host: LemmaSearchHost, state: State, deadline: float) -> tuple[str, State, str] | None:
        before = greater_count(state.goals)
        if not before:
            return None
        for tactic in FLIPS:
            left = deadline - time.monotonic()
            if left < 0.5:
                return None
            outcome = host.apply(state, tactic, min(TRY_SECONDS, left))
            if isinstance(outcome, Next) and greater_count(outcome.state.goals) < before:
                pattern = search_pattern(outcome.state.goals)
                return (tactic, outcome.state, pattern) if pattern else None
        return None
