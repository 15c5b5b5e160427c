"""The checks Private CA applies to an imported CA certificate, and pathLen arithmetic.

Exception names, as chosen from what the API reference documents for
ImportCertificateAuthorityCertificate:

* MalformedCertificateException ("one or more fields in the certificate are invalid"):
  not PEM, unparsable, over 32 KB (certificate) or 2 MB (chain), basicConstraints
  missing / not critical / CA:FALSE anywhere in certificate or chain, a forbidden
  critical extension, a chain out of order or whose signatures do not verify, or a
  chain that does not end in a self-signed root.
* InvalidRequestException ("the request ... is prohibited"): a self-signed certificate
  for a SUBORDINATE CA, a certificate that is not self-signed for a ROOT CA, a
  SUBORDINATE import without a chain, a chain given for a ROOT CA, a chain that
  contains the certificate being imported.
* CertificateMismatchException ("does not comply with conditions specified in the
  certificate that signed it"): the certificate's key is not the CA's key (the CSR's),
  or a pathLen somewhere in the chain leaves no room for this CA.

Critical extensions, from the API reference's "Enforcement of Critical Constraints":
allowed critical are AKI, basicConstraints (must be critical), certificatePolicies,
extendedKeyUsage, inhibitAnyPolicy, issuerAltName, keyUsage, nameConstraints,
policyMappings, subjectAltName, subjectDirectoryAttributes, SKI and subjectInfoAccess;
AIA, CRL distribution points, freshest CRL, policyConstraints and every extension not
on the allowed list are rejected when critical.
"""

from __future__ import annotations

import dataclasses
import re

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtensionOID

from . import pca_keys
from .protocol import AwsError

MAX_CERTIFICATE_BYTES = 32 * 1024
MAX_CHAIN_BYTES = 2 * 1024 * 1024

ALLOWED_CRITICAL = frozenset({
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.CERTIFICATE_POLICIES,
    ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.INHIBIT_ANY_POLICY,
    ExtensionOID.ISSUER_ALTERNATIVE_NAME,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.NAME_CONSTRAINTS,
    ExtensionOID.POLICY_MAPPINGS,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    ExtensionOID.SUBJECT_DIRECTORY_ATTRIBUTES,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    ExtensionOID.SUBJECT_INFORMATION_ACCESS,
})
REJECTED_CRITICAL_NAMES = {
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS: "Authority Information Access",
    ExtensionOID.CRL_DISTRIBUTION_POINTS: "CRL Distribution Points",
    ExtensionOID.FRESHEST_CRL: "Freshest CRL",
    ExtensionOID.POLICY_CONSTRAINTS: "Policy Constraints",
}

_SHA256 = hashes.SHA256()

_PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]*?-----END CERTIFICATE-----"
)


def _malformed(message: str) -> AwsError:
    return AwsError("MalformedCertificateException", message)


def _prohibited(message: str) -> AwsError:
    return AwsError("InvalidRequestException", message)


def _mismatch(message: str) -> AwsError:
    return AwsError("CertificateMismatchException", message)


@dataclasses.dataclass(frozen=True)
class ImportedCertificate:
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]


def parse_pem_certificates(data: bytes, field: str) -> list[x509.Certificate]:
    """PEM certificate blocks and nothing but whitespace around them."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise _malformed(f"The {field} must be PEM-encoded.") from exc
    blocks = _PEM_CERTIFICATE.findall(text)
    if not blocks or _PEM_CERTIFICATE.sub("", text).strip():
        raise _malformed(f"The {field} must contain PEM-encoded certificates only.")
    certificates = []
    for number, block in enumerate(blocks, start=1):
        try:
            certificates.append(x509.load_pem_x509_certificate(block.encode("ascii")))
        except ValueError as exc:
            raise _malformed(f"Certificate {number} of the {field} could not be parsed: {exc}") from exc
    return certificates


def signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Issuer name matches and the signature verifies with the issuer's key."""
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def is_self_issued(certificate: x509.Certificate) -> bool:
    return certificate.subject == certificate.issuer


def is_self_signed(certificate: x509.Certificate) -> bool:
    return is_self_issued(certificate) and signed_by(certificate, certificate)


def path_length(certificate: x509.Certificate) -> int | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
    except x509.ExtensionNotFound:
        return None


