"""Ceremony model -> step DAG.

Step ids are `<ca>/<what>`: root/key, root/certificate, then for each subordinate
<name>/key (a token key) or <name>/create (a Private CA), <name>/csr, <name>/certificate (made
by its issuer: signed in the issuer's HSM, or issued by Private CA), <name>/import. The step
kinds follow the backends, so the local and the aws-pca backends are two implementations of
one create -> CSR -> sign -> import cycle. Parents come before children; ties keep file order.
"""
from __future__ import annotations

from typing import Any

from pki_ceremony.schemas.ceremony import Ceremony, LocalBackend, RootSpec, SubordinateSpec

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


def compile_ceremony(model: Ceremony) -> CeremonyGraph:
    graph = CeremonyGraph()
    root = model.hierarchy.root
    key = graph.add(_key_step(model, root))
    graph.add(StepNode(
        id=f"{root.name}/certificate", kind="x509.self_signed", group=root.name,
        title=f"self-sign the root certificate '{root.subject.common_name}' ({root.validity.describe()})",
        spec={**_profile(model, root), "signing_algorithm": model.signing_algorithm(root).value},
        inputs={"key": key.id}, resources=key.resources, source_path=_ca_path(model, root)))

    # What a CA exposes to its children: the step holding its key (or its Private CA ARN), and
    # the step whose outputs carry its final certificate and chain.
    issuer_steps: dict[str, tuple[str, str]] = {root.name: (key.id, f"{root.name}/certificate")}
    by_name = {ca.name: ca for ca in model.cas()}
    pending = list(model.hierarchy.subordinates)
    while pending:  # parents before children, file order otherwise
        ready = [ca for ca in pending if ca.issuer in issuer_steps]
        for ca in ready:
            pending.remove(ca)
            issuer_create, issuer_cert = issuer_steps[ca.issuer]
            create, csr, imp = _subordinate_steps(model, ca)
            graph.add(create)
            graph.add(csr)
            cert = graph.add(_certificate_step(model, ca, by_name[ca.issuer], issuer_create, issuer_cert, csr))
            imported = graph.add(StepNode(
                id=f"{ca.name}/import", kind=imp["kind"], group=ca.name, title=imp["title"], spec=imp["spec"],
                inputs={"ca": create.id, "csr": csr.id, "certificate": cert.id, "issuer_certificate": issuer_cert},
                resources=imp["resources"], source_path=_ca_path(model, ca)))
            issuer_steps[ca.name] = (create.id, imported.id)
        if not ready:  # unreachable after schema validation (issuers exist, no cycles)
            raise ValueError("subordinates without a reachable issuer: " + ", ".join(c.name for c in pending))
    graph.check()
    return graph
