"""The machine-readable forms of a plan and of a status, versioned, for review tools and CI.

`plan --json` prints a `PlanDocument`; `plan --out FILE` writes one, and `apply FILE` applies
exactly that plan, refusing if the ceremony file (its fingerprint) or the state (lineage and
serial) changed since. `status --json` prints a `StatusDocument`. Their JSON Schemas are
exported to schemas/plan.schema.json and schemas/status.schema.json.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PLAN_FORMAT = "pki-ceremony/plan"
STATUS_FORMAT = "pki-ceremony/status"
FORMAT_VERSION = 1


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StateRef(_Doc):
    lineage: str = Field(description="The workspace's lineage id: fixed when its state was created.")
    serial: int = Field(description="Grows with every write to the state.")


class PlannedStepDoc(_Doc):
    id: str = Field(description="Stable step id, `<ca>/<what>`.")
    kind: str = Field(description="The step plugin kind.")
    ca: str = Field(description="The CA (or other subject) the step belongs to.")
    title: str
    action: Literal["create", "resume", "done", "replace", "drifted", "blocked"]
    reason: str
    changed: list[str] = Field(default_factory=list, description="Fields whose change made the step drift.")
    destructive: bool = False
    depends_on: list[str] = Field(default_factory=list)


class PlanDocument(_Doc):
    format: Literal["pki-ceremony/plan"] = PLAN_FORMAT
    format_version: Literal[1] = FORMAT_VERSION
    created_at: str
    tool_version: str
    ceremony_file: str = Field(description="Path of the ceremony file, as given to `plan`.")
    ceremony_name: str
    ceremony_fingerprint: str = Field(description="SHA-256 of the validated ceremony, canonical JSON.")
    workspace: str
    state: StateRef | None = Field(description="The state the plan was made from; null for a new workspace.")
    replace: list[str] = Field(default_factory=list, description="Steps asked to be made anew (--replace).")
    steps: list[PlannedStepDoc]
    counts: dict[str, int] = Field(description="Number of steps per action.")
    artifacts_missing: list[str] = Field(default_factory=list)
    artifacts_changed: list[str] = Field(default_factory=list)
    applicable: bool = Field(description="False when drifted/blocked steps or changed artifacts make apply refuse.")
    refresh: dict[str, list[str]] | None = Field(
        None, description="With --refresh: for each finished step, how the real backend differs from the state "
                          "(an empty list: as recorded).")


class CaStatus(_Doc):
    name: str
    issuer: str | None
    common_name: str
    key_algorithm: str
    backend: str = Field(description="`hsm:<name>` or `aws-pca`.")
    validity: str
    status: Literal["complete", "in progress", "not started", "drifted"]
    steps_done: int
    steps_total: int
    serial: str | None = None
    not_before: str | None = None
    not_after: str | None = None
    sha256_fingerprint: str | None = None
    arn: str | None = None


class StatusDocument(_Doc):
    format: Literal["pki-ceremony/status"] = STATUS_FORMAT
    format_version: Literal[1] = FORMAT_VERSION
    ceremony_name: str
    ceremony_fingerprint: str
    workspace: str
    state: StateRef | None
    cas: list[CaStatus]
