"""The search tree: nodes are distinct proof states, edges are tactic applications.

A node is proved when one of its edges finishes the proof or leads to a proved node; it fails
when it has been expanded and every edge failed or leads to a failed node. States that print the
same goals (and the same detail, which a backend gives where its printed goals hide a difference) are
one node (the first path that reached them is kept), so edges may join nodes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum

import networkx as nx

from ..backends.base import State


class Status(str, Enum):
    OPEN = "open"
    PROVED = "proved"
    FAILED = "failed"


class EdgeKind(str, Enum):
    NEXT = "next"  # led to a new node
    DUPLICATE = "duplicate"  # led to goals already in the tree
    FINISHED = "finished"  # closed the proof (and passed the full check)
    UNVERIFIED = "unverified"  # closed the proof in the prover, but the full check refused it
    FAILED = "failed"
    TIMEOUT = "timeout"
    REJECTED = "rejected"  # refused by the tactic filter before reaching the prover


@dataclass
class Edge:
    src: int
    tactic: str
    kind: EdgeKind
    dst: int | None = None
    logprob: float = 0.0
    num_tokens: int = 1
    message: str = ""
    elapsed: float = 0.0


@dataclass
class Node:
    id: int
    state: State
    depth: int
    cost: float  # priority: lower is expanded first
    parent: Edge | None = None
    status: Status = Status.OPEN
    expanded: bool = False
    pending: int = 0  # expensive candidates deferred from its expansion, not tried yet
    edges: list[Edge] = field(default_factory=list)

    @property
    def goals(self) -> str:
        return self.state.goals


def _identity(state: State) -> tuple[str, str]:
    return (state.goals, state.detail)


class SearchTree:
    def __init__(self, root: State) -> None:
        self.nodes: list[Node] = [Node(0, root, 0, 0.0)]
        self._by_goals: dict[tuple[str, str], int] = {_identity(root): 0}
        self.edges: list[Edge] = []
        self.max_depth = 0

    @property
    def root(self) -> Node:
        return self.nodes[0]

    def find(self, state: State) -> Node | None:
        """The node with the same goals (and the same detail the backend gave), if any."""
        i = self._by_goals.get(_identity(state))
        return None if i is None else self.nodes[i]

    def add_node(self, state: State, parent: Edge, cost: float) -> Node:
        src = self.nodes[parent.src]
        node = Node(len(self.nodes), state, src.depth + 1, cost, parent)
        self.nodes.append(node)
        self._by_goals[_identity(state)] = node.id
        self.max_depth = max(self.max_depth, node.depth)
        parent.dst = node.id
        return node

    def add_edge(self, edge: Edge) -> Edge:
        self.nodes[edge.src].edges.append(edge)
        self.edges.append(edge)
        if edge.kind == EdgeKind.FINISHED:
            self._mark_proved(edge.src)
        return edge

    def path(self, node: Node) -> list[Edge]:
        """Edges from the root to ``node`` along first-discovery parents."""
        out: list[Edge] = []
        while node.parent is not None:
            out.append(node.parent)
            node = self.nodes[node.parent.src]
        return out[::-1]

    def _mark_proved(self, i: int) -> None:
        node = self.nodes[i]
        while node.status != Status.PROVED:
            node.status = Status.PROVED
            if node.parent is None:
                return
            node = self.nodes[node.parent.src]

    def mark_expanded(self, node: Node) -> None:
        node.expanded = True
        self._update_failed(node)

    def settle(self, node: Node) -> None:
        """After a deferred try: the node fails if nothing is left to try there."""
        self._update_failed(node)

    def _update_failed(self, node: Node) -> None:
        """A fully expanded node whose edges all dead-end fails; the failure climbs the tree."""
        while (node.status == Status.OPEN and node.expanded and node.pending == 0
               and all(self._dead(e) for e in node.edges)):
            node.status = Status.FAILED
            if node.parent is None:
                return
            node = self.nodes[node.parent.src]

    def _dead(self, edge: Edge) -> bool:
        if edge.kind in (EdgeKind.FAILED, EdgeKind.TIMEOUT, EdgeKind.REJECTED, EdgeKind.UNVERIFIED):
            return True
        if edge.kind == EdgeKind.NEXT and edge.dst is not None:
            return self.nodes[edge.dst].status == Status.FAILED
        # A duplicate edge leads to a node that lives on under its own parent.
        return edge.kind == EdgeKind.DUPLICATE

    def to_networkx(self) -> nx.MultiDiGraph:
        g = nx.MultiDiGraph()
        for n in self.nodes:
            g.add_node(n.id, goals=n.goals, depth=n.depth, cost=n.cost, status=n.status.value,
                       expanded=n.expanded)
        for k, e in enumerate(self.edges):
            # Edges that lead to no node point at a terminal pseudo-node, so every try is kept.
            dst = e.dst if e.dst is not None else f"{e.kind.value}:{k}"
            if e.dst is None:
                g.add_node(dst, terminal=e.kind.value, message=e.message)
            g.add_edge(e.src, dst, tactic=e.tactic, kind=e.kind.value, logprob=e.logprob,
                       num_tokens=e.num_tokens, elapsed=e.elapsed)
        return g

    def to_json(self) -> str:
        return json.dumps(nx.node_link_data(self.to_networkx(), edges="edges"))
