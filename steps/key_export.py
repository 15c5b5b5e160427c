"""Moving the root key to another HSM by key wrapping, and proving the copy.

The flow (measured between SoftHSM tokens, see ../shared/reference/pkcs11-and-softhsm.md), the
two-step equivalent of CKM_RSA_AES_KEY_WRAP:
  1. the target makes an RSA-4096 unwrapping key pair (session objects: they vanish with it);
  2. the source's security officer imports the target's public key as TRUSTED + WRAP and makes a
     trusted AES-256 key-encryption key (temporary token objects, removed at the end);
  3. the source wraps the KEK under the target's public key (RSA-OAEP) and the root key under
     the KEK (AES key wrap with padding, RFC 5649); the root key being WRAP_WITH_TRUSTED, only a
     trusted key can wrap it;
  4. the target unwraps the KEK, then the root key, as a private, sensitive, sign-only token object
     with the root's CKA_ID and label, and stores the public key beside it.
Everything is checked before the first object is made: a root generated non-extractable is
refused with the reason, so a refusal leaves nothing behind on either token.
`hsm.export_proof` then has the target sign a statement and checks it under the root certificate.
"""
from __future__ import annotations

import base64
import secrets
from datetime import datetime, timezone

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pkcs11 import MGF, Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from pki_ceremony.engine.contract import StepCall, StepPlugin, StepResult
from pki_ceremony.errors import CeremonyError

from . import hsm_keys
from .hsm_signer import hsm_signer
from .runtime import Runtime
from .x509_profile import hash_of, load_cert

TEMP_PREFIX = "pki-ceremony-export-"


class ExportRefused(CeremonyError):
    exit_code = 1


def _refuse_unless_exportable(call: StepCall, ctx: Runtime) -> None:
    attrs = call.inputs["key"].get("attributes", {})
    if not call.spec["exportable"] or not attrs.get("EXTRACTABLE") or not attrs.get("WRAP_WITH_TRUSTED"):
        raise ExportRefused(
            "the root key was generated non-extractable: it can never leave its HSM, by design",
            hint="a portable root is generated with 'key: {exportable: true}' (extractable only under a key the "
                 "security officer trusts). This root can only be kept by backing up its HSM.")
    if ctx.so_pin(call.spec["source"]["name"]) is None:
        raise ExportRefused(f"exporting needs the security officer PIN of hsm '{call.spec['source']['name']}'",
                            hint="declare 'so_pin: {env: ...}' for it in the base ceremony")


