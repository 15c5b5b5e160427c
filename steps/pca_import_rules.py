"""The rules AWS Private CA applies to an imported CA certificate, checked here first.

A ceremony never depends on AWS to catch a bad certificate: `check_pca_import` refuses, before
any import call, what ImportCertificateAuthorityCertificate would refuse (as botocore's model
documents it). Each rule is one function, named in the refusal.
"""
from __future__ import annotations

from typing import Callable

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from .cert_checks import ImportRefused
from .x509_profile import CertificateError, same_key, verify_signed_by

MAX_CERT_BYTES = 32 * 1024
MAX_CHAIN_BYTES = 2 * 1024 * 1024
PEM_HEADER = "-----BEGIN CERTIFICATE-----"

# May be critical in an imported CA certificate or chain (botocore's documentation of the API).
ALLOWED_CRITICAL = {
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER, ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.CERTIFICATE_POLICIES,
    ExtensionOID.EXTENDED_KEY_USAGE, ExtensionOID.INHIBIT_ANY_POLICY, ExtensionOID.ISSUER_ALTERNATIVE_NAME,
    ExtensionOID.KEY_USAGE, ExtensionOID.NAME_CONSTRAINTS, ExtensionOID.POLICY_MAPPINGS,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME, ExtensionOID.SUBJECT_DIRECTORY_ATTRIBUTES,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER, ExtensionOID.SUBJECT_INFORMATION_ACCESS,
}
NAMED_FORBIDDEN = {ExtensionOID.AUTHORITY_INFORMATION_ACCESS: "Authority information access",
                   ExtensionOID.CRL_DISTRIBUTION_POINTS: "CRL distribution points",
                   ExtensionOID.FRESHEST_CRL: "Freshest CRL", ExtensionOID.POLICY_CONSTRAINTS: "Policy constraints"}


class Import:
    """What is about to be imported, parsed once."""

    def __init__(self, certificate_pem: str, chain_pem: str, csr_pem: str, ca_type: str):
        if ca_type not in ("ROOT", "SUBORDINATE"):
            raise ValueError(f"ca_type must be ROOT or SUBORDINATE, not {ca_type!r}")
        self.certificate_pem, self.ca_type = certificate_pem, ca_type
        self.chain_pem = chain_pem if chain_pem.strip() else ""
        try:
            self.csr = x509.load_pem_x509_csr(csr_pem.encode())
        except ValueError as exc:
            raise ImportRefused(f"csr: the CA's CSR cannot be parsed: {exc}") from None
        self.cert: x509.Certificate | None = None
        self.chain: list[x509.Certificate] = []


def pem_and_size(i: Import) -> None:
    if not i.certificate_pem.lstrip().startswith(PEM_HEADER):
        raise ImportRefused("pem: the certificate must be PEM")
    if len(i.certificate_pem.encode()) > MAX_CERT_BYTES:
        raise ImportRefused(f"size: the certificate is over {MAX_CERT_BYTES // 1024} KB")
    if i.chain_pem and not i.chain_pem.lstrip().startswith(PEM_HEADER):
        raise ImportRefused("pem: the chain must be PEM")
    if len(i.chain_pem.encode()) > MAX_CHAIN_BYTES:
        raise ImportRefused("size: the chain is over 2 MB")
    try:
        certs = x509.load_pem_x509_certificates(i.certificate_pem.encode())
        i.chain = x509.load_pem_x509_certificates(i.chain_pem.encode()) if i.chain_pem.strip() else []
    except ValueError as exc:
        raise ImportRefused(f"pem: cannot parse: {exc}") from None
    if len(certs) != 1:
        raise ImportRefused(f"pem: expected one certificate, found {len(certs)}")
    i.cert = certs[0]


def key_matches_csr(i: Import) -> None:
    if not same_key(i.cert.public_key(), i.csr.public_key()):
        raise ImportRefused("key: the certificate's public key is not the CA's (the one in its CSR)")


