"""Ceremony model -> step DAG.

Step ids are `<ca>/<what>`: root/key, root/certificate, then for each subordinate
<name>/key (a token key) or <name>/create (a Private CA), <name>/csr, <name>/certificate (made
by its issuer: signed in the issuer's HSM, or issued by Private CA), <name>/import. The step
kinds follow the backends, so the local and the aws-pca backends are two implementations of
one create -> CSR -> sign -> import cycle. Parents come before children; ties keep file order.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from pki_ceremony.schemas.ceremony import Ceremony, LocalBackend, RootCeremony, RootSpec, SubordinateSpec

from .graph import CeremonyGraph, StepNode


def _hsm_ref(model: Ceremony, name: str) -> dict[str, Any]:
    h = model.hsms[name]
    # Identity only: the PIN's source is not part of what a step makes, so it is not fingerprinted.
    return {"name": name, "provider": h.provider, "token": h.token, "module": h.module}


def _ca_path(model: Ceremony, ca: RootSpec | SubordinateSpec) -> tuple:
    if isinstance(ca, RootSpec):
        return ("hierarchy", "root")
    # By identity: list.index would compare pydantic models field by field (slow for many CAs).
    return ("hierarchy", "subordinates", next(i for i, c in enumerate(model.hierarchy.subordinates) if c is ca))


def _key_step(model: Ceremony, ca: RootSpec | SubordinateSpec) -> StepNode:
    hsm = model.hsm_of(ca)
    return StepNode(
        id=f"{ca.name}/key", kind="hsm.keypair", group=ca.name,
        title=f"generate {ca.key.algorithm.value} key '{model.key_label(ca)}' on token '{model.hsms[hsm].token}'",
        spec={"hsm": _hsm_ref(model, hsm), "algorithm": ca.key.algorithm.value,
              "label": model.key_label(ca), "exportable": ca.key.exportable},
        resources=(f"hsm:{hsm}",), source_path=_ca_path(model, ca) + ("key",))


def _profile(model: Ceremony, ca: RootSpec | SubordinateSpec) -> dict[str, Any]:
    return {"subject": ca.subject.model_dump(exclude_none=True),
            "validity": ca.validity.model_dump(exclude_none=True),
            "path_len": ca.path_len, "key_algorithm": ca.key.algorithm.value}


def _aws_ref(model: Ceremony) -> dict[str, Any]:
    aws = model.aws
    return {"region": aws.region if aws else None, "profile": aws.profile if aws else None}


def _subordinate_steps(model: Ceremony, ca: SubordinateSpec) -> tuple[StepNode, StepNode, dict]:
    """The CA's own 'create' and 'csr' steps, and the spec of its 'import' step, by backend."""
    path = _ca_path(model, ca)
    if isinstance(ca.backend, LocalBackend):
        create = _key_step(model, ca)
        csr = StepNode(
            id=f"{ca.name}/csr", kind="hsm.csr", group=ca.name,
            title=f"make the CSR of '{ca.subject.common_name}' with its key",
            spec={"subject": ca.subject.model_dump(exclude_none=True),
                  "signing_algorithm": model.signing_algorithm(ca).value},
            inputs={"key": create.id}, resources=create.resources, source_path=path)
        return create, csr, {"kind": "hsm.import_certificate", "spec": {"hsm": _hsm_ref(model, model.hsm_of(ca))},
                             "resources": create.resources,
                             "title": f"check and install '{ca.name}'s certificate and chain beside its key"}
    backend = ca.backend
    create = StepNode(
        id=f"{ca.name}/create", kind="aws_pca.create", group=ca.name,
        title=f"create subordinate CA '{ca.subject.common_name}' in Private CA ({ca.key.algorithm.value})",
        spec={"aws": _aws_ref(model), "key_algorithm": ca.key.algorithm.value,
              "signing_algorithm": model.signing_algorithm(ca).value,
              "subject": ca.subject.model_dump(exclude_none=True), "tags": dict(backend.tags),
              "usage_mode": backend.usage_mode, "key_storage_security_standard": backend.key_storage_security_standard,
              "revocation": backend.revocation.model_dump(exclude_none=True) if backend.revocation else None},
        resources=("aws:acm-pca",), source_path=path + ("backend",))
    csr = StepNode(
        id=f"{ca.name}/csr", kind="aws_pca.csr", group=ca.name,
        title=f"fetch the CSR of '{ca.subject.common_name}' from Private CA",
        spec={"aws": _aws_ref(model), "subject": ca.subject.model_dump(exclude_none=True),
              "key_algorithm": ca.key.algorithm.value},
        inputs={"ca": create.id}, resources=create.resources, source_path=path)
    return create, csr, {"kind": "aws_pca.import", "spec": {"aws": _aws_ref(model)}, "resources": create.resources,
                         "title": f"check, then import '{ca.name}'s certificate and chain into Private CA"}


