"""Sign a small end-entity certificate with a key on a SoftHSM token: run in its own process.

Reads JSON on stdin: {"module", "token", "pin", "key_id", "label", "public_key_pem", "issuer_pem"}.
Prints the certificate (PEM), issued under the issuer certificate's name and key identifier.
"""
import json
import sys
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from pki_ceremony.steps.hsm_keys import KeyRef
from pki_ceremony.steps.hsm_signer import hsm_signer
from pki_ceremony.steps.pkcs11_token import Token
from pki_ceremony.steps.secrets import Secret

req = json.loads(sys.stdin.read())
issuer = x509.load_pem_x509_certificate(req["issuer_pem"].encode())
token = Token("t", req["module"], req["token"], Secret(req["pin"]))
signer = hsm_signer(token, KeyRef(bytes.fromhex(req["key_id"]), req["label"], req["public_key_pem"]))
subject_key = ec.generate_private_key(ec.SECP256R1())
now = datetime.now(timezone.utc)
ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "escrow proof")]))
        .issuer_name(issuer.subject).public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(ski, None, None), critical=False)
        .sign(signer, hashes.SHA256(), **({"rsa_padding": padding.PKCS1v15()}
                                          if isinstance(signer, rsa.RSAPrivateKey) else {})))
token.close()
print(cert.public_bytes(Encoding.PEM).decode(), end="")
