"""Private CA names and the CA's own CSR: ASN1Subject -> X.509 Name, CsrExtensions.

The CSR that GetCertificateAuthorityCsr returns is a real PKCS#10 request for the
CA's configured Subject, signed by the CA key with the configured SigningAlgorithm,
carrying the KeyUsage of ``CsrExtensions`` when one was given.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID, ObjectIdentifier

from . import pca_keys
from .protocol import AwsError

# ASN1Subject member -> OID, in the order the attributes are written into the name.
SUBJECT_ATTRIBUTES: tuple[tuple[str, ObjectIdentifier], ...] = (
    ("Country", NameOID.COUNTRY_NAME),
    ("State", NameOID.STATE_OR_PROVINCE_NAME),
    ("Locality", NameOID.LOCALITY_NAME),
    ("Organization", NameOID.ORGANIZATION_NAME),
    ("OrganizationalUnit", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("DistinguishedNameQualifier", NameOID.DN_QUALIFIER),
    ("SerialNumber", NameOID.SERIAL_NUMBER),
    ("Title", NameOID.TITLE),
    ("Surname", NameOID.SURNAME),
    ("GivenName", NameOID.GIVEN_NAME),
    ("Initials", NameOID.INITIALS),
    ("Pseudonym", NameOID.PSEUDONYM),
    ("GenerationQualifier", NameOID.GENERATION_QUALIFIER),
    ("CommonName", NameOID.COMMON_NAME),
)

KEY_USAGE_FLAGS = (
    ("DigitalSignature", "digital_signature"),
    ("NonRepudiation", "content_commitment"),
    ("KeyEncipherment", "key_encipherment"),
    ("DataEncipherment", "data_encipherment"),
    ("KeyAgreement", "key_agreement"),
    ("KeyCertSign", "key_cert_sign"),
    ("CRLSign", "crl_sign"),
    ("EncipherOnly", "encipher_only"),
    ("DecipherOnly", "decipher_only"),
)


def subject_to_name(subject: dict[str, Any]) -> x509.Name:
    """ASN1Subject -> Name; CustomAttributes may not be mixed with the named ones."""
    custom = subject.get("CustomAttributes") or []
    named = [(member, oid) for member, oid in SUBJECT_ATTRIBUTES if subject.get(member)]
    if custom and named:
        raise AwsError(
            "InvalidArgsException",
            "CustomAttributes cannot be combined with standard subject attributes.",
        )
    try:
        if custom:
            attributes = [
                x509.NameAttribute(ObjectIdentifier(item["ObjectIdentifier"]), item["Value"])
                for item in custom
            ]
        else:
            attributes = [x509.NameAttribute(oid, str(subject[member])) for member, oid in named]
    except (KeyError, ValueError) as exc:
        raise AwsError("InvalidArgsException", f"invalid Subject: {exc}") from exc
    if not attributes:
        raise AwsError("InvalidArgsException", "The Subject must contain at least one attribute.")
    return x509.Name(attributes)


def key_usage_from(flags: dict[str, Any]) -> x509.KeyUsage:
    values = {attr: bool(flags.get(member, False)) for member, attr in KEY_USAGE_FLAGS}
    if not values["key_agreement"]:
        values["encipher_only"] = values["decipher_only"] = False
    return x509.KeyUsage(**values)


def build_ca_csr(key: pca_keys.PrivateKey, configuration: dict[str, Any]) -> str:
    """The CA's PEM CSR."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        subject_to_name(configuration["Subject"])
    )
    extensions = configuration.get("CsrExtensions") or {}
    if extensions.get("KeyUsage"):
        builder = builder.add_extension(key_usage_from(extensions["KeyUsage"]), critical=True)
    csr = builder.sign(key, pca_keys.hash_for(configuration["SigningAlgorithm"]))
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
