"""Ceremony model -> step DAG.

Step ids are `<ca>/<what>`: root/key, root/certificate, then for each subordinate
<name>/key, <name>/csr, <name>/certificate (signed by its issuer), <name>/import. Parents come
before children; ties keep the order of the ceremony file.
"""
from __future__ import annotations

from typing import Any

from pki_ceremony.schemas.ceremony import Ceremony, RootSpec, SubordinateSpec

from .graph import CeremonyGraph, StepNode


def _hsm_ref(model: Ceremony, name: str) -> dict[str, Any]:
    h = model.hsms[name]
    # Identity only: the PIN's source is not part of what a step makes, so it is not fingerprinted.
    return {"name": name, "provider": h.provider, "token": h.token, "module": h.module}


def _ca_path(model: Ceremony, ca: RootSpec | SubordinateSpec) -> tuple:
    if isinstance(ca, RootSpec):
        return ("hierarchy", "root")
    return ("hierarchy", "subordinates", model.hierarchy.subordinates.index(ca))


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


def compile_ceremony(model: Ceremony) -> CeremonyGraph:
    graph = CeremonyGraph()
    root = model.hierarchy.root
    key = graph.add(_key_step(model, root))
    graph.add(StepNode(
        id=f"{root.name}/certificate", kind="x509.self_signed", group=root.name,
        title=f"self-sign the root certificate '{root.subject.common_name}' ({root.validity.describe()})",
        spec={**_profile(model, root), "signing_algorithm": model.signing_algorithm(root).value},
        inputs={"key": key.id}, resources=key.resources, source_path=_ca_path(model, root)))

    # What a CA exposes to its children: the step holding its key (or its PCA handle) and the
    # step whose outputs carry its final certificate and chain.
    issuer_steps: dict[str, tuple[str, str]] = {root.name: (key.id, f"{root.name}/certificate")}
    by_name = {ca.name: ca for ca in model.cas()}
    pending = list(model.hierarchy.subordinates)
    while pending:  # parents before children, file order otherwise
        ready = [ca for ca in pending if ca.issuer in issuer_steps]
        for ca in ready:
            pending.remove(ca)
            issuer = by_name[ca.issuer]
            issuer_key, issuer_cert = issuer_steps[ca.issuer]
            path = _ca_path(model, ca)
            sub_key = graph.add(_key_step(model, ca))
            csr = graph.add(StepNode(
                id=f"{ca.name}/csr", kind="hsm.csr", group=ca.name,
                title=f"make the CSR of '{ca.subject.common_name}' with its key",
                spec={"subject": ca.subject.model_dump(exclude_none=True),
                      "signing_algorithm": model.signing_algorithm(ca).value},
                inputs={"key": sub_key.id}, resources=sub_key.resources, source_path=path))
            cert = graph.add(StepNode(
                id=f"{ca.name}/certificate", kind="hsm.sign_ca", group=ca.name,
                title=f"sign '{ca.name}' with '{issuer.name}' ({ca.validity.describe()}, "
                      f"pathLen {ca.path_len if ca.path_len is not None else 'none'})",
                spec={**_profile(model, ca), "signing_algorithm": model.signing_algorithm(issuer).value,
                      "issuer_hsm": _hsm_ref(model, model.hsm_of(issuer))},
                inputs={"issuer_key": issuer_key, "issuer_certificate": issuer_cert, "csr": csr.id},
                resources=(f"hsm:{model.hsm_of(issuer)}",), source_path=path))
            imported = graph.add(StepNode(
                id=f"{ca.name}/import", kind="hsm.import_certificate", group=ca.name,
                title=f"check and install '{ca.name}'s certificate and chain beside its key",
                spec={"hsm": _hsm_ref(model, model.hsm_of(ca))},
                inputs={"key": sub_key.id, "csr": csr.id, "certificate": cert.id,
                        "issuer_certificate": issuer_cert},
                resources=sub_key.resources, source_path=path))
            issuer_steps[ca.name] = (sub_key.id, imported.id)
        if not ready:  # unreachable after schema validation (issuers exist, no cycles)
            raise ValueError("subordinates without a reachable issuer: " + ", ".join(c.name for c in pending))
    graph.check()
    return graph
