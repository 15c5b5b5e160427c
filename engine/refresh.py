"""`plan --refresh`: ask the real backends whether what the state records still exists.

Every finished step's plugin reads its backend (the key on the token, the CA in Private CA)
and reports differences; nothing is changed, and a failure to look is itself reported.
"""
from __future__ import annotations

from typing import Any

from pki_ceremony.errors import CeremonyError

from .contract import StepCall
from .graph import CeremonyGraph
from .plan import Plan
from .registry import Registry


def refresh(graph: CeremonyGraph, plan: Plan, registry: Registry, ctx: Any) -> dict[str, list[str]]:
    records = {s.node.id: s.record for s in plan.steps}
    findings: dict[str, list[str]] = {}
    for step in plan.steps:
        if step.record is None or not step.record.done:
            continue
        node = step.node
        inputs = {graph.g.edges[u, node.id]["role"]: (records[u].outputs if records.get(u) and records[u].done else {})
                  for u in graph.upstream(node.id)}
        call = StepCall(node.id, node.spec, inputs, step.record.intent)
        try:
            findings[node.id] = registry.get(node.kind).refresh(call, step.record.outputs, ctx)
        except CeremonyError as exc:
            findings[node.id] = [f"could not check: {exc}"]
    return findings