def _certificate_step(model: Ceremony, ca: SubordinateSpec, issuer, issuer_create: str, issuer_cert: str,
                      csr: StepNode) -> StepNode:
    common = {"subject": ca.subject.model_dump(exclude_none=True),
              "validity": ca.validity.model_dump(exclude_none=True), "path_len": ca.path_len,
              "signing_algorithm": model.signing_algorithm(issuer).value}
    title = (f"sign '{ca.name}' with '{issuer.name}' ({ca.validity.describe()}, "
             f"pathLen {ca.path_len if ca.path_len is not None else 'none'})")
    inputs = {"issuer_key": issuer_create, "issuer_certificate": issuer_cert, "csr": csr.id}
    path = _ca_path(model, ca)
    if model.backend_type(issuer) == "aws-pca":
        return StepNode(id=f"{ca.name}/certificate", kind="aws_pca.issue_ca", group=ca.name,
                        title=title.replace("sign", "issue", 1) + " in Private CA",
                        spec={**common, "aws": _aws_ref(model),
                              "template": f"SubordinateCACertificate_PathLen{ca.path_len}/V1"},
                        inputs=inputs, resources=("aws:acm-pca",), source_path=path)
    hsm = model.hsm_of(issuer)
    return StepNode(id=f"{ca.name}/certificate", kind="hsm.sign_ca", group=ca.name, title=title,
                    spec={**common, "key_algorithm": ca.key.algorithm.value, "issuer_hsm": _hsm_ref(model, hsm)},
                    inputs=inputs, resources=(f"hsm:{hsm}",), source_path=path)


def _add_subordinates(graph: CeremonyGraph, model: Ceremony, subordinates, issuer_steps: dict[str, tuple[str, str]],
                      root_signing_inputs: dict[str, str] | None = None) -> None:
    """Steps for `subordinates`, parents before children (file order otherwise). `issuer_steps` maps a
    CA to what it exposes to its children: the step holding its key (or its Private CA ARN) and the
    step whose outputs carry its final certificate and chain. `root_signing_inputs` are extra inputs
    of a certificate the root signs (a root ceremony's restore)."""
    by_name = {ca.name: ca for ca in model.cas()}
    root = model.hierarchy.root.name
    pending = list(subordinates)
    while pending:
        ready = [ca for ca in pending if ca.issuer in issuer_steps]
        for ca in ready:
            pending.remove(ca)
            issuer_create, issuer_cert = issuer_steps[ca.issuer]
            create, csr, imp = _subordinate_steps(model, ca)
            graph.add(create)
            graph.add(csr)
            cert = _certificate_step(model, ca, by_name[ca.issuer], issuer_create, issuer_cert, csr)
            if ca.issuer == root and root_signing_inputs:
                cert = replace(cert, inputs={**cert.inputs, **root_signing_inputs})
            graph.add(cert)
            imported = graph.add(StepNode(
                id=f"{ca.name}/import", kind=imp["kind"], group=ca.name, title=imp["title"], spec=imp["spec"],
                inputs={"ca": create.id, "csr": csr.id, "certificate": cert.id, "issuer_certificate": issuer_cert},
                resources=imp["resources"], source_path=_ca_path(model, ca)))
            issuer_steps[ca.name] = (create.id, imported.id)
        if not ready:  # unreachable after schema validation (issuers exist, no cycles)
            raise ValueError("subordinates without a reachable issuer: " + ", ".join(c.name for c in pending))


def exposed_steps(model: Ceremony) -> dict[str, tuple[str, str]]:
    """For every CA of a compiled ceremony: (its key or Private CA step, its final certificate step)."""
    root = model.hierarchy.root.name
    out = {root: (f"{root}/key", f"{root}/certificate")}
    for ca in model.hierarchy.subordinates:
        create = f"{ca.name}/key" if isinstance(ca.backend, LocalBackend) else f"{ca.name}/create"
        out[ca.name] = (create, f"{ca.name}/import")
    return out