def _public_template(public_key) -> dict:
    if isinstance(public_key, rsa.RSAPublicKey):
        n = public_key.public_numbers()
        return {Attribute.KEY_TYPE: KeyType.RSA, Attribute.MODULUS: n.n.to_bytes((n.n.bit_length() + 7) // 8, "big"),
                Attribute.PUBLIC_EXPONENT: n.e.to_bytes((n.e.bit_length() + 7) // 8, "big")}
    from asn1crypto.core import OctetString
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    point = public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    curve = {"secp256r1": "secp256r1", "secp384r1": "secp384r1"}[public_key.curve.name]
    return {Attribute.KEY_TYPE: KeyType.EC, Attribute.EC_PARAMS: encode_named_curve_parameters(curve),
            Attribute.EC_POINT: OctetString(point).dump()}


def _sign_check(signer, certificate_pem: str, data: bytes, signing_algorithm: str) -> bytes:
    """Sign `data` with the target's copy and verify it under the root certificate's key."""
    cert = load_cert(certificate_pem)
    h = hash_of(signing_algorithm)
    public = cert.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        sig = signer.sign(data, padding.PKCS1v15(), h)
        public.verify(sig, data, padding.PKCS1v15(), h)
    else:
        sig = signer.sign(data, ec.ECDSA(h))
        public.verify(sig, data, ec.ECDSA(h))
    return sig


class ExportKey(StepPlugin):
    kind = "hsm.export_key"

    def preflight(self, call: StepCall) -> list[str]:
        attrs = call.inputs["key"].get("attributes", {})
        if not call.spec["exportable"] or not attrs.get("EXTRACTABLE") or not attrs.get("WRAP_WITH_TRUSTED"):
            return ["the root key was generated non-extractable: it can never leave its HSM"]
        return []

    def intend(self, call: StepCall, ctx: Runtime) -> dict:
        _refuse_unless_exportable(call, ctx)  # before anything touches an HSM
        return {"temp": secrets.token_hex(6), "label": call.spec["label"], "key_id": call.inputs["key"]["key_id"]}

    def _found(self, call: StepCall, ctx: Runtime) -> StepResult | None:
        target = ctx.token(call.spec["target"]["name"])
        ref = hsm_keys.find(target, bytes.fromhex(call.intent["key_id"]), call.intent["label"], call.spec["algorithm"])
        if ref is None:
            return None
        if ref.public_key_pem != call.inputs["key"]["public_key_pem"]:
            raise ExportRefused(f"{target.describe()} holds another key labelled '{call.intent['label']}'")
        _sign_check(hsm_signer(target, ref), call.inputs["certificate"]["certificate_pem"], b"pki-ceremony check",
                    "SHA256WITHRSA" if call.spec["algorithm"].startswith("RSA") else "SHA256WITHECDSA")
        return StepResult({"target": call.spec["target"]["token"], "target_hsm": call.spec["target"]["name"],
                           "key_id": ref.key_id.hex(), "label": ref.label, "public_key_pem": ref.public_key_pem,
                           "algorithm": call.spec["algorithm"]},
                          summary=f"the root key is on {target.describe()} and signs as the root")

    def adopt(self, call: StepCall, ctx: Runtime) -> StepResult | None:
        found = self._found(call, ctx)
        self._clean(call, ctx)
        return found

    def run(self, call: StepCall, ctx: Runtime) -> StepResult:
        _refuse_unless_exportable(call, ctx)
        self._clean(call, ctx)
        source = ctx.token(call.spec["source"]["name"])
        target = ctx.token(call.spec["target"]["name"])
        root = hsm_keys.KeyRef.from_outputs(call.inputs["key"])
        temp = TEMP_PREFIX + call.intent["temp"]
        with target.session() as t:
            if hsm_keys.labelled(t, call.intent["label"]):
                raise ExportRefused(f"{target.describe()} already holds a key labelled '{call.intent['label']}'")
            unwrap_pub, unwrap_priv = t.generate_keypair(
                KeyType.RSA, 4096, label=temp, store=False,
                capabilities=MechanismFlag.WRAP | MechanismFlag.UNWRAP | MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT)
            modulus, exponent = unwrap_pub[Attribute.MODULUS], unwrap_pub[Attribute.PUBLIC_EXPONENT]
        with source.so_session(ctx.so_pin(call.spec["source"]["name"])) as so:
            so.create_object({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.RSA,
                              Attribute.MODULUS: modulus, Attribute.PUBLIC_EXPONENT: exponent, Attribute.TOKEN: True,
                              Attribute.PRIVATE: False, Attribute.WRAP: True, Attribute.ENCRYPT: True,
                              Attribute.TRUSTED: True, Attribute.LABEL: temp})
            so.generate_key(KeyType.AES, 256, label=temp, store=True, template={
                Attribute.PRIVATE: False, Attribute.TRUSTED: True, Attribute.WRAP: True, Attribute.UNWRAP: False,
                Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: True, Attribute.ENCRYPT: False,
                Attribute.DECRYPT: False})
        try:
            with source.session() as s:
                wrap_pub = s.get_key(object_class=ObjectClass.PUBLIC_KEY, label=temp)
                kek = s.get_key(object_class=ObjectClass.SECRET_KEY, label=temp)
                kek_blob = wrap_pub.wrap_key(kek, mechanism=Mechanism.RSA_PKCS_OAEP,
                                             mechanism_param=(Mechanism.SHA_1, MGF.SHA1, None))
                root_blob = kek.wrap_key(hsm_keys.private_key(s, root), mechanism=Mechanism.AES_KEY_WRAP_PAD)
            with target.session() as t:
                kek_copy = unwrap_priv.unwrap_key(
                    ObjectClass.SECRET_KEY, KeyType.AES, kek_blob, label=temp, store=False,
                    mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=(Mechanism.SHA_1, MGF.SHA1, None),
                    capabilities=MechanismFlag.UNWRAP)
                key_type = KeyType.RSA if call.spec["algorithm"].startswith("RSA") else KeyType.EC
                kek_copy.unwrap_key(
                    ObjectClass.PRIVATE_KEY, key_type, root_blob, id=root.key_id, label=call.intent["label"],
                    store=True, mechanism=Mechanism.AES_KEY_WRAP_PAD, capabilities=MechanismFlag.SIGN,
                    template={Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                              Attribute.EXTRACTABLE: False, Attribute.SIGN: True, Attribute.DECRYPT: False,
                              Attribute.UNWRAP: False, Attribute.DERIVE: False, Attribute.ENCRYPT: pkcs11.DEFAULT,
                              Attribute.VERIFY: pkcs11.DEFAULT, Attribute.WRAP: pkcs11.DEFAULT})
                t.create_object({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.TOKEN: True,
                                 Attribute.PRIVATE: False, Attribute.VERIFY: True, Attribute.ENCRYPT: False,
                                 Attribute.WRAP: False, Attribute.ID: root.key_id,
                                 Attribute.LABEL: call.intent["label"], **_public_template(root.public_key())})
                for obj in (kek_copy, unwrap_priv, unwrap_pub):
                    obj.destroy()
        finally:
            self._clean(call, ctx)
        found = self._found(call, ctx)
        if found is None:
            raise ExportRefused("the unwrapped key is not on the target token")
        return found

    def _clean(self, call: StepCall, ctx: Runtime) -> None:
        """Remove this export's temporary objects (wrapping keys) from both tokens."""
        temp = TEMP_PREFIX + call.intent["temp"]
        for name in (call.spec["source"]["name"], call.spec["target"]["name"]):
            with ctx.token(name).session() as s:
                for obj in list(s.get_objects({Attribute.LABEL: temp})):
                    obj.destroy()


class ExportProof(StepPlugin):
    kind = "hsm.export_proof"

    def run(self, call: StepCall, ctx: Runtime) -> StepResult:
        copy = call.inputs["export"]
        target = ctx.token(copy["target_hsm"])
        ref = hsm_keys.KeyRef(bytes.fromhex(copy["key_id"]), copy["label"], copy["public_key_pem"])
        statement = (f"pki-ceremony export proof\nceremony lineage: {ctx.lineage}\ntarget token: {copy['target']}\n"
                     f"key: {copy['label']} (id {copy['key_id']})\n"
                     f"signed at: {datetime.now(timezone.utc).isoformat(timespec='seconds')}\n").encode()
        sig = _sign_check(hsm_signer(target, ref), call.inputs["certificate"]["certificate_pem"], statement,
                          call.spec["signing_algorithm"])
        return StepResult({"statement": statement.decode(), "signature_b64": base64.b64encode(sig).decode(),
                           "verified_with": "the root certificate's public key"},
                          {"export-proof.txt": statement, "export-proof.sig": sig},
                          summary=f"{target.describe()} signed the statement; it verifies under the root certificate")


BUILTIN = (ExportKey, ExportProof)
