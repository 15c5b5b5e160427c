"""What a person reads: the plan, progress while applying, the summary, the status tree.

Plain text, one line per step, so it reads the same in a terminal, a CI log and a printed
transcript at the witness table. Nothing printed here ever contains a PIN: steps return
identifiers and certificates only.
"""
from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from pki_ceremony.engine.contract import StepResult
from pki_ceremony.engine.graph import StepNode
from pki_ceremony.engine.plan import SYMBOL, Action, Plan

ORDER = (Action.CREATE, Action.RESUME, Action.REPLACE, Action.DONE, Action.DRIFTED, Action.BLOCKED)
WORDS = {Action.CREATE: "to create", Action.RESUME: "to resume", Action.REPLACE: "to replace",
         Action.DONE: "done", Action.DRIFTED: "drifted", Action.BLOCKED: "blocked"}


def plan_text(p: Plan, ceremony_path: str, workspace: Path) -> str:
    lines = [f"Ceremony {ceremony_path}", f"Workspace {workspace}"
             + ("" if p.meta else " (new)"), ""]
    width = max((len(s.node.id) for s in p.steps), default=10)
    for s in p.steps:
        mark = SYMBOL[s.action]
        flag = "  [destructive]" if s.destructive and s.action is not Action.DONE else ""
        lines.append(f"  {mark:>3} {s.node.id:<{width}}  {s.node.title}{flag}")
        if s.action is not Action.CREATE:
            lines.append(f"      {'':<{width}}  {s.action.value}: {s.reason}")
        for f in s.changed:
            lines.append(f"      {'':<{width}}  changed: {f}")
    counts = p.counts
    lines += ["", "Plan: " + ", ".join(f"{counts.get(a, 0)} {WORDS[a]}" for a in ORDER if counts.get(a) or
                                        a in (Action.CREATE, Action.DONE)) + "."]
    if p.artifacts_missing:
        lines.append(f"{len(p.artifacts_missing)} artifact file(s) missing, to be rewritten from the state: "
                     + ", ".join(p.artifacts_missing))
    if p.artifacts_changed:
        lines.append("Artifact file(s) changed by hand (apply refuses): " + ", ".join(p.artifacts_changed))
    if not p.has_work and not p.problems:
        lines.append("Nothing to do: every step is done and matches the ceremony file.")
    return "\n".join(lines)


class Progress:
    """Prints one line as each step starts and ends."""

    def __init__(self, out: TextIO = sys.stdout, quiet: bool = False):
        self.out, self.quiet, self.t0 = out, quiet, time.monotonic()

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.out, flush=True)

    def step_started(self, node: StepNode, action: Action, index: int, total: int) -> None:
        self._say(f"[{index}/{total}] {node.id}: {node.title} ...")

    def step_finished(self, node: StepNode, result: StepResult, seconds: float) -> None:
        verb = "adopted" if result.adopted else "done"
        self._say(f"        {node.id}: {verb} in {seconds:.2f}s" + (f" ({result.summary})" if result.summary else ""))

    def step_failed(self, node: StepNode, error: BaseException) -> None:
        self._say(f"        {node.id}: FAILED")


class Transcript:
    """Appends one JSON line per event to the workspace's ceremony log, for the record."""

    def __init__(self, path: Path):
        self.path = path

    def _write(self, **event) -> None:
        event = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), **event}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(event, sort_keys=True) + "\n")

    def step_started(self, node, action, index, total):
        self._write(event="started", step=node.id, action=action.value, title=node.title)

    def step_finished(self, node, result, seconds):
        self._write(event="adopted" if result.adopted else "finished", step=node.id, seconds=round(seconds, 3),
                    summary=result.summary, api_calls=result.api_calls)

    def step_failed(self, node, error):
        self._write(event="failed", step=node.id, error=str(error))


class Fanout:
    def __init__(self, *observers):
        self.observers = observers

    def __getattr__(self, name):
        def call(*args):
            for o in self.observers:
                getattr(o, name)(*args)
        return call


def status_text(c, p: Plan) -> str:
    """The CA hierarchy as a tree: name, key, validity, fingerprint, backend, status."""
    model = c.model
    children: dict[str | None, list] = {}
    for ca in model.cas():
        children.setdefault(ca.issuer, []).append(ca)
    steps = {s.node.id: s for s in p.steps}
    lines = [f"{model.metadata.name}  ({c.workspace.root})"]

    def ca_status(name: str) -> tuple[str, dict | None]:
        mine = [s for sid, s in steps.items() if sid.startswith(name + "/")]
        last = mine[-1]
        outputs = last.record.outputs if last.record and last.record.done else None
        if all(s.action is Action.DONE for s in mine):
            return "complete", outputs
        if any(s.action in (Action.DRIFTED, Action.BLOCKED) for s in mine):
            return "drifted", outputs
        done = sum(s.action is Action.DONE for s in mine)
        return ("not started" if done == 0 else f"{done}/{len(mine)} steps"), outputs

    def walk(ca, prefix: str, last: bool) -> None:
        state, out = ca_status(ca.name)
        backend = "hsm " + model.hsm_of(ca)
        line = f"{ca.name}: {ca.subject.common_name} [{ca.key.algorithm.value}, {backend}] {state}"
        if out and out.get("not_after"):
            line += f", until {out['not_after'][:10]}, sha256 {out['sha256_fingerprint'][:16]}…"
        else:
            line += f", validity {ca.validity.describe()}"
        lines.append(prefix + ("└── " if last else "├── ") + line if prefix or ca.issuer else line)
        kids = children.get(ca.name, [])
        for i, kid in enumerate(kids):
            walk(kid, prefix + ("    " if last else "│   ") if (prefix or ca.issuer) else " ", i == len(kids) - 1)

    walk(model.hierarchy.root, "", True)
    return "\n".join(lines)
