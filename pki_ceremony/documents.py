"""Plans and status as documents: built from a Plan, written, read back, checked for staleness.

A saved plan is applied only if it is still exactly the plan: same ceremony (fingerprint of the
validated model), same state (lineage and serial), and the same action for every step.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pydantic import ValidationError

from pki_ceremony.engine.plan import Action, Plan
from pki_ceremony.engine.workspace import write_atomically
from pki_ceremony.errors import PlanRefused, UsageError
from pki_ceremony.schemas.plan_document import (PLAN_FORMAT, CaStatus, PlanDocument, PlannedStepDoc, StateRef,
                                                StatusDocument)


def tool_version() -> str:
    try:
        return version("pki-ceremony")
    except PackageNotFoundError:
        return "unknown"


def _state_ref(plan: Plan) -> StateRef | None:
    return StateRef(lineage=plan.meta.lineage, serial=plan.meta.serial) if plan.meta else None


def plan_document(c, plan: Plan, ceremony_file: str, replace: tuple[str, ...] = (),
                  refresh: dict[str, list[str]] | None = None) -> PlanDocument:
    steps = [PlannedStepDoc(id=s.node.id, kind=s.node.kind, ca=s.node.group, title=s.node.title,
                            action=s.action.value, reason=s.reason, changed=list(s.changed),
                            destructive=s.destructive, depends_on=sorted(c.graph.upstream(s.node.id)))
             for s in plan.steps]
    return PlanDocument(
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), tool_version=tool_version(),
        ceremony_file=str(Path(ceremony_file).resolve()), ceremony_name=c.name,
        ceremony_fingerprint=c.loaded.fingerprint, workspace=str(c.workspace.root.resolve()),
        state=_state_ref(plan), replace=list(replace), steps=steps,
        counts={a.value: n for a, n in plan.counts.items()}, artifacts_missing=plan.artifacts_missing,
        artifacts_changed=plan.artifacts_changed,
        applicable=not plan.problems and not plan.artifacts_changed, refresh=refresh)


def write_plan(doc: PlanDocument, path: Path) -> None:
    write_atomically(Path(path), (doc.model_dump_json(indent=2) + "\n").encode())


def read_plan(path: Path) -> PlanDocument | None:
    """The plan saved in `path`, or None if `path` is not a plan file (e.g. a ceremony file)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        return None
    try:
        return PlanDocument.model_validate(data)
    except ValidationError as exc:
        raise UsageError(f"{path}: not a plan this tool can apply: {exc.errors()[0]['msg']}") from None


def check_still_current(saved: PlanDocument, c, plan: Plan) -> None:
    """Refuse a saved plan if the ceremony, the state or any step's action changed since."""
    why = []
    if saved.ceremony_fingerprint != c.loaded.fingerprint:
        why.append("the ceremony file changed")
    now = _state_ref(plan)
    if saved.state is None and now is not None and now.serial == 1:
        now = None  # the state this apply has just created, with nothing written to it yet
    if (saved.state and saved.state.model_dump()) != (now and now.model_dump()):
        was = f"serial {saved.state.serial}" if saved.state else "no state"
        is_ = f"serial {now.serial}" if now else "no state"
        if saved.state and now and saved.state.lineage != now.lineage:
            why.append("the workspace's state is another lineage")
        else:
            why.append(f"the state changed ({was} then, {is_} now)")
    actions_then = {s.id: s.action for s in saved.steps}
    actions_now = {s.node.id: s.action.value for s in plan.steps}
    if actions_then != actions_now:
        diff = sorted(k for k in set(actions_then) | set(actions_now) if actions_then.get(k) != actions_now.get(k))
        why.append("steps differ: " + ", ".join(diff[:8]))
    if why:
        raise PlanRefused("the saved plan is stale: " + "; ".join(why),
                          hint="make a new plan with 'plan --out', review it, and apply that")


def ca_statuses(c, plan: Plan) -> list[CaStatus]:
    model = c.model
    out = []
    for ca in model.cas():
        mine = [s for s in plan.steps if s.node.group == ca.name]
        done = sum(s.action is Action.DONE for s in mine)
        if any(s.action in (Action.DRIFTED, Action.BLOCKED) for s in mine):
            status = "drifted"
        elif done == len(mine):
            status = "complete"
        else:
            status = "not started" if done == 0 else "in progress"
        final = mine[-1].record.outputs if mine[-1].record and mine[-1].record.done else {}
        create = mine[0].record.outputs if mine[0].record and mine[0].record.done else {}
        hsm = model.hsm_of(ca)
        out.append(CaStatus(
            name=ca.name, issuer=getattr(ca, "issuer", None), common_name=ca.subject.common_name,
            key_algorithm=ca.key.algorithm.value, backend=f"hsm:{hsm}" if hsm else "aws-pca",
            validity=ca.validity.describe(), status=status, steps_done=done, steps_total=len(mine),
            serial=final.get("serial"), not_before=final.get("not_before"), not_after=final.get("not_after"),
            sha256_fingerprint=final.get("sha256_fingerprint"), arn=create.get("arn")))
    return out


def status_document(c, plan: Plan) -> StatusDocument:
    return StatusDocument(ceremony_name=c.name, ceremony_fingerprint=c.loaded.fingerprint,
                          workspace=str(c.workspace.root.resolve()), state=_state_ref(plan),
                          cas=ca_statuses(c, plan))
