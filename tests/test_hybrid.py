"""The hybrid ceremony (HSM root, subordinates in Private CA) against the AWS stand-in over HTTP.

The stand-in runs as its own process (`python -m pki_ceremony.rehearsal.server`), the CLI as
another, and the test reads the outcome back with boto3 and openssl, as a user would.
"""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from ceremony_support import CeremonyDir, clean_env, make_ceremony_dir, verify_all_chains

SUBORDINATES = ["primary", "subordinate-0b", "subordinate-1b", "subordinate-2b"]
REGION = "us-east-1"


class StandIn:
    def __init__(self, tmp: Path, pending_polls: int = 0):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pki_ceremony.rehearsal.server", "--port", "0", "--pending-polls",
             str(pending_polls), "--state-file", str(tmp / "stand-in.json")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
        line = self.proc.stdout.readline().strip()
        assert line.startswith("READY "), line + self.proc.stderr.read()
        self.url = line.split()[1]

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL_ACM_PCA": self.url, "AWS_ENDPOINT_URL_CLOUDHSM_V2": self.url,
                "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": REGION}

    def pca(self):
        return boto3.client("acm-pca", region_name=REGION, endpoint_url=self.url, aws_access_key_id="t",
                            aws_secret_access_key="t")

    def calls(self) -> dict:
        with urllib.request.urlopen(self.url + "/_standin/calls") as r:
            return json.load(r)

    def advance_clock(self, seconds: int) -> None:
        body = json.dumps({"advance_seconds": seconds}).encode()
        urllib.request.urlopen(urllib.request.Request(self.url + "/_standin/clock", data=body, method="POST"))

    def reset_calls(self) -> None:
        urllib.request.urlopen(urllib.request.Request(self.url + "/_standin/reset", data=b"{}", method="POST"))

    def live_cas(self) -> Counter:
        pca = self.pca()
        cas = [ca for page in pca.get_paginator("list_certificate_authorities").paginate()
               for ca in page["CertificateAuthorities"] if ca["Status"] != "DELETED"]
        return Counter(ca["CertificateAuthorityConfiguration"]["Subject"]["CommonName"] for ca in cas)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def stand_in(tmp_path):
    s = StandIn(tmp_path)
    yield s
    s.stop()


def hybrid_on_softhsm(tmp_path: Path, stand_in: StandIn) -> CeremonyDir:
    """The example hybrid ceremony with its CloudHSM swapped for a SoftHSM token and no custody section,
    pointed at the stand-in."""
    cd = make_ceremony_dir(tmp_path, "hybrid-cloudhsm-pca.yaml")
    text = cd.file.read_text()
    text = text.replace("provider: pkcs11", "provider: softhsm")
    text = text[:text.index("\ncustody:")] + "\n"  # Private CA only here; custody is rehearsed in test_custody.py
    text = "\n".join(line for line in text.splitlines() if "libcloudhsm_pkcs11" not in line) + "\n"
    cd.file.write_text(text)
    cd.extra_env = stand_in.env()
    return cd


def common_names() -> list[str]:
    return ["Example Corp Primary CA G1"] + [f"Example Corp Subordinate CA {n}" for n in ("0b", "1b", "2b")]


def test_rehearse_runs_the_example_unchanged_and_every_chain_verifies(tmp_path):
    cd = make_ceremony_dir(tmp_path, "hybrid-cloudhsm-pca.yaml")
    ws = tmp_path / "rehearsal"
    r = cd.cli("rehearse", str(cd.file), "--workspace", str(ws), timeout=600)
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-1500:]
    assert f"Rehearsal workspace: {ws}" in r.stdout
    cd.workspace_override = ws
    certs = {p.parent.name: p for p in sorted((ws / "artifacts").glob("*/certificate.pem"))}
    assert sorted(certs) == sorted(["root", *SUBORDINATES])
    for name in SUBORDINATES:
        # chain.pem of a Private CA subordinate is what Private CA returned after the import
        chain = x509.load_pem_x509_certificates((ws / "artifacts" / name / "chain.pem").read_bytes())
        assert chain[-1].subject == chain[-1].issuer
        untrusted = b"".join(c.public_bytes(Encoding.PEM) for c in chain[:-1])
        v = subprocess.run(["openssl", "verify", "-x509_strict", "-CAfile", str(certs["root"]),
                            *(["-untrusted", "/dev/stdin"] if untrusted else []), str(certs[name])],
                           input=untrusted, capture_output=True)
        assert v.returncode == 0 and v.stdout.strip().endswith(b": OK"), (name, v.stdout, v.stderr)
    loaded = {n: x509.load_pem_x509_certificate(p.read_bytes()) for n, p in certs.items()}
    primary_end = loaded["primary"].not_valid_after_utc
    assert primary_end == loaded["root"].not_valid_after_utc
    for name in SUBORDINATES[1:]:
        bc = loaded[name].extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical and bc.value.ca and bc.value.path_length == 0
        assert loaded[name].not_valid_after_utc < primary_end
    assert "AWS API calls:" in r.stdout and "ImportCertificateAuthorityCertificate x1" in r.stdout


def test_second_apply_makes_no_mutating_call(tmp_path, stand_in):
    cd = hybrid_on_softhsm(tmp_path, stand_in)
    first = cd.apply(timeout=600)
    assert first.returncode == 0, first.stdout[-1500:] + first.stderr[-1500:]
    assert "(11 mutating)" in first.stdout  # 4 CreateCertificateAuthority, 3 IssueCertificate, 4 imports
    assert stand_in.live_cas() == Counter({cn: 1 for cn in common_names()})
    stand_in.reset_calls()
    second = cd.apply()
    assert second.returncode == 0 and "Nothing to do" in second.stdout
    assert stand_in.calls()["mutating"] == 0
    state = sqlite3.connect(cd.workspace / "state.db")
    recorded = dict(state.execute("SELECT id, api_calls FROM steps WHERE id = 'primary/create'"))
    assert json.loads(recorded["primary/create"])["CreateCertificateAuthority"] == 1


