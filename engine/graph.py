"""The step DAG: nodes with stable ids, kinds, spec fragments and input roles.

Edges point from a step to the steps that consume its outputs; a node's attribute `step`
holds its `StepNode`. `compiler.py` builds the graph from a ceremony.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx



@dataclass(frozen=True)
class StepNode:
    id: str
    kind: str
    group: str  # the CA (or other subject) the step belongs to; artifacts go under artifacts/<group>/
    title: str
    spec: dict[str, Any]
    inputs: dict[str, str] = field(default_factory=dict)  # role -> step id
    resources: tuple[str, ...] = ()
    source_path: tuple = ()  # field path in the ceremony file, for messages
    external: bool = False  # made by another ceremony sharing the workspace (a RootCeremony's base): never run here


class CeremonyGraph:
    def __init__(self) -> None:
        self.g = nx.DiGraph()

    def add(self, node: StepNode) -> StepNode:
        if node.id in self.g:
            raise ValueError(f"duplicate step id {node.id}")
        self.g.add_node(node.id, step=node)
        for role, upstream in node.inputs.items():
            self.g.add_edge(upstream, node.id, role=role)
        return node

    def node(self, step_id: str) -> StepNode:
        return self.g.nodes[step_id]["step"]

    def __contains__(self, step_id: str) -> bool:
        return step_id in self.g

    def __len__(self) -> int:
        return self.g.number_of_nodes()

    def order(self) -> list[StepNode]:
        """A topological order that is stable for a given ceremony (ties broken by file order)."""
        index = {sid: i for i, sid in enumerate(self.g.nodes)}
        return [self.node(s) for s in nx.lexicographical_topological_sort(self.g, key=index.__getitem__)]

    def upstream(self, step_id: str) -> list[str]:
        return list(self.g.predecessors(step_id))

    def descendants(self, step_id: str) -> set[str]:
        return nx.descendants(self.g, step_id)

    def check(self) -> None:
        missing = [u for u in self.g.nodes if "step" not in self.g.nodes[u]]
        if missing:
            raise ValueError(f"steps consumed but never declared: {missing}")
        if not nx.is_directed_acyclic_graph(self.g):
            cycle = nx.find_cycle(self.g)
            raise ValueError("step cycle: " + " -> ".join(a for a, _ in cycle))

