"""Private CA key and signing algorithms: generation, family rules, PEM round trips.

AWS pairs each KeyAlgorithm with signing algorithms of the same family (RSA with
SHA*WITHRSA, EC with SHA*WITHECDSA, ML-DSA with itself, SM2 with SM3WITHSM2). The
stand-in really generates RSA and EC keys in software; ML-DSA and SM2 are refused
with InvalidArgsException naming the stand-in, since it cannot produce them.
"""

from __future__ import annotations

from typing import Union

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .protocol import AwsError, validation_error

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]

KEY_ALGORITHMS: dict[str, tuple[str, object]] = {
    "RSA_2048": ("RSA", 2048),
    "RSA_3072": ("RSA", 3072),
    "RSA_4096": ("RSA", 4096),
    "EC_prime256v1": ("EC", ec.SECP256R1),
    "EC_secp384r1": ("EC", ec.SECP384R1),
    "EC_secp521r1": ("EC", ec.SECP521R1),
    "ML_DSA_44": ("ML_DSA_44", None),
    "ML_DSA_65": ("ML_DSA_65", None),
    "ML_DSA_87": ("ML_DSA_87", None),
    "SM2": ("SM2", None),
}

SIGNING_ALGORITHMS: dict[str, tuple[str, type[hashes.HashAlgorithm] | None]] = {
    "SHA256WITHRSA": ("RSA", hashes.SHA256),
    "SHA384WITHRSA": ("RSA", hashes.SHA384),
    "SHA512WITHRSA": ("RSA", hashes.SHA512),
    "SHA256WITHECDSA": ("EC", hashes.SHA256),
    "SHA384WITHECDSA": ("EC", hashes.SHA384),
    "SHA512WITHECDSA": ("EC", hashes.SHA512),
    "ML_DSA_44": ("ML_DSA_44", None),
    "ML_DSA_65": ("ML_DSA_65", None),
    "ML_DSA_87": ("ML_DSA_87", None),
    "SM3WITHSM2": ("SM2", None),
}

SUPPORTED_FAMILIES = frozenset({"RSA", "EC"})


def key_family(key_algorithm: str) -> str:
    if key_algorithm not in KEY_ALGORITHMS:
        raise validation_error(
            "certificateAuthorityConfiguration.keyAlgorithm",
            "Member must satisfy enum value set: " + ", ".join(KEY_ALGORITHMS),
            key_algorithm,
        )
    return KEY_ALGORITHMS[key_algorithm][0]


def signing_family(signing_algorithm: str, field: str = "signingAlgorithm") -> str:
    if signing_algorithm not in SIGNING_ALGORITHMS:
        raise validation_error(
            field, "Member must satisfy enum value set: " + ", ".join(SIGNING_ALGORITHMS),
            signing_algorithm,
        )
    return SIGNING_ALGORITHMS[signing_algorithm][0]


def check_pair(key_algorithm: str, signing_algorithm: str) -> None:
    """KeyAlgorithm and SigningAlgorithm must be of one family, and one the stand-in can make."""
    family = key_family(key_algorithm)
    if signing_family(signing_algorithm, "certificateAuthorityConfiguration.signingAlgorithm") != family:
        raise AwsError(
            "InvalidArgsException",
            f"The signing algorithm {signing_algorithm} is not compatible with the key "
            f"algorithm {key_algorithm}.",
        )
    if family not in SUPPORTED_FAMILIES:
        raise AwsError(
            "InvalidArgsException",
            f"{key_algorithm} is valid in AWS Private CA but not supported by the local "
            "stand-in (RSA and EC only).",
        )


def generate(key_algorithm: str) -> PrivateKey:
    family, parameter = KEY_ALGORITHMS[key_algorithm]
    if family == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=int(parameter))  # type: ignore[arg-type]
    if family == "EC":
        return ec.generate_private_key(parameter())  # type: ignore[operator]
    raise AwsError("InvalidArgsException", f"{key_algorithm} is not supported by the stand-in")


def family_of(key: object) -> str:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RSA"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "EC"
    return type(key).__name__


def hash_for(signing_algorithm: str) -> hashes.HashAlgorithm:
    family, hash_class = SIGNING_ALGORITHMS[signing_algorithm]
    if family not in SUPPORTED_FAMILIES or hash_class is None:
        raise AwsError("InvalidArgsException", f"{signing_algorithm} is not supported by the stand-in")
    return hash_class()


def check_signing_with(key: PrivateKey, signing_algorithm: str) -> None:
    """IssueCertificate: the signing algorithm's family must match the CA key's."""
    family = signing_family(signing_algorithm)
    if family != family_of(key):
        raise AwsError(
            "InvalidArgsException",
            f"The signing algorithm {signing_algorithm} does not match the algorithm family "
            f"of the certificate authority's key ({family_of(key)}).",
        )


def to_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def from_pem(text: str) -> PrivateKey:
    key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
    assert isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
    return key


def public_der(public_key: object) -> bytes:
    """SubjectPublicKeyInfo DER, the form in which two public keys are compared."""
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
