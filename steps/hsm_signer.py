"""`cryptography` private-key objects whose `sign()` runs inside the HSM.

`CertificateBuilder.sign()`, `CertificateSigningRequestBuilder.sign()` and
`CertificateRevocationListBuilder.sign()` accept these, and write matching inner and outer
signature algorithms. RSA uses the HSM's combined hash-and-sign mechanisms; ECDSA hashes on
the host and signs the digest with raw CKM_ECDSA (SoftHSM 2.6 has no combined ECDSA
mechanisms), then DER-encodes r||s. Nothing here can export, decrypt or exchange.
"""
from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from pkcs11 import Mechanism
from pkcs11.util.ec import encode_ecdsa_signature

from .hsm_keys import KeyRef, private_key
from .pkcs11_token import Token

_RSA_MECHANISMS = {"sha256": Mechanism.SHA256_RSA_PKCS, "sha384": Mechanism.SHA384_RSA_PKCS,
                   "sha512": Mechanism.SHA512_RSA_PKCS}


class _Unsupported:
    def _refuse(self, *_a, **_k):
        raise TypeError("an HSM key can only sign")

    decrypt = exchange = private_numbers = private_bytes = _refuse

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


class HsmRsaKey(_Unsupported, rsa.RSAPrivateKey):
    def __init__(self, token: Token, ref: KeyRef):
        self._token, self._ref, self._public = token, ref, ref.public_key()

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def sign(self, data: bytes, pad, algorithm) -> bytes:
        if not isinstance(pad, padding.PKCS1v15) or isinstance(algorithm, Prehashed):
            raise TypeError("the HSM signer does PKCS#1 v1.5 over the message only")
        mechanism = _RSA_MECHANISMS[algorithm.name]
        with self._token.session() as s:
            return private_key(s, self._ref).sign(data, mechanism=mechanism)


class HsmEcKey(_Unsupported, ec.EllipticCurvePrivateKey):
    def __init__(self, token: Token, ref: KeyRef):
        self._token, self._ref, self._public = token, ref, ref.public_key()

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.curve.key_size

    def sign(self, data: bytes, signature_algorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise TypeError("the HSM signer does ECDSA only")
        algorithm = signature_algorithm.algorithm
        if isinstance(algorithm, Prehashed):
            raise TypeError("pass the message, not a digest")
        h = hashes.Hash(algorithm)
        h.update(data)
        digest = h.finalize()
        with self._token.session() as s:
            raw = private_key(s, self._ref).sign(digest, mechanism=Mechanism.ECDSA)
        return encode_ecdsa_signature(raw)


def hsm_signer(token: Token, ref: KeyRef):
    public = ref.public_key()
    return HsmRsaKey(token, ref) if isinstance(public, rsa.RSAPublicKey) else HsmEcKey(token, ref)
