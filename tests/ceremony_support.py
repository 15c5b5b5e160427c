"""Shared test helpers: the CLI as a real subprocess, fresh ceremony directories, token inspection.

Everything runs against real SoftHSM2 tokens created inside each test's workspace.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "ceremonies"
TOOLS = Path(__file__).resolve().parent / "tools"


def softhsm_module() -> str:
    from pki_ceremony.steps.softhsm import softhsm_module as find

    return find()


def clean_env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "SOFTHSM2_CONF", "PKI_CEREMONY_")) and not k.endswith("_PIN")}
    env.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    env.update(extra)
    return env


@dataclass
class CeremonyDir:
    """A copy of an example ceremony in a temporary directory, with random PINs for it."""

    dir: Path
    file: Path
    pins: dict[str, str] = field(default_factory=dict)  # env var -> PIN
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def workspace(self) -> Path:
        return self.dir / f"{self.file.stem}-workspace"

    def env(self, **extra) -> dict[str, str]:
        return clean_env(**{**self.pins, **self.extra_env, **extra})

    def cli(self, *args, env=None, timeout=300, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pki_ceremony", *args], cwd=self.dir,
                              env=env or self.env(), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, **kw)

    def apply(self, *args, **kw) -> subprocess.CompletedProcess:
        return self.cli("apply", str(self.file), "--yes", *args, **kw)

    def token_pins(self) -> dict[str, str]:
        """token label -> PIN, from the ceremony file's hsms."""
        import yaml

        doc = yaml.safe_load(self.file.read_text())
        return {h["token"]: self.pins[h["pin"]["env"]] for h in doc["hsms"].values()}

    def tokens(self) -> dict[str, list[dict]]:
        """Every object on the workspace's SoftHSM tokens, read by a separate process."""
        conf = self.workspace / "softhsm" / "softhsm2.conf"
        r = subprocess.run([sys.executable, str(TOOLS / "inspect_tokens.py"), softhsm_module()],
                           input=json.dumps(self.token_pins()), capture_output=True, text=True,
                           env=clean_env(SOFTHSM2_CONF=str(conf)), timeout=60)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def certificates(self) -> dict[str, Path]:
        """CA name -> its certificate.pem in the artifacts."""
        arts = self.workspace / "artifacts"
        return {p.parent.name: p for p in sorted(arts.glob("*/certificate.pem"))}


def make_ceremony_dir(tmp_path: Path, example: str) -> CeremonyDir:
    import yaml

    src = EXAMPLES / example
    d = tmp_path / "ceremony"
    d.mkdir()
    dst = d / src.name
    shutil.copy(src, dst)
    names: set[str] = set()

    def walk(x):
        if isinstance(x, dict):
            if set(x) == {"env"}:
                names.add(x["env"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(yaml.safe_load(dst.read_text()))
    # Distinctive PINs, so a leak anywhere can be searched for.
    return CeremonyDir(d, dst, {n: "7" + secrets.token_hex(8) for n in sorted(names)})


def openssl_verify(root: Path, cert: Path, untrusted_pem: bytes = b"") -> subprocess.CompletedProcess:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pem") as bundle:
        args = ["openssl", "verify", "-x509_strict", "-CAfile", str(root)]
        if untrusted_pem:
            bundle.write(untrusted_pem)
            bundle.flush()
            args += ["-untrusted", bundle.name]
        return subprocess.run(args + [str(cert)], capture_output=True, text=True)


def verify_all_chains(cd: CeremonyDir) -> dict[str, str]:
    """openssl verify -x509_strict each CA certificate against the root, with its chain file.

    Returns CA name -> openssl's verdict line, for every non-root CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    certs = cd.certificates()
    root = certs.pop("root")
    verdicts = {}
    for name, cert in certs.items():
        chain = x509.load_pem_x509_certificates((cert.parent / "chain.pem").read_bytes())
        intermediates = b"".join(c.public_bytes(Encoding.PEM) for c in chain if c.subject != c.issuer)
        r = openssl_verify(root, cert, intermediates)
        verdicts[name] = "OK" if r.returncode == 0 and r.stdout.strip().endswith(": OK") else \
            (r.stdout + r.stderr).strip()
    return verdicts
