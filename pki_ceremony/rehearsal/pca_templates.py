"""What Private CA's certificate templates put into the certificates they issue.

Supported template ARNs (``arn:aws:acm-pca:::template/<Name>/V1``):

* ``EndEntityCertificate`` (the default): basicConstraints critical CA:FALSE; keyUsage
  critical digitalSignature, keyEncipherment; EKU serverAuth, clientAuth; SANs copied
  from the CSR.
* ``EndEntityClientAuthCertificate`` / ``EndEntityServerAuthCertificate``: the same with
  only clientAuth / serverAuth in the EKU.
* ``SubordinateCACertificate_PathLen{0,1,2,3}``: basicConstraints critical CA:TRUE with
  that pathLen; keyUsage critical digitalSignature, keyCertSign, cRLSign.
* ``RootCACertificate``: self-signed by a ROOT CA over its own CSR; basicConstraints
  critical CA:TRUE (no pathLen); keyUsage critical digitalSignature, keyCertSign, cRLSign.

Every certificate gets SKI from the CSR's key and (except the self-signed root) AKI =
the issuer's SKI; a CRL distribution point when the issuer has CRLs enabled and an
OCSP access description when it has OCSP enabled. Subject comes from the CSR.
Passthrough and other templates are refused with InvalidArgsException.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from . import pca_keys
from .protocol import AwsError

TEMPLATE_ARN = re.compile(r"^arn:aws[a-z-]*:acm-pca:::template/([A-Za-z0-9_]+)/V(\d+)$")
DEFAULT_TEMPLATE_ARN = "arn:aws:acm-pca:::template/EndEntityCertificate/V1"

CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
    encipher_only=False, decipher_only=False,
)
END_ENTITY_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=True,
    data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
    encipher_only=False, decipher_only=False,
)


@dataclasses.dataclass(frozen=True)
class Template:
    name: str
    is_ca: bool
    path_length: int | None = None
    self_signed: bool = False
    extended_key_usage: tuple[x509.ObjectIdentifier, ...] = ()


TEMPLATES: dict[str, Template] = {
    "EndEntityCertificate": Template(
        "EndEntityCertificate", False,
        extended_key_usage=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
    ),
    "EndEntityClientAuthCertificate": Template(
        "EndEntityClientAuthCertificate", False,
        extended_key_usage=(ExtendedKeyUsageOID.CLIENT_AUTH,),
    ),
    "EndEntityServerAuthCertificate": Template(
        "EndEntityServerAuthCertificate", False,
        extended_key_usage=(ExtendedKeyUsageOID.SERVER_AUTH,),
    ),
    "RootCACertificate": Template("RootCACertificate", True, None, self_signed=True),
    **{
        f"SubordinateCACertificate_PathLen{n}": Template(
            f"SubordinateCACertificate_PathLen{n}", True, n
        )
        for n in range(4)
    },
}


def parse_template_arn(arn: str | None) -> Template:
    arn = arn or DEFAULT_TEMPLATE_ARN
    match = TEMPLATE_ARN.match(arn)
    if not match or match.group(2) != "1" or match.group(1) not in TEMPLATES:
        raise AwsError(
            "InvalidArgsException",
            f"The template {arn} is not supported by the local stand-in (supported: "
            + ", ".join(sorted(TEMPLATES)) + ", all /V1).",
        )
    return TEMPLATES[match.group(1)]


@dataclasses.dataclass(frozen=True)
class Issuer:
    """Who signs: the CA's key, and its certificate (None for a root signing itself)."""

    key: pca_keys.PrivateKey
    certificate: x509.Certificate | None
    revocation: dict[str, Any]
    region: str
    ca_id: str


def _crl_distribution_point(issuer: Issuer) -> x509.CRLDistributionPoints | None:
    crl = (issuer.revocation or {}).get("CrlConfiguration") or {}
    if not crl.get("Enabled"):
        return None
    if (crl.get("CrlDistributionPointExtensionConfiguration") or {}).get("OmitExtension"):
        return None
    host = crl.get("CustomCname") or f"{crl.get('S3BucketName', 'crl-bucket')}.s3.{issuer.region}.amazonaws.com"
    path = crl.get("CustomPath") or "crl"
    uri = f"http://{host}/{path}/{issuer.ca_id}.crl"
    return x509.CRLDistributionPoints(
        [x509.DistributionPoint([x509.UniformResourceIdentifier(uri)], None, None, None)]
    )


def _ocsp_access(issuer: Issuer) -> x509.AuthorityInformationAccess | None:
    ocsp = (issuer.revocation or {}).get("OcspConfiguration") or {}
    if not ocsp.get("Enabled"):
        return None
    host = ocsp.get("OcspCustomCname") or f"ocsp.acm-pca.{issuer.region}.amazonaws.com"
    return x509.AuthorityInformationAccess(
        [x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                x509.UniformResourceIdentifier(f"http://{host}"))]
    )


def _authority_key_identifier(issuer_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key())  # type: ignore[arg-type]


def build_certificate(
    template: Template,
    csr: x509.CertificateSigningRequest,
    issuer: Issuer,
    signing_algorithm: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    serial: int,
) -> x509.Certificate:
    public_key = csr.public_key()
    issuer_name = csr.subject if template.self_signed else issuer.certificate.subject  # type: ignore[union-attr]
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(issuer_name)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=template.is_ca, path_length=template.path_length), critical=True)
        .add_extension(CA_KEY_USAGE if template.is_ca else END_ENTITY_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)  # type: ignore[arg-type]
    )
    if not template.self_signed:
        assert issuer.certificate is not None
        builder = builder.add_extension(_authority_key_identifier(issuer.certificate), critical=False)
    if template.extended_key_usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(template.extended_key_usage)), critical=False)
    if not template.is_ca:
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            builder = builder.add_extension(san.value, critical=san.critical)
        except x509.ExtensionNotFound:
            pass
    if not template.self_signed:
        for extension in (_crl_distribution_point(issuer), _ocsp_access(issuer)):
            if extension is not None:
                builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer.key, pca_keys.hash_for(signing_algorithm))
