"""The step contract: what a step plugin implements, and what the engine gives it.

A plugin knows nothing about the DAG. It is called with a `StepCall`: its own spec
fragment, the outputs of the steps it depends on (by role, never by step id), and the intent
recorded for this attempt. The engine calls, in order:

1. `intend(call, ctx)`: choose the identifiers of what the step will make (a key's CKA_ID,
   a certificate's serial and dates). The engine records the intent durably *before* acting,
   so a crash leaves a trace of what may exist. Return None when the step makes nothing
   outside the workspace.
2. `adopt(call, ctx)`: only when an intent was recorded by an interrupted attempt: find what
   that attempt made and return it as a result, without side effects; None if nothing is there.
3. `run(call, ctx)`: make it, verify it, return the outputs to checkpoint.

`refresh(call, outputs, ctx)` is used by `plan --refresh` only: it reads the backend and
reports differences from what was recorded.

`ctx` is whatever the application passes in (HSM sessions, AWS clients, a clock); the engine
does not look inside it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping


@dataclass(frozen=True)
class StepCall:
    step_id: str  # for messages only
    spec: Mapping[str, Any]
    inputs: Mapping[str, Mapping[str, Any]]
    intent: Mapping[str, Any] | None = None
    replacing: bool = False  # the user asked for this finished step to be made anew (--replace)
    # Outputs of the finished steps of the same series (spec["series"], e.g. the CRLs of one issuer),
    # across every ceremony sharing the workspace: for numbers that only grow.
    series: tuple[Mapping[str, Any], ...] = ()


@dataclass
class StepResult:
    outputs: dict[str, Any]
    artifacts: dict[str, bytes] = field(default_factory=dict)  # file name -> content
    summary: str = ""
    adopted: bool = False
    api_calls: dict[str, int] = field(default_factory=dict)  # operation -> count, for remote backends


class StepPlugin(ABC):
    """Base of every step kind. Subclasses set `kind` and implement `run`."""

    kind: ClassVar[str]
    destructive: ClassVar[bool] = False

    def intend(self, call: StepCall, ctx: Any) -> dict[str, Any] | None:
        return None

    def adopt(self, call: StepCall, ctx: Any) -> StepResult | None:
        return None

    @abstractmethod
    def run(self, call: StepCall, ctx: Any) -> StepResult:
        ...

    def preflight(self, call: StepCall) -> list[str]:
        """Before anything in the apply runs: what this step can already tell is wrong, from its spec and
        its inputs (given only when every upstream step is finished). No side effects, no HSM, no AWS."""
        return []

    def refresh(self, call: StepCall, outputs: Mapping[str, Any], ctx: Any) -> list[str]:
        """For `plan --refresh`: read (never change) the real backend and say how it differs from
        the recorded outputs. An empty list means it is as recorded."""
        return []

    def resources(self, spec: Mapping[str, Any]) -> tuple[str, ...]:
        """Names of the resources (e.g. `hsm:root-hsm`) the step touches; for PIN collection."""
        return ()
