"""What an apply would do, and why, computed from the DAG and the state alone.

Each step gets one action:
  create   not started
  resume   an interrupted attempt recorded its intent: adopt what it made, or finish it
  done     finished, and its inputs have not changed
  replace  asked for with --replace (or below a replaced step): made anew
  drifted  finished, but its inputs changed since (the changed fields are listed)
  blocked  waits on a drifted step, or on a base ceremony's step that is not done
A plan with drifted or blocked steps cannot be applied as it stands.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable

import networkx as nx

from .fingerprint import changed_fields, step_fingerprint
from .graph import CeremonyGraph, StepNode
from .state import Meta, StateStore, StepRecord
from .workspace import Workspace


class Action(str, Enum):
    CREATE = "create"
    RESUME = "resume"
    DONE = "done"
    REPLACE = "replace"
    DRIFTED = "drifted"
    BLOCKED = "blocked"


PENDING = {Action.CREATE, Action.RESUME, Action.REPLACE}
SYMBOL = {Action.CREATE: "+", Action.RESUME: ">", Action.DONE: "=", Action.REPLACE: "-/+",
          Action.DRIFTED: "~", Action.BLOCKED: "!"}


@dataclass
class PlannedStep:
    node: StepNode
    action: Action
    reason: str
    fingerprint: str | None = None  # known when every upstream is done
    changed: list[str] = field(default_factory=list)
    record: StepRecord | None = None
    destructive: bool = False


@dataclass
class Plan:
    steps: list[PlannedStep]
    meta: Meta | None
    artifacts_missing: list[str] = field(default_factory=list)  # in the state, not on disk: to rewrite
    artifacts_changed: list[str] = field(default_factory=list)  # on disk with other content: refused

    def by_id(self, step_id: str) -> PlannedStep:
        return next(s for s in self.steps if s.node.id == step_id)

    @property
    def to_run(self) -> list[PlannedStep]:
        return [s for s in self.steps if s.action in PENDING]

    @property
    def has_work(self) -> bool:
        return bool(self.to_run or self.artifacts_missing)

    @property
    def problems(self) -> list[PlannedStep]:
        return [s for s in self.steps if s.action in (Action.DRIFTED, Action.BLOCKED)]

    @property
    def counts(self) -> Counter:
        return Counter(s.action for s in self.steps)

    def resources_needed(self) -> set[str]:
        return {r for s in self.to_run for r in s.node.resources}


def _interlock_destructive(graph: CeremonyGraph, planned: dict[str, PlannedStep], kinds: set[str]) -> None:
    """A destructive step (a teardown) never runs while another step that needs one of its resources
    (the HSM it takes away) is unfinished, unless that step is sure to run before it (an ancestor)."""
    for sid, step in planned.items():
        if step.node.kind not in kinds or step.action not in PENDING:
            continue
        ancestors = nx.ancestors(graph.g, sid)
        waiting = [other.node.id for oid, other in planned.items()
                   if oid != sid and oid not in ancestors and other.action is not Action.DONE
                   and set(other.node.resources) & set(step.node.resources)]
        if waiting:
            planned[sid] = PlannedStep(step.node, Action.BLOCKED, "would take away what unfinished steps still "
                                       "need: " + ", ".join(waiting), record=step.record, destructive=True)


def make_plan(graph: CeremonyGraph, store: StateStore | None, *, replace: Iterable[str] = (),
              destructive_kinds: Iterable[str] = (), workspace: Workspace | None = None) -> Plan:
    records = store.steps() if store is not None else {}
    replace = set(replace)
    unknown = replace - set(graph.g.nodes)
    if unknown:
        raise KeyError(", ".join(sorted(unknown)))
    cascade = set(replace)
    for sid in replace:
        cascade |= graph.descendants(sid)
    destructive_kinds = set(destructive_kinds)
    planned: dict[str, PlannedStep] = {}

    for node in graph.order():
        rec = records.get(node.id)
        ups = {role: planned[up] for up, role in
               ((u, graph.g.edges[u, node.id]["role"]) for u in graph.upstream(node.id))}
        bad = [p.node.id for p in ups.values() if p.action in (Action.DRIFTED, Action.BLOCKED)]
        pending = [p.node.id for p in ups.values() if p.action in PENDING]
        destructive = node.kind in destructive_kinds
        if bad:
            step = PlannedStep(node, Action.BLOCKED, "waits on " + ", ".join(bad), record=rec)
        elif node.id in cascade:
            why = "asked for with --replace" if node.id in replace else "below a replaced step"
            step = PlannedStep(node, Action.REPLACE, why, record=rec, destructive=True)
        elif pending:
            if rec is None:
                step = PlannedStep(node, Action.CREATE, "not started", record=rec)
            elif not rec.done:
                step = PlannedStep(node, Action.RESUME, "interrupted attempt recorded; will adopt or finish it",
                                   record=rec)
            else:
                step = PlannedStep(node, Action.DRIFTED, "finished, but " + ", ".join(pending) +
                                   " above it is not", changed=[f"upstream {p}" for p in pending], record=rec)
        else:
            fp = step_fingerprint(node.kind, node.spec, {r: p.record.output_digest for r, p in ups.items()})
            if rec is None:
                step = PlannedStep(node, Action.CREATE, "not started", fp)
            elif rec.fingerprint == fp and rec.done:
                step = PlannedStep(node, Action.DONE, f"finished {rec.finished_at}", fp, record=rec)
            else:
                changed = changed_fields(rec.spec, node.spec)
                if rec.fingerprint != fp and not changed:
                    changed = ["outputs of " + ", ".join(sorted(p.node.id for p in ups.values()))]
                if rec.done:
                    step = PlannedStep(node, Action.DRIFTED, "finished, but its inputs changed since",
                                       fp, changed, rec)
                elif rec.fingerprint == fp:
                    step = PlannedStep(node, Action.RESUME, "interrupted attempt recorded; will adopt or finish it",
                                       fp, record=rec)
                else:
                    step = PlannedStep(node, Action.DRIFTED, "interrupted, and its inputs changed since",
                                       fp, changed, rec)
        if node.external and step.action in PENDING:
            step = PlannedStep(node, Action.BLOCKED, "made by the base ceremony, which has not finished it: "
                               "apply the base ceremony first", record=rec)
        step.destructive = step.destructive or destructive
        planned[node.id] = step
    _interlock_destructive(graph, planned, destructive_kinds)
    plan = Plan(list(planned.values()), store.meta() if store is not None else None)
    if store is not None and workspace is not None:
        for path, _, content in store.artifacts():
            state = workspace.missing_or_changed(path, content)
            if state == "missing":
                plan.artifacts_missing.append(path)
            elif state == "changed":
                plan.artifacts_changed.append(path)
    return plan
