"""Opt-in: one small hybrid ceremony against a real AWS account (creates and deletes a Private CA).

Runs only when PKI_CEREMONY_REAL_AWS_REGION is set; see docs/aws.md ("The opt-in real-AWS test").
The root is a SoftHSM2 token in the workspace (no CloudHSM needed); the primary subordinate is a
real general-purpose Private CA, so the run costs money (pro-rated CA operation fee; check the
current AWS price list). Credentials are whatever boto3 finds in the environment (AWS_PROFILE,
AWS_ACCESS_KEY_ID..., SSO, instance role); they are passed through untouched, never printed.

Whatever happens, every CA tagged with the run's lineage is disabled (if ACTIVE) and deleted with
the shortest restore window (7 days) before the test ends. The lineage is read back from the
workspace's state.db, as an operator cleaning up by hand would.
"""
from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REGION_ENV = "PKI_CEREMONY_REAL_AWS_REGION"
pytestmark = pytest.mark.skipif(
    not os.environ.get(REGION_ENV),
    reason="set PKI_CEREMONY_REAL_AWS_REGION to run against a real AWS account "
           "(creates and deletes Private CAs; costs money)")

TAG_LINEAGE, TAG_STEP, TAG_CEREMONY = "pki-ceremony:lineage", "pki-ceremony:step", "pki-ceremony:ceremony"
CEREMONY_NAME = "real-aws-test"
PIN_ENV = "REAL_AWS_TEST_ROOT_PIN"


def ceremony_text(run_id: str) -> str:
    # No `aws:` section: the region comes from AWS_REGION, as documented.
    return f"""\
apiVersion: pki-ceremony/v1
kind: Ceremony
metadata:
  name: {CEREMONY_NAME}
  description: pki-ceremony's opt-in real-AWS test (run {run_id}); deleted at the end of the test.
hsms:
  root-hsm:
    provider: softhsm
    token: real-aws-root
    pin: {{env: {PIN_ENV}}}
hierarchy:
  root:
    hsm: root-hsm
    key: {{algorithm: RSA_2048}}
    subject: {{organization: pki-ceremony test, common_name: pki-ceremony real-AWS test root {run_id}}}
    validity: {{days: 30}}
  subordinates:
    - name: primary
      issuer: root
      backend:
        type: aws-pca
        tags: {{Purpose: pki-ceremony-real-aws-test}}
      key: {{algorithm: RSA_2048}}
      subject: {{organization: pki-ceremony test, common_name: pki-ceremony real-AWS test primary {run_id}}}
      validity: {{same_as_issuer: true}}
      path_len: 0
"""