def compile_ceremony(model: Ceremony) -> CeremonyGraph:
    graph = CeremonyGraph()
    root = model.hierarchy.root
    key = graph.add(_key_step(model, root))
    graph.add(StepNode(
        id=f"{root.name}/certificate", kind="x509.self_signed", group=root.name,
        title=f"self-sign the root certificate '{root.subject.common_name}' ({root.validity.describe()})",
        spec={**_profile(model, root), "signing_algorithm": model.signing_algorithm(root).value},
        inputs={"key": key.id}, resources=key.resources, source_path=_ca_path(model, root)))

    _add_subordinates(graph, model, model.hierarchy.subordinates,
                      {root.name: (key.id, f"{root.name}/certificate")})
    if model.custody is not None:
        _custody_steps(model, graph)
    graph.check()
    return graph


def _custody_steps(model: Ceremony, graph: CeremonyGraph) -> None:
    """After every step that uses the root's HSM: a verified backup, then teardown."""
    cu, root = model.custody, model.hierarchy.root
    key, cert = f"{root.name}/key", f"{root.name}/certificate"
    work = {f"after {n.id}": n.id for n in graph.order() if f"hsm:{cu.hsm}" in n.resources and n.id not in (key, cert)}
    base = {"key": key, "certificate": cert, **work}
    hsm = _hsm_ref(model, cu.hsm)
    token = model.hsms[cu.hsm].token
    if cu.softhsm is not None:
        backup = graph.add(StepNode(
            id="custody/backup", kind="softhsm.backup", group="custody",
            title=f"archive token '{token}' and verify the archive in a scratch SoftHSM",
            spec={"hsm": hsm, "directory": cu.softhsm.directory}, inputs=base,
            resources=(f"hsm:{cu.hsm}",), source_path=("custody",)))
        if cu.teardown:
            graph.add(StepNode(
                id="custody/teardown", kind="softhsm.teardown", group="custody",
                title=f"remove token '{token}' from the live token directory (the archive stays)",
                spec={"hsm": hsm}, inputs={"backup": backup.id, "key": key}, resources=(f"hsm:{cu.hsm}",),
                source_path=("custody", "teardown")))
        return
    graph.add(StepNode(
        id="custody/teardown", kind="cloudhsm.teardown", group="custody",
        title=f"delete the HSMs of {cu.cloudhsm.cluster_id}; keep their backup, never to expire"
              + (f", copied to {', '.join(cu.cloudhsm.copy_backup_to)}" if cu.cloudhsm.copy_backup_to else ""),
        spec={"hsm": hsm, "aws": _aws_ref(model), "cluster": cu.cloudhsm.model_dump(exclude_none=True),
              "delete_hsms": cu.teardown},
        inputs=base, resources=(f"hsm:{cu.hsm}", "aws:cloudhsmv2"), source_path=("custody",)))


