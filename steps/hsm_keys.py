"""CA key pairs on a PKCS#11 token: generate, find by id AND label, read the public key back.

A CA private key is a token object that is private, sensitive, sign-only and, unless the
ceremony asks for an exportable root, non-extractable. An exportable key is extractable only
with CKA_WRAP_WITH_TRUSTED, i.e. only under a wrapping key the security officer trusted.
Keys are never found "by label" alone: the id chosen by the ceremony and recorded in the state
must match too, and so must the public key when one is expected.
"""
from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters
from pkcs11.util.rsa import encode_rsa_public_key

from pki_ceremony.errors import CeremonyError

from .pkcs11_token import Token

CURVES = {"EC_prime256v1": ("secp256r1", ec.SECP256R1), "EC_secp384r1": ("secp384r1", ec.SECP384R1)}

# What the tool promises about a CA private key, checked after generation and on adoption.
PROMISED_PRIVATE = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                    Attribute.SIGN: True, Attribute.DECRYPT: False, Attribute.UNWRAP: False,
                    Attribute.DERIVE: False}


class HsmKeyError(CeremonyError):
    pass


@dataclass(frozen=True)
class KeyRef:
    """How a step's outputs name a key: the token, CKA_ID and CKA_LABEL, and the public key."""

    key_id: bytes
    label: str
    public_key_pem: str

    def public_key(self):
        return serialization.load_pem_public_key(self.public_key_pem.encode())

    @classmethod
    def from_outputs(cls, outputs) -> "KeyRef":
        return cls(bytes.fromhex(outputs["key_id"]), outputs["label"], outputs["public_key_pem"])


def _private_template(exportable: bool) -> dict:
    tmpl = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
            Attribute.SIGN: True, Attribute.DECRYPT: False, Attribute.UNWRAP: False,
            Attribute.DERIVE: False, Attribute.EXTRACTABLE: exportable}
    if exportable:
        tmpl[Attribute.WRAP_WITH_TRUSTED] = True
    return tmpl


_PUBLIC_TEMPLATE = {Attribute.TOKEN: True, Attribute.PRIVATE: False, Attribute.VERIFY: True,
                    Attribute.ENCRYPT: False, Attribute.WRAP: False}


def public_key_of(pub_obj) -> object:
    """The `cryptography` public key of a PKCS#11 public-key object (call under the token lock)."""
    if pub_obj.key_type == KeyType.RSA:
        return serialization.load_der_public_key(_rsa_spki(encode_rsa_public_key(pub_obj)))
    return serialization.load_der_public_key(encode_ec_public_key(pub_obj))


def _rsa_spki(pkcs1_der: bytes) -> bytes:
    from asn1crypto.keys import PublicKeyInfo, RSAPublicKey

    return PublicKeyInfo({"algorithm": {"algorithm": "rsa"}, "public_key": RSAPublicKey.load(pkcs1_der)}).dump()


def pem(public_key) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def check_public_key(public_key, algorithm: str) -> None:
    """The key read back from the token is of the algorithm and size asked for."""
    if algorithm.startswith("RSA"):
        want = int(algorithm[4:])
        if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size != want:
            raise HsmKeyError(f"the token returned a key that is not RSA-{want}")
        if public_key.public_numbers().e != 65537:
            raise HsmKeyError("the token returned an RSA key whose exponent is not 65537")
    else:
        curve = CURVES[algorithm][1]
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, curve):
            raise HsmKeyError(f"the token returned a key that is not on {CURVES[algorithm][0]}")


def find_objects(session, object_class, key_id: bytes, label: str) -> list:
    return list(session.get_objects({Attribute.CLASS: object_class, Attribute.ID: key_id, Attribute.LABEL: label}))


def labelled(session, label: str) -> list:
    """Every key object carrying `label`, whatever its id (for the never-duplicate check)."""
    return [o for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY)
            for o in session.get_objects({Attribute.CLASS: cls, Attribute.LABEL: label})]


