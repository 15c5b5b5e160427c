"""Checks made before a CA certificate is installed anywhere (token or Private CA).

`check_before_import` refuses, with the rule that failed, a certificate whose key does not
match the CSR, whose chain does not verify link by link up to a self-signed root, whose
validity does not fit inside its issuer's, or which is not a proper CA certificate.
"""
from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from .x509_profile import CertificateError, same_key, verify_signed_by


class ImportRefused(CertificateError):
    pass


def check_before_import(cert: x509.Certificate, csr: x509.CertificateSigningRequest,
                        chain: list[x509.Certificate], *, at: datetime | None = None) -> None:
    """`chain` is ordered from the certificate's issuer up to the root, root last."""
    if not same_key(cert.public_key(), csr.public_key()):
        raise ImportRefused("the certificate's public key is not the one in the CSR")
    if not chain:
        raise ImportRefused("a subordinate certificate needs its chain (issuer up to the root)")
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        raise ImportRefused("the certificate has no basicConstraints") from None
    if not bc.critical or not bc.value.ca:
        raise ImportRefused("basicConstraints must be critical with CA:TRUE")
    links = [cert, *chain]
    for child, parent in zip(links, links[1:]):
        if child.issuer != parent.subject:
            raise ImportRefused(f"chain order: '{child.subject.rfc4514_string()}' is not issued by the next "
                                f"certificate '{parent.subject.rfc4514_string()}'")
        try:
            verify_signed_by(child, parent.public_key())
        except CertificateError:
            raise ImportRefused(f"'{child.subject.rfc4514_string()}' is not signed by "
                                f"'{parent.subject.rfc4514_string()}'") from None
        if child.not_valid_after_utc > parent.not_valid_after_utc:
            raise ImportRefused(f"'{child.subject.rfc4514_string()}' ends after its issuer")
        if child.not_valid_before_utc < parent.not_valid_before_utc:
            raise ImportRefused(f"'{child.subject.rfc4514_string()}' starts before its issuer")
    root = links[-1]
    if root.issuer != root.subject:
        raise ImportRefused("the chain does not end in a self-signed root")
    verify_signed_by(root, root.public_key())
    _verify_path(cert, chain, at)


def _verify_path(cert: x509.Certificate, chain: list[x509.Certificate], at: datetime | None) -> None:
    """Path validation by `cryptography`'s RFC 5280 verifier, with the root as the only anchor.

    The verifier validates paths to end-entity (or CA) certificates; a CA certificate is
    checked as the leaf of a path whose trust anchor is the chain's root.
    """
    from cryptography.x509.verification import ExtensionPolicy

    builder = PolicyBuilder().store(Store([chain[-1]]))
    if at is not None:
        builder = builder.time(at)
    verifier = builder.extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                                          ee_policy=ExtensionPolicy.permit_all()).build_client_verifier()
    try:
        verifier.verify(cert, chain[:-1])
    except VerificationError as exc:
        raise ImportRefused(f"the chain does not validate: {exc}") from None
