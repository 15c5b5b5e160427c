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


def plan_text(p: Plan, ceremony_path: str, workspace: Path, refresh: dict[str, list[str]] | None = None) -> str:
    lines = [f"Ceremony {ceremony_path}", f"Workspace {workspace}"
             + ("" if p.meta else " (new)"), ""]
    width = max((len(s.node.id) for s in p.steps), default=10)
    base_done = [s for s in p.steps if s.node.external and s.action is Action.DONE]
    if base_done:
        lines.append(f"  {SYMBOL[Action.DONE]:>3} {len(base_done)} steps of the base ceremony, done (plan the base "
                     "ceremony's file to see them)")
    for s in p.steps:
        if s.node.external and s.action is Action.DONE:
            continue
        mark = SYMBOL[s.action]
        flag = "  [destructive]" if s.destructive and s.action is not Action.DONE else ""
        lines.append(f"  {mark:>3} {s.node.id:<{width}}  {s.node.title}{flag}")
        if s.action is not Action.CREATE:
            lines.append(f"      {'':<{width}}  {s.action.value}: {s.reason}")
        for f in s.changed:
            lines.append(f"      {'':<{width}}  changed: {f}")
        for finding in (refresh or {}).get(s.node.id, []):
            lines.append(f"      {'':<{width}}  refresh: {finding}")
    counts = p.counts
    lines += ["", "Plan: " + ", ".join(f"{counts.get(a, 0)} {WORDS[a]}" for a in ORDER if counts.get(a) or
                                        a in (Action.CREATE, Action.DONE)) + "."]
    if p.artifacts_missing:
        lines.append(f"{len(p.artifacts_missing)} artifact file(s) missing, to be rewritten from the state: "
                     + ", ".join(p.artifacts_missing))
    if p.artifacts_changed:
        lines.append("Artifact file(s) changed by hand (apply refuses): " + ", ".join(p.artifacts_changed))
    if refresh is not None:
        differing = sum(1 for v in refresh.values() if v)
        lines.append(f"Refresh: {len(refresh)} finished step(s) checked against the backends, "
                     f"{differing} differ from the state.")
    if not p.has_work and not p.problems and not p.artifacts_changed:
        lines.append("Nothing to do: every step is done and matches the ceremony file.")
    return "\n".join(lines)


class Progress:
    """Plain progress: one line as each step starts and ends (not on a terminal, or --no-color)."""

    def __init__(self, out: TextIO = sys.stdout, quiet: bool = False, verbose: bool = False):
        self.out, self.quiet, self.verbose, self.t0 = out, quiet, verbose, time.monotonic()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def waiting(self, what: str) -> None:
        self._say(f"        waiting for {what}")

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.out, flush=True)

    def step_started(self, node: StepNode, action: Action, index: int, total: int) -> None:
        self._say(f"[{index}/{total}] {node.id}: {node.title} ...")

    def step_finished(self, node: StepNode, result: StepResult, seconds: float) -> None:
        verb = "adopted" if result.adopted else "done"
        self._say(f"        {node.id}: {verb} in {seconds:.2f}s" + (f" ({result.summary})" if result.summary else ""))
        if self.verbose and result.api_calls:
            self._say("        AWS calls: " + ", ".join(f"{op} x{n}" for op, n in sorted(result.api_calls.items())))

    def step_failed(self, node: StepNode, error: BaseException) -> None:
        self._say(f"        {node.id}: FAILED")


class LiveProgress:
    """On a terminal: a live bar (step n of m, the current step, elapsed time, what it waits for),
    with a line printed above it as each step ends."""

    def __init__(self, verbose: bool = False):
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, SpinnerColumn,
                                   TextColumn, TimeElapsedColumn)

        self.console = Console()
        self.verbose = verbose
        self.bar = RichProgress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TimeElapsedColumn(), console=self.console, transient=True)
        self.task = None
        self.current = ""

    def __enter__(self):
        return self  # the live display starts with the first step, after any confirmation prompt

    def __exit__(self, *exc):
        if self.task is not None:
            self.bar.stop()
        return None

    def step_started(self, node, action, index, total):
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task("", total=total)
        self.current = f"{node.id}: {node.title}"
        self.bar.update(self.task, description=self.current)

    def waiting(self, what: str) -> None:
        if self.task is not None:
            self.bar.update(self.task, description=f"{self.current} [dim](waiting for {what})[/dim]")

    def step_finished(self, node, result, seconds):
        verb = "adopted" if result.adopted else "done"
        self.console.print(f"[green]✓[/green] {node.id} {verb} in {seconds:.2f}s"
                           + (f" [dim]({result.summary})[/dim]" if result.summary else ""), highlight=False)
        if self.verbose and result.api_calls:
            self.console.print("    AWS calls: " + ", ".join(f"{op} x{n}" for op, n in sorted(result.api_calls.items())),
                               highlight=False)
        self.bar.advance(self.task)

    def step_failed(self, node, error):
        self.console.print(f"[red]✗[/red] {node.id} failed", highlight=False)


def progress_for(quiet: bool, verbose: bool, color: bool):
    """Rich live progress on a terminal; plain lines otherwise, with --no-color, or with --quiet."""
    if not quiet and color and sys.stdout.isatty():
        return LiveProgress(verbose)
    return Progress(quiet=quiet, verbose=verbose)


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

    def waiting(self, what: str) -> None:
        for o in self.observers:
            if hasattr(o, "waiting"):
                o.waiting(what)

    def __getattr__(self, name):
        def call(*args):
            for o in self.observers:
                getattr(o, name)(*args)
        return call


def status_text(c, p: Plan) -> str:
    """The CA hierarchy as a tree: name, key algorithm, backend, status, validity, fingerprint."""
    from pki_ceremony.documents import ca_statuses

    cas = ca_statuses(c, p)
    children: dict[str | None, list] = {}
    for ca in cas:
        children.setdefault(ca.issuer, []).append(ca)
    lines = [f"{c.name}  ({c.workspace.root})"]

    def line(ca) -> str:
        text = f"{ca.name}: {ca.common_name} [{ca.key_algorithm}, {ca.backend}] {ca.status}"
        if ca.status != "complete":
            text += f" ({ca.steps_done}/{ca.steps_total} steps)"
        if ca.not_after:
            text += f", until {ca.not_after[:10]}, sha256 {ca.sha256_fingerprint}"
        else:
            text += f", validity {ca.validity}"
        return text + (f", {ca.arn}" if ca.arn else "")

    def walk(ca, prefix: str, last: bool, top: bool) -> None:
        lines.append(line(ca) if top else prefix + ("└── " if last else "├── ") + line(ca))
        kids = children.get(ca.name, [])
        below = "" if top else prefix + ("    " if last else "│   ")
        for i, kid in enumerate(kids):
            walk(kid, below, i == len(kids) - 1, False)

    for root in children.get(None, []):
        walk(root, "", True, True)
    ca_names = {ca.name for ca in cas}
    others: dict[str, list] = {}
    for step in p.steps:
        if step.node.group not in ca_names:
            others.setdefault(step.node.group, []).append(step)
    if others:
        lines.append("")
        lines.append("Ceremony steps:")
        for group, steps in others.items():
            done = sum(s.action is Action.DONE for s in steps)
            last = next((s for s in reversed(steps) if s.action is Action.DONE), None)
            when = f", last {last.record.finished_at}" if last and last.record else ""
            lines.append(f"  {group}: {done}/{len(steps)} steps done ({', '.join(s.node.id.split('/', 1)[1] for s in steps)})"
                         + when)
    return "\n".join(lines)
