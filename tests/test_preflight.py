"""Steps refuse, before anything runs, what their inputs already show to be wrong."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from pki_ceremony.engine.contract import StepCall
from pki_ceremony.steps.crl_step import Crl
from pki_ceremony.steps.hsm_steps import HsmSignCa


def issuer_ending_in(days: int) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Short-lived CA")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.PEM).decode()


def test_a_crl_that_would_outlive_its_issuer_is_refused_in_preflight():
    pem = issuer_ending_in(10)
    call = StepCall("x/crl", {"next_update": {"days": 30}}, {"certificate": {"certificate_pem": pem}})
    [problem] = Crl().preflight(call)
    assert "nextUpdate" in problem and "after the issuer's certificate ends" in problem
    fits = StepCall("x/crl", {"next_update": {"days": 7}}, {"certificate": {"certificate_pem": pem}})
    assert Crl().preflight(fits) == []


def test_a_certificate_that_would_outlive_its_issuer_is_refused_in_preflight():
    pem = issuer_ending_in(100)
    call = StepCall("sub/certificate", {"validity": {"years": 1}}, {"issuer_certificate": {"certificate_pem": pem}})
    [problem] = HsmSignCa().preflight(call)
    assert "after its issuer" in problem
    same = StepCall("sub/certificate", {"validity": {"same_as_issuer": True}},
                    {"issuer_certificate": {"certificate_pem": pem}})
    assert HsmSignCa().preflight(same) == []
