"""Fixtures for the AWS stand-in tests: the stand-in as a process, boto3 clients, a software PKI.

The session-scoped ``standin`` runs ``python -m pki_ceremony.rehearsal.server`` and points
boto3 at it through ``AWS_ENDPOINT_URL_ACM_PCA`` / ``AWS_ENDPOINT_URL_CLOUDHSM_V2`` with
dummy credentials and no configuration files, as the product's tests will. Tests that
move the clock far (days) use ``private_standin``, a process of their own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import pki_ceremony

REPO_ROOT = Path(pki_ceremony.__file__).resolve().parent.parent
FAST_WAIT = {"Delay": 0.05, "MaxAttempts": 20}
EC_SUBJECT_CONFIG = {
    "KeyAlgorithm": "EC_prime256v1",
    "SigningAlgorithm": "SHA256WITHECDSA",
    "Subject": {"Country": "US", "Organization": "Rehearsal", "CommonName": "Rehearsal Primary CA"},
}

_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class StandInProcess:
    """A stand-in process: its URL, and its introspection endpoints."""

    def __init__(self, *extra_args: str, state_file: Path | None = None) -> None:
        command = [sys.executable, "-m", "pki_ceremony.rehearsal.server", "--host", "127.0.0.1", "--port", "0"]
        if state_file is not None:
            command += ["--state-file", str(state_file)]
        command += list(extra_args)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.process.stdout.readline().strip()  # type: ignore[union-attr]
        if not line.startswith("READY "):
            self.process.kill()
            raise RuntimeError(f"stand-in did not start: {line!r} {self.process.stderr.read()}")  # type: ignore[union-attr]
        self.ready_line = line
        self.url = line.split(" ", 1)[1]

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        request = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def calls(self) -> dict[str, dict[str, int]]:
        return self.admin("GET", "/_standin/calls")["calls"]

    def mutating(self) -> int:
        return self.admin("GET", "/_standin/calls")["mutating"]

    def reset_calls(self) -> None:
        self.admin("POST", "/_standin/reset")

    def advance_clock(self, seconds: float) -> None:
        self.admin("POST", "/_standin/clock", {"advance_seconds": seconds})

    def terminate(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()  # type: ignore[union-attr]
        self.process.stderr.close()  # type: ignore[union-attr]
        return self.process.returncode

    def clients(self, region: str = "us-east-1") -> tuple[Any, Any]:
        """(acm-pca, cloudhsmv2) clients on this process."""
        return make_client("acm-pca", self.url, region), make_client("cloudhsmv2", self.url, region)


@contextlib.contextmanager
def temporary_environment(values: dict[str, str], remove: tuple[str, ...] = ()) -> Iterator[None]:
    names = set(values) | set(remove)
    saved = {n: os.environ.get(n) for n in names}
    for n in remove:
        os.environ.pop(n, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for n, value in saved.items():
            if value is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = value


def make_client(service: str, url: str, region: str = "us-east-1") -> Any:
    """A boto3 client routed by AWS_ENDPOINT_URL_ACM_PCA / AWS_ENDPOINT_URL_CLOUDHSM_V2.

    The variables (and dummy credentials, no config files) are set only while the client
    is built, so nothing leaks into other tests of the session.
    """
    variable = {"acm-pca": "AWS_ENDPOINT_URL_ACM_PCA", "cloudhsmv2": "AWS_ENDPOINT_URL_CLOUDHSM_V2"}[service]
    with temporary_environment({**_AWS_ENV, variable: url},
                               remove=("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")):
        session = boto3.session.Session()
        client = session.client(service, region_name=region,
                                config=Config(retries={"max_attempts": 1, "mode": "standard"}))
    assert client.meta.endpoint_url == url, client.meta.endpoint_url
    return client


@pytest.fixture(scope="session")
def standin() -> Iterator[StandInProcess]:
    process = StandInProcess()
    yield process
    process.terminate()


@pytest.fixture
def private_standin() -> Iterator[StandInProcess]:
    process = StandInProcess()
    yield process
    process.terminate()


@pytest.fixture(scope="session")
def pca(standin: StandInProcess) -> Any:
    return make_client("acm-pca", standin.url)


@pytest.fixture(scope="session")
def hsm(standin: StandInProcess) -> Any:
    return make_client("cloudhsmv2", standin.url)


@pytest.fixture(scope="session")
def hsm_west(standin: StandInProcess) -> Any:
    return make_client("cloudhsmv2", standin.url, "us-west-2")


# ---- a software PKI to sign the stand-in's CSRs with ---------------------------------------


@dataclasses.dataclass
class SoftCA:
    """A CA made in the test with ``cryptography``: its key and certificate."""

    key: Any
    certificate: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Rehearsal"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def ca_extensions(path_length: int | None, *, key: Any, issuer: SoftCA | None,
                  basic_critical: bool = True, is_ca: bool = True) -> list[tuple[x509.ExtensionType, bool]]:
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=is_ca, path_length=path_length if is_ca else None), basic_critical),
        (x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                       data_encipherment=False, key_agreement=False, key_cert_sign=is_ca, crl_sign=is_ca,
                       encipher_only=False, decipher_only=False), True),
        (x509.SubjectKeyIdentifier.from_public_key(key), False),
    ]
    if issuer is not None:
        ski = issuer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        extensions.append((x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False))
    return extensions


def make_cert(subject: x509.Name, public_key: Any, issuer: SoftCA | None, signing_key: Any, *,
              extensions: list[tuple[x509.ExtensionType, bool]] | None = None,
              days: int = 3650, skip: tuple[type, ...] = ()) -> x509.Certificate:
    start = now() - dt.timedelta(days=1)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.certificate.subject if issuer else subject)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days)))
    for extension, critical in extensions or []:
        if not isinstance(extension, skip):
            builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, hashes.SHA256())


def make_root(common_name: str = "Rehearsal Root", path_length: int | None = None, days: int = 7300) -> SoftCA:
    key = ec.generate_private_key(ec.SECP384R1())
    certificate = make_cert(name(common_name), key.public_key(), None, key,
                            extensions=ca_extensions(path_length, key=key.public_key(), issuer=None), days=days)
    return SoftCA(key, certificate)


def make_intermediate(issuer: SoftCA, common_name: str, path_length: int | None = None) -> SoftCA:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = make_cert(name(common_name), key.public_key(), issuer, issuer.key,
                            extensions=ca_extensions(path_length, key=key.public_key(), issuer=issuer))
    return SoftCA(key, certificate)


def sign_csr(issuer: SoftCA, csr_pem: str, *, path_length: int | None = 1, days: int = 1825,
             extra: list[tuple[x509.ExtensionType, bool]] | None = None, skip: tuple[type, ...] = (),
             basic_critical: bool = True, is_ca: bool = True) -> x509.Certificate:
    """Sign a stand-in CA's CSR as a subordinate CA certificate (proper CA extensions)."""
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    extensions = ca_extensions(path_length, key=csr.public_key(), issuer=issuer,
                               basic_critical=basic_critical, is_ca=is_ca) + list(extra or [])
    return make_cert(csr.subject, csr.public_key(), issuer, issuer.key, extensions=extensions, days=days, skip=skip)


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


