"""Every certificate the local ceremony makes passes pkilint's RFC 5280 linters (WARNING and up)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ceremony_support import make_ceremony_dir

ISSUER = {"primary": "root", "issuing-a": "primary", "issuing-b": "primary", "issuing-c": "primary"}


def linter(name: str) -> str:
    exe = shutil.which(name) or str(Path(sys.executable).parent / name)
    assert Path(exe).exists(), f"{name} is missing: pip install pkilint (in the test extras)"
    return exe


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Path]:
    cd = make_ceremony_dir(tmp_path_factory.mktemp("lint"), "local.yaml")
    r = cd.apply()
    assert r.returncode == 0, r.stderr
    return cd.certificates()


def test_each_certificate_passes_the_rfc5280_linter(certs):
    assert sorted(certs) == ["issuing-a", "issuing-b", "issuing-c", "primary", "root"]
    for name, path in certs.items():
        r = subprocess.run([linter("lint_pkix_cert"), "lint", "-s", "WARNING", str(path)], capture_output=True,
                           text=True)
        assert r.returncode == 0 and r.stdout.strip() == "", (name, r.stdout, r.stderr)


def test_each_issuer_and_subject_pair_passes_the_chain_linter(certs):
    for name, issuer in ISSUER.items():
        r = subprocess.run([linter("lint_pkix_signer_signee_cert_chain"), "lint", "-s", "WARNING",
                            str(certs[issuer]), str(certs[name])], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip() == "", (name, r.stdout, r.stderr)