def generate(token: Token, algorithm: str, key_id: bytes, label: str, exportable: bool) -> KeyRef:
    """Generate a CA key pair; refuses if any key on the token already carries the label."""
    with token.session() as s:
        others = labelled(s, label)
        if others:
            raise HsmKeyError(f"{token.describe()} already holds a key labelled '{label}' (not the one this step "
                            "is making); refusing to make a second with the same label",
                            hint="choose another key.label, or remove the old key if it is really unused")
        if algorithm.startswith("RSA"):
            pub, _priv = s.generate_keypair(
                KeyType.RSA, int(algorithm[4:]), id=key_id, label=label, store=True,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template={**_PUBLIC_TEMPLATE, Attribute.PUBLIC_EXPONENT: b"\x01\x00\x01"},
                private_template=_private_template(exportable))
        else:
            params = s.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(CURVES[algorithm][0])}, local=True)
            pub, _priv = params.generate_keypair(
                id=key_id, label=label, store=True, capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template=_PUBLIC_TEMPLATE, private_template=_private_template(exportable))
        public_key = public_key_of(pub)
    check_public_key(public_key, algorithm)
    ref = KeyRef(key_id, label, pem(public_key))
    check_attributes(token, ref, exportable)
    return ref


def find(token: Token, key_id: bytes, label: str, algorithm: str) -> KeyRef | None:
    """The key pair with this id and label, if both halves are there; None if neither is.

    A lone public half (a crash between the two objects being written) is removed, since the
    random id proves this ceremony made it and no private key goes with it.
    """
    with token.session() as s:
        privs = find_objects(s, ObjectClass.PRIVATE_KEY, key_id, label)
        pubs = find_objects(s, ObjectClass.PUBLIC_KEY, key_id, label)
        if len(privs) > 1 or len(pubs) > 1:
            raise HsmKeyError(f"{token.describe()} holds {len(privs)} private and {len(pubs)} public keys "
                            f"with id {key_id.hex()} and label '{label}'")
        if not privs:
            for orphan in pubs:
                orphan.destroy()
            return None
        if not pubs:
            raise HsmKeyError(f"{token.describe()} holds the private key '{label}' without its public key")
        public_key = public_key_of(pubs[0])
    check_public_key(public_key, algorithm)
    return KeyRef(key_id, label, pem(public_key))


def private_key(session, ref: KeyRef):
    privs = find_objects(session, ObjectClass.PRIVATE_KEY, ref.key_id, ref.label)
    if len(privs) != 1:
        raise HsmKeyError(f"expected one private key with id {ref.key_id.hex()} and label '{ref.label}', "
                        f"found {len(privs)}")
    pubs = find_objects(session, ObjectClass.PUBLIC_KEY, ref.key_id, ref.label)
    if len(pubs) != 1 or pem(public_key_of(pubs[0])) != ref.public_key_pem:
        raise HsmKeyError(f"the public key on the token for '{ref.label}' is not the one the state recorded")
    return privs[0]


def check_attributes(token: Token, ref: KeyRef, exportable: bool) -> dict[str, bool]:
    """Read the private key's attributes back and check what we promise. Returns them by name."""
    promised = dict(PROMISED_PRIVATE)
    promised[Attribute.EXTRACTABLE] = exportable
    if not exportable:
        promised[Attribute.NEVER_EXTRACTABLE] = True
        promised[Attribute.ALWAYS_SENSITIVE] = True
    else:
        promised[Attribute.WRAP_WITH_TRUSTED] = True
    with token.session() as s:
        key = private_key(s, ref)
        actual = {a: bool(key[a]) for a in promised}
    wrong = [f"{a.name}={actual[a]} (want {v})" for a, v in promised.items() if actual[a] != v]
    if wrong:
        raise HsmKeyError(f"the private key '{ref.label}' on {token.describe()} has " + ", ".join(wrong))
    return {a.name: v for a, v in actual.items()}