def is_self_signed(cert: x509.Certificate) -> bool:
    """Self-issued AND its signature verifies with its own key (a name match alone is not enough)."""
    if cert.issuer != cert.subject:
        return False
    try:
        verify_signed_by(cert, cert.public_key())
    except CertificateError:
        return False
    return True


def self_signed_rules(i: Import) -> None:
    self_signed = is_self_signed(i.cert)
    if i.ca_type == "SUBORDINATE" and self_signed:
        raise ImportRefused("self-signed: a self-signed certificate cannot be imported into a subordinate CA")
    if i.ca_type == "ROOT" and not self_signed:
        raise ImportRefused("self-signed: only a self-signed certificate can be imported into a root CA")


def chain_present(i: Import) -> None:
    if i.ca_type == "SUBORDINATE" and not i.chain:
        raise ImportRefused("chain: a subordinate CA needs its certificate chain")
    if any(c == i.cert for c in i.chain):
        raise ImportRefused("chain: the chain must not contain the certificate being imported")


def chain_order_and_signatures(i: Import) -> None:
    links = [i.cert, *i.chain]
    for n, (child, parent) in enumerate(zip(links, links[1:])):
        if child.issuer != parent.subject:
            raise ImportRefused(f"chain order: certificate {n} of the chain is not the issuer of the one before it "
                                "(order: issuer first, root last)")
        try:
            verify_signed_by(child, parent.public_key())
        except CertificateError:
            raise ImportRefused(f"chain signature: '{child.subject.rfc4514_string()}' is not signed by the next "
                                "certificate of the chain") from None
    if i.chain and not is_self_signed(i.chain[-1]):
        raise ImportRefused("chain order: the last certificate of the chain must be the self-signed root")


def basic_constraints(i: Import) -> None:
    for c in [i.cert, *i.chain]:
        try:
            bc = c.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            raise ImportRefused(f"basicConstraints: missing in '{c.subject.rfc4514_string()}'") from None
        if not bc.critical or not bc.value.ca:
            raise ImportRefused(f"basicConstraints: must be critical with CA:TRUE in '{c.subject.rfc4514_string()}'")


def path_lengths(i: Import) -> None:
    mine = i.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
    for distance, above in enumerate(i.chain, start=1):
        limit = above.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
        if limit is None:
            continue
        if distance > limit or (mine is not None and mine > limit - distance):
            raise ImportRefused(f"pathLen: '{above.subject.rfc4514_string()}' allows {limit} CA level(s) below it; "
                                f"this CA is {distance} below it" + (f" with pathLen {mine}" if mine is not None else ""))


def critical_extensions(i: Import) -> None:
    for c in [i.cert, *i.chain]:
        for ext in c.extensions:
            if not ext.critical:
                continue
            if ext.oid in NAMED_FORBIDDEN:
                raise ImportRefused(f"critical extension: {NAMED_FORBIDDEN[ext.oid]} must not be critical "
                                    f"('{c.subject.rfc4514_string()}')")
            if ext.oid not in ALLOWED_CRITICAL:
                raise ImportRefused(f"critical extension: {ext.oid.dotted_string} is critical and not on Private CA's "
                                    f"list of extensions allowed to be ('{c.subject.rfc4514_string()}')")


def validity_inside_issuer(i: Import) -> None:
    if i.chain and i.cert.not_valid_after_utc > i.chain[0].not_valid_after_utc:
        raise ImportRefused("validity: the certificate ends after its issuer")


RULES: list[Callable[[Import], None]] = [pem_and_size, key_matches_csr, self_signed_rules, chain_present,
                                         chain_order_and_signatures, basic_constraints, path_lengths,
                                         critical_extensions, validity_inside_issuer]


def check_pca_import(certificate_pem: str, chain_pem: str, csr_pem: str, ca_type: str = "SUBORDINATE") -> None:
    i = Import(certificate_pem, chain_pem, csr_pem, ca_type)
    for rule in RULES:
        rule(i)