def compile_root_ceremony(rc: RootCeremony, base: Ceremony, revoked: list[dict]) -> CeremonyGraph:
    """The base ceremony's steps (external: done by it, never run here), then this ceremony's:
    bring the root back, use it (new subordinates, CRL, export), put it away again.
    `base` is the effective model: the base's hierarchy with this file's HSMs and subordinates."""
    graph = CeremonyGraph()
    new_names = {ca.name for ca in rc.subordinates}
    original = base.model_copy(update={"hierarchy": base.hierarchy.model_copy(update={"subordinates": [
        ca for ca in base.hierarchy.subordinates if ca.name not in new_names]})})
    for node in compile_ceremony(original).order():
        graph.add(replace(node, external=True))
    root, cu, n = base.hierarchy.root, base.custody, rc.metadata.name
    key, cert = f"{root.name}/key", f"{root.name}/certificate"
    hsm_name = root.hsm
    hsm = _hsm_ref(base, hsm_name)
    resources = (f"hsm:{hsm_name}",)
    restored: dict[str, str] = {}
    crl_ca = base.ca(rc.crl.issuer or root.name) if rc.crl else None
    needs_root = (rc.export is not None or (crl_ca is not None and crl_ca is root)
                  or any(ca.issuer == root.name for ca in rc.subordinates))
    offline = cu is not None and cu.teardown and needs_root
    if offline:
        kind = "softhsm.restore" if cu.softhsm else "cloudhsm.restore"
        inputs = {"key": key, "certificate": cert, "teardown": "custody/teardown"}
        if cu.softhsm:
            inputs["backup"] = "custody/backup"
        spec = {"hsm": hsm}
        if cu.cloudhsm:
            spec.update(aws=_aws_ref(base), cluster=cu.cloudhsm.model_dump(exclude_none=True))
        restore = graph.add(StepNode(
            id=f"{n}/restore", kind=kind, group=n,
            title=f"bring the root's token '{hsm['token']}' back from its backup and find the root key in it",
            spec=spec, inputs=inputs, resources=resources + (("aws:cloudhsmv2",) if cu.cloudhsm else ()),
            source_path=("base",)))
        restored = {"restored": restore.id}
    work: list[str] = []
    if rc.subordinates:
        new = [ca for ca in base.hierarchy.subordinates if ca.name in new_names]
        _add_subordinates(graph, base, new, exposed_steps(original), restored)
        work += [f"{ca.name}/certificate" for ca in new if ca.issuer == root.name]
    if rc.crl is not None:
        is_root = crl_ca is root
        crl = graph.add(StepNode(
            id=f"{n}/crl", kind="x509.crl", group=n,
            title=f"sign the CRL of '{crl_ca.subject.common_name}' ({len(revoked)} revoked, next update in "
                  f"{rc.crl.next_update.describe()})",
            spec={"next_update": rc.crl.next_update.model_dump(exclude_none=True), "revoked": revoked,
                  "signing_algorithm": base.signing_algorithm(crl_ca).value, "series": f"crl:{crl_ca.name}",
                  "s3_bucket": rc.crl.s3_bucket, "s3_key": rc.crl.s3_key or None, "ceremony": n,
                  "aws": _aws_ref(base) if rc.crl.s3_bucket else None},
            inputs={"key": f"{crl_ca.name}/key", "certificate": cert if is_root else f"{crl_ca.name}/import",
                    **(restored if is_root else {})},
            resources=(f"hsm:{base.hsm_of(crl_ca)}",) + (("aws:s3",) if rc.crl.s3_bucket else ()),
            source_path=("crl",)))
        work.append(crl.id)
    if rc.export is not None:
        target = rc.hsms[rc.export.to]
        target_ref = {"name": rc.export.to, "provider": target.provider, "token": target.token,
                      "module": target.module}
        export = graph.add(StepNode(
            id=f"{n}/export", kind="hsm.export_key", group=n,
            title=f"copy the root key to token '{target.token}' by key wrapping (AES key wrap under a "
                  "transported AES key)",
            spec={"source": hsm, "target": target_ref, "label": rc.export.label or base.key_label(root),
                  "exportable": root.key.exportable, "algorithm": root.key.algorithm.value},
            inputs={"key": key, "certificate": cert, **restored},
            resources=resources + (f"hsm:{rc.export.to}",), source_path=("export",)))
        proof = graph.add(StepNode(
            id=f"{n}/export-proof", kind="hsm.export_proof", group=n,
            title=f"prove the copy: token '{target.token}' signs, the root certificate verifies it",
            spec={"target": target_ref, "signing_algorithm": base.signing_algorithm(root).value},
            inputs={"export": export.id, "certificate": cert}, resources=(f"hsm:{rc.export.to}",),
            source_path=("export",)))
        work += [export.id, proof.id]
    if offline:
        after = {f"after {w}": w for w in work if f"hsm:{hsm_name}" in graph.node(w).resources}
        if cu.softhsm:
            graph.add(StepNode(
                id=f"{n}/teardown", kind="softhsm.teardown", group=n,
                title=f"remove token '{hsm['token']}' from the live token directory again",
                spec={"hsm": hsm}, inputs={"backup": "custody/backup", "key": key, **after}, resources=resources,
                source_path=("base",)))
        else:
            graph.add(StepNode(
                id=f"{n}/teardown", kind="cloudhsm.teardown", group=n,
                title=f"delete the HSMs of {cu.cloudhsm.cluster_id} again; keep the new backup, never to expire",
                spec={"hsm": hsm, "aws": _aws_ref(base), "cluster": cu.cloudhsm.model_dump(exclude_none=True),
                      "delete_hsms": True},
                inputs={"key": key, "certificate": cert, **after}, resources=resources + ("aws:cloudhsmv2",),
                source_path=("base",)))
    graph.check()
    return graph
