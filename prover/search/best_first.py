"""Best-first proof search: expand the cheapest open state, try the generator's tactics on it.

A proof is reported only after the backend's full check accepts it; a proof the check refuses is
recorded and the search goes on.
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Callable

from ..backends.base import (Backend, BackendCrash, CheckResult, Failed, Finished, InitError, Next,
                             Theorem, TimedOut)
from ..models.base import Candidate, Generator
from .scoring import SCORERS, Scorer, make_scorer
from .tree import Edge, EdgeKind, Node, SearchTree, Status

PRIORITIES = tuple(SCORERS)
FAILURE_REASONS = ("exhausted", "budget", "timeout", "crash", "init_error", "rejected", "cancelled")


@dataclass(frozen=True)
class SearchConfig:
    max_expansions: int = 100
    candidates: int = 32  # per expansion
    timeout: float = 600.0  # wall clock per theorem, seconds
    tactic_timeout: float = 5.0
    priority: str = "llemma"  # llemma: sum of -mean token log-prob; reprover: -sum of log-probs
    expand_batch: int = 1  # open states sent to the generator in one call
    value_model: str | None = None  # the learned scorer's model file, for priority "value"
    # Seconds one tactic (by its text) may spend failing or timing out in one search; once spent, the
    # search tries it only when nothing else is left (rather than end exhausted). None: no such limit.
    # A tactic that fails slowly on one state mostly fails slowly on its neighbours too (sauto,
    # vm_compute, the hammer step); without a limit it can take most of a time-bound search.
    tactic_allowance: float | None = None

    def __post_init__(self) -> None:
        if self.priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}")
        if self.priority == "value" and not self.value_model:
            raise ValueError("priority value needs a value model file (--value-model)")
        for name in ("max_expansions", "candidates", "expand_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.timeout <= 0 or self.tactic_timeout <= 0:
            raise ValueError("time limits must be positive")
        if self.tactic_allowance is not None and self.tactic_allowance <= 0:
            raise ValueError("the tactic allowance must be positive")


def step_cost(candidate: Candidate, priority: str) -> float:
    """The cost one tactic adds to its path under a path rule (llemma, reprover; lower is better)."""
    return make_scorer(priority).cost(0.0, candidate, None)


@dataclass(frozen=True)
class Progress:
    expansions: int
    nodes: int
    tactic_calls: int
    best_depth: int
    elapsed: float


@dataclass
class SearchResult:
    theorem: str
    proved: bool
    tactics: list[str]
    proof: str
    expansions: int
    tactic_calls: int
    elapsed: float
    failure_reason: str | None
    failure_message: str = ""
    axioms: list[str] = field(default_factory=list)
    check_seconds: float = 0.0
    generator_seconds: float = 0.0
    backend_seconds: float = 0.0
    proof_goals: list[str] = field(default_factory=list)  # the goals each tactic of the proof ran on
    tree: SearchTree | None = field(default=None, repr=False)
    check: CheckResult | None = field(default=None, repr=False)  # the full check that accepted the proof

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("tree", "check")}
        out = asdict(SearchResult(**d))  # copies of the lists, without walking the tree
        del out["tree"], out["check"]
        return out


    def graph_json(self) -> str:
        return self.tree.to_json() if self.tree else "{}"


class _Search:
    def __init__(self, theorem: Theorem, backend: Backend, generator: Generator, config: SearchConfig,
                 on_progress: Callable[[Progress], None] | None, cancel: threading.Event | None,
                 scorer: Scorer | None = None) -> None:
        self.theorem, self.backend, self.generator, self.config = theorem, backend, generator, config
        self.scorer = scorer or make_scorer(config.priority)
        self.on_progress, self.cancel = on_progress, cancel
        self.start = time.monotonic()
        self.expansions = self.tactic_calls = 0
        self.gen_seconds = self.backend_seconds = self.check_seconds = 0.0
        self.tree: SearchTree | None = None
        self.rejected: list[str] = []
        self.wasted: dict[str, float] = {}  # seconds each tactic spent failing or timing out
        # Tries of tactics whose allowance is spent, as heap entries: run only if the search would
        # otherwise end exhausted, cheapest first.
        self.held: list[tuple[float, int, int, Candidate]] = []
        self._held_order = itertools.count()  # ties in the held heap never compare candidates

    def spent(self, tactic: str) -> bool:
        """Whether the tactic has used up its allowance of failed time in this search."""
        allowance = self.config.tactic_allowance
        return allowance is not None and self.wasted.get(tactic, 0.0) >= allowance

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def result(self, proved: bool, reason: str | None, message: str = "", tactics: list[str] = (),
               check: CheckResult | None = None, goals: list[str] = ()) -> SearchResult:
        tactics = list(tactics)
        return SearchResult(
            self.theorem.name, proved, tactics, self.backend.proof_text(tactics) if proved else "",
            self.expansions, self.tactic_calls, self.elapsed(), reason, message,
            list(check.axioms) if check else [], self.check_seconds, self.gen_seconds,
            self.backend_seconds, list(goals), self.tree, check)

    def stop_reason(self) -> str | None:
        if self.cancel is not None and self.cancel.is_set():
            return "cancelled"
        if self.elapsed() >= self.config.timeout:
            return "timeout"
        return None

    def run(self) -> SearchResult:
        set_deadline = getattr(self.backend, "set_deadline", None)
        if set_deadline is not None:  # a backend that restarts slowly bounds its restarts by this
            set_deadline(self.start + self.config.timeout)
        try:
            root = self.backend.open(self.theorem)
        except InitError as e:
            return self.result(False, "init_error", str(e))
        except BackendCrash as e:
            return self.result(False, "crash", str(e))
        self.tree = SearchTree(root)
        # Entries: (cost, node id, k, None) expands a node; (cost, node id, k, candidate) is an
        # expensive candidate deferred from the node's expansion until its cost comes up.
        heap: list[tuple[float, int, int, Candidate | None]] = [(0.0, 0, 0, None)]
        out_of_expansions = False
        try:
            while heap or self.held:
                reason = self.stop_reason()
                if reason:
                    return self.result(False, reason)
                if not heap:  # nothing else is left to try: the tries held back get their turn
                    _, node_id, _, cand = heapq.heappop(self.held)
                    found = self.deferred(self.tree.nodes[node_id], cand, heap, last_resort=True)
                    if found is not None:
                        return found
                    continue
                if heap[0][3] is not None:
                    _, node_id, _, cand = heapq.heappop(heap)
                    found = self.deferred(self.tree.nodes[node_id], cand, heap)
                    if found is not None:
                        return found
                    continue
                if self.expansions >= self.config.max_expansions:
                    # No more expansions; the deferred tries already queued still run.
                    out_of_expansions = True
                    heap = [entry for entry in heap if entry[3] is not None]
                    heapq.heapify(heap)
                    continue
                batch: list[Node] = []
                while heap and heap[0][3] is None and len(batch) < min(
                        self.config.expand_batch, self.config.max_expansions - self.expansions):
                    node = self.tree.nodes[heapq.heappop(heap)[1]]
                    if node.status == Status.OPEN and not node.expanded:
                        batch.append(node)
                if not batch:
                    continue
                found = self.expand(batch, heap)
                if found is not None:
                    return found
        except BackendCrash as e:
            return self.result(False, "crash", str(e))
        if self.stop_reason():
            return self.result(False, self.stop_reason())
        if out_of_expansions:
            return self.result(False, "budget")
        if self.rejected:
            return self.result(False, "rejected", self.rejected[-1])
        return self.result(False, "exhausted")

    def expand(self, batch: list[Node], heap: list) -> SearchResult | None:
        t0 = time.monotonic()
        proposals = self.generator.generate_batch([n.goals for n in batch], self.config.candidates)
        self.gen_seconds += time.monotonic() - t0
        for node, candidates in zip(batch, proposals):
            self.expansions += 1
            candidates = candidates[: self.config.candidates]
            prefetch = getattr(self.backend, "prefetch", None)  # optional: a backend that batches a state's steps
            if prefetch is not None and not self.stop_reason():
                remaining = self.config.timeout - self.elapsed()
                t1 = time.monotonic()
                prefetch(node.state, [c.tactic for c in candidates
                                      if not c.expensive and not self.spent(c.tactic)],
                         max(0.001, min(self.config.tactic_timeout, remaining)))
                self.backend_seconds += time.monotonic() - t1
            for k, cand in enumerate(candidates):
                if self.stop_reason():
                    return None  # the loop reports it
                if self.spent(cand.tactic):
                    node.pending += 1
                    self.hold(node, cand)
                    continue
                if cand.expensive:
                    node.pending += 1
                    heapq.heappush(heap, (self.scorer.cost(node.cost, cand, node.state), node.id, k + 1, cand))
                    continue
                found = self.try_tactic(node, cand, heap)
                if found is not None:
                    return found
            self.tree.mark_expanded(node)
            self.report_progress()
        return None

    def deferred(self, node: Node, cand: Candidate, heap: list, last_resort: bool = False) -> SearchResult | None:
        """An expensive candidate whose turn came (or a held one, as the last resort): tried unless its
        state was settled meanwhile. One whose tactic spent its allowance meanwhile is held back."""
        if not last_resort and node.status == Status.OPEN and self.spent(cand.tactic):
            self.hold(node, cand)  # still pending on its node
            return None
        node.pending -= 1
        found = None
        if node.status == Status.OPEN:
            found = self.try_tactic(node, cand, heap)
        self.tree.settle(node)
        self.report_progress()
        return found

    def hold(self, node: Node, cand: Candidate) -> None:
        """Keep a try of a spent tactic for the end (its node counts it as pending)."""
        cost = self.scorer.cost(node.cost, cand, node.state)
        heapq.heappush(self.held, (cost, node.id, next(self._held_order), cand))

    def report_progress(self) -> None:
        if self.on_progress:
            self.on_progress(Progress(self.expansions, len(self.tree.nodes), self.tactic_calls,
                                      self.tree.max_depth, self.elapsed()))

    def try_tactic(self, node: Node, cand: Candidate, heap: list) -> SearchResult | None:
        remaining = self.config.timeout - self.elapsed()
        limit = remaining if cand.expensive else min(self.config.tactic_timeout, remaining)
        t0 = time.monotonic()
        outcome = self.backend.apply(node.state, cand.tactic, max(0.001, limit))
        took = time.monotonic() - t0
        self.backend_seconds += took
        self.tactic_calls += 1
        edge = Edge(node.id, cand.tactic, EdgeKind.FAILED, logprob=cand.logprob,
                    num_tokens=cand.num_tokens, elapsed=took)
        if isinstance(outcome, Failed):
            edge.kind = EdgeKind.REJECTED if outcome.rejected else EdgeKind.FAILED
            edge.message = outcome.message
        elif isinstance(outcome, TimedOut):
            edge.kind = EdgeKind.TIMEOUT
        if edge.kind in (EdgeKind.FAILED, EdgeKind.TIMEOUT):
            self.wasted[cand.tactic] = self.wasted.get(cand.tactic, 0.0) + took
        if isinstance(outcome, (Next, Finished)) and outcome.tactic:
            edge.tactic = outcome.tactic  # the proof records what the prover ran (hammer's reconstruction)
        if isinstance(outcome, Finished):
            path = self.tree.path(node)
            tactics = [e.tactic for e in path] + [edge.tactic]
            goals = [self.tree.nodes[e.src].goals for e in path] + [node.goals]
            t1 = time.monotonic()
            check = self.backend.check(self.theorem, tactics)
            self.check_seconds += time.monotonic() - t1
            if check.ok:
                edge.kind = EdgeKind.FINISHED
                self.tree.add_edge(edge)
                return self.result(True, None, tactics=tactics, check=check, goals=goals)
            edge.kind = EdgeKind.UNVERIFIED
            edge.message = check.message
            self.rejected.append(check.message)
        elif isinstance(outcome, Next):
            existing = self.tree.find(outcome.state)
            if existing is not None:
                edge.kind, edge.dst = EdgeKind.DUPLICATE, existing.id
            else:
                edge.kind = EdgeKind.NEXT
                cost = self.scorer.cost(node.cost, cand, outcome.state, parent=node.state)
                child = self.tree.add_node(outcome.state, edge, cost)
                heapq.heappush(heap, (cost, child.id, 0, None))
        self.tree.add_edge(edge)
        return None


def search(theorem: Theorem, backend: Backend, generator: Generator, config: SearchConfig | None = None,
           on_progress: Callable[[Progress], None] | None = None,
           cancel: threading.Event | None = None, scorer: Scorer | None = None) -> SearchResult:
    """Search for a proof of ``theorem``. The caller owns the backend (and closes it).

    ``scorer`` replaces the rule named by ``config.priority`` (e.g. a value model)."""
    return _Search(theorem, backend, generator, config or SearchConfig(), on_progress, cancel, scorer).run()
