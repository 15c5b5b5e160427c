"""The ceremony's life cycle, wired together: file -> model -> DAG -> plan -> apply.

This is the only module that knows both the engine and the step plugins; the CLI calls it.
Order of an apply: validate the file; compute the plan from the state (no writes); check that
every PIN the plan needs has a source; confirm; create the workspace and take its lock;
recompute the plan under the lock; collect the PINs; run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pki_ceremony.engine.compiler import compile_ceremony, compile_root_ceremony
from pki_ceremony.engine.executor import ApplyReport, Executor, Observer
from pki_ceremony.engine.graph import CeremonyGraph
from pki_ceremony.engine.lock import WorkspaceLock
from pki_ceremony.engine.plan import Plan, make_plan
from pki_ceremony.engine.registry import Registry
from pki_ceremony.engine.state import SqliteStateStore
from pki_ceremony.engine.workspace import Workspace, default_workspace
from pki_ceremony.errors import PlanRefused, StateError, UsageError
from pki_ceremony.schemas.ceremony import Ceremony as CeremonyModel
from pki_ceremony.schemas.ceremony import RootCeremony as RootCeremonyModel
from pki_ceremony.schemas.loader import LoadedCeremony, load_ceremony


@dataclass
class Ceremony:
    loaded: LoadedCeremony
    graph: CeremonyGraph
    workspace: Workspace
    aws_waiter_delay: float | None = None  # shorter polls against the local stand-in
    effective: CeremonyModel | None = None  # for a RootCeremony: its base, with this file's HSMs added

    @property
    def model(self) -> CeremonyModel:
        """The hierarchy and HSMs the steps work with (a RootCeremony's base, plus its own HSMs)."""
        return self.effective or self.loaded.model

    @property
    def name(self) -> str:
        return self.loaded.model.metadata.name

    @property
    def ceremony_dir(self) -> Path:
        """Where relative paths of the hierarchy's ceremony file (custody directories) start."""
        return (self.loaded.base or self.loaded).path.resolve().parent

    def source_of(self, hsm: str):
        if self.loaded.base is not None and hsm in self.loaded.base.model.hsms:
            return self.loaded.base.source
        return self.loaded.source


def open_ceremony(path: str | Path, workspace: str | Path | None = None, *, model_transform=None) -> Ceremony:
    """Load, validate and compile a ceremony file. A RootCeremony works in its base's workspace."""
    loaded = load_ceremony(path)
    if isinstance(loaded.model, RootCeremonyModel):
        from pki_ceremony.schemas.root_rules import with_additions

        base = loaded.base
        effective = with_additions(loaded.model, base.model)
        if model_transform:
            effective = model_transform(effective)
        graph = compile_root_ceremony(loaded.model, effective, _revoked(loaded))
        ws = Workspace(Path(workspace) if workspace else default_workspace(base.path))
        c = Ceremony(loaded, graph, ws, effective=effective)
    else:
        model = model_transform(loaded.model) if model_transform else loaded.model
        ws = Workspace(Path(workspace) if workspace else default_workspace(Path(path)))
        c = Ceremony(loaded, compile_ceremony(model), ws, effective=model if model_transform else None)
    from pki_ceremony import rehearse

    if model_transform is None and rehearse.is_rehearsal(ws.root):  # opened again later, as rehearsed
        return rehearse.rehearsal_ceremony(path, ws.root)
    return c


def _revoked(loaded: LoadedCeremony) -> list[dict]:
    """The CRL's revoked entries, with certificate files read for their serials."""
    from cryptography import x509

    out = []
    crl = loaded.model.crl
    for i, entry in enumerate(crl.revoked if crl else []):
        serial = entry.serial
        if entry.certificate is not None:
            file = loaded.path.resolve().parent / entry.certificate
            try:
                serial = format(x509.load_pem_x509_certificate(file.read_bytes()).serial_number, "x")
            except (OSError, ValueError) as exc:
                raise loaded.source.error(("crl", "revoked", i, "certificate"),
                                          f"cannot read a PEM certificate from {file}: {exc}") from None
        out.append({"serial": serial.lower().removeprefix("0x"), "reason": entry.reason,
                    "revoked_at": entry.revoked_at.isoformat() if entry.revoked_at else None})
    return out


def registry() -> Registry:
    from pki_ceremony.steps import builtin_plugins

    reg = Registry()
    for cls in builtin_plugins():
        reg.register(cls)
    return reg


def read_state(c: Ceremony) -> SqliteStateStore | None:
    return SqliteStateStore(c.workspace.state_path, create=False) if c.workspace.exists() else None


def plan(c: Ceremony, replace: tuple[str, ...] = ()) -> Plan:
    store = read_state(c)
    try:
        return _plan(c, store, replace)
    finally:
        if store is not None:
            store.close()


def _plan(c: Ceremony, store, replace) -> Plan:
    reg = registry()
    try:
        return make_plan(c.graph, store, replace=replace, workspace=c.workspace,
                         destructive_kinds=[k for k in reg.kinds() if reg.get(k).destructive])
    except KeyError as exc:
        raise UsageError(f"--replace names no step of this ceremony: {exc.args[0]}",
                         hint="step ids are listed by 'plan'") from None


def hsms_needed(p: Plan) -> list[str]:
    return sorted({r.split(":", 1)[1] for r in p.resources_needed() if r.startswith("hsm:")})


def so_pins_needed(c: Ceremony, p: Plan) -> set[str]:
    """HSMs whose security officer PIN the run may use: a SoftHSM token that may have to be created
    (it never held a key), or the source of a key export."""
    held = {s.record.spec["hsm"]["name"] for s in p.steps
            if s.node.kind == "hsm.keypair" and s.record is not None and s.record.done}
    create = {n for n in hsms_needed(p) if c.model.hsms[n].provider == "softhsm" and n not in held}
    export = {s.node.spec["source"]["name"] for s in p.to_run if s.node.kind == "hsm.export_key"}
    return create | export


def check_pin_sources(c: Ceremony, hsm_names: list[str], so_needed: set[str] = frozenset()) -> None:
    """Every PIN the run needs has a source that can give it: before anything starts."""
    from pki_ceremony.steps.secrets import pin_available

    for name in hsm_names:
        spec = c.model.hsms[name]
        for field in ("pin", "so_pin"):
            if field == "so_pin" and name not in so_needed:
                continue
            source = getattr(spec, field)
            if source is None:
                continue
            why = pin_available(source)
            if why:
                raise c.source_of(name).error(("hsms", name, field), f"no PIN for hsm '{name}': {why}",
                                            hint="PINs come from the environment or a prompt, never the file")


def check_aws_settings(c: Ceremony, p: Plan) -> None:
    """A plan that calls AWS needs a region before anything starts (credentials are boto3's business)."""
    import os

    if not any(r.startswith("aws:") for r in p.resources_needed()):
        return
    if (c.model.aws and c.model.aws.region) or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"):
        return
    raise c.loaded.source.error(("aws",) if c.model.aws else (), "no AWS region for the steps that call AWS",
                                hint="set aws.region in the ceremony file, or AWS_REGION")


def apply(c: Ceremony, *, confirm: Callable[[Plan], bool], observer: Observer,
          replace: tuple[str, ...] = (), on_plan: Callable[[Plan], None] | None = None,
          max_workers: int = 1, expect: Callable[[Plan], None] | None = None) -> tuple[Plan, ApplyReport | None]:
    """`expect`, when given, refuses a plan that is not the one reviewed (apply of a saved plan)."""
    # An existing workspace is locked before its state is read, so a second apply fails at once.
    lock = WorkspaceLock(c.workspace.root).acquire() if c.workspace.exists() else None
    try:
        return _apply_locked(c, lock, confirm=confirm, observer=observer, replace=replace, on_plan=on_plan,
                             max_workers=max_workers, expect=expect or (lambda plan: None))
    finally:
        if lock is not None:
            lock.release()


def _apply_locked(c: Ceremony, lock: WorkspaceLock | None, *, confirm, observer, replace, on_plan, max_workers,
                  expect):
    first = plan(c, replace)
    expect(first)
    _refuse_changed_artifacts(first)
    if first.problems:
        raise PlanRefused("the plan has drifted or blocked steps: " + ", ".join(s.node.id for s in first.problems),
                          hint="run 'plan' to see what changed; restore the ceremony file, or use --replace STEP")
    if on_plan:
        on_plan(first)
    if not first.has_work:
        return first, None
    check_pin_sources(c, hsms_needed(first), so_pins_needed(c, first))
    check_aws_settings(c, first)
    if first.to_run and not confirm(first):
        raise PlanRefused("not confirmed; nothing was done", hint="answer 'yes', or pass --yes")
    if lock is None:  # a new workspace: create it, lock it, and plan again under the lock
        c.workspace.create()
        lock = WorkspaceLock(c.workspace.root).acquire()
        try:
            return _run(c, replace, observer, max_workers, expect)
        finally:
            lock.release()
    return _run(c, replace, observer, max_workers, expect)


def _run(c: Ceremony, replace, observer, max_workers, expect) -> tuple[Plan, ApplyReport | None]:
    store = SqliteStateStore(c.workspace.state_path)
    runtime = None
    try:
        current = _plan(c, store, replace)  # another apply may have finished in between
        expect(current)
        _refuse_changed_artifacts(current)
        if current.problems:
            raise PlanRefused("the state changed while planning: " + ", ".join(s.node.id for s in current.problems))
        if not current.has_work:
            return current, None
        store.set_ceremony(c.loaded.fingerprint, c.name)
        runtime = _runtime(c, hsms_needed(current), store.meta().lineage, never_create=_tokens_in_use(store))
        runtime.on_wait = getattr(observer, "waiting", runtime.on_wait)
        executor = Executor(c.graph, store, c.workspace, registry(), runtime, observer=observer,
                            max_workers=max_workers)
        return current, executor.apply(current)
    finally:
        if runtime is not None:
            runtime.close()
        store.close()


def refresh(c: Ceremony, p: Plan) -> dict[str, list[str]]:
    """Ask the backends whether what the state records still exists. Reads only; needs the PINs."""
    from pki_ceremony.engine.refresh import refresh as refresh_steps

    done = [s for s in p.steps if s.record is not None and s.record.done]
    if not done:
        return {}
    hsms = sorted({r.split(":", 1)[1] for s in done for r in s.node.resources if r.startswith("hsm:")})
    check_pin_sources(c, hsms)
    runtime = _runtime(c, hsms, p.meta.lineage, create_tokens=False)
    try:
        return refresh_steps(c.graph, p, registry(), runtime)
    finally:
        runtime.close()


def _refuse_changed_artifacts(p: Plan) -> None:
    if p.artifacts_changed:
        raise StateError("artifacts differ from what the state recorded: " + ", ".join(p.artifacts_changed),
                         hint="an artifact was edited or replaced by hand; restore it, or move it away and run "
                              "apply again to rewrite it from the state")


def _tokens_in_use(store) -> set[str]:
    """HSMs that held a key at some point: their tokens are never initialised again (see Runtime)."""
    return {r.spec["hsm"]["name"] for r in store.steps().values() if r.kind == "hsm.keypair" and r.done}


def _runtime(c: Ceremony, hsm_names: list[str], lineage: str, create_tokens: bool = True,
             never_create: set[str] = frozenset()):
    from pki_ceremony.steps.runtime import Runtime
    from pki_ceremony.steps.secrets import resolve_pin

    pins = {}
    for name in hsm_names:
        spec = c.model.hsms[name]
        pins[name] = resolve_pin(spec.pin, f"hsm '{name}' (token '{spec.token}')")
    so_sources = {n: c.model.hsms[n].so_pin for n in hsm_names if c.model.hsms[n].so_pin is not None}
    return Runtime(c.model.hsms, c.workspace.root, pins, so_sources, lineage=lineage, ceremony_name=c.name,
                   aws_settings=c.model.aws, aws_waiter_delay=c.aws_waiter_delay, create_tokens=create_tokens,
                   never_create=never_create, ceremony_dir=c.ceremony_dir)
