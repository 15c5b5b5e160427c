"""Step plugins for keys and certificates made inside a PKCS#11 token.

  hsm.keypair             generate a CA key pair (adopts the one an interrupted attempt made)
  x509.self_signed        self-sign the root certificate in the HSM
  hsm.csr                 a subordinate's CSR, signed with its own key in the HSM
  hsm.sign_ca             an issuer whose key is in an HSM signs a subordinate's CSR
  hsm.import_certificate  check a signed certificate and its chain, then store it on the token
                          beside its key (the `local` backend's import)

Each reads its spec fragment and its inputs by role; none knows about the DAG.
"""
from __future__ import annotations

import secrets
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pkcs11 import Attribute, CertificateType, ObjectClass

from pki_ceremony.engine.contract import StepCall, StepPlugin, StepResult

from . import hsm_keys
from .cert_checks import check_before_import
from .hsm_signer import hsm_signer
from .runtime import Runtime
from .x509_profile import (CertificateError, build_ca_certificate, build_csr, describe, load_cert, load_chain,
                           same_key, serial_from, ski_of, subject_name, to_pem, validity_window,
                           verify_signed_by)


def _key_outputs(spec, ref: hsm_keys.KeyRef, attributes: dict) -> dict:
    return {"hsm": spec["hsm"]["name"], "token": spec["hsm"]["token"], "key_id": ref.key_id.hex(),
            "label": ref.label, "algorithm": spec["algorithm"], "public_key_pem": ref.public_key_pem,
            "attributes": attributes}


class HsmKeyPair(StepPlugin):
    kind = "hsm.keypair"

    def resources(self, spec):
        return (f"hsm:{spec['hsm']['name']}",)

    def intend(self, call: StepCall, ctx: Runtime) -> dict:
        if call.replacing:  # checked before the new intent replaces the old key's record
            token = ctx.token(call.spec["hsm"]["name"])
            with token.session() as s:
                if hsm_keys.labelled(s, call.spec["label"]):
                    raise hsm_keys.HsmKeyError(
                        f"{token.describe()} already holds the key labelled '{call.spec['label']}' that is being "
                        "replaced; a new key needs a new label (nothing was changed)",
                        hint="set a new key.label in the ceremony file, then apply --replace again")
        return {"key_id": secrets.token_bytes(16).hex(), "label": call.spec["label"]}

    def adopt(self, call: StepCall, ctx: Runtime) -> StepResult | None:
        token = ctx.token(call.spec["hsm"]["name"])
        ref = hsm_keys.find(token, bytes.fromhex(call.intent["key_id"]), call.intent["label"], call.spec["algorithm"])
        if ref is None:
            return None
        attrs = hsm_keys.check_attributes(token, ref, call.spec["exportable"])
        return StepResult(_key_outputs(call.spec, ref, attrs),
                          summary=f"adopted key '{ref.label}' made by the interrupted run")

    def refresh(self, call: StepCall, outputs: dict, ctx: Runtime) -> list[str]:
        token = ctx.token(call.spec["hsm"]["name"])
        ref = hsm_keys.find(token, bytes.fromhex(outputs["key_id"]), outputs["label"], call.spec["algorithm"])
        if ref is None:
            return [f"the key '{outputs['label']}' (id {outputs['key_id']}) is not on {token.describe()}"]
        if ref.public_key_pem != outputs["public_key_pem"]:
            return [f"the key '{outputs['label']}' on {token.describe()} has another public key than recorded"]
        return []

    def run(self, call: StepCall, ctx: Runtime) -> StepResult:
        token = ctx.token(call.spec["hsm"]["name"])
        ref = hsm_keys.generate(token, call.spec["algorithm"], bytes.fromhex(call.intent["key_id"]),
                                call.intent["label"], call.spec["exportable"])
        attrs = hsm_keys.check_attributes(token, ref, call.spec["exportable"])
        return StepResult(_key_outputs(call.spec, ref, attrs), summary=f"key '{ref.label}' id {ref.key_id.hex()}")


def _signer(ctx: Runtime, key_outputs: dict):
    return hsm_signer(ctx.token(key_outputs["hsm"]), hsm_keys.KeyRef.from_outputs(key_outputs))


def _cert_intent(ctx: Runtime, hsm_name: str, validity: dict, issuer_not_after: datetime | None) -> dict:
    not_before, not_after = validity_window(validity, issuer_not_after)
    serial = serial_from(ctx.token(hsm_name).random(16))
    return {"serial": format(serial, "x"), "not_before": not_before.isoformat(), "not_after": not_after.isoformat()}


def _cert_result(cert: x509.Certificate, chain_pem: str = "") -> StepResult:
    return StepResult({"certificate_pem": to_pem(cert), "chain_pem": chain_pem, **describe(cert)},
                      {"certificate.pem": to_pem(cert).encode()},
                      summary=f"serial {cert.serial_number:x}, until {cert.not_valid_after_utc:%Y-%m-%d}")


class SelfSigned(StepPlugin):
    kind = "x509.self_signed"

    def intend(self, call: StepCall, ctx: Runtime) -> dict:
        return _cert_intent(ctx, call.inputs["key"]["hsm"], call.spec["validity"], None)

    def run(self, call: StepCall, ctx: Runtime) -> StepResult:
        signer = _signer(ctx, call.inputs["key"])
        name = subject_name(call.spec["subject"])
        cert = build_ca_certificate(
            subject=name, issuer=name, public_key=signer.public_key(), issuer_ski=None,
            serial=int(call.intent["serial"], 16), not_before=datetime.fromisoformat(call.intent["not_before"]),
            not_after=datetime.fromisoformat(call.intent["not_after"]), path_len=call.spec["path_len"],
            signer=signer, signing_algorithm=call.spec["signing_algorithm"])
        verify_signed_by(cert, signer.public_key())
        return _cert_result(cert)