def real_env(region: str, pins: dict[str, str]) -> dict[str, str]:
    """The caller's environment with its AWS settings kept (credentials, profile, endpoints), the
    region set, and nothing of pki-ceremony's own hooks or other PINs."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PKI_CEREMONY_", "SOFTHSM2_CONF")) and not k.endswith("_PIN")}
    env["AWS_REGION"] = region
    env.update(pins)
    return env


def read_lineage(state_db: Path) -> str | None:
    if not state_db.exists():
        return None
    db = sqlite3.connect(f"file:{state_db}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'lineage'").fetchone()
    finally:
        db.close()
    return row[0] if row else None


def cas_of_lineage(pca, lineage: str) -> list[dict]:
    """Every CA in the region (not yet DELETED) whose pki-ceremony:lineage tag is `lineage`."""
    found = []
    for page in pca.get_paginator("list_certificate_authorities").paginate():
        for ca in page.get("CertificateAuthorities", []):
            if ca.get("Status") == "DELETED":
                continue
            tags = {t["Key"]: t.get("Value") for t in pca.list_tags(CertificateAuthorityArn=ca["Arn"]).get("Tags", [])}
            if tags.get(TAG_LINEAGE) == lineage:
                found.append({**ca, "Tags": tags})
    return found


def delete_lineage(pca, lineage: str) -> list[str]:
    """Disable (if ACTIVE) and delete every CA of the lineage; returns what could not be deleted."""
    left = []
    for ca in cas_of_lineage(pca, lineage):
        arn = ca["Arn"]
        try:
            if ca["Status"] == "ACTIVE":
                pca.update_certificate_authority(CertificateAuthorityArn=arn, Status="DISABLED")
            pca.delete_certificate_authority(CertificateAuthorityArn=arn, PermanentDeletionTimeInDays=7)
            status = pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]["Status"]
            print(f"cleanup: {arn} was {ca['Status']}, now {status}", file=sys.stderr)
            if status != "DELETED":
                left.append(f"{arn} ({status})")
        except Exception as exc:  # noqa: BLE001 - report every CA left behind, then fail
            print(f"cleanup: could not delete {arn}: {type(exc).__name__}: {exc}", file=sys.stderr)
            left.append(f"{arn} ({type(exc).__name__})")
    return left


def test_hybrid_ceremony_against_real_private_ca(tmp_path):
    import boto3
    from cryptography import x509

    region = os.environ[REGION_ENV]
    run_id = secrets.token_hex(4)
    ceremony = tmp_path / "real-aws.yaml"
    ceremony.write_text(ceremony_text(run_id))
    workspace = tmp_path / "real-aws-workspace"  # the default: <file stem>-workspace beside the file
    env = real_env(region, {PIN_ENV: "7" + secrets.token_hex(8)})
    pca = boto3.session.Session(region_name=region).client("acm-pca")

    left: list[str] = []
    try:
        r = subprocess.run([sys.executable, "-m", "pki_ceremony", "apply", str(ceremony), "--yes"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert "ImportCertificateAuthorityCertificate x1" in r.stdout, r.stdout[-3000:]
        assert env[PIN_ENV] not in r.stdout + r.stderr

        arts = workspace / "artifacts"
        root_pem, primary_pem = arts / "root" / "certificate.pem", arts / "primary" / "certificate.pem"
        v = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", str(root_pem), str(primary_pem)],
                           capture_output=True, text=True)
        assert v.returncode == 0 and v.stdout.strip().endswith(": OK"), v.stdout + v.stderr

        # What Private CA holds is what the ceremony made, tagged so that a resume finds it.
        lineage = read_lineage(workspace / "state.db")
        assert lineage
        cas = cas_of_lineage(pca, lineage)
        assert len(cas) == 1, [ca["Arn"] for ca in cas]
        assert cas[0]["Status"] == "ACTIVE" and cas[0]["Type"] == "SUBORDINATE"
        assert cas[0]["Tags"][TAG_STEP] == "primary/create" and cas[0]["Tags"][TAG_CEREMONY] == CEREMONY_NAME
        held = pca.get_certificate_authority_certificate(CertificateAuthorityArn=cas[0]["Arn"])
        assert (x509.load_pem_x509_certificate(held["Certificate"].encode())
                == x509.load_pem_x509_certificate(primary_pem.read_bytes()))
        chain = x509.load_pem_x509_certificates((arts / "primary" / "chain.pem").read_bytes())
        assert chain == [x509.load_pem_x509_certificate(root_pem.read_bytes())]
    finally:
        lineage = read_lineage(workspace / "state.db")
        if lineage is None:
            print("cleanup: no workspace state, so no CA was created", file=sys.stderr)
        else:
            try:
                left = delete_lineage(pca, lineage)
            except Exception as exc:  # noqa: BLE001 - e.g. listing denied: say so, keep the first failure
                print(f"cleanup: could not list the CAs of lineage {lineage}: {exc}", file=sys.stderr)
                left = [f"every CA tagged {TAG_LINEAGE}={lineage} in {region}"]
    assert left == [], "Private CAs left behind; delete them by hand (see docs/aws.md): " + ", ".join(left)