@pytest.fixture(scope="session")
def root() -> SoftCA:
    return make_root()


@dataclasses.dataclass
class PendingCA:
    arn: str
    csr: str


def create_pending_ca(pca: Any, configuration: dict[str, Any] | None = None, ca_type: str = "SUBORDINATE",
                      **kwargs: Any) -> PendingCA:
    arn = pca.create_certificate_authority(
        CertificateAuthorityConfiguration=configuration or EC_SUBJECT_CONFIG,
        CertificateAuthorityType=ca_type, **kwargs,
    )["CertificateAuthorityArn"]
    pca.get_waiter("certificate_authority_csr_created").wait(CertificateAuthorityArn=arn, WaiterConfig=FAST_WAIT)
    return PendingCA(arn, pca.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"])


@pytest.fixture
def pending_ca(pca: Any) -> PendingCA:
    """A SUBORDINATE EC CA whose CSR is ready (PENDING_CERTIFICATE)."""
    return create_pending_ca(pca)


@pytest.fixture
def active_ca(pca: Any, root: SoftCA) -> PendingCA:
    """A SUBORDINATE CA with pathLen 1 under the session root, imported and ACTIVE."""
    ca = create_pending_ca(pca)
    certificate = sign_csr(root, ca.csr, path_length=1)
    pca.import_certificate_authority_certificate(CertificateAuthorityArn=ca.arn, Certificate=pem(certificate),
                                                 CertificateChain=root.pem)
    return ca


def error_code(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    return excinfo.value.response["Error"]["Code"]  # type: ignore[attr-defined]


def leaf_csr(common_name: str = "leaf.rehearsal.test", *, with_san: bool = True) -> tuple[Any, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(name(common_name))
    if with_san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
    return key, builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


# Expose helpers to test modules without importing conftest (no __init__.py here).
@pytest.fixture(scope="session")
def kit() -> Any:
    class Kit:
        FAST_WAIT = FAST_WAIT
        EC_SUBJECT_CONFIG = EC_SUBJECT_CONFIG
        SoftCA = SoftCA
        StandInProcess = StandInProcess
        now = staticmethod(now)
        name = staticmethod(name)
        make_cert = staticmethod(make_cert)
        make_root = staticmethod(make_root)
        make_client = staticmethod(make_client)
        make_intermediate = staticmethod(make_intermediate)
        ca_extensions = staticmethod(ca_extensions)
        sign_csr = staticmethod(sign_csr)
        pem = staticmethod(pem)
        create_pending_ca = staticmethod(create_pending_ca)
        error_code = staticmethod(error_code)
        leaf_csr = staticmethod(leaf_csr)

    return Kit