class HsmCsr(StepPlugin):
    kind = "hsm.csr"

    def run(self, call: StepCall, ctx: Runtime) -> StepResult:
        signer = _signer(ctx, call.inputs["key"])
        csr = build_csr(subject_name(call.spec["subject"]), signer, call.spec["signing_algorithm"])
        if not csr.is_signature_valid:
            raise CertificateError("the CSR just signed in the HSM does not verify")
        pem = to_pem(csr)
        return StepResult({"csr_pem": pem}, {"csr.pem": pem.encode()}, summary="CSR signed by its own key")


def validity_problems(call: StepCall) -> list[str]:
    """A certificate for this spec, signed now, would fit inside its issuer's (for preflight)."""
    issuer = load_cert(call.inputs["issuer_certificate"]["certificate_pem"])
    try:
        validity_window(call.spec["validity"], issuer.not_valid_after_utc)
    except CertificateError as exc:
        return [str(exc)]
    return []


class HsmSignCa(StepPlugin):
    kind = "hsm.sign_ca"

    def preflight(self, call: StepCall) -> list[str]:
        return validity_problems(call)

    def intend(self, call: StepCall, ctx: Runtime) -> dict:
        issuer = load_cert(call.inputs["issuer_certificate"]["certificate_pem"])
        return _cert_intent(ctx, call.inputs["issuer_key"]["hsm"], call.spec["validity"], issuer.not_valid_after_utc)

    def run(self, call: StepCall, ctx: Runtime) -> StepResult:
        issuer = load_cert(call.inputs["issuer_certificate"]["certificate_pem"])
        csr = x509.load_pem_x509_csr(call.inputs["csr"]["csr_pem"].encode())
        if not csr.is_signature_valid:
            raise CertificateError("the CSR's signature does not verify")
        signer = _signer(ctx, call.inputs["issuer_key"])
        if not same_key(signer.public_key(), issuer.public_key()):
            raise CertificateError("the issuer's key on the HSM is not the key of the issuer's certificate")
        cert = build_ca_certificate(
            subject=subject_name(call.spec["subject"]), issuer=issuer.subject, public_key=csr.public_key(),
            issuer_ski=ski_of(issuer), serial=int(call.intent["serial"], 16),
            not_before=datetime.fromisoformat(call.intent["not_before"]),
            not_after=datetime.fromisoformat(call.intent["not_after"]), path_len=call.spec["path_len"],
            signer=signer, signing_algorithm=call.spec["signing_algorithm"])
        verify_signed_by(cert, issuer.public_key())
        return _cert_result(cert)


def _chain_pem(issuer_outputs: dict) -> str:
    return issuer_outputs["certificate_pem"] + issuer_outputs.get("chain_pem", "")


class HsmImportCertificate(StepPlugin):
    kind = "hsm.import_certificate"

    def refresh(self, call: StepCall, outputs: dict, ctx: Runtime) -> list[str]:
        key = hsm_keys.KeyRef.from_outputs(call.inputs["ca"])
        der = load_cert(outputs["certificate_pem"]).public_bytes(Encoding.DER)
        token = ctx.token(call.inputs["ca"]["hsm"])
        with token.session() as s:
            found = [o[Attribute.VALUE] for o in s.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE,
                                                                 Attribute.ID: key.key_id, Attribute.LABEL: key.label})]
        if der not in found:
            return [f"the certificate of '{key.label}' is not on {token.describe()}"]
        return [] if len(found) == 1 else [f"{token.describe()} holds {len(found)} certificates for '{key.label}'"]

    def run(self, call: StepCall, ctx: Runtime) -> StepResult:
        cert = load_cert(call.inputs["certificate"]["certificate_pem"])
        csr = x509.load_pem_x509_csr(call.inputs["csr"]["csr_pem"].encode())
        chain_pem = _chain_pem(call.inputs["issuer_certificate"])
        check_before_import(cert, csr, load_chain(chain_pem))
        key = hsm_keys.KeyRef.from_outputs(call.inputs["ca"])
        if not same_key(cert.public_key(), key.public_key()):
            raise CertificateError("the certificate is not for the key on the token")
        der = cert.public_bytes(Encoding.DER)
        token = ctx.token(call.inputs["ca"]["hsm"])
        with token.session() as s:
            found = list(s.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: key.key_id,
                                        Attribute.LABEL: key.label}))
            if call.replacing:  # asked for by name with --replace: the old certificate goes
                for old in [o for o in found if o[Attribute.VALUE] != der]:
                    old.destroy()
                    found.remove(old)
            if any(o[Attribute.VALUE] != der for o in found):
                raise CertificateError(f"{token.describe()} already holds another certificate for key "
                                       f"'{key.label}'; refusing to overwrite it")
            if not found:
                s.create_object({
                    Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                    Attribute.TOKEN: True, Attribute.PRIVATE: False, Attribute.ID: key.key_id,
                    Attribute.LABEL: key.label, Attribute.SUBJECT: cert.subject.public_bytes(),
                    Attribute.ISSUER: cert.issuer.public_bytes(), Attribute.VALUE: der})
        return StepResult({"certificate_pem": to_pem(cert), "chain_pem": chain_pem, **describe(cert)},
                          {"chain.pem": chain_pem.encode()},
                          summary=f"chain checked, certificate stored beside key '{key.label}'")


BUILTIN = (HsmKeyPair, SelfSigned, HsmCsr, HsmSignCa, HsmImportCertificate)
