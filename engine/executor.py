"""Apply a plan: run each pending step once, checkpointing intent before and result after.

For a step to run, in dependency order:
  1. its fingerprint is computed from its spec and its upstreams' output digests;
  2. if no intent is recorded, the plugin's `intend` chooses identifiers and the intent is
     committed to the state *before* anything is made;
  3. if an intent was already recorded (an interrupted attempt), `adopt` looks for what that
     attempt made; only if nothing is found does `run` make it, with the same intent;
  4. the outputs and artifacts are committed in one transaction, then the artifact files are
     written from them.
Independent branches may run concurrently (`max_workers`); all checkpoints are made by the
scheduling thread, one at a time. A failure stops new steps from starting; steps already
running finish and are checkpointed.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from pki_ceremony.errors import CeremonyError, PlanRefused, StepFailed

from .contract import StepCall, StepResult
from .fingerprint import digest, step_fingerprint
from .graph import CeremonyGraph, StepNode
from .plan import Action, Plan
from .registry import Registry
from .state import StateStore
from .workspace import Workspace

CRASH_ENV = "PKI_CEREMONY_TEST_CRASH"  # "<step-id>:<phase>"; see docs/architecture.md


def crash_point(step_id: str, phase: str) -> None:
    """Test hook: die with SIGKILL at a named point, as a power cut or `kill -9` would."""
    target = os.environ.get(CRASH_ENV)
    if not target:
        return
    want_step, _, want_phase = target.rpartition(":")
    if want_step != step_id or want_phase not in (phase, "during"):
        return
    if want_phase == "during":
        if phase == "run-start":
            delay = float(os.environ.get(CRASH_ENV + "_DELAY", "0.05"))
            threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL)).start()
        return
    os.kill(os.getpid(), signal.SIGKILL)


class Observer(Protocol):
    def step_started(self, node: StepNode, action: Action, index: int, total: int) -> None: ...
    def step_finished(self, node: StepNode, result: StepResult, seconds: float) -> None: ...
    def step_failed(self, node: StepNode, error: BaseException) -> None: ...


class NullObserver:
    def step_started(self, *a): pass
    def step_finished(self, *a): pass
    def step_failed(self, *a): pass


@dataclass
class ApplyReport:
    ran: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    artifacts_restored: list[str] = field(default_factory=list)
    api_calls: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0


class Executor:
    def __init__(self, graph: CeremonyGraph, store: StateStore, workspace: Workspace, registry: Registry,
                 ctx: Any, *, observer: Observer | None = None, max_workers: int = 1):
        self.graph, self.store, self.workspace, self.registry = graph, store, workspace, registry
        self.ctx, self.observer, self.max_workers = ctx, observer or NullObserver(), max(1, max_workers)

    # -- artifacts ----------------------------------------------------------------------
    def _artifact_name(self, node: StepNode, name: str) -> str:
        return f"{node.group}/{name}"

    def restore_artifacts(self) -> list[str]:
        """Write artifact files the state holds but the disk lacks (a crash after commit)."""
        restored = []
        for path, _, content in self.store.artifacts():
            if self.workspace.write_artifact(path, content):
                restored.append(path)
        return restored

    # -- one step -------------------------------------------------------------------------
    def _outputs(self, step_id: str) -> dict[str, Any]:
        rec = self.store.step(step_id)
        assert rec is not None and rec.done, step_id
        return rec.outputs

    def _prepare(self, node: StepNode, replace: bool) -> tuple[StepCall, str, bool]:
        """Fingerprint, record the intent if needed. Returns (call, fingerprint, resuming)."""
        ups = {self.graph.g.edges[u, node.id]["role"]: u for u in self.graph.upstream(node.id)}
        inputs = {role: self._outputs(u) for role, u in ups.items()}
        upstream_digests = {role: self.store.step(u).output_digest for role, u in ups.items()}
        fp = step_fingerprint(node.kind, node.spec, upstream_digests)
        plugin = self.registry.get(node.kind)
        rec = self.store.step(node.id)
        series = self._series(node)
        if rec is not None and not rec.done and rec.intent is not None and not replace:
            if rec.fingerprint != fp:
                raise StepFailed(node.id, "resume", "an interrupted attempt was recorded with other inputs",
                                 hint="restore the ceremony file as it was, or use --replace " + node.id)
            return StepCall(node.id, node.spec, inputs, rec.intent, series=series), fp, True
        crash_point(node.id, "before-intent")
        intent = plugin.intend(StepCall(node.id, node.spec, inputs, replacing=replace, series=series), self.ctx)
        if intent is not None:
            self.store.record_intent(node.id, node.kind, fp, node.spec, intent)
        crash_point(node.id, "after-intent")
        return StepCall(node.id, node.spec, inputs, intent, replacing=replace, series=series), fp, False

    def _series(self, node: StepNode) -> tuple:
        name = node.spec.get("series")
        if not name:
            return ()
        # A replaced step's own earlier result counts too: a series number is never reused.
        return tuple(r.outputs for _, r in sorted(self.store.steps().items())
                     if r.done and r.spec.get("series") == name)

    def _work(self, node: StepNode, call: StepCall, resuming: bool) -> StepResult:
        plugin = self.registry.get(node.kind)
        if resuming:
            found = plugin.adopt(call, self.ctx)
            if found is not None:
                found.adopted = True
                return found
        crash_point(node.id, "run-start")
        result = plugin.run(call, self.ctx)
        crash_point(node.id, "after-run")
        return result

    def _checkpoint(self, node: StepNode, fp: str, result: StepResult, replacing: bool) -> None:
        artifacts = {self._artifact_name(node, n): c for n, c in result.artifacts.items()}
        old = self.store.step(node.id) if replacing else None
        if old is not None:
            self.workspace.supersede(old.artifacts)
        calls = dict(result.api_calls)
        self.store.record_result(node.id, node.kind, fp, node.spec, result.outputs, digest(result.outputs),
                                 artifacts, calls)
        crash_point(node.id, "after-result")
        for path, content in artifacts.items():
            self.workspace.write_artifact(path, content)

    def preflight(self, plan: Plan) -> None:
        """Refuse, before any step runs, what steps can already tell is wrong (e.g. a CRL that would
        outlive its issuer): better than finding out after the root's HSM was brought back."""
        problems = []
        for step in plan.to_run:
            ups = self.graph.upstream(step.node.id)
            if any((self.store.step(u) is None or not self.store.step(u).done) for u in ups):
                continue
            inputs = {self.graph.g.edges[u, step.node.id]["role"]: self._outputs(u) for u in ups}
            call = StepCall(step.node.id, step.node.spec, inputs, series=self._series(step.node))
            problems += [f"{step.node.id}: {p}" for p in self.registry.get(step.node.kind).preflight(call)]
        if problems:
            raise PlanRefused("refused before anything ran: " + "; ".join(problems))

    # -- the whole plan ---------------------------------------------------------------
    def apply(self, plan: Plan) -> ApplyReport:
        if plan.problems:
            raise PlanRefused("the plan has drifted or blocked steps: " +
                              ", ".join(s.node.id for s in plan.problems),
                              hint="run 'plan' to see what changed; restore the ceremony file or use --replace")
        self.preflight(plan)
        started = time.monotonic()
        report = ApplyReport()
        report.artifacts_restored = self.restore_artifacts()
        todo = {s.node.id: s for s in plan.to_run}
        total, index = len(todo), 0
        remaining = set(todo)
        running: dict[Future, tuple[StepNode, str, bool, float]] = {}
        failure: BaseException | None = None

        order = [n.id for n in self.graph.order() if n.id in remaining]  # once: sorting is O(graph)

        def ready() -> list[str]:
            busy = {entry[0].id for entry in running.values()}
            return [sid for sid in order if sid in remaining and sid not in busy and
                    not any(u in remaining for u in self.graph.upstream(sid))]

        with ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="step") as pool:
            while (remaining and failure is None) or running:
                if failure is None:
                    for sid in ready():
                        if len(running) >= self.max_workers:
                            break
                        node = self.graph.node(sid)
                        index += 1
                        self.observer.step_started(node, todo[sid].action, index, total)
                        try:
                            call, fp, resuming = self._prepare(node, todo[sid].action is Action.REPLACE)
                        except BaseException as exc:  # noqa: BLE001 - reported below
                            failure = self._wrap(node, "prepare", exc)
                            self.observer.step_failed(node, failure)
                            break
                        running[pool.submit(self._work, node, call, resuming)] = (node, fp, call.replacing,
                                                                                  time.monotonic())
                if not running:
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in done:
                    node, fp, replacing, t0 = running.pop(fut)
                    try:
                        result = fut.result()
                        self._checkpoint(node, fp, result, replacing)
                    except BaseException as exc:  # noqa: BLE001
                        err = self._wrap(node, "run", exc)
                        self.observer.step_failed(node, err)
                        failure = failure or err
                        continue
                    remaining.discard(node.id)
                    (report.adopted if result.adopted else report.ran).append(node.id)
                    if result.api_calls:
                        report.api_calls[node.id] = dict(result.api_calls)
                    self.observer.step_finished(node, result, time.monotonic() - t0)
        report.seconds = time.monotonic() - started
        if failure is not None:
            raise failure
        return report

    @staticmethod
    def _wrap(node: StepNode, phase: str, exc: BaseException) -> BaseException:
        if isinstance(exc, (StepFailed, KeyboardInterrupt, SystemExit)):
            return exc
        if isinstance(exc, CeremonyError):
            if getattr(exc, "step_id", None) is None:
                exc.args = (f"{node.id} ({phase}): {exc}",)
                exc.step_id = node.id
            return exc
        err = StepFailed(node.id, phase, f"{type(exc).__name__}: {exc}")
        err.__cause__ = exc
        return err

