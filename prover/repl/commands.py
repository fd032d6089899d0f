"""What each request does, given its backend and generator: no threads and no I/O here.

The server owns concurrency and cancellation; these functions only watch the ``cancel`` event
between prover calls (the server also stops the prover process, which ends a long call at once).
"""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Callable

from ..backends.base import Backend, Finished, InitError, Next, Theorem
from ..backends.coq.document import CoqDocument, CoqFileTheorem, FileContextError
from ..backends.coq.project import CoqProject, ProjectError, check_flags
from ..backends.coq.text import CoqSyntaxError, split_sentences, theorem_name
from ..components import BackendOptions
from ..components import make_scorer_for
from ..models.base import Generator
from ..search.best_first import Progress, search
from .protocol import (CheckReply, CheckRequest, ProveRequest, RequestError, ResultReply, SuggestRequest,
                       Suggestion, SuggestionsReply, TheoremSpec)
from .sessions import Session, TacticFailed


EXPENSIVE_STEP_TIMEOUT = 600.0  # the backend caps it at the step's own budget (--hammer-timeout)


class Cancelled(Exception):
    """The request was cancelled; the server answers `cancelled`."""


def resolve_theorem(spec: TheoremSpec, backend: str, id) -> tuple[Theorem, tuple[str, ...]]:
    """The theorem a request names, and the tactics of its proof so far (from ``source`` only)."""
    if backend != "coq" and (spec.file is not None or spec.source is not None):
        raise RequestError("'file' and 'source' are read as Coq text: give 'statement' for this backend", id)
    if spec.statement is not None:
        name = theorem_name(spec.statement)
        if name is None:
            raise RequestError("'statement' must start with Theorem/Lemma/... NAME", id)
        return Theorem(name, spec.statement.strip(), spec.header, spec.allow_axioms), ()
    if spec.file is not None:
        try:
            document = CoqDocument.read(spec.file, extra_flags=spec.coq_flags, project_root=spec.project)
            return document.theorem(spec.name, spec.allow_axioms, spec.add_imports), ()
        except FileContextError as e:
            raise RequestError(str(e), id) from None
    return theorem_from_source(spec.source or "", spec.allow_axioms, id)


def backend_options(spec: TheoremSpec | None, options: BackendOptions, backend: str, id) -> BackendOptions:
    """A statement's or a buffer's Coq flags (a file theorem carries its own): those of the
    _CoqProject at or above 'project', then 'coq_flags'."""
    if spec is None or spec.file is not None or (spec.project is None and not spec.coq_flags):
        return options
    if backend != "coq":
        raise RequestError("'project' and 'coq_flags' are for the coq backend", id)
    try:
        if spec.project is not None:
            flags = CoqProject.for_file(spec.project, spec.coq_flags, root=spec.project).flags
        else:
            flags = check_flags(spec.coq_flags)
    except ProjectError as e:
        raise RequestError(str(e), id) from None
    return replace(options, coq_flags=options.coq_flags + flags)


_BULLET_OR_BRACE = set("-+*{}")


def theorem_from_source(source: str, allow_axioms: tuple[str, ...], id) -> tuple[Theorem, tuple[str, ...]]:
    """An editor's buffer up to the cursor: its last theorem, and the proof sentences after it.

    Bullets and braces only focus goals: dropped, the same tactics run on the goals in order, and
    the state shows every goal left rather than the focused one.
    """
    try:
        sentences = split_sentences(source)
    except CoqSyntaxError:
        # The cursor may sit inside an unfinished sentence: ignore the text after the last '.'.
        cut = source.rstrip().rfind(".")
        try:
            sentences = split_sentences(source[: cut + 1]) if cut >= 0 else []
        except CoqSyntaxError as e:
            raise RequestError(f"cannot read 'source': {e}", id) from None
    for k in range(len(sentences) - 1, -1, -1):
        name = theorem_name(sentences[k].text)
        if name is not None:
            tactics = []
            for s in sentences[k + 1:]:
                clean = s.clean
                if clean in _BULLET_OR_BRACE or set(clean) <= _BULLET_OR_BRACE:
                    continue
                if clean.startswith("Proof") and not tactics:
                    continue
                tactics.append(clean)
            statement = sentences[k].text
            return Theorem(name, statement.strip(), source[: sentences[k].start], allow_axioms), tuple(tactics)
    raise RequestError("no Theorem/Lemma/... in 'source' before the cursor", id)