def test_killed_after_each_aws_call_then_applied_finishes_with_one_ca_per_subordinate(tmp_path):
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    ref_stand_in = StandIn(reference_dir)
    try:
        ref = hybrid_on_softhsm(reference_dir, ref_stand_in)
        r = ref.apply(timeout=600)
        assert r.returncode == 0, r.stderr
        total = sum(n for ops in ref_stand_in.calls()["calls"].values() for n in ops.values())
    finally:
        ref_stand_in.stop()
    assert total >= 30
    failures = []
    for n in range(1, total + 1):
        d = tmp_path / f"kill-{n}"
        d.mkdir()
        s = StandIn(d)
        try:
            cd = hybrid_on_softhsm(d, s)
            killed = cd.apply(env=cd.env(PKI_CEREMONY_TEST_CRASH_AWS_CALL=str(n)), timeout=600)
            if killed.returncode != -signal.SIGKILL:
                failures.append(f"call {n}: not killed ({killed.returncode})")
                continue
            resumed = cd.apply(timeout=600)
            if resumed.returncode != 0:
                failures.append(f"call {n}: resume exited {resumed.returncode}: {resumed.stderr[-300:]}")
                continue
            cas = s.live_cas()
            if cas != Counter({cn: 1 for cn in common_names()}):
                failures.append(f"call {n}: CAs {dict(cas)}")
            verdicts = verify_all_chains(cd)
            if set(verdicts.values()) != {"OK"}:
                failures.append(f"call {n}: {verdicts}")
        finally:
            s.stop()
    assert failures == []


def test_a_bad_certificate_is_refused_before_any_import_call(tmp_path, stand_in):
    cd = hybrid_on_softhsm(tmp_path, stand_in)
    crashed = cd.apply(env=cd.env(PKI_CEREMONY_TEST_CRASH="primary/certificate:after-result"))
    assert crashed.returncode == -signal.SIGKILL
    # Replace the signed primary certificate, in the state and on disk, by one for another key.
    db = sqlite3.connect(cd.workspace / "state.db")
    outputs = json.loads(db.execute("SELECT outputs FROM steps WHERE id='primary/certificate'").fetchone()[0])
    good = x509.load_pem_x509_certificate(outputs["certificate_pem"].encode())
    other = ec.generate_private_key(ec.SECP256R1())
    bad = (x509.CertificateBuilder().subject_name(good.subject).issuer_name(good.issuer)
           .public_key(other.public_key()).serial_number(good.serial_number)
           .not_valid_before(good.not_valid_before_utc).not_valid_after(good.not_valid_after_utc)
           .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
           .sign(other, hashes.SHA256()))
    pem = bad.public_bytes(Encoding.PEM).decode()
    outputs["certificate_pem"] = pem
    with db:
        db.execute("UPDATE steps SET outputs=? WHERE id='primary/certificate'", (json.dumps(outputs),))
        db.execute("UPDATE artifacts SET content=? WHERE path='primary/certificate.pem'", (pem.encode(),))
    db.close()
    (cd.workspace / "artifacts" / "primary" / "certificate.pem").write_text(pem)
    stand_in.reset_calls()
    r = cd.apply()
    assert r.returncode == 1
    assert "primary/import" in r.stderr and "key: the certificate's public key is not the CA's" in r.stderr
    assert "ImportCertificateAuthorityCertificate" not in stand_in.calls()["calls"].get("acm-pca", {})


def test_missing_region_is_refused_before_anything_starts(tmp_path, stand_in):
    cd = hybrid_on_softhsm(tmp_path, stand_in)
    cd.file.write_text(cd.file.read_text().replace("aws:\n  region: us-east-1\n", ""))
    r = cd.apply(env=cd.env(AWS_REGION="", AWS_DEFAULT_REGION=""))
    assert r.returncode == 2 and "no AWS region" in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: {cd.file}:") and ": no AWS region for the steps that call AWS" in r.stderr
    assert not cd.workspace.exists()  # refused before anything started


def test_parallel_apply_overlaps_aws_waits_and_still_makes_one_ca_each(tmp_path, stand_in):
    cd = hybrid_on_softhsm(tmp_path, stand_in)
    r = cd.apply("--parallel", "4", timeout=600)
    assert r.returncode == 0, r.stdout[-1500:] + r.stderr[-1500:]
    assert "(11 mutating)" in r.stdout
    assert stand_in.live_cas() == Counter({cn: 1 for cn in common_names()})
    assert set(verify_all_chains(cd).values()) == {"OK"}


def test_a_ca_created_before_a_kill_is_adopted_by_its_tags_after_the_idempotency_window(tmp_path, stand_in):
    cd = hybrid_on_softhsm(tmp_path, stand_in)
    # Call 2 is primary/create's CreateCertificateAuthority (after one ListCertificateAuthorities).
    killed = cd.apply(env=cd.env(PKI_CEREMONY_TEST_CRASH_AWS_CALL="2"))
    assert killed.returncode == -signal.SIGKILL
    assert stand_in.live_cas() == Counter({"Example Corp Primary CA G1": 1})
    stand_in.advance_clock(3600)  # an hour later: the IdempotencyToken is long forgotten
    resumed = cd.apply(timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-1500:] + resumed.stderr[-1500:]
    assert "primary/create: adopted" in resumed.stdout and "by its tags" in resumed.stdout
    assert stand_in.live_cas() == Counter({cn: 1 for cn in common_names()})