def _describe(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string() or "(empty subject)"


def check_extensions(certificate: x509.Certificate, where: str) -> None:
    """basicConstraints present, critical, CA:TRUE; no forbidden critical extension."""
    label = f"{where} ({_describe(certificate)})"
    try:
        basic = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound as exc:
        raise _malformed(f"The {label} has no basicConstraints extension.") from exc
    except ValueError as exc:
        raise _malformed(f"The extensions of the {label} cannot be parsed: {exc}") from exc
    if not basic.critical:
        raise _malformed(f"The basicConstraints extension of the {label} must be marked critical.")
    if not basic.value.ca:
        raise _malformed(f"The {label} is not a CA certificate (basicConstraints CA:FALSE).")
    for extension in certificate.extensions:
        if not extension.critical or extension.oid in ALLOWED_CRITICAL:
            continue
        name = REJECTED_CRITICAL_NAMES.get(extension.oid, f"extension {extension.oid.dotted_string}")
        raise _malformed(f"The {label} marks {name} critical, which AWS Private CA does not allow.")


def import_depth_error(path: list[x509.Certificate]) -> str | None:
    """A pathLen in ``path`` (imported certificate first, root last) that is exceeded."""
    for index, certificate in enumerate(path):
        limit = path_length(certificate)
        if limit is None:
            continue
        below = sum(1 for lower in path[:index] if not is_self_issued(lower))
        if below > limit:
            return (
                f"{_describe(certificate)} has pathLen {limit} but {below} CA certificate(s) "
                "would chain below it."
            )
    return None


def issuance_depth_error(path: list[x509.Certificate], new_path_length: int) -> str | None:
    """Issuing a CA certificate with ``new_path_length`` below ``path`` (issuer first)."""
    for index, certificate in enumerate(path):
        limit = path_length(certificate)
        if limit is None:
            continue
        below = sum(1 for lower in path[:index] if not is_self_issued(lower)) + 1 + new_path_length
        if below > limit:
            return (
                f"A CA certificate with pathLen {new_path_length} exceeds the path length "
                f"limit {limit} of {_describe(certificate)} in the CA hierarchy."
            )
    return None


def check_import(
    ca_type: str, ca_public_key: object, certificate_pem: bytes, chain_pem: bytes | None
) -> ImportedCertificate:
    """Every rule of ImportCertificateAuthorityCertificate; returns the parsed input.

    Order: size, PEM, the CA type's rules (self-signed or not, chain presence), the key,
    basicConstraints and critical extensions, chain links and root, pathLen.
    """
    if len(certificate_pem) > MAX_CERTIFICATE_BYTES:
        raise _malformed(f"The certificate is larger than {MAX_CERTIFICATE_BYTES} bytes.")
    if chain_pem is not None and len(chain_pem) > MAX_CHAIN_BYTES:
        raise _malformed(f"The certificate chain is larger than {MAX_CHAIN_BYTES} bytes.")
    parsed = parse_pem_certificates(certificate_pem, "certificate")
    if len(parsed) != 1:
        raise _malformed("The certificate field must contain exactly one certificate.")
    certificate = parsed[0]
    has_chain = chain_pem is not None and chain_pem.strip() != b""
    chain = parse_pem_certificates(chain_pem, "certificate chain") if has_chain else []  # type: ignore[arg-type]

    self_signed = is_self_signed(certificate)
    if ca_type == "ROOT":
        if not self_signed:
            raise _prohibited("Only a self-signed certificate can be imported into a ROOT certificate authority.")
        if chain:
            raise _prohibited("A ROOT certificate authority's certificate is imported without a certificate chain.")
    else:
        if self_signed:
            raise _prohibited("A self-signed certificate cannot be imported into a SUBORDINATE certificate authority.")
        if not chain:
            raise _prohibited("A SUBORDINATE certificate authority needs a CertificateChain up to its root.")
        if any(link.fingerprint(_SHA256) == certificate.fingerprint(_SHA256) for link in chain):
            raise _prohibited("The certificate chain must not include the certificate being imported.")

    if pca_keys.public_der(certificate.public_key()) != pca_keys.public_der(ca_public_key):
        raise _mismatch("The certificate's public key does not match the certificate authority's key (its CSR).")

    check_extensions(certificate, "certificate")
    for number, link in enumerate(chain, start=1):
        check_extensions(link, f"chain certificate {number}")

    path = [certificate, *chain]
    for lower, upper in zip(path, path[1:]):
        if not signed_by(lower, upper):
            raise _malformed(
                f"The certificate chain is not ordered from the issuer up: {_describe(upper)} "
                f"did not sign {_describe(lower)}."
            )
    if chain and not is_self_signed(chain[-1]):
        raise _malformed("The last certificate of the chain must be a self-signed root.")

    depth_error = import_depth_error(path)
    if depth_error:
        raise _mismatch(depth_error)
    return ImportedCertificate(certificate, tuple(chain))