def prove(request: ProveRequest, theorem: Theorem, backend: Backend, generator: Generator,
          cancel: threading.Event, on_progress: Callable[[Progress], None] | None,
          online: bool = False) -> ResultReply:
    """Search; with ``online``, a verified proof's steps join the generator (later requests use them)."""
    result = search(theorem, backend, generator, request.search, on_progress=on_progress, cancel=cancel,
                    scorer=make_scorer_for(request.search))
    if cancel.is_set():
        raise Cancelled()
    if online and result.proved:
        generator.learn(list(zip(result.proof_goals, result.tactics)))
    if result.failure_reason == "init_error":
        raise RequestError(result.failure_message, request.id, "init_error")
    return ResultReply.of_search(request.id, request.backend, generator.name, result,
                                 getattr(generator, "model_id", None))


def suggest(request: SuggestRequest, session: Session | None, tactics: tuple[str, ...], generator: Generator,
            cancel: threading.Event) -> SuggestionsReply:
    """Ranked candidates for the goal; with ``check``, only those the prover runs without an error or
    a timeout and that change the goals, each with the goals it leaves."""
    start = time.monotonic()
    if session is None:
        goals = request.goal or ""
        ranked = generator.generate(goals, request.n)
        return SuggestionsReply(request.id, goals, tuple(Suggestion(c.tactic, c.score) for c in ranked),
                                False, len(ranked), time.monotonic() - start)
    try:
        state = session.state_after(tactics, request.tactic_timeout)
    except InitError as e:
        raise RequestError(str(e), request.id, "init_error") from None
    except TacticFailed as e:
        raise RequestError(f"the proof so far does not run: {e}", request.id) from None
    if state is None:
        raise RequestError("the proof so far is already complete", request.id)
    ranked = generator.generate(state.goals, request.n)
    if not request.check:
        return SuggestionsReply(request.id, state.goals, tuple(Suggestion(c.tactic, c.score) for c in ranked),
                                False, len(ranked), time.monotonic() - start)
    kept: list[Suggestion] = []
    for cand in ranked:
        if cancel.is_set():
            raise Cancelled()
        # An expensive step (Coq's hammer) runs under the backend's own budget, and is suggested as
        # the tactic it resolved to (hammer's reconstruction), which is what goes into the proof.
        timeout = EXPENSIVE_STEP_TIMEOUT if cand.expensive else request.tactic_timeout
        outcome = session.backend.apply(state, cand.tactic, timeout)
        tactic = getattr(outcome, "tactic", None) or cand.tactic
        if isinstance(outcome, Finished):
            kept.append(Suggestion(tactic, cand.score, "", True))
        elif isinstance(outcome, Next) and outcome.state.goals != state.goals:  # not a no-op
            kept.append(Suggestion(tactic, cand.score, outcome.state.goals, False))
    # Tactics that close the proof first (what the user most wants), then the generator's order.
    kept.sort(key=lambda s: not s.complete)
    return SuggestionsReply(request.id, state.goals, tuple(kept), True, len(ranked), time.monotonic() - start)


def check(request: CheckRequest, theorem: Theorem, backend: Backend) -> CheckReply:
    result = backend.check(theorem, list(request.tactics))
    errors = () if result.ok else (result.message,)
    tactics = list(request.tactics)
    proof = theorem.proof_text(tactics) if isinstance(theorem, CoqFileTheorem) and result.ok \
        else backend.proof_text(tactics)
    return CheckReply(request.id, result.ok, errors, result.axioms, proof, result.elapsed)

