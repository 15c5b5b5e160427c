"""The CA certificate profile, and signing with verification.

Every CA certificate this tool makes carries: basicConstraints critical CA:TRUE with the
ceremony's path length; keyUsage critical digitalSignature, keyCertSign, cRLSign; a subject
key identifier (SHA-1 of the public key, RFC 5280 method 1); an authority key identifier
(the issuer's subject key identifier). Serial numbers are 0x01 followed by 16 bytes from the
HSM's random generator (positive, 128 random bits). Every signature is checked right after it
is made, and the signer's public key is compared with the issuer certificate's.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from pki_ceremony.errors import CeremonyError
from pki_ceremony.schemas.ceremony import add_validity

HASHES = {"SHA256": hashes.SHA256, "SHA384": hashes.SHA384, "SHA512": hashes.SHA512}
_NAME_ORDER = (("country", NameOID.COUNTRY_NAME), ("state", NameOID.STATE_OR_PROVINCE_NAME),
               ("locality", NameOID.LOCALITY_NAME), ("organization", NameOID.ORGANIZATION_NAME),
               ("organizational_unit", NameOID.ORGANIZATIONAL_UNIT_NAME), ("common_name", NameOID.COMMON_NAME))


class CertificateError(CeremonyError):
    pass


def subject_name(subject: Mapping[str, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, subject[k]) for k, oid in _NAME_ORDER if subject.get(k)])


def hash_of(signing_algorithm: str) -> hashes.HashAlgorithm:
    return HASHES[signing_algorithm[:6]]()


def serial_from(random16: bytes) -> int:
    if len(random16) < 16:
        raise CertificateError("the HSM returned too few random bytes for a serial number")
    return int.from_bytes(b"\x01" + random16[:16], "big")


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def validity_window(validity: Mapping[str, Any], issuer_not_after: datetime | None,
                    start: datetime | None = None) -> tuple[datetime, datetime]:
    """(notBefore, notAfter) for a new certificate; refuses one that would outlive its issuer."""
    start = start or now()
    if validity.get("same_as_issuer"):
        if issuer_not_after is None:
            raise CertificateError("same_as_issuer needs an issuer")
        end = issuer_not_after
    else:
        end = add_validity(start, validity)
    if issuer_not_after is not None and end > issuer_not_after:
        raise CertificateError(f"the certificate would end {end:%Y-%m-%d %H:%M:%SZ}, after its issuer "
                               f"({issuer_not_after:%Y-%m-%d %H:%M:%SZ})",
                               hint="shorten its validity, or use same_as_issuer: true")
    if end <= start:
        raise CertificateError("the issuer's certificate has expired or ends now")
    return start, end


def ca_extensions(builder: x509.CertificateBuilder, public_key, issuer_ski: bytes | None,
                  path_len: int | None) -> x509.CertificateBuilder:
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    aki = x509.AuthorityKeyIdentifier(issuer_ski if issuer_ski is not None else ski.digest, None, None)
    return (builder
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_len), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(aki, critical=False))


def build_ca_certificate(*, subject: x509.Name, issuer: x509.Name, public_key, issuer_ski: bytes | None,
                         serial: int, not_before: datetime, not_after: datetime, path_len: int | None,
                         signer, signing_algorithm: str) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(serial).not_valid_before(not_before).not_valid_after(not_after))
    builder = ca_extensions(builder, public_key, issuer_ski, path_len)
    return builder.sign(signer, hash_of(signing_algorithm), **_padding_kw(signer))


def build_csr(subject: x509.Name, signer, signing_algorithm: str) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    return builder.sign(signer, hash_of(signing_algorithm), **_padding_kw(signer))


def _padding_kw(signer) -> dict:
    return {"rsa_padding": padding.PKCS1v15()} if isinstance(signer, rsa.RSAPrivateKey) else {}


def verify_signed_by(cert: x509.Certificate, issuer_public_key) -> None:
    """Check a certificate's signature with the issuer's public key, now that it is made."""
    try:
        if isinstance(issuer_public_key, rsa.RSAPublicKey):
            issuer_public_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                                     cert.signature_hash_algorithm)
        else:
            issuer_public_key.verify(cert.signature, cert.tbs_certificate_bytes,
                                     ec.ECDSA(cert.signature_hash_algorithm))
    except InvalidSignature:
        raise CertificateError("the signature just made does not verify with the issuer's public key",
                               hint="the HSM produced a bad signature; nothing was written. Run apply again") from None


def same_key(a, b) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return a.public_bytes(*fmt) == b.public_bytes(*fmt)


def ski_of(cert: x509.Certificate) -> bytes:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def to_pem(obj) -> str:
    return obj.public_bytes(serialization.Encoding.PEM).decode()


def load_cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def load_chain(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode()) if pem.strip() else []


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def describe(cert: x509.Certificate) -> dict[str, Any]:
    return {"serial": format(cert.serial_number, "x"), "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(), "sha256_fingerprint": fingerprint(cert),
            "subject": cert.subject.rfc4514_string()}
